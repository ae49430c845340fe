//! Stream-handling cost of the LLM client: SSE parsing, chunk assembly and the retry text gate
//! over realistic streams fed in network-sized pieces. Reported as MB/s of stream and µs per
//! chunk (criterion's time divided by the chunk count printed below).
//! Run: `cargo bench --bench llm`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use loom::llm::assemble::{Assembler, TextGate};
use loom::llm::sse::{SseEvent, SseParser};
use serde_json::json;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A text reply of `n` chunks of a few characters each, as an OpenAI-style SSE body.
fn text_stream(n: usize) -> (Vec<u8>, usize) {
    let mut s = String::new();
    for i in 0..n {
        let chunk = json!({"id": "chatcmpl-9x8y7z", "object": "chat.completion.chunk", "created": 1_700_000_000,
                           "model": "qwen2.5-coder-32b", "choices": [{"index": 0, "delta": {"content": format!("tok{} ", i % 97)}, "finish_reason": null}]});
        s.push_str(&format!("data: {chunk}\n\n"));
    }
    s.push_str("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":900,\"completion_tokens\":2000}}\n\ndata: [DONE]\n\n");
    (s.into_bytes(), n + 2)
}

/// Three parallel tool calls whose arguments arrive one byte per chunk.
fn tool_stream() -> (Vec<u8>, usize) {
    let args = [
        r#"{"path":"src/checkout/total.rs","start_line":1,"end_line":200}"#,
        r#"{"pattern":"round(_to)?_minor","path":"src"}"#,
        r#"{"command":"cargo test -p checkout -- --nocapture","timeout_s":300}"#,
    ];
    let mut s = String::new();
    let mut chunks = 0;
    for (i, a) in args.iter().enumerate() {
        for b in a.bytes() {
            let chunk = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, "function": {"arguments": (b as char).to_string()}}]}}]});
            s.push_str(&format!("data: {chunk}\n\n"));
            chunks += 1;
        }
    }
    s.push_str("data: [DONE]\n\n");
    (s.into_bytes(), chunks + 1)
}

/// Parse + assemble + gate, the bytes arriving in `piece`-sized reads.
fn consume(bytes: &[u8], piece: usize) -> usize {
    let mut parser = SseParser::new();
    let mut asm = Assembler::new();
    let mut gate = TextGate::default();
    gate.begin_attempt();
    let (mut raw, mut events, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for part in bytes.chunks(piece) {
        parser.push(part, &mut raw).unwrap();
        for ev in raw.drain(..) {
            if let SseEvent::Data(d) = ev {
                asm.push(&d, &mut events).unwrap();
                for e in events.drain(..) {
                    gate.filter(e, &mut out);
                }
                out.clear();
            }
        }
    }
    parser.finish(&mut raw).unwrap();
    gate.end_attempt(&mut out);
    asm.finish(&mut out).tool_calls.len() + out.len()
}

fn bench(c: &mut Criterion) {
    let (text, text_chunks) = text_stream(2000);
    let (tools, tool_chunks) = tool_stream();
    eprintln!(
        "text stream: {} bytes, {text_chunks} chunks; tool stream: {} bytes, {tool_chunks} chunks",
        text.len(),
        tools.len()
    );
    let mut g = c.benchmark_group("sse_assemble");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("text_2000_chunks", |b| b.iter(|| consume(&text, 1460)));
    g.throughput(Throughput::Bytes(tools.len() as u64));
    g.bench_function("three_tool_calls_1_byte_fragments", |b| {
        b.iter(|| consume(&tools, 1460))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
