//! What a run produced: a report per bead, the run's summary, the exit code policy of DESIGN §7
//! and the JUnit file (`--junit`), one test case per bead.

use std::fmt::Write as _;

use serde::Serialize;

use crate::event::{Outcome, Stage};
use crate::llm::Usage;
use crate::text::count;

/// How one bead's pipeline went in this run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BeadReport {
    pub id: String,
    pub title: String,
    pub outcome: Option<Outcome>,
    /// The last stage it reached (`implementing`, `verifying`, `merging`, `done`, …).
    pub stage: Stage,
    /// The summary (merged), the question (waiting) or what went wrong.
    pub detail: String,
    /// Implementation rounds (1, plus one per failed test, requested change or conflict).
    pub rounds: u32,
    /// Model turns across all agents on the bead.
    pub iterations: u32,
    pub usage: Usage,
    /// The squash commit on the target (merged), or the branch tip (completed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The decision bead it waits on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    pub duration_ms: u64,
}

impl BeadReport {
    pub fn outcome(&self) -> Outcome {
        self.outcome.unwrap_or(Outcome::Failed)
    }
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Nothing ready remains (and nothing runs).
    Finished,
    /// `--max-beads` beads were dispatched and finished.
    MaxBeads,
    /// `--max-tokens` was used up.
    MaxTokens,
    /// `--timeout` passed.
    Timeout,
    /// The endpoint stayed down past the limit, or refused the credentials.
    EndpointDown,
    /// Interrupted (Ctrl-C).
    Interrupted,
    /// A run-wide limit (`budget.run_*`) was reached: dispatching stopped and a decision asks
    /// a person how to go on.
    RunLimit,
}

/// The end of a run.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub target: String,
    pub stopped: StopReason,
    pub beads: Vec<BeadReport>,
    /// Open decision beads that block work (in scope of this run).
    pub pending_decisions: Vec<String>,
    pub usage: Usage,
    pub duration_ms: u64,
    /// Peak resident memory of the process, in KiB (Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_kb: Option<u64>,
    pub exit_code: i32,
    /// The error that ended the run early, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Exit codes of `loom run` (DESIGN §7).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    // 2 is a usage or configuration error, reported before a run starts (`Error::exit_code`).
    pub const WAITING: i32 = 3;
    pub const ENDPOINT: i32 = 4;
}

/// The exit code: an unusable endpoint first, then failed beads, then beads waiting on a
/// person, else success.
pub fn exit_code(stopped: StopReason, beads: &[BeadReport], pending_decisions: usize) -> i32 {
    if stopped == StopReason::EndpointDown {
        return exit::ENDPOINT;
    }
    let failed = beads
        .iter()
        .any(|b| matches!(b.outcome(), Outcome::Failed | Outcome::Interrupted));
    if failed || stopped == StopReason::Interrupted {
        return exit::FAILED;
    }
    let waiting = beads.iter().any(|b| b.outcome() == Outcome::Waiting);
    if waiting || pending_decisions > 0 || stopped == StopReason::RunLimit {
        return exit::WAITING;
    }
    exit::OK
}

