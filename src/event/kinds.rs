//! The typed words of the event protocol: pipeline stages, agent notices, review verdicts and
//! how a bead's run ended. Each has one spelling on the wire (and in `metadata.loom.stage`);
//! front ends match the variants, never the strings.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a bead is in the pipeline, as `stage_changed` events, run summaries and
/// `metadata.loom.stage` name it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Claimed for this run (status `in_progress`, owner recorded).
    #[default]
    Claimed,
    /// The claim itself failed (the run summary's stage; the bead was never worked on).
    #[serde(rename = "claim")]
    ClaimFailed,
    /// Not claimable now (the detail says why).
    Skipped,
    /// Its worktree is being made or set up.
    Worktree,
    /// Its worktree was kept for a person to look at (the detail says why).
    #[serde(rename = "worktree kept")]
    WorktreeKept,
    /// Its worktree was removed (its branch was merged already).
    #[serde(rename = "worktree removed")]
    WorktreeRemoved,
    Implementing,
    Verifying,
    Reviewing,
    Merging,
    /// An epic's planner filed its children.
    Planned,
    /// Waiting for a person to approve the merge (`merge: approve`).
    AwaitingApproval,
    /// The merge was refused (the user's uncommitted changes); the next run retries it.
    MergeWaiting,
    /// Done and left on its branch (`merge: none`).
    Completed,
    /// Merged and closed.
    Done,
    /// Closed (an epic whose children are all closed).
    Closed,
    /// Blocked on a decision bead.
    Escalated,
    /// A person denied it (`loom decide … deny`).
    Denied,
    /// A person decided; it is open again.
    Decided,
    /// Its owner process died; reopened.
    Recovered,
    /// Stopped by the run ending; released for the next run.
    Interrupted,
    /// An agent's command broke the sandbox's promises; nothing of it is merged.
    SecurityStop,
    Failed,
    /// Handed to the work queue for a worker on another machine (`loom run --nats`); the
    /// detail says which dispatch, or why it went out again.
    Queued,
    /// A stage this version does not know (written by a newer Loom).
    #[serde(other)]
    Other,
}

impl Stage {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Claimed => "claimed",
            Stage::ClaimFailed => "claim",
            Stage::Skipped => "skipped",
            Stage::Worktree => "worktree",
            Stage::WorktreeKept => "worktree kept",
            Stage::WorktreeRemoved => "worktree removed",
            Stage::Implementing => "implementing",
            Stage::Verifying => "verifying",
            Stage::Reviewing => "reviewing",
            Stage::Merging => "merging",
            Stage::Planned => "planned",
            Stage::AwaitingApproval => "awaiting_approval",
            Stage::MergeWaiting => "merge_waiting",
            Stage::Completed => "completed",
            Stage::Done => "done",
            Stage::Closed => "closed",
            Stage::Escalated => "escalated",
            Stage::Denied => "denied",
            Stage::Decided => "decided",
            Stage::Recovered => "recovered",
            Stage::Interrupted => "interrupted",
            Stage::SecurityStop => "security_stop",
            Stage::Failed => "failed",
            Stage::Queued => "queued",
            Stage::Other => "other",
        }
    }

    /// The stage a wire spelling names (`Other` for one this version does not know).
    pub fn parse(s: &str) -> Stage {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).unwrap_or(Stage::Other)
    }

    /// Whether a person has to act before the bead goes on.
    pub fn waits_for_person(self) -> bool {
        matches!(
            self,
            Stage::AwaitingApproval | Stage::MergeWaiting | Stage::Escalated
        )
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an `agent_notice` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// A correction sent to the model (a malformed or refused tool call).
    Correction,
    /// A failed stream being retried.
    Retrying,
    /// The endpoint is down; the agent waits.
    Paused,
    /// The endpoint answers again.
    Resumed,
    /// Old tool outputs were elided from the history to fit the context.
    HistoryElided,
    /// A line from an external runner.
    RunnerOutput,
    /// A notice this version does not know.
    #[serde(other)]
    Other,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Correction => "correction",
            Notice::Retrying => "retrying",
            Notice::Paused => "paused",
            Notice::Resumed => "resumed",
            Notice::HistoryElided => "history_elided",
            Notice::RunnerOutput => "runner_output",
            Notice::Other => "notice",
        }
    }

    /// Whether it is about the endpoint (worth a line even in terse progress output).
    pub fn is_endpoint(self) -> bool {
        matches!(self, Notice::Paused | Notice::Resumed)
    }
}

/// A reviewer's verdict. On the wire it is `approved: true|false`, as it always was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    ChangesRequested,
}

impl Verdict {
    pub fn approved(self) -> bool {
        self == Verdict::Approved
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::ChangesRequested => "changes requested",
        }
    }
}

impl From<bool> for Verdict {
    fn from(approved: bool) -> Verdict {
        if approved {
            Verdict::Approved
        } else {
            Verdict::ChangesRequested
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(self.approved())
    }
}

impl<'de> Deserialize<'de> for Verdict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Verdict, D::Error> {
        bool::deserialize(d).map(Verdict::from)
    }
}

/// How a bead's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Merged into the target and closed.
    Merged,
    /// Done, reviewed and tested, but left on its branch (`merge: none` / `--no-merge`).
    Completed,
    /// Waiting for a person: a decision bead blocks it, or `merge: approve`.
    Waiting,
    /// Could not finish (and no decision was possible).
    Failed,
    /// Stopped by the run ending (timeout, Ctrl-C, endpoint gone); released for the next run.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Merged => "merged",
            Outcome::Completed => "completed",
            Outcome::Waiting => "waiting",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// Who caused a bead change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Another program: an editor, `git pull`, bd, another Loom process.
    External,
    /// This Loom process.
    Loom,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_reads_back_from_its_spelling() {
        let all = [
            Stage::Claimed,
            Stage::ClaimFailed,
            Stage::Skipped,
            Stage::Worktree,
            Stage::WorktreeKept,
            Stage::WorktreeRemoved,
            Stage::Implementing,
            Stage::Verifying,
            Stage::Reviewing,
            Stage::Merging,
            Stage::Planned,
            Stage::AwaitingApproval,
            Stage::MergeWaiting,
            Stage::Completed,
            Stage::Done,
            Stage::Closed,
            Stage::Escalated,
            Stage::Denied,
            Stage::Decided,
            Stage::Recovered,
            Stage::Interrupted,
            Stage::SecurityStop,
            Stage::Failed,
            Stage::Queued,
        ];
        for s in all {
            assert_eq!(Stage::parse(s.as_str()), s, "{s}");
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(Stage::parse("teleporting"), Stage::Other);
    }

    #[test]
    fn notices_and_verdicts_keep_their_wire_form() {
        assert_eq!(
            serde_json::to_value(Notice::HistoryElided).unwrap(),
            "history_elided"
        );
        let n: Notice = serde_json::from_str("\"a_new_kind\"").unwrap();
        assert_eq!(n, Notice::Other);
        assert_eq!(serde_json::to_value(Verdict::Approved).unwrap(), true);
        let v: Verdict = serde_json::from_str("false").unwrap();
        assert_eq!(v, Verdict::ChangesRequested);
    }
}
