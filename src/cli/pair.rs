//! `loom pair <bead> -m TEXT`: one pair-programming exchange about a bead, streamed to stdout
//! and appended to the bead's conversation log (committed). Tool use comes with agents.

use std::io::Write;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use crate::bead::{Bead, Timestamp};
use crate::error::{Error, Result};
use crate::llm::{ChatRequest, Message, StreamEvent};
use crate::store::ConversationEntry;

use super::output::{self, stdout_err};
use super::{Ctx, llm, read};

/// How the model is asked to behave in pair mode.
pub const PAIR_PROMPT: &str = "\
You are Loom's pair programmer. A developer is working on one bead (a work item) in their git \
repository and talks it through with you. Answer what they ask, concretely and briefly. \
Propose the smallest change that works; show code in fenced blocks headed by the file path. \
Point out risks (edge cases, tests that would catch them) when they matter, not as a list of \
everything. When you are unsure, say what would settle it: which file to read or which command \
to run. You cannot read files or run commands in this mode; do not pretend you did.";

#[derive(Debug, Args)]
pub struct PairArgs {
    /// The bead to talk about.
    id: String,
    /// Your message.
    #[arg(short, long)]
    message: String,
    /// Use this model instead of the configured one.
    #[arg(long)]
    model: Option<String>,
}

fn bead_context(b: &Bead) -> String {
    let mut s = format!(
        "The bead under discussion:\nid: {}\ntitle: {}\ntype: {}  priority: P{}  status: {}\n",
        b.id, b.title, b.issue_type, b.priority, b.status
    );
    for (name, text) in [
        ("Description", &b.description),
        ("Acceptance criteria", &b.acceptance_criteria),
        ("Design", &b.design),
    ] {
        if let Some(t) = text.as_deref().filter(|t| !t.trim().is_empty()) {
            s.push_str(&format!("\n{name}:\n{}\n", t.trim_end()));
        }
    }
    s
}

pub fn pair(ctx: &Ctx, a: PairArgs) -> Result<()> {
    if a.message.trim().is_empty() {
        return Err(Error::Usage(
            "the message is empty: loom pair <id> -m \"…\"".into(),
        ));
    }
    let ws = ctx.workspace()?;
    ws.require_repo()?;
    let snap = read::load(ctx, &ws)?;
    let id = read::resolve(&snap, &a.id)?;
    let bead = snap
        .beads
        .iter()
        .find(|b| b.id == id)
        .map(|b| snap.full(b).into_owned())
        .ok_or_else(|| Error::NotFound(id.clone()))?;
    let provider = llm::provider(&ws);
    let client = llm::client(ctx, provider.clone())?;
    let (history, problems) = ws.store.read_conversation(&id)?;
    for p in &problems {
        ctx.warn(&p.to_string());
    }

    let mut messages = vec![Message::system(format!(
        "{PAIR_PROMPT}\n\n{}",
        bead_context(&bead)
    ))];
    for e in &history {
        match e.role.as_str() {
            "user" => messages.push(Message::user(&e.content)),
            "assistant" => messages.push(Message::assistant(&e.content)),
            _ => {}
        }
    }
    messages.push(Message::user(&a.message));
    let request = ChatRequest {
        model: a.model.clone(),
        messages,
        ..ChatRequest::default()
    };
    let asked = Timestamp::now();
    let started = Instant::now();
    let json_out = ctx.global.json;
    let quiet = ctx.global.quiet;
    let result = llm::block_on(async {
        let mut stdout = std::io::stdout();
        let mut on_event = |e: StreamEvent| match e {
            StreamEvent::TextDelta { text } if !json_out => {
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            StreamEvent::Restart { .. } if !json_out => {
                eprintln!(
                    "\n(the connection dropped and the model answered differently; the reply starts over)"
                );
            }
            StreamEvent::Retrying {
                delay_ms, reason, ..
            } if !quiet => {
                eprintln!("(retrying in {:.1}s: {reason})", delay_ms as f64 / 1000.0);
            }
            _ => {}
        };
        client.chat(&request, &mut on_event).await
    })?;
    llm::log_call(&ws, &provider, "pair", Some(&id), started, &result);
    let done = result?;
    if !json_out && !done.text.ends_with('\n') {
        println!();
    }
    let entries = [
        ConversationEntry {
            role: "user".into(),
            content: provider.redact(&a.message),
            time: asked.as_str().to_owned(),
            author: Some(ws.actor.clone()),
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            cost_usd: None,
        },
        ConversationEntry {
            role: "assistant".into(),
            content: provider.redact(&done.text),
            time: Timestamp::now().as_str().to_owned(),
            author: Some("pair".into()),
            model: Some(done.model.clone()),
            prompt_tokens: Some(done.usage.prompt_tokens),
            completion_tokens: Some(done.usage.completion_tokens),
            cost_usd: done.usage.cost_usd,
        },
    ];
    let topic = output::truncate(a.message.trim(), 50);
    let commit = ws.append_conversation(&id, &entries, &format!("loom: {id} pair: {topic}"))?;
    ctx.commit_warnings(commit.as_ref());
    if json_out {
        return output::write_json(
            &mut ctx.out(),
            &json!({"bead": id, "model": done.model, "reply": done.text, "usage": done.usage,
                    "finish_reason": done.finish_reason, "attempts": done.attempts}),
        );
    }
    if !quiet {
        let cost = done
            .usage
            .cost_usd
            .map(|c| format!(" · ${c:.4}"))
            .unwrap_or_default();
        eprintln!(
            "— {} · {} tokens in, {} out{cost}",
            done.model, done.usage.prompt_tokens, done.usage.completion_tokens
        );
    }
    std::io::stdout().flush().map_err(stdout_err)
}
