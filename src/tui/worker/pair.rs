//! The pair pane's background side: one [`PairSession`] at a time. Opening (worktree, log) and
//! recording (commits) run on the blocking pool; a reply runs as a task that owns the session
//! and gives it back when done. Confirmations go to the app as questions and come back through
//! a oneshot channel; "always" holds for the rest of the session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use crate::agent::pair::{self, OpenOptions, PairSession};
use crate::agent::run::{AgentEvent, Confirm, ConfirmFuture};
use crate::agent::session;
use crate::agent::tools::Action;
use crate::event::Event;

use super::super::app::AppEvent;
use super::super::pair::PairEvent;
use super::{Worker, lock};

/// The open session.
pub(super) struct PairSlot {
    bead: String,
    /// Which opening this is (a later `c` or persona change supersedes it).
    generation: u64,
    /// `None` while it opens or a reply runs.
    session: Option<PairSession>,
    /// The answer to the question on screen.
    answer: Option<oneshot::Sender<Confirm>>,
    stop: Arc<Notify>,
    always: Arc<AtomicBool>,
    /// The reply under way.
    reply: Option<tokio::task::JoinHandle<()>>,
}

impl Worker {
    fn pair_event(&self, bead: &str, event: PairEvent) {
        let _ = self.events.send(AppEvent::Pair {
            bead: bead.to_owned(),
            event,
        });
    }

    /// Opens a session on `bead` (ending any other).
    pub fn pair_open(&self, bead: String, persona: Option<String>) {
        self.pair_close();
        let generation = self.pair_generation.fetch_add(1, Ordering::SeqCst) + 1;
        *lock(&self.pair) = Some(PairSlot {
            bead: bead.clone(),
            generation,
            session: None,
            answer: None,
            stop: Arc::new(Notify::new()),
            always: Arc::new(AtomicBool::new(false)),
            reply: None,
        });
        let (ws, latest, events, slot) = (
            self.ws.clone(),
            Arc::clone(&self.latest),
            self.events.clone(),
            Arc::clone(&self.pair),
        );
        let client = self
            .agents
            .as_ref()
            .map(|a| (a.client.clone(), a.helper.clone()));
        let unavailable = self.agents_unavailable.clone();
        tokio::task::spawn_blocking(move || {
            let send = |event| {
                let _ = events.send(AppEvent::Pair {
                    bead: bead.clone(),
                    event,
                });
            };
            let history = || {
                ws.store
                    .read_conversation(&bead)
                    .map(|(h, _)| h)
                    .unwrap_or_default()
            };
            let Some((client, helper)) = client else {
                let why = unavailable.unwrap_or_else(|| "agents cannot run here".into());
                send(PairEvent::Failed {
                    message: format!("cannot pair: {why}"),
                    history: history(),
                });
                return;
            };
            let opened = super::snapshot(&ws, &latest).and_then(|snap| {
                let b = snap
                    .beads
                    .iter()
                    .find(|b| b.id == bead)
                    .map(|b| snap.full(b).into_owned())
                    .ok_or_else(|| crate::error::Error::NotFound(bead.clone()))?;
                let opts = OpenOptions {
                    persona,
                    model: None,
                    helper,
                };
                PairSession::open(&ws, &client, b, &opts)
            });
            match opened {
                Ok((s, history, problems)) => {
                    let event = PairEvent::Opened {
                        persona: s.persona().to_owned(),
                        personas: session::personas(&ws)
                            .iter()
                            .map(|p| p.name.clone())
                            .collect(),
                        branch: s.branch().to_owned(),
                        history,
                        unreadable: problems.len(),
                    };
                    let mut g = lock(&slot);
                    match g.as_mut() {
                        Some(sl) if sl.generation == generation => {
                            sl.session = Some(s);
                            drop(g);
                            send(event);
                        }
                        _ => {}
                    }
                }
                Err(e) => send(PairEvent::Failed {
                    message: format!("cannot pair on {bead}: {}", e.with_hint()),
                    history: history(),
                }),
            }
        });
    }

