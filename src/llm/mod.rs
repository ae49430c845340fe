//! Talking to the model: an OpenAI-compatible chat-completions client (TokenHub, OpenAI, vLLM,
//! Ollama, llama.cpp, LiteLLM) with streaming, tool calls, fault handling, health, usage and
//! record/replay.
//!
//! Pure parts (`sse`, `assemble`, `retry`, `health`, `provider` pricing) are unit-tested on
//! their own; `client` does the I/O and follows them.

pub mod assemble;
pub(crate) mod client;
pub(crate) mod error;
pub(crate) mod health;
pub(crate) mod provider;
pub mod record;
pub(crate) mod retry;
pub mod sse;
pub(crate) mod types;

pub use client::{Client, Tape};
pub use error::LlmError;
pub use health::{Health, HealthSnapshot};
pub use provider::{Price, ProviderConfig, ProviderFile, Secret};
pub use record::ReplayMatch;
pub use types::{
    ChatRequest, Completion, Message, ModelInfo, Role, StreamEvent, Tool, ToolCall, ToolChoice,
    Usage,
};
