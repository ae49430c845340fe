//! A real HTTP/1.1 server on 127.0.0.1 that speaks the OpenAI chat-completions protocol
//! (streamed and not), scripted per test, with injectable faults: 429 with Retry-After, 502,
//! slow first byte, stalled stream, cut stream, garbage lines, 401.
//!
//! `spawn` runs it on the caller's tokio runtime (paused-clock tests: its delays advance with
//! the client's); `start` runs it on a thread of its own (tests that spawn the `loom` binary).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A fault injected into a streamed reply.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Wait this long before sending the response head.
    SlowFirstByte(Duration),
    /// After this many events, send nothing more (the connection stays open).
    StallAfter(usize),
    /// After this many events, close the connection mid-body.
    CutAfter(usize),
    /// After this many events, send a line that is not SSE.
    GarbageAfter(usize, String),
    /// Wait this long before each event.
    EventDelay(Duration),
    /// After this many events, send the first half of the next event's line and end the body
    /// cleanly (no newline after it).
    CutMidLine(usize),
}

/// In a scripted reply, replaced by the API key the request carried (an endpoint that echoes
/// the key back, to prove no artefact keeps it).
pub const ECHO_KEY: &str = "{{KEY}}";

/// Replaced by the first and the second half of the key (to split it across chunks).
pub const ECHO_KEY_1: &str = "{{KEY1}}";
pub const ECHO_KEY_2: &str = "{{KEY2}}";

fn echo(event: &str, key: &str) -> String {
    let half = key.len() / 2;
    event
        .replace(ECHO_KEY, key)
        .replace(ECHO_KEY_1, &key[..half])
        .replace(ECHO_KEY_2, &key[half..])
}

/// One scripted answer to `POST /v1/chat/completions`.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A streamed answer: the `data:` payloads in order (`[DONE]` included where wanted).
    Stream {
        events: Vec<String>,
        faults: Vec<Fault>,
        model: String,
    },
    /// A plain answer: status, extra headers, body (JSON answers and errors alike).
    Plain {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
        content_type: String,
    },
}

fn chunk(delta: Value) -> String {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": "test-model",
           "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
    .to_string()
}

