//! The merge stage: bring the target's newer code into the bead's branch (a conflict goes back
//! to the coder once, then escalates; the tests run again), squash the branch onto the target
//! as one commit with trailers, and move the target — all under the bead store's lock so no
//! bead commit slips in between. Then close the bead and remove the worktree and branch.
//!
//! `merge: none` leaves the work on its branch; `merge: approve` asks a person first. A landing
//! is recorded in the data dir before the target moves, so a crash right after is finished by
//! the next run instead of being merged twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::agent::session::agent_identity;
use crate::bead::status;
use crate::error::{Error, Result};
use crate::event::{Event, EventKind, Outcome, Stage};
use crate::git::merge::{self, Advance, Integrated, Landing};
use crate::ops::decision::Question;

use super::pipeline::{Pipeline, Step};
use super::settings::MergeMode;
use crate::ops::claim;

/// How often landing is tried when the target keeps moving.
const ATTEMPTS: u32 = 5;

/// After taking in the target.
enum TakeIn {
    /// Up to date and tested: land.
    Ready,
    /// Go elsewhere (tests failed: back to the coder, or a decision).
    Go(Step),
    /// These files conflict: one coder round.
    Conflict(Vec<String>),
}

enum Try {
    Landed {
        squash: String,
        from: String,
    },
    /// The branch changes nothing on the target.
    Nothing,
    Moved,
    Conflict,
    Refused(String),
    /// The change touches protected paths and no person approved this very change to them:
    /// the paths, that part of the diff, and its digest.
    Protected(Vec<String>, String, String),
}

impl Pipeline {
    pub(super) async fn land(&mut self) -> Result<Step> {
        match self.cx.settings.merge {
            MergeMode::None => return self.leave_on_branch().await,
            MergeMode::Approve if !self.approved => return self.ask_approval().await,
            _ => {}
        }
        let target = self.cx.settings.target.clone();
        self.set_stage(
            Stage::Merging,
            &[
                ("summary", json!(self.summary)),
                ("model", json!(self.model)),
            ],
        )
        .await?;
        self.cx
            .stage_event(self.id(), Stage::Merging, format!("into {target}"));
        for _ in 0..ATTEMPTS {
            // One bead at a time takes in the target, tests and lands (a merge queue), so what
            // lands was tested on exactly the code it lands on. A conflict round runs outside.
            let turn = Arc::clone(&self.cx.landing);
            let turn = turn.lock().await;
            match self.take_in_target().await? {
                TakeIn::Ready => {}
                TakeIn::Go(step) => return Ok(step),
                TakeIn::Conflict(files) => {
                    drop(turn);
                    match self.resolve_conflict(files).await? {
                        Some(step) => return Ok(step),
                        None => continue,
                    }
                }
            }
            match self.try_land().await? {
                Try::Landed { squash, from } => return self.landed(Some(squash), &from).await,
                Try::Nothing => {
                    let from = self.branch_tip().await?;
                    return self.landed(None, &from).await;
                }
                Try::Moved | Try::Conflict => continue,
                Try::Refused(why) => return self.refused(&why).await,
                Try::Protected(files, diff, digest) => {
                    drop(turn);
                    return self.protected_change(&files, &diff, &digest).await;
                }
            }
        }
        let q = Question {
            title: format!("{}: could not land on {target}", self.id()),
            body: format!(
                "{target} kept moving or conflicting while {} was being merged ({ATTEMPTS} attempts).",
                self.id()
            ),
            options: vec![
                "approve: try again".into(),
                "deny: drop the bead".into(),
                "answer: guidance for the coder".into(),
            ],
            reason: "landing kept failing".into(),
            stage: None,
            comment: None,
        };
        self.escalate(q).await
    }

    async fn branch_tip(&self) -> Result<String> {
        let branch = self.worktree()?.branch;
        self.cx
            .blocking(move |cx| cx.ws.require_repo()?.tip(&branch))
            .await
    }

