//! The review stage: the reviewer persona reads the bead and the whole diff against the target
//! and answers `approve` or `request_changes`; requested changes go back to the coder, within
//! `max_review_rounds`, then to a person.

use crate::agent::run::Terminal;
use crate::error::{Error, Result};
use crate::event::{Event, EventKind, Stage};
use crate::ops::decision::Question;

use super::agents;
use super::pipeline::{Pipeline, Step};

impl Pipeline {
    /// The protected paths the bead's branch changes (against its fork point).
    async fn protected_on_branch(&self) -> Result<Vec<String>> {
        let wt = self.worktree()?;
        let target = self.cx.settings.target.clone();
        self.cx
            .blocking(move |cx| {
                let repo = cx.ws.require_repo()?;
                let fork = repo.fork_point(&target, &wt.branch)?;
                let place = crate::git::safe::Place::Repo(&repo.workdir);
                let changed = crate::git::changed_between(place, &fork, &wt.branch)?;
                Ok(cx.protected.filter(changed.iter().map(String::as_str)))
            })
            .await
    }

    pub(super) async fn review(&mut self) -> Result<Step> {
        if !self.cx.settings.review {
            return Ok(Step::Land);
        }
        self.review_rounds += 1;
        let round = self.review_rounds;
        self.announce(Stage::Reviewing, format!("round {round}"))
            .await?;
        let reviewer = self
            .cx
            .personas
            .get("reviewer")
            .cloned()
            .ok_or_else(|| {
                Error::Config(
                    "no `reviewer` persona: add one to .loom/personas/, or set `review: false` in .loom/config.yaml"
                        .into(),
                )
            })?;
        let model = self.model_for(&reviewer).await?;
        let tests = match &self.cx.settings.test_command {
            Some(cmd) => format!("The test command `{cmd}` passes."),
            None => "The repository has no test command configured.".to_owned(),
        };
        let ask = format!(
            "## The change to review\n{} reports it done: {}\n\n{tests}\n\
             `git_diff` shows the whole change against {}. Check it against the bead, then answer with \
             `approve` or `request_changes`.",
            self.coder.as_ref().map_or("The coder", |c| c.name.as_str()),
            self.summary.trim(),
            self.cx.settings.target
        );
        let protected = self.protected_on_branch().await.unwrap_or_default();
        let ask = if protected.is_empty() {
            ask
        } else {
            format!(
                "{ask}\n\nWarning: this change touches protected paths ({}): the files that test or \
                 configure the agents' work. Loom will not merge it without a person's approval. Check \
                 whether the bead really requires these edits; if not (an agent must not weaken its own \
                 tests or configuration), request changes.",
                protected.join(", ")
            )
        };
        let messages = self.opening(&reviewer, &ask).await?;
        let Some(ended) = self.session(&reviewer, &model, messages, round).await? else {
            return self.interrupted("the run stopped during review").await;
        };
        let end = ended.end;
        let verdict = |approved: bool, comments: &str| {
            Event::about(
                self.bead.id.clone(),
                EventKind::ReviewVerdict {
                    verdict: (approved).into(),
                    comments: comments.to_owned(),
                },
            )
        };
        match end.terminal {
            Terminal::Approved => {
                self.cx.publish(verdict(true, &end.detail));
                self.reviewed_by = Some(reviewer.name.clone());
                Ok(Step::Land)
            }
            Terminal::ChangesRequested => {
                self.cx.publish(verdict(false, &end.detail));
                let max = self.cx.settings.budget.max_review_rounds;
                if round >= max {
                    let q = Question {
                        title: format!(
                            "{}: the reviewer still requests changes after {round} reviews",
                            self.id()
                        ),
                        body: format!(
                            "The latest review of {} ({}):\n\n{}",
                            self.id(),
                            self.bead.title,
                            end.detail
                        ),
                        options: vec![
                            "approve: merge it as it is".into(),
                            "deny: drop the bead".into(),
                            "answer: give the coder guidance and try again".into(),
                        ],
                        reason: format!(
                            "changes requested {round} times (max_review_rounds {max})"
                        ),
                        stage: Some(Stage::AwaitingApproval),
                        comment: None,
                    };
                    return self.escalate(q).await;
                }
                Ok(Step::Implement(Some(format!(
                    "The reviewer requested changes:\n\n{}\n\nAddress every point, run the tests, then call \
                     `done` with a summary of what you changed.",
                    end.detail
                ))))
            }
            _ if agents::endpoint_unusable(&end) => {
                self.cx.mark_endpoint_failed();
                self.interrupted(&end.detail).await
            }
            t => {
                let q = Question {
                    title: format!("{}: the review did not reach a verdict", self.id()),
                    body: format!(
                        "The reviewer stopped without approving or requesting changes ({}): {}",
                        t.as_str(),
                        end.detail
                    ),
                    options: vec![
                        "approve: merge it without review".into(),
                        "deny: drop the bead".into(),
                        "answer: send it back to the coder with guidance".into(),
                    ],
                    reason: format!("review ended: {}", t.as_str()),
                    stage: Some(Stage::AwaitingApproval),
                    comment: None,
                };
                self.escalate(q).await
            }
        }
    }
}
