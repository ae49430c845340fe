//! The HTTP client: one attempt at a time against `POST {base}/v1/chat/completions`, the
//! fault policy (`retry`) deciding between attempts, health updates after each, and the tape
//! (record/replay) around the whole call. Dropping the future of [`Client::chat`] drops the
//! response, which closes the connection: cancellation is immediate.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;

use super::assemble::{Assembler, TextGate};
use super::error::LlmError;
use super::health::{Health, HealthSnapshot, HealthTracker};
use super::provider::{ProviderConfig, endpoint};
use super::record::{RecordedError, RecordedResponse, Recorder, Replayer};
use super::retry::{self, Class, Decision};
use super::sse::{SseEvent, SseParser};
use super::types::{ChatRequest, Completion, ModelInfo, StreamEvent, ToolCall};

/// Where exchanges come from and go to.
#[derive(Debug, Default)]
pub enum Tape {
    /// Talk to the endpoint.
    #[default]
    Live,
    /// Talk to the endpoint and write every exchange to a recording.
    Record(Recorder),
    /// Serve exchanges from a recording; no network.
    Replay(Replayer),
}

/// A chat-completions client. Cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: ProviderConfig,
    tape: Tape,
    health: Mutex<HealthTracker>,
    health_tx: watch::Sender<HealthSnapshot>,
    models: Mutex<Option<Vec<ModelInfo>>>,
}

/// A failed attempt.
#[derive(Debug)]
struct Failure {
    class: Class,
    status: Option<u16>,
    retry_after: Option<Duration>,
    detail: String,
}

impl Failure {
    fn new(class: Class, detail: impl Into<String>) -> Failure {
        Failure {
            class,
            status: None,
            retry_after: None,
            detail: detail.into(),
        }
    }
}

/// Largest error body read (the rest is dropped).
const MAX_ERROR_BODY: usize = 64 * 1024;

fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn excerpt(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_owned();
    }
    format!("{}…", s.chars().take(max).collect::<String>())
}

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<WireModel>,
}

#[derive(Deserialize)]
struct WireModel {
    id: String,
    #[serde(default)]
    owned_by: Option<String>,
    #[serde(default)]
    context_length: Option<u64>,
    #[serde(default)]
    max_model_len: Option<u64>,
}

