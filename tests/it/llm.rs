//! The LLM client against a live test server: streaming, tool calls, every fault case, health,
//! usage, cancellation and record/replay. Timing cases run on tokio's paused clock, so waits
//! are exact and instant.

use std::time::Duration;

use loom::llm::record::{Recorder, Replayer};
use loom::llm::{
    ChatRequest, Client, Health, LlmError, Message, Price, ProviderConfig, ProviderFile,
    ReplayMatch, StreamEvent, Tape, Tool,
};
use serde_json::json;
use tokio::time::Instant;

use crate::llm_server::{Fault, LlmServer, Reply, tool_call_events};

const KEY: &str = "tokenhub_test_4f9a2c_secret";
const IDLE: f64 = 5.0;

fn config(url: &str, tweak: impl FnOnce(&mut ProviderFile)) -> ProviderConfig {
    let mut file = ProviderFile {
        url: Some(url.to_owned()),
        idle_timeout_secs: Some(IDLE),
        max_attempts: Some(4),
        ..ProviderFile::default()
    };
    tweak(&mut file);
    ProviderConfig::resolve(&file, |k| (k == "TOKENHUB_API_KEY").then(|| KEY.to_owned()))
}

fn client(server: &LlmServer) -> Client {
    Client::new(config(&server.url(), |_| {}), Tape::Live).unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("Say hello"),
    ])
}

/// Runs a chat, collecting its events.
async fn chat(
    client: &Client,
    req: &ChatRequest,
) -> (Result<loom::llm::Completion, LlmError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let result = client.chat(req, &mut |e| events.push(e)).await;
    (result, events)
}

fn delivered_text(events: &[StreamEvent]) -> String {
    let mut text = String::new();
    for e in events {
        match e {
            StreamEvent::TextDelta { text: t } => text.push_str(t),
            StreamEvent::Restart { .. } => text.clear(),
            _ => {}
        }
    }
    text
}

fn count<F: Fn(&StreamEvent) -> bool>(events: &[StreamEvent], f: F) -> usize {
    events.iter().filter(|e| f(e)).count()
}

#[tokio::test]
async fn streams_text_usage_and_finish() {
    let server = LlmServer::spawn().await;
    server.push(Reply::text(&["Hel", "lo", " there"]).negotiated("backend-7b"));
    let c = client(&server);
    let (done, events) = chat(&c, &hello()).await;
    let done = done.unwrap();
    assert_eq!(done.text, "Hello there");
    assert_eq!(done.model, "backend-7b", "X-Negotiated-Model wins");
    assert_eq!(done.finish_reason.as_deref(), Some("stop"));
    assert_eq!(done.usage.prompt_tokens, 11);
    assert_eq!(done.attempts, 1);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            StreamEvent::TextDelta { .. } => "text",
            StreamEvent::Usage { .. } => "usage",
            StreamEvent::Finish { .. } => "finish",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["text", "text", "text", "usage", "finish"]);

    let req = &server.chats()[0];
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(req.header("accept"), Some("text/event-stream"));
    let body = req.json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["model"], "test-model", "first listed model");
    assert_eq!(body["messages"][1]["content"], "Say hello");
}

