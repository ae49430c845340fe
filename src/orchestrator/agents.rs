//! Running one persona on a bead inside the pipeline: the sandbox in the bead's worktree, the
//! action loop (or the persona's external runner) within what is left of the bead's budget,
//! its events on the bus, interruption when the run stops, and the commit of its work.

use std::sync::Arc;
use std::time::Duration;

use crate::agent::exec::ToolContext;
use crate::agent::persona::Persona;
use crate::agent::run::{self, AgentEvent, Limits, LoopEnd, LoopMode, Terminal};
use crate::agent::{lessons, runner, session};
use crate::bead::{Bead, Timestamp};
use crate::error::Result;
use crate::event::{Event, EventKind, Notice};
use crate::git::worktree::Worktree;
use crate::llm::Message;

use super::context::Context;

/// One agent session to run.
pub struct Session<'a> {
    pub bead: &'a Bead,
    pub persona: &'a Persona,
    pub model: &'a str,
    pub wt: &'a Worktree,
    /// What `git_diff` compares with (the fork point from the target).
    pub diff_base: Option<String>,
    /// The conversation so far (system prompt first).
    pub messages: Vec<Message>,
    /// Left of the bead's token and time budgets.
    pub tokens_left: u64,
    pub time_left: Duration,
    pub iterations_left: u32,
}

/// How an agent session ended; `None` from [`run`] means the run stopped it.
pub struct Ended {
    pub end: LoopEnd,
}

/// Maps an agent's events onto the bus (a runner's output redacted; usage counted against the
/// run's budget at once and reported once, from the session's end).
fn forward(cx: &Arc<Context>, bead: &str, agent: &str) -> impl FnMut(AgentEvent) + Send + use<> {
    let cx = Arc::clone(cx);
    let (bead, agent) = (bead.to_owned(), agent.to_owned());
    move |e: AgentEvent| {
        if let AgentEvent::Usage { usage } = &e {
            cx.spend(usage.total_tokens);
            return;
        }
        let Some(mut ev) = e.to_event(&bead, &agent) else {
            return;
        };
        if let EventKind::AgentNotice {
            notice: Notice::RunnerOutput,
            message,
        } = &mut ev.kind
        {
            *message = cx.client.config().redact(message);
        }
        cx.publish(ev);
    }
}

/// Runs the session to the end of its loop; `None` if the run stopped meanwhile.
pub async fn run(cx: &Arc<Context>, s: Session<'_>) -> Result<Option<Ended>> {
    let id = s.bead.id.as_str();
    let (sandbox, tmp) = session::sandbox_for(&cx.ws, &cx.client, s.wt, cx.helper.clone())?;
    let mut on_event = forward(cx, id, &s.persona.name);
    let mut ctx = ToolContext::new(sandbox, Arc::new(cx.ws.clone()), id, &s.persona.name)
        .map_err(|e| crate::error::Error::io(&s.wt.path, e))?
        .in_worktree(s.wt);
    ctx.diff_base = s.diff_base.clone();
    ctx.quota = Arc::clone(&cx.quota);
    let mut limits = Limits::new(&cx.settings.agent, s.persona);
    limits.max_tokens = limits.max_tokens.min(s.tokens_left);
    limits.max_time = limits.max_time.min(s.time_left);
    limits.max_iterations = limits.max_iterations.min(s.iterations_left.max(1));
    let work = async {
        match &s.persona.runner {
            Some(spec) => {
                let prompt = s
                    .messages
                    .iter()
                    .filter_map(|m| m.content.as_deref())
                    .collect::<Vec<_>>()
                    .join("\n\n");
                runner::session(spec, &ctx.sandbox, &tmp, &prompt, &mut on_event).await
            }
            None => {
                let mode = LoopMode {
                    confirm: None,
                    answer_ends: false,
                    outage_limit: Some(cx.settings.provider_down_limit),
                };
                run::action_loop(
                    &cx.client,
                    s.persona,
                    &limits,
                    s.model,
                    s.messages.clone(),
                    &mut ctx,
                    mode,
                    &mut on_event,
                )
                .await
            }
        }
    };
    let mut end = tokio::select! {
        end = work => end,
        () = cx.stopped_bead(id) => return Ok(None),
    };
    // The last words (or a runner's last output lines) go into commits, summaries and
    // decisions: never a secret.
    end.detail = cx.client.config().redact(&end.detail);
    cx.publish(
        Event::about(id.to_owned(), EventKind::Usage { usage: end.usage })
            .by(s.persona.name.clone()),
    );
    if let Some(line) = lessons::lesson(
        id,
        &s.persona.name,
        &end,
        &ctx.stats,
        &Timestamp::now().as_str()[..10],
    ) {
        let cx2 = Arc::clone(cx);
        // A lesson that cannot be written must not hide the outcome.
        let _ = cx
            .blocking(move |_| session::write_lesson(&cx2.ws, &line))
            .await;
    }
    Ok(Some(Ended { end }))
}

/// Commits what `persona` changed in the worktree (DESIGN §3 trailers); the new tip, if any.
pub async fn commit(
    cx: &Arc<Context>,
    bead: &Bead,
    persona: &Persona,
    wt: &Worktree,
    end: &LoopEnd,
) -> Result<Option<String>> {
    let (bead, persona, wt) = (bead.clone(), persona.clone(), wt.clone());
    let end = LoopEnd {
        messages: Vec::new(),
        ..end.clone()
    };
    cx.blocking(move |cx| session::commit_work(&cx.ws, &cx.trees, &wt, &bead, &persona, &end))
        .await
}

/// Whether the loop ended because the endpoint is unusable (down past the limit, or the key
/// refused): the bead is not at fault and goes back for the next run.
pub fn endpoint_unusable(end: &LoopEnd) -> bool {
    end.terminal == Terminal::LlmError
        && end.error.as_ref().is_some_and(|e| {
            e.is_outage()
                || matches!(
                    e,
                    crate::llm::LlmError::Auth { .. } | crate::llm::LlmError::NotConfigured
                )
        })
}
