//! Turning streamed chunks into events and a completion: text deltas pass through, tool-call
//! fragments are assembled by index into complete calls, usage and finish reason are kept.
//! [`TextGate`] keeps a retried stream from delivering text the consumer already has.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::types::{Completion, StreamEvent, ToolCall, Usage};

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    /// Some servers report errors inside the stream.
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    /// Non-streaming responses carry `message` instead of `delta`.
    #[serde(default)]
    message: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default, alias = "reasoning")]
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<CallFragment>,
}

#[derive(Debug, Deserialize)]
struct CallFragment {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionFragment>,
}

#[derive(Debug, Deserialize)]
struct FunctionFragment {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Accumulates one reply.
#[derive(Debug, Default)]
pub struct Assembler {
    text: String,
    reasoning: String,
    calls: BTreeMap<u32, PartialCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    model: Option<String>,
}

fn excerpt(s: &str) -> String {
    let mut e: String = s.chars().take(120).collect();
    if s.chars().count() > 120 {
        e.push('…');
    }
    e
}

impl Assembler {
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// Applies one chunk (the JSON of an SSE `data:` event, or a whole non-streamed response)
    /// and appends the events it produces.
    pub fn push(&mut self, json: &str, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let chunk: Chunk = serde_json::from_str(json)
            .map_err(|e| format!("invalid JSON in a stream chunk ({e}): {}", excerpt(json)))?;
        if let Some(err) = chunk.error {
            return Err(format!(
                "the endpoint reported an error mid-stream: {}",
                excerpt(&err.to_string())
            ));
        }
        if let Some(m) = chunk.model.filter(|m| !m.is_empty()) {
            self.model.get_or_insert(m);
        }
        for choice in chunk.choices {
            let delta = choice.delta.or(choice.message).unwrap_or_default();
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                self.text.push_str(&text);
                out.push(StreamEvent::TextDelta { text });
            }
            if let Some(text) = delta.reasoning_content.filter(|t| !t.is_empty()) {
                self.reasoning.push_str(&text);
                out.push(StreamEvent::ReasoningDelta { text });
            }
            for (pos, frag) in delta.tool_calls.into_iter().enumerate() {
                // Streams give each call an index; whole messages may not.
                let index = frag.index.unwrap_or(pos as u32);
                let call = self.calls.entry(index).or_default();
                if let Some(id) = frag.id.filter(|i| !i.is_empty()) {
                    call.id = id;
                }
                if let Some(f) = frag.function {
                    if let Some(name) = f.name {
                        call.name.push_str(&name);
                    }
                    if let Some(args) = f.arguments {
                        call.arguments.push_str(&args);
                    }
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason);
            }
        }
        if let Some(u) = chunk.usage {
            let usage = Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                total_tokens: if u.total_tokens == 0 {
                    u.prompt_tokens + u.completion_tokens
                } else {
                    u.total_tokens
                },
                cost_usd: None,
            };
            self.usage = Some(usage);
        }
        Ok(())
    }

    /// Whether the model said it was done (a finish reason arrived).
    pub fn finished(&self) -> bool {
        self.finish_reason.is_some()
    }

    /// The text received so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Completes the reply: tool calls (in index order), usage and finish events, and the
    /// [`Completion`].
    pub fn finish(self, out: &mut Vec<StreamEvent>) -> Completion {
        let calls: Vec<ToolCall> = self
            .calls
            .into_iter()
            .map(|(i, c)| {
                let id = if c.id.is_empty() {
                    format!("call_{i}")
                } else {
                    c.id
                };
                ToolCall::new(id, c.name, c.arguments)
            })
            .collect();
        for call in &calls {
            out.push(StreamEvent::ToolCall { call: call.clone() });
        }
        let usage = self.usage.unwrap_or_default();
        if self.usage.is_some() {
            out.push(StreamEvent::Usage { usage });
        }
        if let Some(reason) = &self.finish_reason {
            out.push(StreamEvent::Finish {
                reason: reason.clone(),
            });
        }
        Completion {
            text: self.text,
            reasoning: self.reasoning,
            tool_calls: calls,
            finish_reason: self.finish_reason,
            usage,
            model: self.model.unwrap_or_default(),
            attempts: 1,
        }
    }
}

/// Keeps a retried attempt from repeating text the consumer already received.
///
/// The consumer holds `delivered`. A new attempt's text is held back while it is a prefix of
/// `delivered`; once it extends past it, only the remainder flows. If it diverges (the model
/// said something else this time), the gate emits [`StreamEvent::Restart`] and delivers the
/// new text from its start — the consumer discards what it had.
#[derive(Debug, Default)]
pub struct TextGate {
    /// What the consumer holds of this reply.
    delivered: String,
    /// Text of the current attempt not yet matched or delivered.
    pending: String,
    /// Past the already-delivered prefix: everything flows.
    open: bool,
}

impl TextGate {
    /// Starts an attempt. The first attempt is open at once.
    pub fn begin_attempt(&mut self) {
        self.pending.clear();
        self.open = self.delivered.is_empty();
    }