/// The `data:` payloads of a text reply delivered in `pieces`, with finish, usage and [DONE].
pub fn text_events(pieces: &[&str]) -> Vec<String> {
    let mut ev: Vec<String> = pieces
        .iter()
        .map(|p| chunk(json!({"content": p})))
        .collect();
    ev.push(
        json!({"id": "c1", "model": "test-model", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            .to_string(),
    );
    ev.push(json!({"id": "c1", "model": "test-model", "choices": [],
                   "usage": {"prompt_tokens": 11, "completion_tokens": pieces.len(), "total_tokens": 11 + pieces.len()}})
        .to_string());
    ev.push("[DONE]".into());
    ev
}

/// Tool calls `(id, name, arguments)` streamed interleaved, the arguments in `piece`-byte
/// fragments.
pub fn tool_call_events(calls: &[(&str, &str, &str)], piece: usize) -> Vec<String> {
    let mut ev = Vec::new();
    for (i, (id, name, _)) in calls.iter().enumerate() {
        ev.push(chunk(
            json!({"tool_calls": [{"index": i, "id": id, "type": "function",
                                            "function": {"name": name, "arguments": ""}}]}),
        ));
    }
    let frags: Vec<Vec<String>> = calls
        .iter()
        .map(|(_, _, args)| {
            args.as_bytes()
                .chunks(piece)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect()
        })
        .collect();
    let longest = frags.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..longest {
        for (i, f) in frags.iter().enumerate() {
            if let Some(part) = f.get(k) {
                ev.push(chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": part}}]}),
                ));
            }
        }
    }
    ev.push(
        json!({"id": "c1", "model": "test-model", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
            .to_string(),
    );
    ev.push("[DONE]".into());
    ev
}

impl Reply {
    pub fn stream(events: Vec<String>) -> Reply {
        Reply::Stream {
            events,
            faults: Vec::new(),
            model: "test-model".into(),
        }
    }
    pub fn text(pieces: &[&str]) -> Reply {
        Reply::stream(text_events(pieces))
    }
    /// A streamed reply calling one tool.
    pub fn tool(name: &str, args: Value) -> Reply {
        Reply::stream(tool_call_events(&[("p1", name, &args.to_string())], 5))
    }
    pub fn with(mut self, fault: Fault) -> Reply {
        if let Reply::Stream { faults, .. } = &mut self {
            faults.push(fault);
        }
        self
    }
    pub fn negotiated(mut self, name: &str) -> Reply {
        if let Reply::Stream { model, .. } = &mut self {
            *model = name.into();
        }
        self
    }
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Plain {
            status,
            headers: Vec::new(),
            body: body.into(),
            content_type: "text/plain".into(),
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Plain { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
    /// A whole (non-streamed) completion.
    pub fn json_completion(text: &str) -> Reply {
        Reply::Plain {
            status: 200,
            headers: Vec::new(),
            body: json!({"id": "c2", "object": "chat.completion", "model": "test-model",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
            .to_string(),
            content_type: "application/json".into(),
        }
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Replies for requests whose body contains every needle.
struct Route {
    needles: Vec<String>,
    replies: VecDeque<Reply>,
    /// The reply is given every time (never used up).
    sticky: bool,
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Reply>>,
    routes: Mutex<Vec<Route>>,
    /// While set, connections are refused (the listener is closed).
    down: std::sync::atomic::AtomicBool,
    up_down: Notify,
    seen: Mutex<Vec<Seen>>,
    models: Mutex<Option<Value>>,
    disconnects: AtomicUsize,
    disconnected: Notify,
}

/// The running server.
#[derive(Clone)]
pub struct LlmServer {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl LlmServer {
    /// Runs on the current tokio runtime.
    pub async fn spawn() -> LlmServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = LlmServer {
            addr: listener.local_addr().unwrap(),
            state: Arc::new(State::default()),
        };
        let state = Arc::clone(&server.state);
        let addr = server.addr;
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                match &listener {
                    Some(l) => tokio::select! {
                        accepted = l.accept() => {
                            if let Ok((sock, _)) = accepted {
                                let state = Arc::clone(&state);
                                tokio::spawn(async move { serve(sock, state).await });
                            }
                        }
                        () = state.up_down.notified() => {
                            if state.down.load(Ordering::SeqCst) {
                                listener = None; // closed: connections are refused
                            }
                        }
                    },
                    None => {
                        state.up_down.notified().await;
                        if !state.down.load(Ordering::SeqCst) {
                            for _ in 0..100 {
                                if let Ok(l) = TcpListener::bind(addr).await {
                                    listener = Some(l);
                                    break;
                                }
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                }
            }
        });
        server
    }

    /// Runs on a thread of its own (for tests that run `loom` as a process).
    pub fn start() -> LlmServer {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                tx.send(LlmServer::spawn().await).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Scripts a reply for the next request whose body contains every needle (e.g. a bead id
    /// and "You are the reviewer"), so concurrent sessions each get their own script. Routes
    /// are tried in the order they were first added; unmatched requests take `push`ed replies.
    pub fn route(&self, needles: &[&str], reply: Reply) -> &Self {
        let mut routes = self.state.routes.lock().unwrap();
        match routes.iter_mut().find(|r| {
            r.needles
                .iter()
                .map(String::as_str)
                .eq(needles.iter().copied())
        }) {
            Some(r) => r.replies.push_back(reply),
            None => routes.push(Route {
                needles: needles.iter().map(|n| (*n).to_owned()).collect(),
                replies: VecDeque::from([reply]),
                sticky: false,
            }),
        }
        self
    }

    /// Answers every request whose body contains every needle with `reply`, however often
    /// it comes (an agent re-dispatched after a crash asks again). Tried in the order routes
    /// were added, like [`LlmServer::route`].
    pub fn always(&self, needles: &[&str], reply: Reply) -> &Self {
        self.state.routes.lock().unwrap().push(Route {
            needles: needles.iter().map(|n| (*n).to_owned()).collect(),
            replies: VecDeque::from([reply]),
            sticky: true,
        });
        self
    }

    /// Replies still scripted (routes and the queue; `always` routes do not count).
    pub fn unused(&self) -> usize {
        self.state.script.lock().unwrap().len()
            + self
                .state
                .routes
                .lock()
                .unwrap()
                .iter()
                .filter(|r| !r.sticky)
                .map(|r| r.replies.len())
                .sum::<usize>()
    }

    /// Refuses connections (`true`) until set back (`false`), on the same port.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
        self.state.up_down.notify_one();
    }

    pub fn push(&self, reply: Reply) -> &Self {
        self.state.script.lock().unwrap().push_back(reply);
        self
    }

    /// What `GET /v1/models` answers.
    pub fn set_models(&self, models: Value) {
        *self.state.models.lock().unwrap() = Some(models);
    }

    /// Chat requests received so far.
    pub fn chats(&self) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.ends_with("/chat/completions"))
            .cloned()
            .collect()
    }

    pub fn all_requests(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Connections the client closed while the server was still sending.
    pub fn disconnects(&self) -> usize {
        self.state.disconnects.load(Ordering::SeqCst)
    }

    /// Waits for the next client disconnect mid-answer.
    pub async fn disconnected(&self) {
        self.state.disconnected.notified().await;
    }
}

async fn read_request(sock: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn write_plain(
    sock: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    ctype: &str,
    body: &str,
) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body.as_bytes()).await;
    let _ = sock.shutdown().await;
}

async fn send_chunk(sock: &mut TcpStream, data: &[u8]) -> bool {
    let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\r\n");
    sock.write_all(&frame).await.is_ok() && sock.flush().await.is_ok()
}

async fn serve(mut sock: TcpStream, state: Arc<State>) {
    let Some(req) = read_request(&mut sock).await else {
        return;
    };
    state.seen.lock().unwrap().push(req.clone());
    if req.method == "GET" && req.path.ends_with("/models") {
        let models = state.models.lock().unwrap().clone().unwrap_or_else(|| {
            json!({"object": "list", "data": [{"id": "test-model", "owned_by": "test", "context_length": 8192}]})
        });
        write_plain(&mut sock, 200, &[], "application/json", &models.to_string()).await;
        return;
    }
    let routed = {
        let mut routes = state.routes.lock().unwrap();
        routes
            .iter_mut()
            .filter(|r| !r.replies.is_empty())
            .find(|r| r.needles.iter().all(|n| req.body.contains(n.as_str())))
            .and_then(|r| {
                if r.sticky {
                    r.replies.front().cloned()
                } else {
                    r.replies.pop_front()
                }
            })
    };
    let reply = routed.or_else(|| state.script.lock().unwrap().pop_front());
    // A hostile endpoint: `{{KEY}}` in a scripted reply becomes the key the client sent.
    let key = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let reply = reply.map(|r| match r {
        Reply::Stream {
            events,
            faults,
            model,
        } => Reply::Stream {
            events: events.iter().map(|e| echo(e, &key)).collect(),
            faults,
            model: model.replace(ECHO_KEY, &key),
        },
        other => other,
    });
    let Some(reply) = reply else {
        write_plain(
            &mut sock,
            500,
            &[],
            "text/plain",
            "the test server has no scripted reply left",
        )
        .await;
        return;
    };
    match reply {
        Reply::Plain {
            status,
            headers,
            body,
            content_type,
        } => write_plain(&mut sock, status, &headers, &content_type, &body).await,
        Reply::Stream {
            events,
            faults,
            model,
        } => {
            for f in &faults {
                if let Fault::SlowFirstByte(d) = f {
                    tokio::time::sleep(*d).await;
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nx-negotiated-model: {model}\r\nconnection: close\r\n\r\n"
            );
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for (i, ev) in events.iter().enumerate() {
                for f in &faults {
                    match f {
                        Fault::StallAfter(n) if *n == i => {
                            // Silent, but watch for the client giving up.
                            let mut b = [0u8; 1];
                            let _ = sock.read(&mut b).await;
                            return;
                        }
                        Fault::CutAfter(n) if *n == i => return, // drop mid-body
                        Fault::CutMidLine(n) if *n == i => {
                            let line = format!("data: {ev}");
                            let half = line.len() / 2;
                            let _ = send_chunk(&mut sock, &line.as_bytes()[..half]).await;
                            let _ = sock.write_all(b"0\r\n\r\n").await;
                            let _ = sock.shutdown().await;
                            return;
                        }
                        Fault::GarbageAfter(n, line) if *n == i => {
                            let _ = send_chunk(&mut sock, format!("{line}\n\n").as_bytes()).await;
                        }
                        Fault::EventDelay(d) => tokio::time::sleep(*d).await,
                        _ => {}
                    }
                }
                if !send_chunk(&mut sock, format!("data: {ev}\n\n").as_bytes()).await {
                    state.disconnects.fetch_add(1, Ordering::SeqCst);
                    state.disconnected.notify_one();
                    return;
                }
            }
            let _ = sock.write_all(b"0\r\n\r\n").await;
            let _ = sock.shutdown().await;
        }
    }
}
