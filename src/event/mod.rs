//! The one event protocol every front end consumes (`loom run`, `loom watch`, `loom agent`,
//! the TUI) and that a remote worker will carry: an envelope [`Event`] `{ at, bead, agent, kind }`
//! around a typed [`EventKind`], whose stages, notices and verdicts are enums ([`kinds`]).
//!
//! On the wire (`--json`, `events.jsonl`) an event is one flat JSON object tagged by `type`,
//! with `at` (RFC 3339, UTC) and, when it is about one, `bead` and `agent` — the form
//! docs/FORMATS.md documents; changes to it are additive, so recorded logs still read.
//! [`render`] turns an event into the human line every front end shows; [`bus`] carries them.

pub(crate) mod bus;
pub(crate) mod kinds;
pub(crate) mod render;

use serde::de::Error as _;
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::bead::Bead;
use crate::bead::change::FieldChange;
use crate::llm::{HealthSnapshot, Usage};
use crate::store::Problem;

pub use bus::EventBus;
pub use kinds::{Notice, Origin, Outcome, Stage, Verdict};

/// Something that happened: when, to which bead, by which agent, and what.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// RFC 3339, UTC.
    pub at: String,
    /// The bead it is about, if any.
    pub bead: Option<String>,
    /// The agent (persona) that did it, if any.
    pub agent: Option<String>,
    pub kind: EventKind,
}

/// What happened. The variant is the wire `type`; its fields sit beside the envelope's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    BeadCreated {
        origin: Origin,
        bead: Box<Bead>,
    },
    BeadChanged {
        origin: Origin,
        changes: Vec<FieldChange>,
        bead: Box<Bead>,
    },
    BeadDeleted {
        origin: Origin,
        id: String,
    },
    /// A file under `.beads/` changed into something Loom cannot read.
    StoreProblem {
        problem: Problem,
    },
    /// The watcher itself failed (e.g. the OS ran out of watches).
    WatchError {
        message: String,
    },
    /// An orchestrator run began.
    RunStarted {
        target: String,
        max_agents: usize,
        beads_ready: usize,
    },
    /// A bead moved to another pipeline stage.
    StageChanged {
        stage: Stage,
        detail: String,
    },
    AgentStarted {
        persona: String,
        model: String,
        /// 1 for the first implementation, more after failed tests, review or conflicts.
        round: u32,
    },
    /// Model text as it streams (a delta).
    ModelText {
        text: String,
    },
    ToolCall {
        iteration: u32,
        tool: String,
        arguments: Value,
    },
    ToolResult {
        iteration: u32,
        tool: String,
        ok: bool,
        summary: String,
    },
    /// The repository's test command ran in the bead's worktree.
    TestOutput {
        round: u32,
        command: String,
        exit_code: Option<i32>,
        passed: bool,
        /// The end of the output (both streams).
        output: String,
    },
    /// Something about an agent worth showing in its log.
    AgentNotice {
        #[serde(rename = "kind")]
        notice: Notice,
        message: String,
    },
    ReviewVerdict {
        #[serde(rename = "approved")]
        verdict: Verdict,
        comments: String,
    },
    MergeResult {
        merged: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
        detail: String,
    },
    /// A person must decide: a decision bead blocks the bead.
    DecisionNeeded {
        decision: String,
        question: String,
    },
    Usage {
        usage: Usage,
    },
    ProviderHealth {
        health: HealthSnapshot,
    },
    Error {
        message: String,
    },
    /// Something an agent ran broke the sandbox's promises (its worktree's `.git` changed):
    /// the bead is stopped, nothing from it is merged.
    SecurityNotice {
        message: String,
    },
    /// A bead's pipeline ended (for this run).
    BeadFinished {
        outcome: Outcome,
        stage: Stage,
        detail: String,
    },
    RunFinished {
        exit_code: i32,
        summary: Value,
    },
}

