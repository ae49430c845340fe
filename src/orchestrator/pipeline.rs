//! One bead through the pipeline of DESIGN §6: claim → worktree → implement → verify → review
//! → merge → close → remove the worktree. Each step returns the next one, so the rounds (tests
//! failed, changes requested, a conflict) are explicit and bounded by the bead's budget; when a
//! budget runs out the bead is blocked on one decision bead. Every stage shows in
//! `metadata.loom.stage` and as an event.
//!
//! The stages live beside it: `verify.rs`, `review.rs`, `land.rs` (the merge stage).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent::persona::Persona;
use crate::agent::prompt;
use crate::agent::run::{Limits, Terminal};
use crate::agent::{lessons, session};
use crate::bead::graph::Graph;
use crate::bead::{Bead, status};
use crate::error::{Error, Result};
use crate::event::{Event, EventKind, Outcome, Stage};
use crate::git::worktree::Worktree;
use crate::llm::Message;
use crate::ops::decision::{self, Question};

use super::agents::{self, Session};
use super::context::Context;
use super::report::BeadReport;
use crate::ops::claim::{self, Claim};

/// What the pipeline does next.
pub(super) enum Step {
    /// An implementation round, with feedback from the previous one (tests, review, conflict).
    Implement(Option<String>),
    Verify,
    Review,
    Land,
    /// The bead's state is settled for this run.
    End(Outcome, String),
}

/// One bead's pipeline.
pub(super) struct Pipeline {
    pub(super) cx: Arc<Context>,
    pub(super) bead: Bead,
    pub(super) report: BeadReport,
    pub(super) started: Instant,
    pub(super) previous_stage: Option<Stage>,
    /// A person approved merging this bead (consumed by the claim).
    pub(super) approved: bool,
    pub(super) wt: Option<Worktree>,
    pub(super) coder: Option<Persona>,
    /// The coder's model (for trailers).
    pub(super) model: String,
    pub(super) conversation: Vec<Message>,
    /// The coder's last `done` summary.
    pub(super) summary: String,
    pub(super) verify_rounds: u32,
    pub(super) review_rounds: u32,
    pub(super) conflict_rounds: u32,
    pub(super) reviewed_by: Option<String>,
}

/// Runs bead `id` through the pipeline; `None` if it could not be claimed (someone else took
/// it, or it is no longer open).
pub async fn run(cx: Arc<Context>, id: String) -> Option<BeadReport> {
    let started = Instant::now();
    // Claiming (a commit) and creating the worktree are independent: do both at once.
    let claim = {
        let id = id.clone();
        cx.blocking(move |cx| claim::claim(&cx.ws, &id, &cx.owner))
    };
    let add = {
        let id = id.clone();
        cx.blocking(move |cx| cx.with_git(|| cx.trees.add(&id, &cx.settings.target)))
    };
    let (claim, added) = tokio::join!(claim, add);
    let undo_add = |added: Result<(Worktree, bool)>| async {
        if let Ok((wt, true)) = added {
            let _ = cx
                .blocking(move |cx| cx.with_git(|| cx.trees.remove(&wt, &cx.settings.target, true)))
                .await;
        }
    };
    let (bead, dispatches, previous_stage, approved) = match claim {
        Ok(Claim::Claimed {
            bead,
            dispatches,
            previous_stage,
            merge_approved,
        }) => (*bead, dispatches, previous_stage, merge_approved),
        Ok(Claim::Skipped(why)) => {
            undo_add(added).await;
            cx.stage_event(&id, Stage::Skipped, why);
            return None;
        }
        Err(e) => {
            undo_add(added).await;
            cx.publish(Event {
                bead: Some(id.clone()),
                ..Event::new(EventKind::Error {
                    message: format!("cannot claim {id}: {e}"),
                })
            });
            return Some(BeadReport {
                id,
                outcome: Some(Outcome::Failed),
                stage: Stage::ClaimFailed,
                detail: e.to_string(),
                duration_ms: started.elapsed().as_millis() as u64,
                ..BeadReport::default()
            });
        }
    };
    cx.stage_event(
        &id,
        Stage::Claimed,
        format!(
            "dispatch {dispatches} of {}",
            cx.settings.budget.max_dispatches
        ),
    );
    let mut p = Pipeline {
        cx: Arc::clone(&cx),
        report: BeadReport {
            id: id.clone(),
            title: bead.title.clone(),
            stage: Stage::Claimed,
            ..BeadReport::default()
        },
        bead,
        started,
        previous_stage,
        approved,
        wt: None,
        coder: None,
        model: String::new(),
        conversation: Vec::new(),
        summary: String::new(),
        verify_rounds: 0,
        review_rounds: 0,
        conflict_rounds: 0,
        reviewed_by: None,
    };
    let end = match p.start(added, dispatches).await {
        Ok(step) => p.drive(step).await,
        Err(e) => Err(e),
    };
    let end = match end {
        Ok(end) => end,
        Err(Error::Security(why)) => p.security_stop(&why).await,
        Err(e) if endpoint_error(&e) => {
            cx.mark_endpoint_failed();
            match p.interrupted(&e.to_string()).await {
                Ok(Step::End(o, d)) => (o, d),
                Ok(_) => (Outcome::Interrupted, e.to_string()),
                Err(e2) => p.failed(e2).await,
            }
        }
        Err(e) => p.failed(e).await,
    };
    Some(p.finish(end))
}

