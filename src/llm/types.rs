//! What goes to the model and what comes back: messages, tools, stream events, completions and
//! usage, in the OpenAI chat-completions wire shapes.

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Who speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    /// Text; `null` for an assistant turn that only calls tools.
    pub content: Option<String>,
    /// Tool calls of an assistant turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<WireToolCall>,
    /// For a `tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    fn text(role: Role, text: impl Into<String>) -> Message {
        Message {
            role,
            content: Some(text.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
    pub fn system(text: impl Into<String>) -> Message {
        Self::text(Role::System, text)
    }
    pub fn user(text: impl Into<String>) -> Message {
        Self::text(Role::User, text)
    }
    pub fn assistant(text: impl Into<String>) -> Message {
        Self::text(Role::Assistant, text)
    }
    /// The assistant turn that made `calls` (with its text, if any).
    pub fn assistant_calls(text: Option<String>, calls: &[ToolCall]) -> Message {
        Message {
            role: Role::Assistant,
            content: text.filter(|t| !t.is_empty()),
            tool_calls: calls.iter().map(ToolCall::to_wire).collect(),
            tool_call_id: None,
        }
    }
    /// The result of tool call `id`.
    pub fn tool_result(id: impl Into<String>, text: impl Into<String>) -> Message {
        Message {
            role: Role::Tool,
            content: Some(text.into()),
            tool_calls: Vec::new(),
            tool_call_id: Some(id.into()),
        }
    }
}

/// A tool call as the wire carries it (arguments as a JSON string).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: WireFunction,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireFunction {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

fn function_type() -> String {
    "function".to_owned()
}

/// A complete tool call, assembled from stream fragments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The parsed arguments (`{}` when the model sent none; `null` when they are not JSON).
    pub arguments: Value,
    /// The arguments exactly as sent.
    pub raw_arguments: String,
    /// Why the arguments could not be parsed, if they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments_error: Option<String>,
}

impl ToolCall {
    /// Builds a call from its parts, parsing the arguments.
    pub fn new(id: String, name: String, raw_arguments: String) -> ToolCall {
        let (arguments, arguments_error) = if raw_arguments.trim().is_empty() {
            (json!({}), None)
        } else {
            match serde_json::from_str(&raw_arguments) {
                Ok(v) => (v, None),
                Err(e) => (
                    Value::Null,
                    Some(format!("arguments are not valid JSON: {e}")),
                ),
            }
        };
        ToolCall {
            id,
            name,
            arguments,
            raw_arguments,
            arguments_error,
        }
    }

    pub fn to_wire(&self) -> WireToolCall {
        WireToolCall {
            id: self.id.clone(),
            kind: function_type(),
            function: WireFunction {
                name: self.name.clone(),
                arguments: self.raw_arguments.clone(),
            },
        }
    }
}

/// A tool the model may call: a name, what it does, and a JSON schema of its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

impl Tool {
    pub fn to_wire(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }
}

/// Whether and which tool the model must call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    /// This function, by name.
    Function(String),
}

impl ToolChoice {
    pub fn to_wire(&self) -> Value {
        match self {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
        }
    }
}

/// A chat completion request.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ChatRequest {
    /// `None`: the provider's configured (or first listed) model.
    pub model: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Which conversation this request belongs to (e.g. `bd-a1b2/coder`). Not sent: recordings
    /// keep it so concurrent sessions replay each from its own sequence.
    pub session: Option<String>,
}

impl ChatRequest {
    pub fn new(messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            messages,
            ..ChatRequest::default()
        }
    }

    /// The request body for `model`; `stream` adds `stream_options.include_usage`.
    pub fn to_wire(&self, model: &str, stream: bool) -> Value {
        let mut body = json!({
            "model": model,
            "messages": self.messages,
            "stream": stream,
        });
        let map = body.as_object_mut();
        if let Some(map) = map {
            if stream {
                map.insert("stream_options".into(), json!({"include_usage": true}));
            }
            if !self.tools.is_empty() {
                let tools: Vec<Value> = self.tools.iter().map(Tool::to_wire).collect();
                map.insert("tools".into(), Value::Array(tools));
            }
            if let Some(c) = &self.tool_choice {
                map.insert("tool_choice".into(), c.to_wire());
            }
            if let Some(t) = self.temperature {
                map.insert("temperature".into(), json!(t));
            }
            if let Some(m) = self.max_tokens {
                map.insert("max_tokens".into(), json!(m));
            }
        }
        body
    }

    /// A rough token estimate of the prompt (4 bytes a token), for context-window checks.
    pub fn estimated_tokens(&self) -> u64 {
        let bytes: usize = self
            .messages
            .iter()
            .map(|m| m.content.as_deref().map_or(0, str::len) + 8)
            .sum::<usize>()
            + self
                .tools
                .iter()
                .map(|t| t.description.len() + t.parameters.to_string().len())
                .sum::<usize>();
        (bytes / 4) as u64
    }
}

/// Tokens used, and what they cost when the model's price is known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// US dollars, from the configured price table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
    }
}

/// What a streamed reply delivers, in order.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// More reply text.
    TextDelta { text: String },
    /// More reasoning text (models that expose it).
    ReasoningDelta { text: String },
    /// A tool call, complete.
    ToolCall { call: ToolCall },
    /// Token usage of the call.
    Usage { usage: Usage },
    /// Why the model stopped (`stop`, `tool_calls`, `length`, …).
    Finish { reason: String },
    /// A failed attempt will be retried after `delay_ms`.
    Retrying {
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// Discard the text delivered so far for this reply: a retried attempt produced different
    /// text. What follows is the whole reply again.
    Restart { reason: String },
}

/// A finished reply.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
pub struct Completion {
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    pub usage: Usage,
    /// The model that answered (TokenHub's `X-Negotiated-Model`, else the stream's `model`).
    pub model: String,
    /// HTTP attempts made (1 without retries).
    pub attempts: u32,
}

/// A model the endpoint offers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    /// Context window in tokens, when the endpoint says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
}