impl Event {
    /// An event about nothing in particular (a run, the endpoint, the watcher), now.
    pub fn new(kind: EventKind) -> Event {
        Event {
            at: now(),
            bead: kind.own_bead(),
            agent: None,
            kind,
        }
    }

    /// An event about `bead`, now.
    pub fn about(bead: impl Into<String>, kind: EventKind) -> Event {
        Event {
            bead: Some(bead.into()),
            ..Event::new(kind)
        }
    }

    /// The same event, by `agent`.
    pub fn by(mut self, agent: impl Into<String>) -> Event {
        self.agent = Some(agent.into());
        self
    }

    /// The bead id this event is about, if any.
    pub fn bead_id(&self) -> Option<&str> {
        self.bead.as_deref()
    }

    /// The bead id, or "" (for front ends that key by bead).
    pub fn bead_or_empty(&self) -> &str {
        self.bead.as_deref().unwrap_or("")
    }

    /// The agent, or "".
    pub fn agent_or_empty(&self) -> &str {
        self.agent.as_deref().unwrap_or("")
    }
}

impl EventKind {
    /// The bead a kind names in its own fields (a changed bead, a deleted id, a problem's).
    fn own_bead(&self) -> Option<String> {
        match self {
            EventKind::BeadCreated { bead, .. } | EventKind::BeadChanged { bead, .. } => {
                Some(bead.id.clone())
            }
            EventKind::BeadDeleted { id, .. } => Some(id.clone()),
            EventKind::StoreProblem { problem } => problem.id.clone(),
            _ => None,
        }
    }
}

impl Serialize for Event {
    /// `{"type": …, "at": …, "bead": …, "agent": …, <the kind's fields>}`. A kind that carries
    /// the whole bead under `bead` (created, changed) keeps it there.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(fields) = serde_json::to_value(&self.kind).map_err(S::Error::custom)?
        else {
            return Err(S::Error::custom("an event kind is not an object"));
        };
        let mut m = s.serialize_map(Some(fields.len() + 3))?;
        if let Some(t) = fields.get("type") {
            m.serialize_entry("type", t)?;
        }
        m.serialize_entry("at", &self.at)?;
        if let Some(b) = &self.bead
            && !fields.contains_key("bead")
        {
            m.serialize_entry("bead", b)?;
        }
        if let Some(a) = &self.agent
            && !fields.contains_key("agent")
        {
            m.serialize_entry("agent", a)?;
        }
        for (k, v) in fields.iter().filter(|(k, _)| *k != "type") {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
        let mut fields = Map::<String, Value>::deserialize(d)?;
        let at = match fields.remove("at") {
            Some(Value::String(at)) => at,
            _ => return Err(D::Error::missing_field("at")),
        };
        let bead = match fields.get("bead") {
            Some(Value::String(_)) => match fields.remove("bead") {
                Some(Value::String(b)) => Some(b),
                _ => None,
            },
            _ => None,
        };
        let agent = match fields.remove("agent") {
            Some(Value::String(a)) => Some(a),
            _ => None,
        };
        let kind = EventKind::deserialize(Value::Object(fields)).map_err(D::Error::custom)?;
        // Read as written (no clock read per event: a followed run reads thousands).
        Ok(Event {
            at,
            bead: bead.or_else(|| kind.own_bead()),
            agent,
            kind,
        })
    }
}

impl From<crate::store::watch::StoreChange> for Event {
    /// What the store watcher saw, as the event every front end reads.
    fn from(c: crate::store::watch::StoreChange) -> Event {
        use crate::store::watch::StoreChange;
        let origin = Origin::External;
        match c {
            StoreChange::Created(bead) => Event::new(EventKind::BeadCreated { origin, bead }),
            StoreChange::Changed { changes, bead } => Event::new(EventKind::BeadChanged {
                origin,
                changes,
                bead,
            }),
            StoreChange::Deleted(id) => Event::new(EventKind::BeadDeleted { origin, id }),
            StoreChange::Problem(problem) => Event::new(EventKind::StoreProblem { problem }),
            StoreChange::WatchFailed(message) => Event::new(EventKind::WatchError { message }),
            StoreChange::Undone { bead, message } => {
                Event::about(bead, EventKind::Error { message })
            }
        }
    }
}