    /// Sends `text` to the open session; the reply streams back as events.
    pub fn pair_send(&self, text: String) {
        let mut g = lock(&self.pair);
        let Some(slot) = g.as_mut() else {
            return self.say_error("the pair pane is not open");
        };
        let bead = slot.bead.clone();
        let Some(mut session) = slot.session.take() else {
            drop(g);
            return self.pair_event(
                &bead,
                PairEvent::Finished {
                    ok: false,
                    summary: "the session is not ready (still opening or replying)".into(),
                },
            );
        };
        let stop = Arc::new(Notify::new());
        slot.stop = Arc::clone(&stop);
        let (always, generation) = (Arc::clone(&slot.always), slot.generation);
        let (events, shared) = (self.events.clone(), Arc::clone(&self.pair));
        let task = tokio::spawn(async move {
            let send = |event| {
                let _ = events.send(AppEvent::Pair {
                    bead: bead.clone(),
                    event,
                });
            };
            let asks = Arc::clone(&shared);
            let (ask_events, ask_bead) = (events.clone(), bead.clone());
            let mut confirm = move |action: &Action| -> ConfirmFuture {
                if always.load(Ordering::SeqCst) {
                    return Box::pin(async { Confirm::Always });
                }
                let (tx, rx) = oneshot::channel();
                if let Some(sl) = lock(&asks).as_mut() {
                    sl.answer = Some(tx);
                }
                let _ = ask_events.send(AppEvent::Pair {
                    bead: ask_bead.clone(),
                    event: PairEvent::Ask {
                        title: pair::describe(action),
                        preview: pair::preview(action),
                    },
                });
                let always = Arc::clone(&always);
                Box::pin(async move {
                    let answer = rx.await.unwrap_or(Confirm::No);
                    if answer == Confirm::Always {
                        always.store(true, Ordering::SeqCst);
                    }
                    answer
                })
            };
            let mut on_event = |e: AgentEvent| {
                let event = match e {
                    AgentEvent::Text { text } => PairEvent::Text(text),
                    AgentEvent::ToolCall {
                        tool, arguments, ..
                    } => PairEvent::ToolCall(pair::call_title(&tool, &arguments)),
                    AgentEvent::ToolResult { ok, summary, .. } => {
                        PairEvent::ToolResult { ok, summary }
                    }
                    AgentEvent::Retrying { reason } => {
                        PairEvent::Note(format!("retrying: {reason}"))
                    }
                    AgentEvent::HistoryElided { outputs } => PairEvent::Note(format!(
                        "{outputs} old tool outputs left out to fit the context"
                    )),
                    _ => return,
                };
                send(event);
            };
            let ex = session
                .ask(&text, &mut confirm, &mut on_event, stop.notified())
                .await;
            let persona = session.persona().to_owned();
            let recorded = tokio::task::spawn_blocking(move || {
                let r = session.record(&ex);
                (session, ex, r)
            })
            .await;
            let Ok((session, ex, recorded)) = recorded else {
                send(PairEvent::Finished {
                    ok: false,
                    summary: "the pair session failed while recording".into(),
                });
                return;
            };
            if ex.end.usage.total_tokens > 0 {
                let _ = events.send(AppEvent::Run(Box::new(Event::Usage {
                    at: crate::event::now(),
                    bead: bead.clone(),
                    agent: persona,
                    usage: ex.end.usage,
                })));
            }
            let (ok, summary) = match (&ex.end.error, recorded) {
                (Some(e), _) => (false, format!("the model failed: {e}")),
                (None, Err(e)) => (
                    false,
                    format!("cannot record the exchange: {}", e.with_hint()),
                ),
                (None, Ok(r)) => (
                    true,
                    finished_line(&ex, session.branch(), r.work.as_deref()),
                ),
            };
            {
                let mut g = lock(&shared);
                if let Some(sl) = g.as_mut()
                    && sl.generation == generation
                {
                    sl.session = Some(session);
                    sl.answer = None;
                    sl.reply = None;
                }
            }
            send(PairEvent::Finished { ok, summary });
        });
        slot.reply = Some(task);
    }

    /// Answers the question on screen.
    pub fn pair_answer(&self, answer: Confirm) {
        if let Some(tx) = lock(&self.pair).as_mut().and_then(|s| s.answer.take()) {
            let _ = tx.send(answer);
        }
    }

    /// Stops the reply under way (what streamed is kept and recorded).
    pub fn pair_stop(&self) {
        if let Some(s) = lock(&self.pair).as_ref() {
            s.stop.notify_one();
        }
    }

    /// Ends the session; a reply under way is stopped and still recorded.
    pub fn pair_close(&self) {
        if let Some(s) = lock(&self.pair).take() {
            s.stop.notify_one();
            if let Some(reply) = s.reply {
                lock(&self.pair_replies).push(reply);
            }
        }
    }

    /// Waits (bounded) for stopped replies to be recorded.
    pub(super) async fn pair_shutdown(&self) {
        self.pair_close();
        let replies: Vec<_> = lock(&self.pair_replies).drain(..).collect();
        for r in replies {
            let _ = tokio::time::timeout(Duration::from_secs(10), r).await;
        }
    }

    fn say_error(&self, message: &str) {
        let _ = self.events.send(AppEvent::Done {
            ok: false,
            message: message.to_owned(),
        });
    }
}

/// The line under a reply: model, tokens, cost, and the commit of any changes.
fn finished_line(ex: &pair::Exchange, branch: &str, work: Option<&str>) -> String {
    let u = ex.end.usage;
    let mut s = if ex.stopped {
        "stopped by you; what came is kept".to_owned()
    } else if u.total_tokens == 0 {
        format!("{} · usage not reported", ex.end.model)
    } else {
        format!(
            "{} · {} tokens in, {} out",
            ex.end.model, u.prompt_tokens, u.completion_tokens
        )
    };
    if let Some(c) = u.cost_usd {
        s.push_str(&format!(" · ${c:.4}"));
    }
    if let Some(c) = work {
        s.push_str(&format!(
            " · changes committed on {branch} ({})",
            &c[..c.len().min(10)]
        ));
    }
    s
}