    /// Filters one event of the current attempt.
    pub fn filter(&mut self, event: StreamEvent, out: &mut Vec<StreamEvent>) {
        let StreamEvent::TextDelta { text } = event else {
            out.push(event);
            return;
        };
        if self.open {
            self.delivered.push_str(&text);
            out.push(StreamEvent::TextDelta { text });
            return;
        }
        self.pending.push_str(&text);
        if self.delivered.starts_with(&self.pending) {
            return; // still repeating what the consumer has
        }
        if let Some(rest) = self.pending.strip_prefix(&self.delivered) {
            let rest = rest.to_owned();
            self.delivered.push_str(&rest);
            self.open = true;
            if !rest.is_empty() {
                out.push(StreamEvent::TextDelta { text: rest });
            }
            return;
        }
        self.diverge(out);
    }

    fn diverge(&mut self, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Restart {
            reason: "the retried attempt produced different text".into(),
        });
        self.delivered = std::mem::take(&mut self.pending);
        self.open = true;
        if !self.delivered.is_empty() {
            out.push(StreamEvent::TextDelta {
                text: self.delivered.clone(),
            });
        }
    }

    /// The attempt completed: text still held back (a shorter reply than before) means the
    /// consumer must replace what it has.
    pub fn end_attempt(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.open && self.pending != self.delivered {
            self.diverge(out);
        }
        self.open = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(events: &[StreamEvent]) -> String {
        events
            .iter()
            .map(|e| match e {
                StreamEvent::TextDelta { text } => text.clone(),
                StreamEvent::Restart { .. } => "|RESTART|".into(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn assembles_parallel_tool_calls_from_fragments() {
        let mut a = Assembler::new();
        let mut out = Vec::new();
        let chunks = [
            r#"{"model":"m1","choices":[{"delta":{"content":"Let me "}}]}"#,
            r#"{"choices":[{"delta":{"content":"look.","tool_calls":[{"index":0,"id":"c0","function":{"name":"read_","arguments":"{\"pa"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c1","function":{"name":"git_diff","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"file","arguments":"th\":\"a.rs\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5}}"#,
        ];
        for c in chunks {
            a.push(c, &mut out).unwrap();
        }
        let done = a.finish(&mut out);
        assert_eq!(done.text, "Let me look.");
        assert_eq!(done.model, "m1");
        assert_eq!(done.tool_calls.len(), 2);
        assert_eq!(done.tool_calls[0].name, "read_file");
        assert_eq!(
            done.tool_calls[0].arguments,
            serde_json::json!({"path": "a.rs"})
        );
        assert_eq!(done.tool_calls[1].arguments, serde_json::json!({}));
        assert_eq!(done.usage.total_tokens, 15);
        assert_eq!(done.finish_reason.as_deref(), Some("tool_calls"));
        assert!(matches!(out.last(), Some(StreamEvent::Finish { .. })));
    }

    #[test]
    fn bad_chunks_are_clear_errors() {
        let mut a = Assembler::new();
        let err = a.push("{not json", &mut Vec::new()).unwrap_err();
        assert!(
            err.contains("invalid JSON") && err.contains("{not json"),
            "{err}"
        );
        let err = a
            .push(r#"{"error":{"message":"overloaded"}}"#, &mut Vec::new())
            .unwrap_err();
        assert!(err.contains("overloaded"), "{err}");
        let call = ToolCall::new("c".into(), "f".into(), "{\"a\":".into());
        assert!(call.arguments_error.is_some());
    }

    fn attempt(gate: &mut TextGate, pieces: &[&str], out: &mut Vec<StreamEvent>) {
        gate.begin_attempt();
        for p in pieces {
            gate.filter(StreamEvent::TextDelta { text: (*p).into() }, out);
        }
    }

    #[test]
    fn a_retry_that_repeats_delivers_only_the_rest() {
        let mut gate = TextGate::default();
        let mut out = Vec::new();
        attempt(&mut gate, &["Hello ", "wor"], &mut out); // then the stream is cut
        attempt(&mut gate, &["Hel", "lo w", "orld", "!"], &mut out);
        gate.end_attempt(&mut out);
        assert_eq!(texts(&out), "Hello world!");
    }

    #[test]
    fn a_retry_that_diverges_restarts() {
        let mut gate = TextGate::default();
        let mut out = Vec::new();
        attempt(&mut gate, &["Hello ", "wor"], &mut out);
        attempt(&mut gate, &["Hel", "p is here"], &mut out);
        gate.end_attempt(&mut out);
        assert_eq!(texts(&out), "Hello wor|RESTART|Help is here");
        // A shorter retry that is a prefix of what was delivered also restarts.
        let mut gate = TextGate::default();
        let mut out = Vec::new();
        attempt(&mut gate, &["Hello world"], &mut out);
        attempt(&mut gate, &["Hello"], &mut out);
        gate.end_attempt(&mut out);
        assert_eq!(texts(&out), "Hello world|RESTART|Hello");
    }
}