/// The current time as event timestamps carry it.
pub fn now() -> String {
    crate::bead::Timestamp::now().as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_is_flat_tagged_and_stable() {
        let e = Event::about(
            "x-1",
            EventKind::StageChanged {
                stage: Stage::Implementing,
                detail: "round 1".into(),
            },
        );
        let text = serde_json::to_string(&e).unwrap();
        assert!(
            text.starts_with(r#"{"type":"stage_changed","at":""#),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["bead"], "x-1");
        assert_eq!(v["stage"], "implementing");
        assert!(v.get("agent").is_none());
        assert!(v["at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);

        let merge = Event::about(
            "x",
            EventKind::MergeResult {
                merged: false,
                commit: None,
                detail: "conflict".into(),
            },
        );
        assert!(
            serde_json::to_value(&merge)
                .unwrap()
                .get("commit")
                .is_none()
        );
    }

    #[test]
    fn agent_events_carry_agent_and_typed_words_with_the_old_names() {
        let e = Event::about(
            "x-2",
            EventKind::AgentNotice {
                notice: Notice::Paused,
                message: "endpoint down".into(),
            },
        )
        .by("coder");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["agent"], "coder");
        assert_eq!(v["kind"], "paused");
        let r = Event::about(
            "x-2",
            EventKind::ReviewVerdict {
                verdict: Verdict::ChangesRequested,
                comments: "no".into(),
            },
        );
        assert_eq!(serde_json::to_value(&r).unwrap()["approved"], false);
    }

    #[test]
    fn a_recorded_line_of_an_earlier_version_still_reads() {
        // As `loom run --json` wrote them before the envelope.
        let lines = [
            r#"{"type":"tool_result","at":"2026-11-01T10:00:00Z","bead":"b-1","agent":"coder","iteration":3,"tool":"run","ok":true,"summary":"ran"}"#,
            r#"{"type":"bead_deleted","at":"2026-11-01T10:00:00Z","origin":"external","id":"b-2"}"#,
            r#"{"type":"bead_finished","at":"2026-11-01T10:00:00Z","bead":"b-1","outcome":"merged","stage":"done","detail":"ok"}"#,
            r#"{"type":"stage_changed","at":"2026-11-01T10:00:00Z","bead":"b-1","stage":"a_future_stage","detail":""}"#,
            r#"{"type":"provider_health","at":"2026-11-01T10:00:00Z","health":{"health":"down","consecutive_failures":3,"last_error":"refused"}}"#,
        ];
        let read: Vec<Event> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(read[0].agent.as_deref(), Some("coder"));
        assert!(matches!(
            read[0].kind,
            EventKind::ToolResult { ok: true, .. }
        ));
        assert_eq!(read[1].bead.as_deref(), Some("b-2"));
        assert!(matches!(
            read[2].kind,
            EventKind::BeadFinished {
                stage: Stage::Done,
                outcome: Outcome::Merged,
                ..
            }
        ));
        assert!(matches!(
            read[3].kind,
            EventKind::StageChanged {
                stage: Stage::Other,
                ..
            }
        ));
        assert!(read[4].bead.is_none());
    }

    #[test]
    fn a_changed_bead_keeps_the_whole_bead_under_bead() {
        let b = Bead {
            id: "x-3".into(),
            title: "Title".into(),
            status: "open".into(),
            ..Bead::default()
        };
        let e = Event::new(EventKind::BeadCreated {
            origin: Origin::Loom,
            bead: Box::new(b),
        });
        assert_eq!(e.bead.as_deref(), Some("x-3"));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["bead"]["id"], "x-3");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back.bead.as_deref(), Some("x-3"));
    }
}
