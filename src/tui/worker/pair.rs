//! The pair pane's background side: one [`PairSession`] at a time. Opening (worktree, log) and
//! recording (commits) run on the blocking pool; a reply runs as a task that owns the session
//! and gives it back when done. Confirmations go to the app as questions and come back through
//! a oneshot channel; "always" holds for the rest of the session. Every event carries the
//! session number the app gave when opening, so a superseded session's late events are dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::agent::pair::{self, OpenOptions, PairSession};
use crate::agent::run::{AgentEvent, Confirm, ConfirmFuture};
use crate::agent::session;
use crate::agent::tools::Action;
use crate::event::{Event, EventKind};

use super::super::app::AppEvent;
use super::super::pair::PairEvent;
use super::{Shared, Worker, lock};

/// How long quitting or reopening waits for a stopped reply to be recorded.
const RECORD_WAIT: Duration = Duration::from_secs(20);

/// The open session.
pub(super) struct PairSlot {
    /// The app's number for this session.
    session: u64,
    /// `None` while it opens or a reply runs.
    pair: Option<PairSession>,
    /// The answer to the question on screen.
    answer: Option<oneshot::Sender<Confirm>>,
    stop: Arc<Notify>,
    always: Arc<AtomicBool>,
    /// The reply under way.
    reply: Option<tokio::task::JoinHandle<()>>,
}

/// Sends one session's events to the app.
#[derive(Clone)]
struct To {
    events: mpsc::UnboundedSender<AppEvent>,
    session: u64,
}

impl To {
    fn send(&self, event: PairEvent) {
        let _ = self.events.send(AppEvent::Pair {
            session: self.session,
            event,
        });
    }
}