/// Whether an error means the endpoint is unusable (not the bead's fault).
fn endpoint_error(e: &Error) -> bool {
    matches!(e, Error::Llm(l) if l.is_outage()
        || matches!(l, crate::llm::LlmError::Auth { .. } | crate::llm::LlmError::NotConfigured))
}

impl Pipeline {
    pub(super) fn id(&self) -> &str {
        &self.bead.id
    }

    async fn drive(&mut self, mut step: Step) -> Result<(Outcome, String)> {
        loop {
            if self.cx.stopping_bead(&self.bead.id) && !matches!(step, Step::End(..)) {
                let why = if self.cx.stopping() {
                    "the run stopped"
                } else {
                    "stopped by hand"
                };
                step = self.interrupted(why).await?;
            }
            step = match step {
                Step::Implement(feedback) => self.implement(feedback).await?,
                Step::Verify => self.verify().await?,
                Step::Review => self.review().await?,
                Step::Land => self.land().await?,
                Step::End(outcome, detail) => return Ok((outcome, detail)),
            };
        }
    }

    /// After the claim: the worktree, and where an earlier run left the bead — landed before
    /// a crash, over its dispatch budget, waiting to merge (refused, or now approved) — else
    /// implementation from the start (on the branch of earlier attempts, if any).
    async fn start(&mut self, added: Result<(Worktree, bool)>, dispatches: u32) -> Result<Step> {
        let (wt, created) = added?;
        let tampered = wt.tampered();
        self.wt = Some(wt);
        if let Some(why) = tampered {
            return Err(Error::Security(why));
        }
        // A crash in the middle of resolving a conflict leaves git's merge state behind.
        self.abandon_merge().await;
        if let Some(step) = self.finish_landed().await? {
            return Ok(step);
        }
        if dispatches > self.cx.settings.budget.max_dispatches {
            return self.over_dispatched(dispatches).await;
        }
        if created {
            self.setup_worktree().await?;
        }
        let wt = self.worktree()?;
        let detail = if created {
            format!("worktree {} on {}", wt.path.display(), wt.branch)
        } else {
            format!("reusing worktree {} on {}", wt.path.display(), wt.branch)
        };
        self.cx.stage_event(self.id(), Stage::Worktree, detail);
        self.set_stage(
            Stage::Claimed,
            &[
                ("branch", json!(wt.branch)),
                ("worktree", json!(wt.path.display().to_string())),
            ],
        )
        .await?;
        let waiting = self.previous_stage == Some(Stage::MergeWaiting);
        if (self.approved || waiting) && self.branch_ahead().await? > 0 {
            for (key, field) in [("summary", &mut self.summary), ("model", &mut self.model)] {
                *field = self
                    .bead
                    .loom_get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
            }
            return Ok(Step::Land);
        }
        Ok(Step::Implement(None))
    }

    /// Runs `worktree.setup` in a new worktree (in the sandbox, with the test timeout); a
    /// failure removes the worktree and is a configuration error.
    async fn setup_worktree(&mut self) -> Result<()> {
        let Some(cmd) = self.cx.trees.setup_command().map(str::to_owned) else {
            return Ok(());
        };
        let wt = self.worktree()?;
        self.cx
            .stage_event(self.id(), Stage::Worktree, format!("setting up: `{cmd}`"));
        let cx = Arc::clone(&self.cx);
        let setup = session::setup_worktree(
            &cx.ws,
            &cx.client,
            &cx.trees,
            &wt,
            cx.helper.clone(),
            cx.settings.test_timeout,
        );
        let failure = tokio::select! {
            out = setup => out?,
            () = self.cx.stopped_bead(&self.bead.id) => Some("the run stopped during the worktree setup".to_owned()),
        };
        if let Some(why) = failure {
            self.wt = None;
            self.cx
                .blocking(move |cx| {
                    cx.with_git(|| {
                        cx.trees.discard(&wt);
                        Ok(())
                    })
                })
                .await?;
            return Err(Error::Config(format!(
                "{why}; fix worktree.setup in .loom/config.yaml"
            )));
        }
        Ok(())
    }

