//! Record and replay of model exchanges: `--record FILE` writes one JSON line per chat call
//! (request body and the streamed chunks, or the final error; never headers or keys);
//! `--replay FILE` serves them back in order, offline, and fails loudly when a request differs
//! from the recorded one. The format is documented in `docs/RECORDING.md`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::LlmError;

/// Version of the recording format.
pub const FORMAT: u32 = 1;

/// One chat call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub loom_recording: u32,
    /// 1-based position in the session.
    pub seq: u64,
    /// The conversation the request belongs to; a replay serves each session its own
    /// exchanges in order, whatever the interleaving of concurrent sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The request body as sent (model, messages, tools, options).
    pub request: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RecordedResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordedError>,
}

/// A successful answer: the model and the `data:` payloads of the stream, in order (a
/// non-streamed answer is one payload: the whole JSON body).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub model: String,
    pub chunks: Vec<String>,
}

/// A call that failed in the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedError {
    pub kind: String,
    pub message: String,
}

/// How closely a replayed request must match its recording.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayMatch {
    /// The whole request body must be equal.
    #[default]
    Exact,
    /// Messages and tools must be equal (model and sampling options may differ).
    Messages,
    /// Only the order counts.
    Off,
}

/// Appends exchanges to a recording file.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    file: Mutex<(std::fs::File, u64)>,
}

impl Recorder {
    /// Starts a new recording at `path` (replacing an old one).
    pub fn create(path: &Path) -> Result<Recorder, LlmError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LlmError::Record(format!("{}: {e}", dir.display())))?;
        }
        let file = std::fs::File::create(path)
            .map_err(|e| LlmError::Record(format!("{}: {e}", path.display())))?;
        Ok(Recorder {
            path: path.to_path_buf(),
            file: Mutex::new((file, 0)),
        })
    }

    /// Writes one exchange (the caller has already removed secrets); returns its `seq`.
    pub fn record(
        &self,
        session: Option<&str>,
        request: Value,
        outcome: Result<RecordedResponse, RecordedError>,
        redact: impl Fn(&str) -> String,
    ) -> Result<u64, LlmError> {
        let mut guard = self
            .file
            .lock()
            .map_err(|_| LlmError::Record("the recorder was poisoned".into()))?;
        guard.1 += 1;
        let (response, error) = match outcome {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        let exchange = Exchange {
            loom_recording: FORMAT,
            seq: guard.1,
            session: session.map(str::to_owned),
            request,
            response,
            error,
        };
        let line = serde_json::to_string(&exchange)
            .map_err(|e| LlmError::Record(format!("cannot serialize an exchange: {e}")))?;
        let line = redact(&line);
        let seq = guard.1;
        writeln!(guard.0, "{line}")
            .and_then(|()| guard.0.flush())
            .map_err(|e| LlmError::Record(format!("{}: {e}", self.path.display())))?;
        Ok(seq)
    }
}

/// Serves a recording back.
#[derive(Debug)]
pub struct Replayer {
    path: PathBuf,
    exchanges: Vec<Exchange>,
    /// Which exchanges were served.
    served: Mutex<Vec<bool>>,
    /// Whether exchanges carry sessions (then requests are matched within their session).
    keyed: bool,
    mode: ReplayMatch,
    /// Wait this long before each replayed chunk (to watch it stream); none by default.
    pace: Option<std::time::Duration>,
}

impl Replayer {
    /// The same recording, streamed at one chunk per `pace` (for people watching).
    pub fn paced(mut self, pace: std::time::Duration) -> Replayer {
        self.pace = Some(pace);
        self
    }

    /// How long to wait before each chunk.
    pub fn pace(&self) -> Option<std::time::Duration> {
        self.pace
    }

    pub fn open(path: &Path, mode: ReplayMatch) -> Result<Replayer, LlmError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            LlmError::Replay(format!("cannot open the recording {}: {e}", path.display()))
        })?;
        Self::parse(path, &text, mode)
    }

    /// A recording held in memory (`path` names it in messages).
    pub fn parse(path: &Path, text: &str, mode: ReplayMatch) -> Result<Replayer, LlmError> {
        let mut exchanges = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let ex: Exchange = serde_json::from_str(line).map_err(|e| {
                LlmError::Replay(format!(
                    "{}:{}: not a Loom recording line: {e}",
                    path.display(),
                    n + 1
                ))
            })?;
            if ex.loom_recording != FORMAT {
                return Err(LlmError::Replay(format!(
                    "{}:{}: recording format {} (this Loom reads {FORMAT})",
                    path.display(),
                    n + 1,
                    ex.loom_recording
                )));
            }
            exchanges.push(ex);
        }
        Ok(Replayer {
            path: path.to_path_buf(),
            served: Mutex::new(vec![false; exchanges.len()]),
            keyed: exchanges.iter().any(|e| e.session.is_some()),
            exchanges,
            mode,
            pace: None,
        })
    }

    /// The model of the first recorded request, for sessions that name none.
    pub fn first_model(&self) -> Option<String> {
        self.exchanges
            .iter()
            .find_map(|e| e.request.get("model")?.as_str().map(str::to_owned))
    }

    /// Models seen in the recording.
    pub fn models(&self) -> Vec<String> {
        let mut m: Vec<String> = self
            .exchanges
            .iter()
            .filter_map(|e| e.response.as_ref().map(|r| r.model.clone()))
            .chain(self.first_model())
            .filter(|m| !m.is_empty())
            .collect();
        m.sort();
        m.dedup();
        m
    }

    /// The next recorded exchange (of `session`, when the recording has sessions), if
    /// `request` matches it.
    pub fn next(&self, session: Option<&str>, request: &Value) -> Result<Exchange, LlmError> {
        let mut served = self
            .served
            .lock()
            .map_err(|_| LlmError::Replay("the replayer was poisoned".into()))?;
        let wanted = |e: &Exchange| !self.keyed || e.session.as_deref() == session;
        let found = self
            .exchanges
            .iter()
            .enumerate()
            .find(|(i, e)| !served.get(*i).copied().unwrap_or(true) && wanted(e));
        let Some((index, ex)) = found else {
            let of = match (self.keyed, session) {
                (true, Some(s)) => format!(" for session {s:?}"),
                (true, None) => " without a session".to_owned(),
                (false, _) => String::new(),
            };
            let held = self.exchanges.iter().filter(|e| wanted(e)).count();
            return Err(LlmError::Replay(format!(
                "the session made request {}{of} but {} holds only {held} exchange(s){of}",
                held + 1,
                self.path.display(),
            )));
        };
        let (recorded, now) = match self.mode {
            ReplayMatch::Off => (Value::Null, Value::Null),
            ReplayMatch::Exact => (ex.request.clone(), request.clone()),
            ReplayMatch::Messages => (pick(&ex.request), pick(request)),
        };
        if let Some((path, was, is)) = first_difference(&recorded, &now, String::new()) {
            return Err(LlmError::Replay(format!(
                "request {} differs from {}:{} at {}: recorded {was}, now {is}",
                ex.seq,
                self.path.display(),
                index + 1,
                if path.is_empty() {
                    "the top level"
                } else {
                    &path
                }
            )));
        }
        if let Some(s) = served.get_mut(index) {
            *s = true;
        }
        Ok(ex.clone())
    }
}