impl Worker {
    /// Opens session number `session` on `bead` (ending any other, once its reply is recorded).
    pub fn pair_open(&self, session: u64, bead: String, persona: Option<String>) {
        self.pair_close();
        *lock(&self.pair) = Some(PairSlot {
            session,
            pair: None,
            answer: None,
            stop: Arc::new(Notify::new()),
            always: Arc::new(AtomicBool::new(false)),
            reply: None,
        });
        let to = To {
            events: self.events.clone(),
            session,
        };
        let (ws, latest, slot) = (
            self.ws.clone(),
            Arc::clone(&self.latest),
            Arc::clone(&self.pair),
        );
        let agents = self
            .agents
            .as_ref()
            .map(|a| (a.client.clone(), a.helper.clone()));
        let unavailable = self.agents_unavailable.clone();
        let earlier = Arc::clone(&self.pair_replies);
        tokio::spawn(async move {
            // A stopped reply is still being recorded: its exchange belongs in the log we read.
            settle(&earlier).await;
            let opened = tokio::task::spawn_blocking(move || {
                let history = || {
                    ws.store
                        .read_conversation(&bead)
                        .map(|(h, _)| h)
                        .unwrap_or_default()
                };
                let Some((client, helper)) = agents else {
                    let why = unavailable.unwrap_or_else(|| "agents cannot run here".into());
                    return Err((format!("cannot pair: {why}"), history()));
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
                        let personas = session::personas(&ws)
                            .iter()
                            .map(|p| p.name.clone())
                            .collect();
                        Ok((s, personas, history, problems.len()))
                    }
                    Err(e) => Err((
                        format!("cannot pair on {bead}: {}", e.with_hint()),
                        history(),
                    )),
                }
            })
            .await;
            match opened {
                Ok(Ok((s, personas, history, unreadable))) => {
                    let event = PairEvent::Opened {
                        persona: s.persona().to_owned(),
                        personas,
                        branch: s.branch().to_owned(),
                        history,
                        unreadable,
                    };
                    if let Some(sl) = lock(&slot).as_mut()
                        && sl.session == session
                    {
                        sl.pair = Some(s);
                    }
                    to.send(event);
                }
                Ok(Err((message, history))) => to.send(PairEvent::Failed { message, history }),
                Err(e) => to.send(PairEvent::Failed {
                    message: format!("opening the pair session failed: {e}"),
                    history: Vec::new(),
                }),
            }
        });
    }

    /// Sends `text` to the open session; the reply streams back as events.
    pub fn pair_send(&self, text: String) {
        let mut g = lock(&self.pair);
        let Some(slot) = g.as_mut() else {
            drop(g);
            let _ = self.events.send(AppEvent::Done {
                ok: false,
                message: "the pair pane is not open".into(),
            });
            return;
        };
        let to = To {
            events: self.events.clone(),
            session: slot.session,
        };
        let Some(mut pair) = slot.pair.take() else {
            drop(g);
            return to.send(PairEvent::Finished {
                ok: false,
                summary: "the session is not ready (still opening, or a reply is under way)".into(),
            });
        };
        let stop = Arc::new(Notify::new());
        slot.stop = Arc::clone(&stop);
        let mut confirm = confirmer(to.clone(), Arc::clone(&self.pair), Arc::clone(&slot.always));
        let shared = Arc::clone(&self.pair);
        let task = tokio::spawn(async move {
            // The reply runs in a task of its own, so that even a panic ends in a message.
            let streaming = to.clone();
            let asked = tokio::spawn(async move {
                let mut on_event = |e: AgentEvent| {
                    if let Some(event) = pair_event(e) {
                        streaming.send(event);
                    }
                };
                let ex = pair
                    .ask(&text, &mut confirm, &mut on_event, stop.notified())
                    .await;
                (pair, ex)
            })
            .await;
            let Ok((mut pair, ex)) = asked else {
                return lost(&shared, &to, "the reply failed unexpectedly");
            };
            let persona = pair.persona().to_owned();
            let recorded = tokio::task::spawn_blocking(move || {
                let r = pair.record(&ex);
                (pair, ex, r)
            })
            .await;
            let Ok((pair, ex, recorded)) = recorded else {
                return lost(&shared, &to, "recording the exchange failed unexpectedly");
            };
            if ex.end.usage.total_tokens > 0 {
                let _ = to.events.send(AppEvent::Run(Box::new(
                    Event::about(
                        pair.bead().id.clone(),
                        EventKind::Usage {
                            usage: ex.end.usage,
                        },
                    )
                    .by(persona),
                )));
            }
            let (ok, summary) = match (&ex.end.error, recorded) {
                (Some(e), _) => (false, format!("the model failed: {e}")),
                (None, Err(e)) => (
                    false,
                    format!("cannot record the exchange: {}", e.with_hint()),
                ),
                (None, Ok(r)) => {
                    for w in r.log.iter().flat_map(|c| &c.warnings) {
                        to.send(PairEvent::Note(format!("warning: {w}")));
                    }
                    (true, ex.summary(pair.branch(), r.work.as_deref()))
                }
            };
            if let Some(sl) = lock(&shared).as_mut()
                && sl.session == to.session
            {
                sl.pair = Some(pair);
                sl.answer = None;
                sl.reply = None;
            }
            to.send(PairEvent::Finished { ok, summary });
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
        settle(&self.pair_replies).await;
    }
}

/// Waits (bounded) for the replies in `replies` to be recorded.
async fn settle(replies: &Shared<Vec<tokio::task::JoinHandle<()>>>) {
    let pending: Vec<_> = lock(replies).drain(..).collect();
    for r in pending {
        let _ = tokio::time::timeout(RECORD_WAIT, r).await;
    }
}

/// The session broke (a panic): say so; `c` opens it again.
fn lost(slot: &Shared<Option<PairSlot>>, to: &To, why: &str) {
    if let Some(sl) = lock(slot).as_mut()
        && sl.session == to.session
    {
        sl.answer = None;
        sl.reply = None;
    }
    to.send(PairEvent::Lost(format!(
        "{why}; the session is closed — esc, then c to open it again"
    )));
}

/// Asks the app whether an action may run, and waits for the answer. A question from a
/// session that is no longer the open one is answered "no" at once.
fn confirmer(
    to: To,
    slot: Shared<Option<PairSlot>>,
    always: Arc<AtomicBool>,
) -> impl FnMut(&Action) -> ConfirmFuture + Send {
    move |action: &Action| -> ConfirmFuture {
        if always.load(Ordering::SeqCst) {
            return Box::pin(async { Confirm::Always });
        }
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        if let Some(sl) = lock(&slot).as_mut()
            && sl.session == to.session
        {
            sl.answer = tx.take();
        }
        if tx.is_none() {
            to.send(PairEvent::Ask {
                title: pair::describe(action),
                preview: pair::preview(action),
            });
        }
        drop(tx);
        let always = Arc::clone(&always);
        Box::pin(async move {
            let answer = rx.await.unwrap_or(Confirm::No);
            if answer == Confirm::Always {
                always.store(true, Ordering::SeqCst);
            }
            answer
        })
    }
}

/// What the pane shows of an agent event.
fn pair_event(e: AgentEvent) -> Option<PairEvent> {
    Some(match e {
        AgentEvent::Text { text } => PairEvent::Text(text),
        AgentEvent::ToolCall {
            tool, arguments, ..
        } => PairEvent::ToolCall(pair::call_title(&tool, &arguments)),
        AgentEvent::ToolResult { ok, summary, .. } => PairEvent::ToolResult { ok, summary },
        AgentEvent::Retrying { reason } => PairEvent::Note(format!("retrying: {reason}")),
        AgentEvent::HistoryElided { outputs } => PairEvent::Note(format!(
            "{outputs} old tool outputs left out to fit the context"
        )),
        _ => return None,
    })
}