    /// Merges the target into the branch if its code moved, and tests the result.
    async fn take_in_target(&mut self) -> Result<TakeIn> {
        let wt = self.worktree()?;
        let target = self.cx.settings.target.clone();
        let (t2, b2) = (target.clone(), wt.branch.clone());
        let moved = self
            .cx
            .blocking(move |cx| cx.ws.require_repo()?.base_moved(&t2, &b2))
            .await?;
        if !moved {
            return Ok(TakeIn::Ready);
        }
        let author = agent_identity(&self.coder_name());
        let committer = self.cx.committer();
        let (wt2, t2) = (wt.clone(), target.clone());
        let integrated = self
            .cx
            .blocking(move |_| merge::integrate(&wt2, &t2, &author, committer.as_ref()))
            .await?;
        match integrated {
            Integrated::UpToDate => Ok(TakeIn::Ready),
            Integrated::Merged => {
                self.cx
                    .stage_event(self.id(), Stage::Merging, format!("took in {target}"));
                Ok(
                    match self
                        .recheck(&format!("after taking in the latest {target}"))
                        .await?
                    {
                        Some(step) => TakeIn::Go(step),
                        None => TakeIn::Ready,
                    },
                )
            }
            Integrated::Conflicted { files } => Ok(TakeIn::Conflict(files)),
        }
    }

    /// Runs the tests again after the branch took in new code: `None` if they pass.
    async fn recheck(&mut self, when: &str) -> Result<Option<Step>> {
        let Some(cmd) = self.cx.settings.test_command.clone() else {
            return Ok(None);
        };
        // Counts against the verification budget, but is no new round of work: the events
        // carry the round the summary shows.
        self.verify_rounds += 1;
        let round = self.verify_rounds;
        self.cx
            .stage_event(self.id(), Stage::Verifying, format!("`{cmd}` {when}"));
        let Some(run) = self.run_tests(&cmd, self.report.rounds.max(1)).await? else {
            return self
                .interrupted("the run stopped during verification")
                .await
                .map(Some);
        };
        if run.passed {
            return Ok(None);
        }
        if round >= self.cx.settings.budget.max_verify_rounds {
            let q = Question {
                title: format!("{}: tests fail {when}", self.id()),
                body: format!(
                    "`{cmd}` fails on {} {when}, and the verification budget is used up.\n\n```\n{}\n```",
                    self.id(),
                    run.tail
                ),
                options: vec![
                    "approve: try again with a fresh budget".into(),
                    "deny: drop the bead".into(),
                    "answer: guidance for the coder".into(),
                ],
                reason: format!("tests failed {when}"),
                stage: None,
                comment: None,
            };
            return self.escalate(q).await.map(Some);
        }
        Ok(Some(Step::Implement(Some(format!(
            "The test command `{cmd}` fails {when} ({}):\n```\n{}\n```\nMake it pass, then call `done`.",
            run.status, run.tail
        )))))
    }

