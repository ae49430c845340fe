//! Events as human lines: the one wording `loom run`, `loom watch`, `loom agent` and the TUI's
//! log share. A [`Line`] is structured (who, what, how it went, the details behind it) so each
//! front end paints it its own way — ANSI on a terminal, theme styles in the TUI — without
//! wording anything itself.

use crate::text::{clock, count, one_line};

use super::{Event, EventKind, Outcome};

/// What a line is about (front ends style and filter by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// A pipeline stage, or an agent starting.
    Stage,
    /// Model text (streamed; front ends make these lines themselves).
    Text,
    Tool,
    Test,
    Review,
    Merge,
    Decision,
    Notice,
    Error,
    /// A bead's run ended.
    Finished,
    /// A bead created, changed or deleted on disk, or a store problem.
    Store,
    /// A run started or finished.
    Run,
    /// The endpoint's health.
    Health,
}

/// One human line.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// `HH:MM:SS` (UTC).
    pub clock: String,
    /// The bead, or "".
    pub bead: String,
    /// Who did it: an agent, `verify`, `review`, `merge`, `loom`, or "" (the store, the run).
    pub who: String,
    pub topic: Topic,
    /// How it went, for steps that pass or fail (a tool call, tests, a review, a merge).
    pub ok: Option<bool>,
    /// What happened.
    pub text: String,
    /// Secondary words shown after `text` (dimmed).
    pub note: String,
    /// The whole story behind the line (arguments, output, comments), when there is more.
    pub detail: Option<String>,
}

impl Line {
    /// `text · note`.
    pub fn body(&self) -> String {
        if self.note.is_empty() {
            self.text.clone()
        } else {
            format!("{} · {}", self.text, self.note)
        }
    }
}