impl Client {
    /// A client for `config`. Fails only if the HTTP stack cannot be set up.
    pub fn new(config: ProviderConfig, tape: Tape) -> Result<Client, LlmError> {
        // rustls without a built-in provider: install ring once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| LlmError::Record(format!("cannot set up HTTP: {}", describe(&e))))?;
        let (health_tx, _) = watch::channel(HealthSnapshot::default());
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                tape,
                health: Mutex::new(HealthTracker::default()),
                health_tx,
                models: Mutex::new(None),
            }),
        })
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// Whether exchanges are served from a recording.
    pub fn is_replay(&self) -> bool {
        matches!(self.inner.tape, Tape::Replay(_))
    }

    /// The endpoint's health now.
    pub fn health(&self) -> HealthSnapshot {
        self.inner.health_tx.borrow().clone()
    }

    /// Health changes, for pausing work while the endpoint is down.
    pub fn subscribe_health(&self) -> watch::Receiver<HealthSnapshot> {
        self.inner.health_tx.subscribe()
    }

    fn note(&self, outcome: Result<(), (Class, &str)>) {
        let Ok(mut t) = self.inner.health.lock() else {
            return;
        };
        let changed = match outcome {
            Ok(()) => t.success(),
            Err((class, msg)) => t.failure(class, msg),
        };
        if changed || outcome.is_err() {
            self.inner.health_tx.send_replace(t.snapshot().clone());
        }
    }

    /// The model list answered: the endpoint is reachable — which says nothing about
    /// completions, so it is not marked healthy (only a chat request that succeeds does).
    fn note_listed(&self) {
        let Ok(mut t) = self.inner.health.lock() else {
            return;
        };
        if t.listed() {
            self.inner.health_tx.send_replace(t.snapshot().clone());
        }
    }

    fn base(&self) -> Result<&str, LlmError> {
        self.inner
            .config
            .url
            .as_deref()
            .ok_or(LlmError::NotConfigured)
    }

    /// The models the endpoint lists (`GET {base}/v1/models`), cached after the first call.
    pub async fn models(&self) -> Result<Vec<ModelInfo>, LlmError> {
        if let Ok(cache) = self.inner.models.lock()
            && let Some(m) = cache.as_ref()
        {
            return Ok(m.clone());
        }
        let models = match &self.inner.tape {
            Tape::Replay(r) => r
                .models()
                .into_iter()
                .map(|id| ModelInfo {
                    id,
                    owned_by: None,
                    context_length: None,
                })
                .collect(),
            _ => self.fetch_models().await?,
        };
        if let Ok(mut cache) = self.inner.models.lock() {
            *cache = Some(models.clone());
        }
        Ok(models)
    }

    async fn fetch_models(&self) -> Result<Vec<ModelInfo>, LlmError> {
        let url = endpoint(self.base()?, "/models");
        let mut rb = self.inner.http.get(&url);
        if let Some(k) = &self.inner.config.api_key {
            rb = rb.bearer_auth(k.expose());
        }
        let failed = |class, status, detail: String| {
            self.note(Err((class, &detail)));
            self.give_up(
                &url,
                Failure {
                    class,
                    status,
                    retry_after: None,
                    detail,
                },
                1,
            )
        };
        let resp = match tokio::time::timeout(self.inner.config.idle_timeout, rb.send()).await {
            Err(_) => {
                return Err(failed(
                    Class::Stalled,
                    None,
                    "no answer to GET /models".into(),
                ));
            }
            Ok(Err(e)) => return Err(failed(Class::Transport, None, describe(&e))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            let detail = self.inner.config.redact(&excerpt(&body, 300));
            return Err(failed(
                retry::classify_status(status, &body, false),
                Some(status),
                detail,
            ));
        }
        let list: ModelList = serde_json::from_str(&body).map_err(|e| LlmError::Protocol {
            url: url.clone(),
            detail: format!(
                "GET /models did not return a model list ({e}): {}",
                excerpt(&body, 120)
            ),
        })?;
        self.note_listed();
        Ok(list
            .data
            .into_iter()
            // Model names end up in commits and logs: no secret may ride along.
            .map(|m| ModelInfo {
                id: self.inner.config.redact(&m.id),
                owned_by: m.owned_by.map(|o| self.inner.config.redact(&o)),
                context_length: m.context_length.or(m.max_model_len),
            })
            .collect())
    }

    /// Checks the endpoint by listing its models; returns the health after (`reachable` when
    /// it answered; healthy only after a chat request succeeds).
    pub async fn probe(&self) -> HealthSnapshot {
        if let Ok(mut cache) = self.inner.models.lock() {
            *cache = None;
        }
        let _ = self.models().await;
        self.health()
    }

    /// After an outage: probes the endpoint with growing pauses (¼ s doubling to 5 s) until it
    /// answers again — worth sending the request again (`true`) — or `give_up_at` passes
    /// (`false`).
    pub async fn wait_until_up(&self, give_up_at: std::time::Instant) -> bool {
        let mut delay = Duration::from_millis(250);
        loop {
            let now = std::time::Instant::now();
            if now >= give_up_at {
                return false;
            }
            tokio::time::sleep(delay.min(give_up_at - now)).await;
            let h = self.probe().await;
            if h.health == Health::Healthy || h.reachable {
                return true;
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// The model to use: `requested`, else `LOOM_MODEL`/`provider.model`, else the recording's,
    /// else the first the endpoint lists.
    pub async fn resolve_model(&self, requested: Option<&str>) -> Result<String, LlmError> {
        if let Some(m) = requested.or(self.inner.config.model.as_deref()) {
            return Ok(m.to_owned());
        }
        if let Tape::Replay(r) = &self.inner.tape
            && let Some(m) = r.first_model()
        {
            return Ok(m);
        }
        let models = self.models().await?;
        models
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| LlmError::Rejected {
                url: self
                    .base()
                    .map(|b| endpoint(b, "/models"))
                    .unwrap_or_default(),
                status: 200,
                detail: "the endpoint lists no models; set LOOM_MODEL or provider.model".into(),
            })
    }

    /// The context window of `model`, if the endpoint said (from the cached model list).
    pub fn known_context_length(&self, model: &str) -> Option<u64> {
        let cache = self.inner.models.lock().ok()?;
        cache
            .as_ref()?
            .iter()
            .find(|m| m.id == model)
            .and_then(|m| m.context_length)
    }

    /// Sends `req` and streams the reply to `on_event`; returns the whole reply. Retries
    /// transient failures per the policy (announcing each with [`StreamEvent::Retrying`]).
    ///
    /// The reply is untrusted: every configured secret is redacted from it here, before any
    /// consumer sees it — streamed text (a secret split across chunks included), tool call
    /// names and arguments (each string value, and the raw text), the model name — so no
    /// artefact built from model output can carry one.
    pub async fn chat(
        &self,
        req: &ChatRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Completion, LlmError> {
        let config = &self.inner.config;
        let mut text = config.stream_redactor();
        let mut reasoning = config.stream_redactor();
        let mut forward = |e: StreamEvent| match e {
            StreamEvent::TextDelta { text: t } => {
                let t = text.push(&t);
                if !t.is_empty() {
                    on_event(StreamEvent::TextDelta { text: t });
                }
            }
            StreamEvent::ReasoningDelta { text: t } => {
                let t = reasoning.push(&t);
                if !t.is_empty() {
                    on_event(StreamEvent::ReasoningDelta { text: t });
                }
            }
            StreamEvent::Restart { reason } => {
                text = config.stream_redactor();
                reasoning = config.stream_redactor();
                on_event(StreamEvent::Restart {
                    reason: config.redact(&reason),
                });
            }
            StreamEvent::ToolCall { call } => on_event(StreamEvent::ToolCall {
                call: redact_call(config, call),
            }),
            StreamEvent::Retrying {
                attempt,
                delay_ms,
                reason,
            } => on_event(StreamEvent::Retrying {
                attempt,
                delay_ms,
                reason: config.redact(&reason),
            }),
            StreamEvent::Finish { reason } => on_event(StreamEvent::Finish {
                reason: config.redact(&reason),
            }),
            other => on_event(other),
        };
        let result = self.chat_raw(req, &mut forward).await;
        let (rest, rest_reasoning) = (text.finish(), reasoning.finish());
        if !rest.is_empty() {
            on_event(StreamEvent::TextDelta { text: rest });
        }
        if !rest_reasoning.is_empty() {
            on_event(StreamEvent::ReasoningDelta {
                text: rest_reasoning,
            });
        }
        let mut done = result?;
        done.text = config.redact(&done.text);
        done.reasoning = config.redact(&done.reasoning);
        done.model = config.redact(&done.model);
        done.finish_reason = done.finish_reason.map(|r| config.redact(&r));
        done.tool_calls = done
            .tool_calls
            .into_iter()
            .map(|c| redact_call(config, c))
            .collect();
        Ok(done)
    }

    async fn chat_raw(
        &self,
        req: &ChatRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Completion, LlmError> {
        let model = self.resolve_model(req.model.as_deref()).await?;
        let stream = self.inner.config.stream;
        let body = req.to_wire(&model, stream);
        let config = &self.inner.config;
        // What a recording holds of the request: the body, with secrets removed.
        let taped = || -> Value {
            serde_json::from_str(&config.redact(&body.to_string())).unwrap_or(Value::Null)
        };
        if let Tape::Replay(r) = &self.inner.tape {
            return self
                .replay(r, req.session.as_deref(), &taped(), &model, on_event)
                .await;
        }
        let url = endpoint(self.base()?, "/chat/completions");
        let large = self
            .known_context_length(&model)
            .is_some_and(|ctx| req.estimated_tokens().saturating_mul(10) >= ctx.saturating_mul(8));
        let bytes = body.to_string().into_bytes();
        let mut gate = TextGate::default();
        let mut chunks = Vec::new();
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            gate.begin_attempt();
            chunks.clear();
            match self
                .attempt(
                    &url,
                    &bytes,
                    &model,
                    large,
                    &mut gate,
                    &mut chunks,
                    on_event,
                )
                .await
            {
                Ok(mut done) => {
                    self.note(Ok(()));
                    done.attempts = attempt;
                    break Ok(done);
                }
                Err(f) => {
                    self.note(Err((f.class, &f.detail)));
                    let policy = &config.retry;
                    match retry::decide(policy, attempt, f.class, f.retry_after, retry::jitter()) {
                        Decision::Retry(delay) => {
                            on_event(StreamEvent::Retrying {
                                attempt,
                                delay_ms: delay.as_millis() as u64,
                                reason: f.detail.clone(),
                            });
                            tokio::time::sleep(delay).await;
                        }
                        Decision::GiveUp => break Err(self.give_up(&url, f, attempt)),
                    }
                }
            }
        };
        if let Tape::Record(rec) = &self.inner.tape {
            let outcome = match &result {
                Ok(done) => Ok(RecordedResponse {
                    model: done.model.clone(),
                    chunks: std::mem::take(&mut chunks),
                }),
                Err(e) => Err(RecordedError {
                    kind: e.kind().to_owned(),
                    message: e.to_string(),
                }),
            };
            rec.record(req.session.as_deref(), taped(), outcome, |s| {
                config.redact(s)
            })?;
        }
        result
    }

    fn give_up(&self, url: &str, f: Failure, attempts: u32) -> LlmError {
        let config = &self.inner.config;
        match f.class {
            Class::Auth => LlmError::Auth {
                url: url.to_owned(),
                status: f.status.unwrap_or(401),
                detail: f.detail,
                key_env: config.api_key_env.clone(),
                key_set: config.api_key.is_some(),
            },
            Class::ContextOverflow => LlmError::ContextOverflow { detail: f.detail },
            Class::Client => LlmError::Rejected {
                url: url.to_owned(),
                status: f.status.unwrap_or(400),
                detail: f.detail,
            },
            Class::Protocol => LlmError::Protocol {
                url: url.to_owned(),
                detail: f.detail,
            },
            class => LlmError::Exhausted {
                url: url.to_owned(),
                class,
                status: f.status,
                detail: f.detail,
                attempts,
            },
        }
    }

    /// One HTTP attempt. Text reaches `on_event` through `gate` as it arrives; the `data:`
    /// payloads are kept in `chunks` (for recording).
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        url: &str,
        body: &[u8],
        model: &str,
        large: bool,
        gate: &mut TextGate,
        chunks: &mut Vec<String>,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Completion, Failure> {
        let config = &self.inner.config;
        let mut rb = self
            .inner
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if config.stream {
            rb = rb.header(ACCEPT, "text/event-stream");
        }
        if let Some(k) = &config.api_key {
            rb = rb.bearer_auth(k.expose());
        }
        for (name, value) in &config.headers {
            rb = rb.header(name.as_str(), value.expose());
        }
        let idle = config.idle_timeout;
        let mut resp = match tokio::time::timeout(idle, rb.send()).await {
            Err(_) => {
                return Err(Failure::new(
                    Class::Stalled,
                    format!("no answer within {}s", idle.as_secs_f64()),
                ));
            }
            Ok(Err(e)) => return Err(Failure::new(Class::Transport, config.redact(&describe(&e)))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let negotiated = header("x-negotiated-model").filter(|m| !m.is_empty());
        let content_type = header(CONTENT_TYPE.as_str()).unwrap_or_default();
        if !(200..300).contains(&status) {
            let retry_after = header(RETRY_AFTER.as_str())
                .and_then(|v| retry::parse_retry_after(&v, jiff::Timestamp::now()));
            let mut text = Vec::new();
            while text.len() < MAX_ERROR_BODY {
                match tokio::time::timeout(idle, resp.chunk()).await {
                    Ok(Ok(Some(b))) => text.extend_from_slice(&b),
                    _ => break,
                }
            }
            let text = String::from_utf8_lossy(&text).into_owned();
            let detail = if text.trim().is_empty() {
                format!("HTTP {status}")
            } else {
                config.redact(&excerpt(&text, 300))
            };
            return Err(Failure {
                class: retry::classify_status(status, &text, large),
                status: Some(status),
                retry_after,
                detail,
            });
        }
        let sse = !content_type.contains("application/json");
        let mut asm = Assembler::new();
        let mut parser = SseParser::new();
        let mut raw = Vec::new();
        let mut events = Vec::new();
        let mut out = Vec::new();
        let mut whole = Vec::new();
        let mut done = false;
        let mut saw_done = false;
        let mut ended = false;
        // The stream ended in the middle of a line: what that line held may be cut short.
        let mut cut_mid_line = false;
        while !done {
            let bytes = match tokio::time::timeout(idle, resp.chunk()).await {
                Err(_) => {
                    return Err(Failure::new(
                        Class::Stalled,
                        format!("the stream was silent for {}s", idle.as_secs_f64()),
                    ));
                }
                Ok(Err(e)) => {
                    return Err(Failure::new(
                        Class::Cut,
                        format!("the stream broke: {}", config.redact(&describe(&e))),
                    ));
                }
                Ok(Ok(None)) => {
                    done = true;
                    ended = true;
                    if sse {
                        cut_mid_line = parser.mid_line();
                        parser.finish(&mut raw).map_err(|e| {
                            if cut_mid_line {
                                mid_line_cut()
                            } else {
                                Failure::new(Class::Protocol, e.0)
                            }
                        })?;
                    } else {
                        raw.push(SseEvent::Data(
                            String::from_utf8(std::mem::take(&mut whole)).map_err(|_| {
                                Failure::new(Class::Protocol, "the answer is not UTF-8")
                            })?,
                        ));
                    }
                    None
                }
                Ok(Ok(Some(b))) => Some(b),
            };
            if let Some(b) = bytes {
                if sse {
                    parser
                        .push(&b, &mut raw)
                        .map_err(|e| Failure::new(Class::Protocol, e.0))?;
                } else {
                    whole.extend_from_slice(&b);
                }
            }
            for ev in raw.drain(..) {
                match ev {
                    SseEvent::Done => {
                        done = true;
                        saw_done = true;
                    }
                    SseEvent::Data(data) => {
                        asm.push(&data, &mut events).map_err(|e| {
                            if cut_mid_line {
                                mid_line_cut()
                            } else {
                                Failure::new(Class::Protocol, config.redact(&e))
                            }
                        })?;
                        chunks.push(data);
                        for e in events.drain(..) {
                            gate.filter(e, &mut out);
                        }
                        for e in out.drain(..) {
                            on_event(e);
                        }
                    }
                }
            }
        }
        // Some servers omit [DONE] after the finish reason; without either, the reply is cut.
        if sse && ended && !saw_done && !asm.finished() {
            return Err(Failure::new(
                Class::Cut,
                "the stream ended before the reply was complete",
            ));
        }
        gate.end_attempt(&mut out);
        let mut completion = asm.finish(&mut out);
        if let Some(m) = negotiated {
            completion.model = m;
        }
        if completion.model.is_empty() {
            completion.model = model.to_owned();
        }
        self.price(&mut completion, &mut out);
        for e in out {
            on_event(e);
        }
        Ok(completion)
    }

    /// Fills in the cost of a completion and of its usage event.
    fn price(&self, completion: &mut Completion, events: &mut [StreamEvent]) {
        completion.usage.cost_usd = self.inner.config.cost(&completion.model, &completion.usage);
        for e in events {
            if let StreamEvent::Usage { usage } = e {
                usage.cost_usd = completion.usage.cost_usd;
            }
        }
    }

    async fn replay(
        &self,
        tape: &Replayer,
        session: Option<&str>,
        request: &Value,
        model: &str,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Completion, LlmError> {
        let ex = tape.next(session, request)?;
        if let Some(err) = ex.error {
            return Err(LlmError::Replayed {
                kind: err.kind,
                message: err.message,
            });
        }
        let resp = ex.response.ok_or_else(|| {
            LlmError::Replay(format!(
                "exchange {} has neither a response nor an error",
                ex.seq
            ))
        })?;
        let mut asm = Assembler::new();
        let mut out = Vec::new();
        for chunk in &resp.chunks {
            if let Some(pace) = tape.pace() {
                tokio::time::sleep(pace).await;
            }
            asm.push(chunk, &mut out)
                .map_err(|detail| LlmError::Protocol {
                    url: "the recording".into(),
                    detail,
                })?;
            for e in out.drain(..) {
                on_event(e);
            }
        }
        let mut completion = asm.finish(&mut out);
        completion.model = if resp.model.is_empty() {
            model.to_owned()
        } else {
            resp.model
        };
        self.price(&mut completion, &mut out);
        for e in out {
            on_event(e);
        }
        self.note(Ok(()));
        Ok(completion)
    }
}

impl Health {
    /// Whether new work should wait.
    pub fn is_down(self) -> bool {
        self == Health::Down
    }
}

/// A stream that ended inside a line whose rest never came: retried like any cut stream.
fn mid_line_cut() -> Failure {
    Failure::new(Class::Cut, "the stream was cut in the middle of a line")
}

/// A tool call with every secret removed: the name, the raw arguments and each string (and
/// key) of the parsed arguments.
fn redact_call(config: &ProviderConfig, mut call: ToolCall) -> ToolCall {
    fn walk(config: &ProviderConfig, v: &mut Value) {
        match v {
            Value::String(s) => *s = config.redact(s),
            Value::Array(items) => items.iter_mut().for_each(|i| walk(config, i)),
            Value::Object(map) => {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    walk(config, &mut v);
                    map.insert(config.redact(&k), v);
                }
            }
            _ => {}
        }
    }
    call.name = config.redact(&call.name);
    call.id = config.redact(&call.id);
    let before = call.arguments.clone();
    walk(config, &mut call.arguments);
    let raw = config.redact(&call.raw_arguments);
    // A secret hidden by JSON escapes in the raw text is caught through the parsed value.
    call.raw_arguments = if call.arguments != before {
        call.arguments.to_string()
    } else {
        raw
    };
    call.arguments_error = call.arguments_error.map(|e| config.redact(&e));
    call
}