    /// Gives up a merge left in progress in the worktree (conflict markers never get committed).
    pub(super) async fn abandon_merge(&self) {
        let Ok(wt) = self.worktree() else { return };
        let _ = self
            .cx
            .blocking(move |_| {
                if crate::git::merge::in_progress(&wt) {
                    crate::git::merge::abandon(&wt);
                }
                Ok(())
            })
            .await;
    }

    pub(super) fn worktree(&self) -> Result<Worktree> {
        self.wt
            .clone()
            .ok_or_else(|| Error::Other(format!("{} has no worktree", self.bead.id)))
    }

    /// Commits the bead's branch has beyond the target.
    pub(super) async fn branch_ahead(&self) -> Result<u64> {
        let wt = self.worktree()?;
        let target = self.cx.settings.target.clone();
        self.cx
            .blocking(move |cx| cx.ws.require_repo()?.ahead(&target, &wt.branch))
            .await
    }

    /// The commit the branch forked from (what `git_diff` compares with).
    pub(super) async fn diff_base(&self) -> Option<String> {
        let wt = self.worktree().ok()?;
        let target = self.cx.settings.target.clone();
        self.cx
            .blocking(move |cx| cx.ws.require_repo()?.fork_point(&target, &wt.branch))
            .await
            .ok()
    }

    /// Records the stage on the bead (no commit) and announces it.
    pub(super) async fn set_stage(&mut self, name: Stage, extra: &[(&str, Value)]) -> Result<()> {
        self.report.stage = name;
        let id = self.id().to_owned();
        let extra: Vec<(String, Value)> = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        self.cx
            .blocking(move |cx| {
                let refs: Vec<(&str, Value)> =
                    extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                claim::set_stage(&cx.ws, &id, name, &refs)
            })
            .await
    }

    pub(super) async fn announce(&mut self, name: Stage, detail: String) -> Result<()> {
        self.set_stage(name, &[]).await?;
        self.cx.stage_event(self.id(), name, detail);
        Ok(())
    }

    fn coder(&mut self) -> Result<Persona> {
        if let Some(c) = &self.coder {
            return Ok(c.clone());
        }
        let c = session::persona_for(&self.cx.personas, &self.cx.ws, &self.bead, None)?.clone();
        self.coder = Some(c.clone());
        Ok(c)
    }

    pub(super) async fn model_for(&self, persona: &Persona) -> Result<String> {
        if let Some(spec) = &persona.runner {
            return Ok(spec.command.clone());
        }
        match &persona.model {
            Some(m) => Ok(m.clone()),
            None => Ok(self.cx.client.resolve_model(None).await?),
        }
    }

    /// What is left of the bead's budget: tokens, time, model turns.
    fn budget_left(&self) -> (u64, Duration, u32) {
        let b = &self.cx.settings.budget;
        (
            b.max_tokens.saturating_sub(self.report.usage.total_tokens),
            b.max_time.saturating_sub(self.started.elapsed()),
            b.max_iterations.saturating_sub(self.report.iterations),
        )
    }

    /// Starts an agent session for `persona` with `messages`.
    pub(super) async fn session(
        &mut self,
        persona: &Persona,
        model: &str,
        messages: Vec<Message>,
        round: u32,
    ) -> Result<Option<agents::Ended>> {
        let wt = self.worktree()?;
        self.cx.publish(Event::about(
            self.id().to_owned(),
            EventKind::AgentStarted {
                persona: persona.name.clone(),
                model: model.to_owned(),
                round,
            },
        ));
        let (tokens_left, time_left, iterations_left) = self.budget_left();
        let diff_base = self.diff_base().await;
        let bead = self.bead.clone();
        let ended = agents::run(
            &self.cx,
            Session {
                bead: &bead,
                persona,
                model,
                wt: &wt,
                diff_base,
                messages,
                tokens_left,
                time_left,
                iterations_left,
            },
        )
        .await?;
        if let Some(e) = &ended {
            self.report.usage += e.end.usage;
            self.report.iterations += e.end.iterations;
        }
        Ok(ended)
    }