    fn coder_name(&self) -> String {
        self.coder
            .as_ref()
            .map(|c| c.name.clone())
            .or_else(|| {
                self.bead
                    .loom_get("persona")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "coder".into())
    }

    /// One coder round to resolve the conflict markers; then the merge is committed and tested,
    /// or given up and escalated.
    async fn resolve_conflict(&mut self, files: Vec<String>) -> Result<Option<Step>> {
        // The coder changes the code again: an approval was for the code as it was.
        self.approved = false;
        let target = self.cx.settings.target.clone();
        let wt = self.worktree()?;
        self.conflict_rounds += 1;
        let list = files.join(", ");
        self.cx.publish(Event::about(
            self.id().to_owned(),
            EventKind::MergeResult {
                merged: false,
                commit: None,
                detail: format!("conflict with {target} in {list}"),
            },
        ));
        if self.conflict_rounds > 1 {
            self.abandon_merge().await;
            return self
                .conflict_escalation(&list, "it conflicted again")
                .await
                .map(Some);
        }
        let coder = match &self.coder {
            Some(c) => c.clone(),
            None => {
                let name = self.coder_name();
                self.cx
                    .personas
                    .get(&name)
                    .or_else(|| self.cx.personas.get("coder"))
                    .cloned()
                    .ok_or_else(|| {
                        Error::Config(format!("no persona {name:?} to resolve the conflict"))
                    })?
            }
        };
        self.report.rounds += 1;
        let round = self.report.rounds;
        self.cx.stage_event(
            self.id(),
            Stage::Implementing,
            format!("resolving a conflict with {target}"),
        );
        let model = match &coder.model {
            Some(m) => m.clone(),
            None => self.cx.client.resolve_model(None).await?,
        };
        let ask = format!(
            "Merging the latest {target} into your branch conflicted in: {list}. The files hold git's conflict \
             markers (<<<<<<< ======= >>>>>>>). Resolve every conflict so that both {target}'s change and this \
             bead's change keep working, remove all markers, run the tests, then call `done`."
        );
        let mut messages = std::mem::take(&mut self.conversation);
        if messages.is_empty() {
            messages = self.opening(&coder, &ask).await?;
        } else {
            crate::agent::prompt::close_open_calls(&mut messages, "Recorded.");
            messages.push(crate::llm::Message::user(ask));
        }
        let Some(ended) = self.session(&coder, &model, messages, round).await? else {
            return self
                .interrupted("the run stopped during a conflict")
                .await
                .map(Some);
        };
        self.conversation = ended.end.messages.clone();
        if super::agents::endpoint_unusable(&ended.end) {
            self.cx.mark_endpoint_failed();
            return self.interrupted(&ended.end.detail).await.map(Some);
        }
        let (wt2, files2) = (wt.clone(), files.clone());
        let left = self
            .cx
            .blocking(move |_| Ok(merge::unresolved(&wt2, &files2)))
            .await?;
        if ended.end.terminal != crate::agent::run::Terminal::Done || !left.is_empty() {
            self.abandon_merge().await;
            let why = if left.is_empty() {
                format!("the coder stopped: {}", ended.end.detail)
            } else {
                format!("markers remain in {}", left.join(", "))
            };
            return self.conflict_escalation(&list, &why).await.map(Some);
        }
        let author = agent_identity(&coder.name);
        let committer = self.cx.committer();
        self.cx
            .blocking(move |_| merge::conclude(&wt, &author, committer.as_ref()))
            .await?;
        self.recheck(&format!("after resolving the conflict with {target}"))
            .await
    }

    async fn conflict_escalation(&mut self, files: &str, why: &str) -> Result<Step> {
        let target = self.cx.settings.target.clone();
        let q = Question {
            title: format!("{}: merge conflict with {target}", self.id()),
            body: format!(
                "{} conflicts with {target} in {files}; the coder's resolution round did not settle it ({why}). \
                 The branch {} still holds the bead's work.",
                self.id(),
                self.worktree().map(|w| w.branch).unwrap_or_default()
            ),
            options: vec![
                "approve: let an agent try again".into(),
                "deny: drop the bead".into(),
                "answer: explain how to resolve it".into(),
            ],
            reason: format!("merge conflict in {files}: {why}"),
            stage: None,
            comment: None,
        };
        self.escalate(q).await
    }

    /// The squash commit's message: the bead, the coder's summary, the trailers.
    fn squash_message(&self) -> String {
        let agent = self.coder_name();
        let model = if self.model.is_empty() {
            "unknown".to_owned()
        } else {
            self.model.clone()
        };
        let mut m = format!("{} ({})\n\n", self.bead.title, self.id());
        let summary = self.summary.trim();
        if !summary.is_empty() {
            m.push_str(summary);
            m.push_str("\n\n");
        }
        m.push_str(&format!(
            "Loom-Bead: {}\nLoom-Agent: {agent}\nLoom-Model: {model}\nLoom-Event: merged\n",
            self.id()
        ));
        if let Some(r) = &self.reviewed_by {
            m.push_str(&format!("Loom-Reviewed-By: {r}\n"));
        }
        m.push_str(&format!(
            "Co-authored-by: {agent} ({model}) <{}>\n",
            agent_identity(&agent).email
        ));
        m
    }

    /// Squashes the branch onto the target and moves the target, under the store lock.
    async fn try_land(&mut self) -> Result<Try> {
        let wt = self.worktree()?;
        let target = self.cx.settings.target.clone();
        let message = self.squash_message();
        let author = agent_identity(&self.coder_name());
        let committer = self.cx.committer();
        let marker = self.cx.landing_marker(self.id());
        // A person's approval of protected changes holds for exactly the change they were shown.
        let approved_digest = self
            .approved
            .then(|| {
                self.bead
                    .loom_get("protected_approval")
                    .and_then(|v| v.as_str().map(str::to_owned))
            })
            .flatten();
        self.cx
            .blocking(move |cx| {
                cx.with_git(|| {
                    let repo = cx.ws.require_repo()?;
                    let _store =
                        crate::store::fsio::lock(&repo.beads_lock_path(), Duration::from_secs(60))?;
                    // Code that reached the target since the branch took it in was not
                    // tested with this bead: take it in and test again first.
                    if repo.base_moved(&target, &wt.branch)? {
                        return Ok(Try::Moved);
                    }
                    let old = repo.tip(&target)?;
                    let from = repo.tip(&wt.branch)?;
                    let tree = match repo.landing(&target, &wt.branch)? {
                        Landing::Conflict { .. } => return Ok(Try::Conflict),
                        Landing::Clean { tree } => tree,
                    };
                    if tree == repo.tree_of(&old)? {
                        return Ok(Try::Nothing);
                    }
                    // What verifies or configures the agent is never changed without a person.
                    let place = crate::git::safe::Place::Repo(&repo.workdir);
                    let changed = crate::git::changed_between(place, &old, &tree)?;
                    let touched = cx.protected.filter(changed.iter().map(String::as_str));
                    if !touched.is_empty() {
                        let whole =
                            crate::git::diff_between(place, &old, &tree, &touched, usize::MAX)?;
                        let digest = protected_digest(&touched, &whole);
                        if approved_digest.as_deref() != Some(digest.as_str()) {
                            let shown = crate::text::fit_bytes(&whole, 12 * 1024);
                            return Ok(Try::Protected(touched, shown, digest));
                        }
                    }
                    let squash =
                        repo.commit_tree(&tree, &old, &message, &author, committer.as_ref())?;
                    if let Some(m) = &marker {
                        if let Some(dir) = m.parent() {
                            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                        }
                        std::fs::write(m, format!("{squash} {from}\n"))
                            .map_err(|e| Error::io(m, e))?;
                    }
                    let advanced = repo.advance(&target, &old, &squash);
                    let drop_marker = || {
                        if let Some(m) = &marker {
                            let _ = std::fs::remove_file(m);
                        }
                    };
                    match advanced {
                        Ok(Advance::Done) => Ok(Try::Landed { squash, from }),
                        Ok(Advance::Moved) => {
                            drop_marker();
                            Ok(Try::Moved)
                        }
                        Ok(Advance::Refused(why)) => {
                            drop_marker();
                            Ok(Try::Refused(why))
                        }
                        Err(e) => {
                            drop_marker();
                            Err(e)
                        }
                    }
                })
            })
            .await
    }

    /// The target has the work: close the bead, remove the worktree and branch.
    async fn landed(&mut self, squash: Option<String>, from: &str) -> Result<Step> {
        let id = self.id().to_owned();
        let summary = if self.summary.trim().is_empty() {
            format!("Merged by {}", self.coder_name())
        } else {
            self.summary.clone()
        };
        let (s2, sq2) = (summary.clone(), squash.clone());
        self.cx
            .blocking(move |cx| claim::close_merged(&cx.ws, &id, &s2, sq2.as_deref()))
            .await?;
        if let Some(m) = self.cx.landing_marker(self.id()) {
            let _ = std::fs::remove_file(m);
        }
        self.report.stage = Stage::Done;
        self.report.commit = squash.clone();
        let detail = match &squash {
            Some(_) => format!("squashed onto {}", self.cx.settings.target),
            None => "nothing to merge: the branch changes nothing on the target".into(),
        };
        self.cx.publish(Event::about(
            self.id().to_owned(),
            EventKind::MergeResult {
                merged: true,
                commit: squash,
                detail,
            },
        ));
        if let Some(wt) = self.wt.take() {
            let from = from.to_owned();
            let kept = self
                .cx
                .blocking(move |cx| cx.with_git(|| cx.trees.remove_landed(&wt, &from)))
                .await;
            self.report_kept(kept);
        }
        Ok(Step::End(Outcome::Merged, summary))
    }

    /// The user's uncommitted changes would be overwritten: the bead waits, nothing is forced.
    async fn refused(&mut self, why: &str) -> Result<Step> {
        let target = self.cx.settings.target.clone();
        let workdir = self
            .cx
            .ws
            .require_repo()
            .map(|r| r.workdir.display().to_string())
            .unwrap_or_default();
        // git lists the files indented under "would be overwritten by merge:".
        let files: Vec<&str> = why
            .lines()
            .filter(|l| l.starts_with('\t') || l.starts_with("    "))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let note = format!(
            "merging into {target} was refused: it would overwrite uncommitted changes in {workdir}{}. \
             Commit or stash them, then run `loom run` again (the work waits on branch {}).",
            if files.is_empty() {
                String::new()
            } else {
                format!(" ({})", files.join(", "))
            },
            self.worktree().map(|w| w.branch).unwrap_or_default()
        );
        let (id, n2) = (self.id().to_owned(), note.clone());
        self.cx
            .blocking(move |cx| claim::release(&cx.ws, &id, status::OPEN, Stage::MergeWaiting, &n2))
            .await?;
        self.report.stage = Stage::MergeWaiting;
        self.cx.publish(Event::about(
            self.id().to_owned(),
            EventKind::MergeResult {
                merged: false,
                commit: None,
                detail: note.clone(),
            },
        ));
        self.put_away_worktree().await;
        Ok(Step::End(Outcome::Waiting, note))
    }

    /// `merge: none`: the work stays on its branch; the bead stays in progress for a person.
    async fn leave_on_branch(&mut self) -> Result<Step> {
        let wt = self.worktree()?;
        let tip = self.branch_tip().await?;
        let note = format!(
            "done, tested and reviewed on branch {} (merge: none); merge it and close the bead yourself",
            wt.branch
        );
        let (id, n2) = (self.id().to_owned(), note.clone());
        self.cx
            .blocking(move |cx| {
                claim::release(&cx.ws, &id, status::IN_PROGRESS, Stage::Completed, &n2)
            })
            .await?;
        self.report.stage = Stage::Completed;
        self.report.commit = Some(tip);
        self.put_away_worktree().await;
        Ok(Step::End(Outcome::Completed, note))
    }

    /// `merge: approve`: a decision bead asks a person before the target moves.
    async fn ask_approval(&mut self) -> Result<Step> {
        let wt = self.worktree()?;
        let target = self.cx.settings.target.clone();
        let (t2, b2) = (target.clone(), wt.branch.clone());
        let stat = self
            .cx
            .blocking(move |cx| {
                cx.ws.require_repo()?.git_ok(
                    &["diff", "--stat", &format!("{t2}...{b2}")],
                    &[],
                    None,
                )
            })
            .await
            .unwrap_or_default();
        let q = Question {
            title: format!("Approve merging {}: {}?", self.id(), self.bead.title),
            body: format!(
                "{} is done{} and waits on branch {} for approval to merge into {target}.\n\n{}\n\n```\n{}\n```",
                self.id(),
                if self.reviewed_by.is_some() {
                    ", tested and reviewed"
                } else {
                    ""
                },
                wt.branch,
                self.summary.trim(),
                stat.trim()
            ),
            options: vec![
                format!("approve: merge it into {target}"),
                "deny: close the bead without merging".into(),
                "answer: send it back to the coder with guidance".into(),
            ],
            reason: "merge: approve".into(),
            stage: Some(Stage::AwaitingApproval),
            comment: None,
        };
        self.set_stage(
            Stage::Merging,
            &[
                ("summary", json!(self.summary)),
                ("model", json!(self.model)),
            ],
        )
        .await?;
        self.escalate(q).await
    }

    /// The change touches protected paths: a person decides (approve merges it as it is).
    async fn protected_change(
        &mut self,
        files: &[String],
        diff: &str,
        digest: &str,
    ) -> Result<Step> {
        let target = self.cx.settings.target.clone();
        let diff = self.cx.client.config().redact(diff);
        let q = Question {
            title: format!(
                "{}: the change touches protected paths ({})",
                self.id(),
                files.join(", ")
            ),
            body: format!(
                "{} ({}) is done, but its change touches paths that verify or configure the agents \
                 (protected_paths: {}). Loom never merges such a change by itself.\n\n\
                 The change to them:\n\n```diff\n{}\n```\n\nThe whole change is on branch {}.",
                self.id(),
                self.bead.title,
                files.join(", "),
                diff.trim_end(),
                self.worktree().map(|w| w.branch).unwrap_or_default()
            ),
            options: vec![
                format!("approve: merge it into {target}, protected changes included"),
                "deny: close the bead without merging".into(),
                "answer: send it back to the coder (e.g. to leave those files alone)".into(),
            ],
            reason: format!("changes protected paths: {}", files.join(", ")),
            stage: Some(Stage::AwaitingApproval),
            comment: None,
        };
        self.cx.stage_event(
            self.id(),
            Stage::AwaitingApproval,
            format!("touches protected paths: {}", files.join(", ")),
        );
        // What an approval will cover: this change to the protected paths, nothing else.
        self.set_stage(
            Stage::AwaitingApproval,
            &[
                ("protected_approval", json!(digest)),
                ("summary", json!(self.summary)),
                ("model", json!(self.model)),
            ],
        )
        .await?;
        self.escalate(q).await
    }

    /// A landing that completed before a crash: finish it (close, clean up) instead of redoing
    /// the bead. `None` if there is none.
    pub(super) async fn finish_landed(&mut self) -> Result<Option<Step>> {
        let Some(marker) = self.cx.landing_marker(self.id()) else {
            return Ok(None);
        };
        let Ok(text) = std::fs::read_to_string(&marker) else {
            return Ok(None);
        };
        let mut parts = text.split_whitespace();
        let (Some(squash), Some(from)) = (parts.next(), parts.next()) else {
            let _ = std::fs::remove_file(&marker);
            return Ok(None);
        };
        let (squash, from) = (squash.to_owned(), from.to_owned());
        let (target, s2) = (self.cx.settings.target.clone(), squash.clone());
        let landed = self
            .cx
            .blocking(move |cx| Ok(cx.ws.require_repo()?.is_ancestor(&s2, &target)))
            .await?;
        if !landed {
            let _ = std::fs::remove_file(&marker);
            return Ok(None);
        }
        self.summary = self
            .bead
            .loom_get("summary")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.cx.stage_event(
            self.id(),
            Stage::Merging,
            format!("finishing a landing interrupted after {squash} reached the target"),
        );
        self.landed(Some(squash), &from).await.map(Some)
    }
}

/// A digest of a change to protected paths (the paths and their diff): what a person approves.
fn protected_digest(files: &[String], diff: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in files {
        h.update(f.as_bytes());
        h.update([0]);
    }
    h.update(diff.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