#[tokio::test]
async fn three_parallel_tool_calls_from_one_byte_fragments() {
    let server = LlmServer::spawn().await;
    let calls = [
        (
            "call_a",
            "read_file",
            r#"{"path":"src/main.rs","start_line":1,"end_line":40}"#,
        ),
        (
            "call_b",
            "search_text",
            r#"{"pattern":"fn \\w+\\(","path":"src"}"#,
        ),
        (
            "call_c",
            "run_command",
            r#"{"command":"cargo test -- --nocapture","timeout_s":120}"#,
        ),
    ];
    server.push(Reply::stream(tool_call_events(&calls, 1)));
    let c = client(&server);
    let mut req = hello();
    req.tools = vec![Tool {
        name: "read_file".into(),
        description: "Read a file".into(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    }];
    let (done, events) = chat(&c, &req).await;
    let done = done.unwrap();
    assert_eq!(done.tool_calls.len(), 3);
    for (call, (id, name, args)) in done.tool_calls.iter().zip(calls) {
        assert_eq!(call.id, id);
        assert_eq!(call.name, name);
        assert_eq!(call.raw_arguments, args);
        assert_eq!(
            call.arguments,
            serde_json::from_str::<serde_json::Value>(args).unwrap()
        );
        assert!(call.arguments_error.is_none());
    }
    assert_eq!(
        count(&events, |e| matches!(e, StreamEvent::ToolCall { .. })),
        3
    );
    assert_eq!(done.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        server.chats()[0].json()["tools"][0]["function"]["name"],
        "read_file"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_honours_retry_after_seconds() {
    let server = LlmServer::spawn().await;
    server.push(Reply::status(429, "slow down").header("Retry-After", "7"));
    server.push(Reply::text(&["ok"]));
    let c = client(&server);
    let start = Instant::now();
    let (done, events) = chat(&c, &hello()).await;
    let waited = start.elapsed();
    assert_eq!(done.unwrap().text, "ok");
    assert_eq!(server.chats().len(), 2);
    assert!(
        waited >= Duration::from_secs(7) && waited < Duration::from_millis(7600),
        "{waited:?}"
    );
    let retry = events.iter().find_map(|e| match e {
        StreamEvent::Retrying {
            attempt, delay_ms, ..
        } => Some((*attempt, *delay_ms)),
        _ => None,
    });
    assert_eq!(retry, Some((1, 7000)));
}

#[tokio::test(start_paused = true)]
async fn rate_limit_honours_retry_after_http_date() {
    let server = LlmServer::spawn().await;
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5);
    let date = at.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
    server.push(Reply::status(429, "").header("Retry-After", &date));
    server.push(Reply::text(&["ok"]));
    let start = Instant::now();
    let (done, _) = chat(&client(&server), &hello()).await;
    let waited = start.elapsed();
    assert_eq!(done.unwrap().text, "ok");
    // HTTP dates have one-second resolution.
    assert!(
        waited >= Duration::from_secs(3) && waited <= Duration::from_secs(6),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_back_off_exponentially_then_succeed() {
    let server = LlmServer::spawn().await;
    for status in [502, 503, 500] {
        server.push(Reply::status(status, "upstream failed"));
    }
    server.push(Reply::text(&["finally"]));
    let c = client(&server);
    let start = Instant::now();
    let (done, events) = chat(&c, &hello()).await;
    let done = done.unwrap();
    assert_eq!(done.text, "finally");
    assert_eq!(done.attempts, 4);
    assert_eq!(server.chats().len(), 4);
    let delays: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Retrying { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .collect();
    // Equal jitter: each step is half fixed, half random: [250, 500), [500, 1000), [1000, 2000).
    assert_eq!(delays.len(), 3);
    for (d, (lo, hi)) in delays.iter().zip([(250, 500), (500, 1000), (1000, 2000)]) {
        assert!((lo..hi).contains(d), "{delays:?}");
    }
    let waited = start.elapsed().as_millis() as u64;
    assert!(waited >= delays.iter().sum::<u64>(), "{waited} {delays:?}");
    assert_eq!(c.health().health, Health::Healthy);
}

#[tokio::test(start_paused = true)]
async fn server_errors_give_up_after_max_attempts() {
    let server = LlmServer::spawn().await;
    for _ in 0..4 {
        server.push(Reply::status(502, "Bad Gateway"));
    }
    let c = client(&server);
    let mut health = c.subscribe_health();
    let (err, _) = chat(&c, &hello()).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), "server");
    let msg = err.to_string();
    assert!(
        msg.contains("HTTP 502") && msg.contains("gave up after 4 attempts"),
        "{msg}"
    );
    assert_eq!(server.chats().len(), 4);
    assert!(health.has_changed().unwrap());
    assert_eq!(health.borrow_and_update().health, Health::Down);
}

#[tokio::test(start_paused = true)]
async fn unreachable_endpoint_is_a_transport_error_after_retries() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let c = Client::new(config(&url, |f| f.model = Some("m".into())), Tape::Live).unwrap();
    let (err, events) = chat(&c, &hello()).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), "transport");
    assert!(err.to_string().contains("could not be reached"), "{err}");
    assert_eq!(
        count(&events, |e| matches!(e, StreamEvent::Retrying { .. })),
        3
    );
    assert_eq!(c.health().health, Health::Down);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_stream_is_abandoned_and_retried_text_delivered_once() {
    let server = LlmServer::spawn().await;
    server.push(Reply::text(&["Hello", " wor", "ld"]).with(Fault::StallAfter(2)));
    server.push(Reply::text(&["Hello", " wor", "ld"]));
    let start = Instant::now();
    let (done, events) = chat(&client(&server), &hello()).await;
    assert_eq!(done.unwrap().text, "Hello world");
    assert_eq!(server.chats().len(), 2);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs_f64(IDLE) && waited < Duration::from_secs_f64(IDLE + 2.5),
        "{waited:?}"
    );
    assert_eq!(delivered_text(&events), "Hello world");
    let raw: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(raw, "Hello world", "each piece of text exactly once");
    assert_eq!(
        count(&events, |e| matches!(e, StreamEvent::Restart { .. })),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn a_cut_stream_is_retried_without_repeating_text() {
    let server = LlmServer::spawn().await;
    server.push(Reply::text(&["One", " two", " three"]).with(Fault::CutAfter(2)));
    server.push(Reply::text(&["One", " two", " three"]));
    let (done, events) = chat(&client(&server), &hello()).await;
    assert_eq!(done.unwrap().text, "One two three");
    assert_eq!(server.chats().len(), 2);
    let raw: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(raw.concat(), "One two three");
    assert_eq!(
        count(&events, |e| matches!(e, StreamEvent::Restart { .. })),
        0
    );
    assert_eq!(
        count(&events, |e| matches!(e, StreamEvent::Retrying { .. })),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_cut_stream_whose_retry_differs_tells_the_consumer_to_restart() {
    let server = LlmServer::spawn().await;
    server.push(Reply::text(&["First", " draft"]).with(Fault::CutAfter(2)));
    server.push(Reply::text(&["Second", " take"]));
    let (done, events) = chat(&client(&server), &hello()).await;
    assert_eq!(done.unwrap().text, "Second take");
    assert_eq!(
        count(&events, |e| matches!(e, StreamEvent::Restart { .. })),
        1
    );
    assert_eq!(delivered_text(&events), "Second take");
}

#[tokio::test]
async fn auth_errors_stop_at_once_and_name_the_variable() {
    let server = LlmServer::spawn().await;
    server.push(Reply::status(401, "invalid api key"));
    let (err, _) = chat(&client(&server), &hello()).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert_eq!(server.chats().len(), 1);
    assert!(err.to_string().contains("HTTP 401") && err.to_string().contains("invalid api key"));
    assert!(
        err.hint().unwrap().contains("TOKENHUB_API_KEY"),
        "{:?}",
        err.hint()
    );
    assert!(!format!("{err} {:?}", err.hint()).contains(KEY));

    // No key at all, and a custom variable name: the hint says which one to set.
    server.push(Reply::status(403, "forbidden"));
    let cfg = ProviderConfig::resolve(
        &ProviderFile {
            url: Some(server.url()),
            api_key_env: Some("MY_GATEWAY_KEY".into()),
            ..ProviderFile::default()
        },
        |_| None,
    );
    let (err, _) = chat(&Client::new(cfg, Tape::Live).unwrap(), &hello()).await;
    let hint = err.unwrap_err().hint().unwrap();
    assert!(hint.contains("MY_GATEWAY_KEY is not set"), "{hint}");
}

#[tokio::test]
async fn context_overflow_is_its_own_kind() {
    let server = LlmServer::spawn().await;
    server.push(Reply::status(
        400,
        r#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#,
    ));
    let (err, _) = chat(&client(&server), &hello()).await;
    assert_eq!(err.unwrap_err().kind(), "context_overflow");
    assert_eq!(server.chats().len(), 1);

    // TokenHub answers a too-large request with a bare 502: known from the context length.
    let server = LlmServer::spawn().await;
    server.set_models(json!({"object": "list", "data": [{"id": "tiny", "context_length": 100}]}));
    server.push(Reply::status(502, "Bad Gateway"));
    let c = client(&server);
    c.models().await.unwrap();
    let big = ChatRequest::new(vec![Message::user("word ".repeat(200))]);
    let (err, _) = chat(&c, &big).await;
    assert_eq!(err.unwrap_err().kind(), "context_overflow");
    assert_eq!(server.chats().len(), 1, "not retried");
}

#[tokio::test]
async fn garbage_and_invalid_json_are_clear_errors() {
    let server = LlmServer::spawn().await;
    server.push(Reply::text(&["a", "b"]).with(Fault::GarbageAfter(1, "HTTP/1.1 GARBAGE".into())));
    let (err, _) = chat(&client(&server), &hello()).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), "protocol");
    assert!(
        err.to_string().contains("malformed stream line") && err.to_string().contains("GARBAGE"),
        "{err}"
    );
    assert_eq!(server.chats().len(), 1);

    let server = LlmServer::spawn().await;
    server.push(Reply::stream(vec![
        r#"{"choices":[{"delta":{"content":"x"}"#.into(),
        "[DONE]".into(),
    ]));
    let (err, _) = chat(&client(&server), &hello()).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), "protocol");
    assert!(err.to_string().contains("invalid JSON"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn slow_first_byte_is_waited_for_up_to_the_idle_timeout() {
    let server = LlmServer::spawn().await;
    server.push(Reply::text(&["late"]).with(Fault::SlowFirstByte(Duration::from_secs(3))));
    let start = Instant::now();
    let (done, _) = chat(&client(&server), &hello()).await;
    assert_eq!(done.unwrap().text, "late");
    assert!(start.elapsed() >= Duration::from_secs(3));
    assert_eq!(server.chats().len(), 1);

    server.push(Reply::text(&["too late"]).with(Fault::SlowFirstByte(Duration::from_secs(60))));
    server.push(Reply::text(&["on time"]));
    let (done, _) = chat(&client(&server), &hello()).await;
    assert_eq!(done.unwrap().text, "on time");
    assert_eq!(server.chats().len(), 3);
}

#[tokio::test]
async fn dropping_the_request_closes_the_stream_promptly() {
    let server = LlmServer::spawn().await;
    let pieces: Vec<String> = (0..200).map(|i| format!("w{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    server.push(Reply::text(&refs).with(Fault::EventDelay(Duration::from_millis(20))));
    let c = client(&server);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let mut first_tx = Some(first_tx);
    let req = hello();
    let task = tokio::spawn(async move {
        let mut on = |e: StreamEvent| {
            if matches!(e, StreamEvent::TextDelta { .. })
                && let Some(tx) = first_tx.take()
            {
                let _ = tx.send(());
            }
        };
        c.chat(&req, &mut on).await
    });
    tokio::time::timeout(Duration::from_secs(10), first_rx)
        .await
        .unwrap()
        .unwrap();
    task.abort(); // the consumer goes away mid-stream
    let noticed = tokio::time::timeout(Duration::from_secs(5), server.disconnected()).await;
    assert!(noticed.is_ok(), "the server kept streaming to nobody");
    assert!(server.disconnects() >= 1);
}

#[tokio::test]
async fn non_streaming_endpoints_work() {
    let server = LlmServer::spawn().await;
    server.push(Reply::json_completion("plain answer"));
    let c = Client::new(
        config(&server.url(), |f| f.stream = Some(false)),
        Tape::Live,
    )
    .unwrap();
    let (done, events) = chat(&c, &hello()).await;
    let done = done.unwrap();
    assert_eq!(done.text, "plain answer");
    assert_eq!(done.usage.total_tokens, 7);
    assert_eq!(server.chats()[0].json()["stream"], false);
    assert!(server.chats()[0].json().get("stream_options").is_none());
    assert_eq!(delivered_text(&events), "plain answer");
    // A streaming request answered with plain JSON is understood too.
    server.push(Reply::json_completion("json anyway"));
    assert_eq!(
        chat(&client(&server), &hello()).await.0.unwrap().text,
        "json anyway"
    );
}

#[tokio::test]
async fn models_health_and_context_length() {
    let server = LlmServer::spawn().await;
    server.set_models(json!({"object": "list", "data": [
        {"id": "qwen-coder", "owned_by": "tokenhub", "context_length": 32768},
        {"id": "small", "owned_by": "tokenhub", "max_model_len": 4096}]}));
    let c = client(&server);
    assert_eq!(c.health().health, Health::Unknown);
    let models = c.models().await.unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(c.known_context_length("qwen-coder"), Some(32768));
    assert_eq!(c.known_context_length("small"), Some(4096));
    assert_eq!(c.resolve_model(None).await.unwrap(), "qwen-coder");
    // A model list is not health: only a chat request that succeeds makes it healthy.
    let probed = c.probe().await;
    assert_eq!((probed.health, probed.reachable), (Health::Unknown, true));
    let models_req = server
        .all_requests()
        .into_iter()
        .find(|r| r.path == "/v1/models")
        .unwrap();
    assert_eq!(models_req.method, "GET");

    // A base URL that already ends in /v1 is not doubled.
    let c2 = Client::new(config(&format!("{}/v1/", server.url()), |_| {}), Tape::Live).unwrap();
    c2.models().await.unwrap();
    assert!(
        server
            .all_requests()
            .iter()
            .all(|r| !r.path.contains("/v1/v1"))
    );

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = Client::new(
        config(&format!("http://{}", free.local_addr().unwrap()), |_| {}),
        Tape::Live,
    )
    .unwrap();
    drop(free);
    assert_ne!(down.probe().await.health, Health::Healthy);
}

#[tokio::test]
async fn usage_is_priced_from_the_table() {
    let server = LlmServer::spawn().await;
    server.push(Reply::text(&["a", "b"]));
    let c = Client::new(
        config(&server.url(), |f| {
            f.prices.insert(
                "test-model".into(),
                Price {
                    input: 1.0,
                    output: 2.0,
                },
            );
        }),
        Tape::Live,
    )
    .unwrap();
    let (done, events) = chat(&c, &hello()).await;
    let done = done.unwrap();
    let expected = 11.0 / 1e6 * 1.0 + 2.0 / 1e6 * 2.0;
    assert!((done.usage.cost_usd.unwrap() - expected).abs() < 1e-12);
    let usage_event = events.iter().find_map(|e| match e {
        StreamEvent::Usage { usage } => Some(*usage),
        _ => None,
    });
    assert_eq!(usage_event, Some(done.usage));
}

#[tokio::test]
async fn record_then_replay_gives_identical_events() {
    let server = LlmServer::spawn().await;
    server.push(Reply::stream(tool_call_events(
        &[("c1", "read_file", r#"{"path":"a.rs"}"#)],
        3,
    )));
    server.push(Reply::text(&["The file ", "defines main."]));
    let dir = tempfile::tempdir().unwrap();
    let tape = dir.path().join("session.jsonl");

    async fn conversation(c: &Client) -> Vec<StreamEvent> {
        let mut all = Vec::new();
        let mut req = ChatRequest::new(vec![Message::user(format!("Summarise a.rs (key {KEY})"))]);
        let (first, ev) = chat(c, &req).await;
        all.extend(ev);
        let first = first.unwrap();
        req.messages
            .push(Message::assistant_calls(None, &first.tool_calls));
        req.messages.push(Message::tool_result(
            &first.tool_calls[0].id,
            "fn main() {}",
        ));
        let (_, ev) = chat(c, &req).await;
        all.extend(ev);
        all
    }

    let recorder = Recorder::create(&tape).unwrap();
    let live =
        conversation(&Client::new(config(&server.url(), |_| {}), Tape::Record(recorder)).unwrap())
            .await;
    let text = std::fs::read_to_string(&tape).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(!text.contains(KEY), "the key must not reach the recording");

    // Offline: no URL at all.
    let offline = ProviderConfig::resolve(&ProviderFile::default(), |k| {
        (k == "TOKENHUB_API_KEY").then(|| KEY.to_owned())
    });
    let replay = Replayer::open(&tape, ReplayMatch::Exact).unwrap();
    let replayed = conversation(&Client::new(offline.clone(), Tape::Replay(replay)).unwrap()).await;
    assert_eq!(replayed, live);

    // A different question fails loudly.
    let replay = Replayer::open(&tape, ReplayMatch::Exact).unwrap();
    let c = Client::new(offline, Tape::Replay(replay)).unwrap();
    let (err, _) = chat(&c, &ChatRequest::new(vec![Message::user("something else")])).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), "replay_mismatch");
    assert!(err.to_string().contains("messages[0].content"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_paced_replay_streams_one_chunk_per_interval() {
    let offline = ProviderConfig::resolve(&ProviderFile::default(), |_| None);
    let tape = || {
        Replayer::parse(
            std::path::Path::new("the demo recording"),
            loom::demo::TAPE,
            ReplayMatch::Off,
        )
        .unwrap()
    };
    let mut req = ChatRequest::new(vec![Message::user("anything")]);
    req.session = Some("demo-1/coder".into());
    let fast = Client::new(offline.clone(), Tape::Replay(tape())).unwrap();
    let t0 = Instant::now();
    let (done, events) = chat(&fast, &req).await;
    assert!(done.is_ok() && !events.is_empty(), "{done:?}");
    assert_eq!(t0.elapsed(), Duration::ZERO, "unpaced: at once");
    let paced = Client::new(
        offline,
        Tape::Replay(tape().paced(Duration::from_millis(100))),
    )
    .unwrap();
    let t0 = Instant::now();
    let (again, paced_events) = chat(&paced, &req).await;
    assert_eq!(again.unwrap().text, done.unwrap().text, "the same reply");
    assert_eq!(paced_events, events);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(100) && waited.as_millis().is_multiple_of(100),
        "one interval per chunk: {waited:?}"
    );
}