    /// The first messages of a persona's session on this bead.
    pub(super) async fn opening(&self, persona: &Persona, extra: &str) -> Result<Vec<Message>> {
        let wt = self.worktree()?;
        let id = self.id().to_owned();
        let persona2 = persona.clone();
        let tool_mode = Limits::new(&self.cx.settings.agent, persona).tool_mode;
        let extra = extra.to_owned();
        self.cx
            .blocking(move |cx| {
                let snap = cx.ws.store.load()?;
                let bead = snap
                    .beads
                    .iter()
                    .find(|b| b.id == id)
                    .ok_or_else(|| Error::NotFound(id.clone()))?;
                let graph = Graph::new(&snap.beads);
                let lessons = lessons::tail(&cx.ws.layout().root, lessons::PROMPT_BYTES);
                let system =
                    prompt::system_prompt(&persona2, tool_mode, &wt.path, lessons.as_deref());
                let mut first = prompt::bead_message(bead, Some(&graph));
                if !extra.is_empty() {
                    first.push_str("\n\n");
                    first.push_str(&extra);
                }
                Ok(vec![Message::system(system), Message::user(first)])
            })
            .await
    }

    async fn implement(&mut self, feedback: Option<String>) -> Result<Step> {
        let coder = self.coder()?;
        self.report.rounds += 1;
        let round = self.report.rounds;
        let what = format!("round {round}");
        self.announce(Stage::Implementing, what).await?;
        let model = self.model_for(&coder).await?;
        self.model = model.clone();
        if self.conversation.is_empty() {
            let ahead = self.branch_ahead().await?;
            let note = if ahead > 0 {
                format!(
                    "Note: an earlier attempt already committed work on this branch ({}). \
                     Start by reviewing it with `git_diff`, then finish the bead.",
                    crate::text::count(ahead as u64, "commit")
                )
            } else {
                String::new()
            };
            self.conversation = self.opening(&coder, &note).await?;
        }
        let mut messages = std::mem::take(&mut self.conversation);
        if feedback.is_some() {
            self.approved = false; // an approval was for the code as it was
        }
        if let Some(f) = feedback {
            prompt::close_open_calls(&mut messages, "Recorded.");
            messages.push(Message::user(f));
        }
        let Some(ended) = self.session(&coder, &model, messages, round).await? else {
            return self
                .interrupted("the run stopped during implementation")
                .await;
        };
        let end = ended.end;
        self.conversation = end.messages.clone();
        if end.terminal == Terminal::SecurityStop {
            return Err(Error::Security(end.detail.clone()));
        }
        let wt = self.worktree()?;
        let bead = self.bead.clone();
        agents::commit(&self.cx, &bead, &coder, &wt, &end).await?;
        match end.terminal {
            Terminal::Done if self.bead.issue_type == crate::bead::issue_type::EPIC => {
                self.summary = end.detail.clone();
                self.planned().await
            }
            Terminal::Done => {
                self.summary = end.detail.clone();
                Ok(Step::Verify)
            }
            Terminal::Escalated => {
                let decision = end.decision.clone().unwrap_or_default();
                self.waiting_on(&decision, &end.detail).await
            }
            _ if agents::endpoint_unusable(&end) => {
                self.cx.mark_endpoint_failed();
                self.interrupted(&end.detail).await
            }
            Terminal::LlmError => Err(Error::Other(format!(
                "the model call failed: {}",
                end.detail
            ))),
            t => {
                let q = Question {
                    title: format!(
                        "{}: {} stopped without finishing ({})",
                        self.id(),
                        coder.name,
                        t.as_str()
                    ),
                    body: format!(
                        "{} worked on {} ({}) and stopped: {}.\n\nIts work so far is on branch {}.",
                        coder.name,
                        self.id(),
                        self.bead.title,
                        end.detail,
                        wt.branch
                    ),
                    options: retry_options(),
                    reason: format!("{}: {}", t.as_str(), end.detail),
                    stage: None,
                    comment: None,
                };
                self.escalate(q).await
            }
        }
    }