fn pick(request: &Value) -> Value {
    serde_json::json!({
        "messages": request.get("messages").cloned().unwrap_or(Value::Null),
        "tools": request.get("tools").cloned().unwrap_or(Value::Null),
    })
}

fn short(v: Option<&Value>) -> String {
    match v {
        None => "(nothing)".to_owned(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 80 {
                format!("{}…", s.chars().take(80).collect::<String>())
            } else {
                s
            }
        }
    }
}

/// The first place two JSON values differ: (path, recorded, now).
fn first_difference(a: &Value, b: &Value, path: String) -> Option<(String, String, String)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, p),
                    (u, v) => Some((p, short(u), short(v))),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(u, v, format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| {
                (
                    format!("{path} (length)"),
                    x.len().to_string(),
                    y.len().to_string(),
                )
            })
        }
        _ if a == b => None,
        _ => Some((path, short(Some(a)), short(Some(b)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_and_replays_with_match_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tape.jsonl");
        let rec = Recorder::create(&path).unwrap();
        let req = json!({"model": "m", "messages": [{"role": "user", "content": "hi sk-123456"}], "temperature": 0.2});
        let resp = RecordedResponse {
            model: "m".into(),
            chunks: vec![r#"{"choices":[{"delta":{"content":"yo"}}]}"#.into()],
        };
        rec.record(None, req.clone(), Ok(resp.clone()), |s| {
            s.replace("sk-123456", "[redacted]")
        })
        .unwrap();
        rec.record(
            None,
            json!({"model": "m", "messages": []}),
            Err(RecordedError {
                kind: "auth".into(),
                message: "401".into(),
            }),
            |s| s.to_owned(),
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("sk-123456"));

        let redacted = json!({"model": "m", "messages": [{"role": "user", "content": "hi [redacted]"}], "temperature": 0.2});
        let r = Replayer::open(&path, ReplayMatch::Exact).unwrap();
        assert_eq!(r.next(None, &redacted).unwrap().response, Some(resp));
        assert_eq!(
            r.next(None, &json!({"model": "m", "messages": []}))
                .unwrap()
                .error
                .unwrap()
                .kind,
            "auth"
        );
        let err = r.next(None, &json!({})).unwrap_err().to_string();
        assert!(err.contains("holds only 2"), "{err}");

        let r = Replayer::open(&path, ReplayMatch::Exact).unwrap();
        let other = json!({"model": "m", "messages": [{"role": "user", "content": "bye"}], "temperature": 0.2});
        let err = r.next(None, &other).unwrap_err().to_string();
        assert!(
            err.contains("messages[0].content") && err.contains("\"bye\""),
            "{err}"
        );
        let r = Replayer::open(&path, ReplayMatch::Messages).unwrap();
        let warmer = json!({"model": "x", "messages": [{"role": "user", "content": "hi [redacted]"}], "temperature": 0.9});
        assert!(r.next(None, &warmer).is_ok());
        let r = Replayer::open(&path, ReplayMatch::Off).unwrap();
        assert!(r.next(None, &json!({"anything": 1})).is_ok());
    }

    #[test]
    fn sessions_replay_in_their_own_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tape.jsonl");
        let rec = Recorder::create(&path).unwrap();
        let resp = |t: &str| RecordedResponse {
            model: "m".into(),
            chunks: vec![t.to_owned()],
        };
        for (s, t) in [("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2")] {
            rec.record(Some(s), json!({"n": t}), Ok(resp(t)), |x| x.to_owned())
                .unwrap();
        }
        let r = Replayer::open(&path, ReplayMatch::Off).unwrap();
        let chunk = |s: &str| {
            r.next(Some(s), &json!({}))
                .unwrap()
                .response
                .unwrap()
                .chunks[0]
                .clone()
        };
        assert_eq!(chunk("b"), "b1");
        assert_eq!(chunk("b"), "b2");
        assert_eq!(chunk("a"), "a1");
        let err = r.next(Some("b"), &json!({})).unwrap_err().to_string();
        assert!(err.contains("session \"b\""), "{err}");
        assert_eq!(chunk("a"), "a2");
        assert!(r.next(Some("c"), &json!({})).is_err());
    }
}