/// The human line for an event; `None` for streamed model text and usage (front ends gather
/// those themselves).
pub fn line(e: &Event) -> Option<Line> {
    let mut l = Line {
        clock: clock(&e.at).to_owned(),
        bead: e.bead_or_empty().to_owned(),
        who: e.agent.clone().unwrap_or_else(|| "loom".to_owned()),
        topic: Topic::Stage,
        ok: None,
        text: String::new(),
        note: String::new(),
        detail: None,
    };
    let (topic, text) = match &e.kind {
        EventKind::ModelText { .. } | EventKind::Usage { .. } => return None,
        EventKind::BeadCreated { bead, .. } => (Topic::Store, format!("created {:?}", bead.title)),
        EventKind::BeadChanged { changes, .. } => (
            Topic::Store,
            format!("changed {}", crate::bead::change::summarize(changes)),
        ),
        EventKind::BeadDeleted { .. } => (Topic::Store, "deleted".to_owned()),
        EventKind::StoreProblem { problem } => (Topic::Store, format!("problem: {problem}")),
        EventKind::WatchError { message } => (Topic::Error, format!("watch error: {message}")),
        EventKind::RunStarted {
            target,
            max_agents,
            beads_ready,
        } => (
            Topic::Run,
            format!(
                "run on {target}: {beads_ready} ready, up to {}",
                count(*max_agents as u64, "agent")
            ),
        ),
        EventKind::RunFinished { exit_code, .. } => {
            (Topic::Run, format!("run finished (exit {exit_code})"))
        }
        EventKind::ProviderHealth { health } => {
            l.note = health.last_error.clone().unwrap_or_default();
            (
                Topic::Health,
                format!("endpoint {}", health.health.as_str()),
            )
        }
        EventKind::StageChanged { stage, detail } => {
            l.note = detail.clone();
            (Topic::Stage, stage.as_str().to_owned())
        }
        EventKind::AgentStarted {
            persona,
            model,
            round,
        } => {
            l.who = persona.clone();
            l.note = format!("{model} · round {round}");
            (Topic::Stage, "started".to_owned())
        }
        EventKind::ToolCall {
            tool, arguments, ..
        } => {
            l.detail = serde_json::to_string_pretty(arguments).ok();
            (
                Topic::Tool,
                format!("{tool} {}", one_line(&arguments.to_string(), 90)),
            )
        }
        EventKind::ToolResult { ok, summary, .. } => {
            l.ok = Some(*ok);
            (Topic::Tool, one_line(summary, 160))
        }
        EventKind::TestOutput {
            round,
            command,
            exit_code,
            passed,
            output,
        } => {
            l.who = "verify".into();
            l.ok = Some(*passed);
            l.note = format!("round {round}");
            l.detail = Some(output.clone());
            let status = exit_code.map_or("killed".to_owned(), |c| format!("exit {c}"));
            (Topic::Test, format!("`{command}` {status}"))
        }
        EventKind::AgentNotice { notice, message } => {
            if message.lines().nth(1).is_some() {
                l.detail = Some(message.clone());
            }
            (
                Topic::Notice,
                format!("{}: {}", notice.as_str(), one_line(message, 140)),
            )
        }
        EventKind::ReviewVerdict { verdict, comments } => {
            l.who = "review".into();
            l.ok = Some(verdict.approved());
            l.note = one_line(comments, 100);
            l.detail = Some(comments.clone());
            (Topic::Review, verdict.as_str().to_owned())
        }
        EventKind::MergeResult {
            merged,
            commit,
            detail,
        } => {
            l.who = "merge".into();
            l.ok = Some(*merged);
            l.detail = Some(detail.clone());
            match (merged, commit) {
                (true, Some(c)) => (
                    Topic::Merge,
                    format!("merged as {}", c.get(..10).unwrap_or(c)),
                ),
                _ => {
                    l.note = one_line(detail, 140);
                    (Topic::Merge, "not merged".to_owned())
                }
            }
        }
        EventKind::DecisionNeeded { decision, question } => {
            l.note = one_line(question, 120);
            (Topic::Decision, format!("waits on decision {decision}"))
        }
        EventKind::Error { message } => {
            l.detail = Some(message.clone());
            (Topic::Error, format!("error: {}", one_line(message, 160)))
        }
        EventKind::SecurityNotice { message } => {
            l.detail = Some(message.clone());
            (
                Topic::Error,
                format!("security: {}", one_line(message, 150)),
            )
        }
        EventKind::BeadFinished {
            outcome, detail, ..
        } => {
            l.ok = Some(matches!(outcome, Outcome::Merged | Outcome::Completed));
            // The detail may begin with the outcome ("waiting on decision …"): said once.
            let (word, d) = (outcome.as_str(), detail.trim());
            if d.starts_with(word) {
                (Topic::Finished, one_line(d, 160))
            } else {
                l.note = one_line(d, 140);
                (Topic::Finished, word.to_owned())
            }
        }
    };
    if matches!(topic, Topic::Store | Topic::Run | Topic::Health) && e.agent.is_none() {
        l.who.clear();
    }
    l.topic = topic;
    l.text = text;
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::super::{Notice, Stage, Verdict};
    use super::*;

    fn at(mut e: Event) -> Event {
        e.at = "2026-12-07T10:11:12Z".into();
        e
    }

    #[test]
    fn stage_lines_name_the_stage_and_detail() {
        let l = line(&at(Event::about(
            "b-1",
            EventKind::StageChanged {
                stage: Stage::Implementing,
                detail: "coder, round 1".into(),
            },
        )))
        .unwrap();
        assert_eq!(
            (l.clock.as_str(), l.bead.as_str(), l.who.as_str()),
            ("10:11:12", "b-1", "loom")
        );
        assert_eq!(l.body(), "implementing · coder, round 1");
    }

    #[test]
    fn an_outcome_the_detail_repeats_is_said_once() {
        let e = Event::about(
            "b-1",
            EventKind::BeadFinished {
                outcome: Outcome::Waiting,
                stage: Stage::Escalated,
                detail: "waiting on decision b-9".into(),
            },
        );
        assert_eq!(line(&e).unwrap().body(), "waiting on decision b-9");
        let e = Event::about(
            "b-1",
            EventKind::BeadFinished {
                outcome: Outcome::Merged,
                stage: Stage::Done,
                detail: "as abc".into(),
            },
        );
        let l = line(&e).unwrap();
        assert_eq!((l.body().as_str(), l.ok), ("merged · as abc", Some(true)));
    }

    #[test]
    fn agent_lines_say_who_and_how_it_went() {
        let n = line(
            &Event::about(
                "b-2",
                EventKind::AgentNotice {
                    notice: Notice::Paused,
                    message: "endpoint down\nsecond line".into(),
                },
            )
            .by("coder"),
        )
        .unwrap();
        assert_eq!(n.who, "coder");
        assert_eq!(n.text, "paused: endpoint down second line");
        assert!(n.detail.is_some());
        let r = line(&Event::about(
            "b-2",
            EventKind::ReviewVerdict {
                verdict: Verdict::ChangesRequested,
                comments: "add a test".into(),
            },
        ))
        .unwrap();
        assert_eq!(
            (r.who.as_str(), r.ok, r.body().as_str()),
            ("review", Some(false), "changes requested · add a test")
        );
    }

    #[test]
    fn streamed_text_and_usage_are_not_lines() {
        let t = Event::about("b", EventKind::ModelText { text: "hi".into() }).by("coder");
        assert!(line(&t).is_none());
    }

    #[test]
    fn no_line_doubles_a_word_or_mark() {
        let events = [
            EventKind::AgentStarted {
                persona: "coder".into(),
                model: "m".into(),
                round: 2,
            },
            EventKind::TestOutput {
                round: 1,
                command: "cargo test".into(),
                exit_code: Some(0),
                passed: true,
                output: String::new(),
            },
            EventKind::MergeResult {
                merged: true,
                commit: Some("0123456789abcdef".into()),
                detail: "merged".into(),
            },
            EventKind::DecisionNeeded {
                decision: "b-9".into(),
                question: "Which?".into(),
            },
        ];
        for k in events {
            let l = line(&Event::about("b", k).by("coder")).unwrap();
            let said = format!("{} {}", l.who, l.body());
            let words: Vec<&str> = said.split_whitespace().collect();
            for w in words.windows(2) {
                assert_ne!(w[0], w[1], "{l:?}");
            }
        }
    }
}