    /// An epic is done once its planner has split it into child beads: it stays in progress
    /// (stage `planned`, no owner) until a person closes it.
    async fn planned(&mut self) -> Result<Step> {
        let id = self.id().to_owned();
        let children = self
            .cx
            .blocking(move |cx| {
                let snap = cx.ws.store.load_index()?;
                Ok(crate::bead::graph::Graph::new(&snap.beads)
                    .dependents(&id)
                    .iter()
                    .filter(|(b, d)| {
                        d.dep_type == crate::bead::dep_type::PARENT_CHILD
                            && b.status != status::TOMBSTONE
                    })
                    .count())
            })
            .await?;
        if children == 0 {
            // A plan without parts is no plan: a person decides.
            let q = Question {
                title: format!("{}: the planner filed no child beads", self.id()),
                body: format!(
                    "The planner finished epic {} ({}) without filing any child bead, so \
                     nothing would carry the work out. It said: {}",
                    self.id(),
                    self.bead.title,
                    self.summary.trim()
                ),
                options: retry_options(),
                reason: "planned without child beads".into(),
                stage: None,
                comment: None,
            };
            return self.escalate(q).await;
        }
        let note = format!(
            "planned: {} child {}; {}",
            children,
            if children == 1 { "bead" } else { "beads" },
            self.summary.trim()
        );
        self.put_away_worktree().await;
        let (id, n2) = (self.id().to_owned(), note.clone());
        self.cx
            .blocking(move |cx| {
                claim::release(&cx.ws, &id, status::IN_PROGRESS, Stage::Planned, &n2)
            })
            .await?;
        self.report.stage = Stage::Planned;
        Ok(Step::End(Outcome::Completed, note))
    }

    /// Blocks the bead on a decision (one commit) and puts the worktree away (its branch stays).
    pub(super) async fn escalate(&mut self, q: Question) -> Result<Step> {
        let id = self.id().to_owned();
        let actor = self.cx.ws.actor.clone();
        let q2 = q.clone();
        let decision = self
            .cx
            .blocking(move |cx| decision::escalate(&cx.ws, &id, &actor, &q2))
            .await?;
        let decision = decision.unwrap_or_default();
        self.report.stage = q.stage.unwrap_or(Stage::Escalated);
        self.waiting_on(&decision, &q.title).await
    }

    /// The bead waits on decision bead `decision` (already recorded).
    async fn waiting_on(&mut self, decision: &str, question: &str) -> Result<Step> {
        self.report.decision = Some(decision.to_owned());
        if self.report.stage != Stage::AwaitingApproval {
            self.report.stage = Stage::Escalated;
        }
        self.cx.publish(Event::about(
            self.id().to_owned(),
            EventKind::DecisionNeeded {
                decision: decision.to_owned(),
                question: question.to_owned(),
            },
        ));
        self.put_away_worktree().await;
        Ok(Step::End(
            Outcome::Waiting,
            format!("waiting on decision {decision}: {question}"),
        ))
    }

    /// Removes the worktree if it is clean (the branch keeps the work for the next round).
    pub(super) async fn put_away_worktree(&mut self) {
        self.abandon_merge().await;
        let Some(wt) = self.wt.take() else { return };
        let target = self.cx.settings.target.clone();
        let kept = self
            .cx
            .blocking(move |cx| cx.with_git(|| cx.trees.remove(&wt, &target, true)))
            .await;
        self.report_kept(kept);
    }

    /// Says why a worktree was kept (`Some` reason, or an error), if it was.
    pub(super) fn report_kept(&self, kept: Result<Option<String>>) {
        let why = match kept {
            Ok(None) => return,
            Ok(Some(why)) => why,
            Err(e) => e.to_string(),
        };
        self.cx.stage_event(self.id(), Stage::WorktreeKept, why);
    }

    /// Gives the bead back for the next run: status open, stage `interrupted`. Work in
    /// progress is committed on the bead's branch and the worktree put away.
    pub(super) async fn interrupted(&mut self, why: &str) -> Result<Step> {
        self.abandon_merge().await;
        if let (Ok(wt), Some(coder)) = (self.worktree(), self.coder.clone()) {
            let end = crate::agent::run::LoopEnd::new(Terminal::Interrupted, why, &self.model);
            let bead = self.bead.clone();
            if let Err(e) = agents::commit(&self.cx, &bead, &coder, &wt, &end).await {
                self.cx.stage_event(
                    self.id(),
                    Stage::WorktreeKept,
                    format!("cannot commit: {e}"),
                );
            }
        }
        self.put_away_worktree().await;
        let (id, why2) = (self.id().to_owned(), why.to_owned());
        self.cx
            .blocking(move |cx| claim::give_back(&cx.ws, &id, &why2))
            .await?;
        self.report.stage = Stage::Interrupted;
        Ok(Step::End(Outcome::Interrupted, why.to_owned()))
    }