/// Peak resident set size of this process (VmHWM), in KiB.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML of a run: one test case per bead; failed or interrupted beads are failures,
/// beads waiting on a person are skipped (with the reason).
pub fn junit(summary: &RunSummary) -> String {
    let failures = summary
        .beads
        .iter()
        .filter(|b| matches!(b.outcome(), Outcome::Failed | Outcome::Interrupted))
        .count();
    let skipped = summary
        .beads
        .iter()
        .filter(|b| b.outcome() == Outcome::Waiting)
        .count();
    let secs = |ms: u64| ms as f64 / 1000.0;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"loom run\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        summary.beads.len(),
        secs(summary.duration_ms)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"loom run on {}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">",
        xml(&summary.target),
        summary.beads.len(),
        secs(summary.duration_ms)
    );
    for b in &summary.beads {
        let _ = write!(
            out,
            "    <testcase classname=\"loom\" name=\"{}: {}\" time=\"{:.3}\"",
            xml(&b.id),
            xml(&b.title),
            secs(b.duration_ms)
        );
        let message = format!("{} at {}: {}", b.outcome().as_str(), b.stage, b.detail);
        match b.outcome() {
            Outcome::Merged | Outcome::Completed => {
                let _ = writeln!(out, ">");
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    xml(&format!(
                        "{}; {}, {}, {}{}",
                        message,
                        count(b.rounds, "round"),
                        count(b.iterations, "iteration"),
                        count(b.usage.total_tokens, "token"),
                        b.commit
                            .as_deref()
                            .map(|c| format!(", commit {c}"))
                            .unwrap_or_default()
                    ))
                );
            }
            Outcome::Waiting => {
                let _ = writeln!(out, ">");
                let _ = writeln!(out, "      <skipped message=\"{}\"/>", xml(&message));
            }
            Outcome::Failed | Outcome::Interrupted => {
                let _ = writeln!(out, ">");
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    xml(b.detail.lines().next().unwrap_or_default()),
                    b.outcome().as_str(),
                    xml(&message)
                );
            }
        }
        let _ = writeln!(out, "    </testcase>");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bead(id: &str, outcome: Outcome) -> BeadReport {
        BeadReport {
            id: id.into(),
            title: format!("title <{id}> & \"more\""),
            outcome: Some(outcome),
            stage: Stage::Done,
            detail: "it went\nlike this".into(),
            ..BeadReport::default()
        }
    }

    #[test]
    fn exit_codes_follow_design_precedence() {
        use Outcome::*;
        let fin = StopReason::Finished;
        assert_eq!(exit_code(fin, &[], 0), 0);
        assert_eq!(
            exit_code(fin, &[bead("a", Merged), bead("b", Completed)], 0),
            0
        );
        assert_eq!(
            exit_code(fin, &[bead("a", Merged), bead("b", Waiting)], 1),
            3
        );
        assert_eq!(
            exit_code(fin, &[bead("a", Merged)], 1),
            3,
            "a pending decision"
        );
        assert_eq!(
            exit_code(StopReason::RunLimit, &[bead("a", Merged)], 0),
            3,
            "a run limit waits on a person"
        );
        assert_eq!(
            exit_code(fin, &[bead("a", Failed), bead("b", Waiting)], 1),
            1
        );
        assert_eq!(exit_code(fin, &[bead("a", Interrupted)], 0), 1);
        assert_eq!(
            exit_code(StopReason::EndpointDown, &[bead("a", Failed)], 0),
            4
        );
        assert_eq!(exit_code(StopReason::Timeout, &[bead("a", Merged)], 0), 0);
        assert_eq!(exit_code(StopReason::Interrupted, &[], 0), 1);
    }

    #[test]
    fn junit_lists_each_bead_escaped() {
        let s = RunSummary {
            target: "main".into(),
            stopped: StopReason::Finished,
            beads: vec![
                bead("a-1", Outcome::Merged),
                bead("a-2", Outcome::Waiting),
                bead("a-3", Outcome::Failed),
            ],
            pending_decisions: vec![],
            usage: Usage::default(),
            duration_ms: 1500,
            peak_rss_kb: None,
            exit_code: 1,
            error: None,
        };
        let x = junit(&s);
        assert_eq!(x.matches("<testcase ").count(), 3);
        assert!(
            x.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("name=\"a-1: title &lt;a-1&gt; &amp; &quot;more&quot;\""));
        assert!(x.contains("<skipped message=\"waiting at done"));
        assert!(x.contains("<failure message=\"it went\" type=\"failed\">"));
        assert!(!x.contains("<a-1>"));
        assert!(xml("bell\u{7}").contains('\u{FFFD}'));
    }
}
