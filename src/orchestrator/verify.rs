//! The verify stage: the repository's `test_command` in the bead's worktree (sandboxed, with
//! the test timeout), its output to an event and to a log file in the data dir, and back to
//! the coder when it fails, within `max_verify_rounds`.

use crate::agent::session;
use crate::error::Result;
use crate::event::{Event, EventKind, Stage};
use crate::ops::decision::Question;

use super::pipeline::{Pipeline, Step, retry_options};

/// The result of one run of the test command.
pub(super) struct TestRun {
    pub passed: bool,
    /// `exit 1`, `timed out`.
    pub status: String,
    /// The end of the output.
    pub tail: String,
}

impl Pipeline {
    pub(super) async fn verify(&mut self) -> Result<Step> {
        let Some(cmd) = self.cx.settings.test_command.clone() else {
            return Ok(Step::Review);
        };
        self.verify_rounds += 1;
        let round = self.verify_rounds;
        self.announce(Stage::Verifying, format!("`{cmd}`, round {round}"))
            .await?;
        let Some(run) = self.run_tests(&cmd, round).await? else {
            return self
                .interrupted("the run stopped during verification")
                .await;
        };
        if run.passed {
            return Ok(Step::Review);
        }
        let max = self.cx.settings.budget.max_verify_rounds;
        if round >= max {
            let q = Question {
                title: format!(
                    "{}: tests still fail after {}",
                    self.id(),
                    crate::text::count(round, "round")
                ),
                body: format!(
                    "The test command `{cmd}` still fails on {} ({}) after {}.\n\n\
                     The end of its output:\n\n```\n{}\n```",
                    self.id(),
                    self.bead.title,
                    crate::text::count(round, "verification round"),
                    run.tail
                ),
                options: retry_options(),
                reason: format!("tests failed {round} times (max_verify_rounds {max})"),
                stage: None,
                comment: None,
            };
            return self.escalate(q).await;
        }
        Ok(Step::Implement(Some(format!(
            "The test command `{cmd}` failed ({}). The end of its output:\n```\n{}\n```\n\
             Fix the code so it passes (change a test only if the test itself is wrong), run it yourself, \
             then call `done` again with a summary.",
            run.status, run.tail
        ))))
    }

    /// Runs the test command in the worktree; the output goes to the event and to a log file
    /// in the data dir. `None` if the run stopped meanwhile.
    pub(super) async fn run_tests(&mut self, cmd: &str, round: u32) -> Result<Option<TestRun>> {
        let wt = self.worktree()?;
        let (sandbox, _) =
            session::sandbox_for(&self.cx.ws, &self.cx.client, &wt, self.cx.helper.clone())?;
        let timeout = self.cx.settings.test_timeout;
        // The agent is judged by the target's tests and configuration, not its own edits.
        let (w2, target) = (wt.clone(), self.cx.settings.target.clone());
        let swapped = self
            .cx
            .blocking(move |cx| {
                cx.with_git(|| {
                    super::gate::TargetVersions::put(
                        &w2,
                        &target,
                        &cx.protected,
                        cx.trees.left_out(),
                    )
                })
            })
            .await?;
        if !swapped.paths().is_empty() {
            self.cx.stage_event(
                self.id(),
                Stage::Verifying,
                format!(
                    "with {}'s version of {}",
                    self.cx.settings.target,
                    swapped.paths().join(", ")
                ),
            );
        }
        let out = tokio::select! {
            out = sandbox.run(cmd, Some(timeout)) => Some(out),
            () = self.cx.stopped_bead(&self.bead.id) => None,
        };
        self.cx
            .blocking(move |cx| cx.with_git(|| swapped.restore()))
            .await?;
        let Some(out) = out else { return Ok(None) };
        if let Some(why) = out.tampered {
            return Err(crate::error::Error::Security(format!(
                "the test command `{cmd}` left the worktree's .git changed: {why}"
            )));
        }
        // The test output may print a secret the user let through: never into logs or events.
        let text =
            self.cx
                .client
                .config()
                .redact(&format!("{}{}", out.stdout.text(), out.stderr.text()));
        let status = if out.timed_out {
            format!("timed out after {} s", timeout.as_secs())
        } else {
            out.exit_code
                .map_or("killed".to_owned(), |c| format!("exit {c}"))
        };
        let passed = !out.timed_out && out.exit_code == Some(0);
        if let Some(dir) = self.cx.ws.data_dir() {
            let dir = dir.join("logs").join(self.id());
            if std::fs::create_dir_all(&dir).is_ok() {
                let _ = std::fs::write(
                    dir.join(format!("test-{round}.log")),
                    format!("$ {cmd}\n{text}\n[{status}]\n"),
                );
            }
        }
        let tail = tail(&text, 4000);
        self.cx.publish(Event::about(
            self.id().to_owned(),
            EventKind::TestOutput {
                round,
                command: cmd.to_owned(),
                exit_code: out.exit_code,
                passed,
                output: tail.clone(),
            },
        ));
        Ok(Some(TestRun {
            passed,
            status,
            tail,
        }))
    }
}

pub(super) use crate::text::tail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("short", 10), "short");
        let t = tail(&"é".repeat(100), 51);
        assert!(t.starts_with("[… "));
        assert!(t.ends_with('é'));
        assert!(t.len() < 51 + 30);
    }
}