    /// A dispatch past the budget: ask a person instead of trying again.
    async fn over_dispatched(&mut self, dispatches: u32) -> Result<Step> {
        let max = self.cx.settings.budget.max_dispatches;
        let q = Question {
            title: format!(
                "{}: dispatched {} times without finishing",
                self.id(),
                dispatches - 1
            ),
            body: format!(
                "{} ({}) was handed to agents {} times (max_dispatches {max}) without being merged. \
                 Its last note: {}",
                self.id(),
                self.bead.title,
                dispatches - 1,
                self.bead
                    .loom_get("note")
                    .and_then(Value::as_str)
                    .unwrap_or("none")
            ),
            options: retry_options(),
            reason: format!("dispatched {} times (max_dispatches {max})", dispatches - 1),
            stage: None,
            comment: None,
        };
        self.escalate(q).await
    }

    /// Something an agent ran broke the sandbox's promises: the bead stops here. A security
    /// notice goes out, the bead gets a comment and is blocked on a decision (one commit),
    /// and its worktree is kept as it is for inspection — nothing from it is merged.
    async fn security_stop(&mut self, why: &str) -> (Outcome, String) {
        let why = self.cx.client.config().redact(why);
        self.cx.publish(Event::about(
            self.id().to_owned(),
            EventKind::SecurityNotice {
                message: why.clone(),
            },
        ));
        let place = self
            .wt
            .take()
            .map(|w| w.path.display().to_string())
            .unwrap_or_else(|| "its worktree".into());
        let comment = format!(
            "Loom stopped this bead for security: {why}. Nothing from it was merged; the worktree {place} is kept as it is for inspection."
        );
        let q = Question {
            title: format!("{}: stopped for security", self.id()),
            body: format!(
                "{comment}\n\nInspect the worktree, then remove it (`git worktree remove --force {place}`) before approving another try."
            ),
            options: retry_options(),
            reason: format!("security: {why}"),
            stage: Some(Stage::SecurityStop),
            comment: Some(comment),
        };
        let (id, actor) = (self.id().to_owned(), self.cx.ws.actor.clone());
        let decided = self
            .cx
            .blocking(move |cx| decision::escalate(&cx.ws, &id, &actor, &q))
            .await;
        self.report.stage = Stage::SecurityStop;
        match decided {
            Ok(d) => {
                let d = d.unwrap_or_default();
                self.report.decision = Some(d.clone());
                self.cx.publish(Event::about(
                    self.id().to_owned(),
                    EventKind::DecisionNeeded {
                        decision: d,
                        question: format!("{}: stopped for security", self.id()),
                    },
                ));
            }
            Err(e) => self.cx.publish(Event {
                bead: Some(self.id().to_owned()),
                ..Event::new(EventKind::Error {
                    message: format!("cannot record the security stop: {e}"),
                })
            }),
        }
        (Outcome::Failed, format!("security: {why}"))
    }

    /// Something failed that no agent round can fix (git, the disk, the configuration): the
    /// bead goes back to `open` with the reason, for a person to look at.
    async fn failed(&mut self, e: Error) -> (Outcome, String) {
        let msg = e.with_hint();
        self.cx.publish(Event {
            bead: Some(self.id().to_owned()),
            ..Event::new(EventKind::Error {
                message: msg.clone(),
            })
        });
        self.put_away_worktree().await;
        let (id, note) = (self.id().to_owned(), msg.clone());
        let _ = self
            .cx
            .blocking(move |cx| claim::release(&cx.ws, &id, status::OPEN, Stage::Failed, &note))
            .await;
        self.report.stage = Stage::Failed;
        (Outcome::Failed, msg)
    }

    fn finish(mut self, (outcome, detail): (Outcome, String)) -> BeadReport {
        self.report.outcome = Some(outcome);
        self.report.detail = detail.clone();
        self.report.duration_ms = self.started.elapsed().as_millis() as u64;
        self.cx.publish(Event::about(
            self.id().to_owned(),
            EventKind::BeadFinished {
                outcome,
                stage: self.report.stage,
                detail,
            },
        ));
        self.report
    }
}

/// The options of a decision to retry a bead.
pub(super) fn retry_options() -> Vec<String> {
    vec![
        "approve: try again with a fresh budget".into(),
        "deny: drop the bead (close it)".into(),
        "answer: give guidance, then try again".into(),
    ]
}
