//! The event loop. [`Session`] is the app with its background worker: events in, commands
//! carried out, frames asked for — everything but the terminal, so tests drive it with keys and
//! a `TestBackend`. [`run`] adds the terminal: raw mode and the alternate screen (restored on
//! exit, error and panic), input as an async stream, and the one redraw path — requests are
//! coalesced by the [`FrameClock`], nothing is drawn when nothing changed, and a 1 s tick runs
//! only while agents work (elapsed counters).

use std::io::Write;
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind, MouseEventKind};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::orchestrator::dispatch::Control;
use crate::workspace::Workspace;

use super::app::{App, AppEvent, Command, Mutation, RepoInfo};
use super::external::{self, Edited};
use super::frame::FrameClock;
use super::keys::KeyMap;
use super::theme::Theme;
use super::worker::{AgentSetup, Worker};

/// What opening the TUI needs.
pub struct Options {
    pub ws: Workspace,
    pub theme: Theme,
    pub keys: KeyMap,
    /// How agents run here, or why they cannot.
    pub agents: std::result::Result<AgentSetup, String>,
    /// Dispatch every ready bead from the start (`loom demo --tui`).
    pub auto: bool,
    /// Take the mouse (wheel and clicks; the terminal's own selection then needs shift).
    pub mouse: bool,
    /// How to tell of a decision (bell, desktop notification).
    pub notify: super::notify::Style,
    /// Attach to the runs coordinated through this NATS server for this repository id
    /// (`loom --nats URL`): their events, replayed and then live, from any machine.
    pub remote: Option<(crate::scale::nats::NatsOptions, String)>,
}

/// The app and its worker.
pub struct Session {
    pub app: App,
    worker: Worker,
    events: mpsc::UnboundedReceiver<AppEvent>,
    frames: FrameClock,
    /// When paced text wants to be looked at again (a tick, then a frame).
    wake: Option<Instant>,
    notify: super::notify::Style,
}

/// What the terminal side must do after an event.
#[derive(Debug, Default)]
pub struct After {
    pub quit: bool,
    pub edit: Option<String>,
    /// Bytes for the terminal: the bell, notification sequences.
    pub tell: String,
}

impl Session {
    /// Opens a session (inside a tokio runtime): the worker starts loading the board.
    pub fn new(opts: Options) -> Session {
        let repo = repo_info(&opts.ws);
        let (tx, events) = mpsc::unbounded_channel();
        let mut app = App::new(opts.theme, opts.keys, repo, Instant::now());
        let mut worker = Worker::start(opts.ws, opts.agents, tx);
        if let Some((nats, repo)) = opts.remote {
            worker.follow_remote(nats, repo);
        }
        if opts.auto {
            app.auto = true;
            worker.control(Control::Auto(true));
        }
        let mut frames = FrameClock::default();
        frames.request(Instant::now(), Instant::now());
        Session {
            app,
            worker,
            events,
            frames,
            wake: None,
            notify: opts.notify,
        }
    }

    /// Feeds one event to the app and carries out what it asks.
    pub fn handle(&mut self, e: AppEvent) -> After {
        let now = Instant::now();
        let input = matches!(
            e,
            AppEvent::Key(_) | AppEvent::Mouse(_) | AppEvent::Paste(_) | AppEvent::Resize
        );
        let commands = self.app.event(e, now);
        if input {
            self.frames.request_input(now);
        } else {
            self.frames.request(now, now);
        }
        if let Some((_, _, at)) = &self.app.message {
            self.frames.request(now, *at + super::ui::MESSAGE_TTL);
        }
        let mut after = After::default();
        for c in commands {
            match c {
                Command::SetFilter(f) => self.worker.set_filter(f),
                Command::LoadDetail(id) => self.worker.load_detail(id),
                Command::LoadHistory(id) => self.worker.load_history(id),
                Command::LoadWork(id) => self.worker.load_work(id),
                Command::LoadDeps(id) => self.worker.load_deps(id),
                Command::LoadRun { index, initial } => self.worker.load_run(index, initial),
                Command::Mutate(m) => self.worker.mutate(m),
                Command::Undo => self.worker.undo(),
                Command::EditExternal(id) => after.edit = Some(id),
                Command::Start(id) => self.worker.control(Control::Start(id)),
                Command::Stop(id) => self.worker.control(Control::Stop(id)),
                Command::Auto(on) => self.worker.control(Control::Auto(on)),
                Command::Decide { id, verdict } => self.worker.decide(id, verdict),
                Command::PairOpen {
                    session,
                    bead,
                    persona,
                } => self.worker.pair_open(session, bead, persona),
                Command::PairSend(text) => self.worker.pair_send(text),
                Command::PairAnswer(c) => self.worker.pair_answer(c),
                Command::PairStop => self.worker.pair_stop(),
                Command::PairClose => self.worker.pair_close(),
                Command::FrameAfter(d) => {
                    let at = now + d;
                    self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
                }
                Command::Yank(text) => after.tell.push_str(&osc52(&text)),
                Command::Notify { title, body } => {
                    after
                        .tell
                        .push_str(&super::notify::sequences(self.notify, &title, &body));
                }
                Command::Quit => after.quit = true,
            }
        }
        after
    }

    /// Handles background events until `done(app)` holds or `timeout` passes; whether it held.
    pub async fn settle(&mut self, timeout: Duration, done: impl Fn(&App) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(&self.app) {
            let wake = self.wake;
            let next = tokio::select! {
                e = tokio::time::timeout_at(deadline, self.events.recv()) => e,
                () = sleep_until(wake), if wake.is_some() => {
                    self.wake = None;
                    Ok(Some(AppEvent::Tick))
                }
            };
            match next {
                Ok(Some(e)) => {
                    self.handle(e);
                }
                Ok(None) | Err(_) => return false,
            }
        }
        true
    }

    /// Draws a frame now.
    pub fn draw<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> Result<()> {
        let now = Instant::now();
        terminal
            .draw(|f| super::ui::draw(f, &self.app, now))
            .map_err(|e| Error::Other(format!("cannot draw the screen: {e}")))?;
        self.frames.drawn(now);
        Ok(())
    }

    /// Stops the agents of this window (their beads are given back).
    pub async fn shutdown(&self) {
        self.worker.shutdown().await;
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }
}

/// The header's repository name and branch.
fn repo_info(ws: &Workspace) -> RepoInfo {
    let root = &ws.layout().root;
    RepoInfo {
        name: root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| root.display().to_string()),
        branch: ws
            .repo
            .as_ref()
            .and_then(|r| r.current_branch().ok().flatten())
            .unwrap_or_default(),
    }
}

type Term = Terminal<CrosstermBackend<std::io::Stdout>>;

/// Raw mode, the alternate screen and bracketed paste on; the cursor hidden.
fn enter() -> Result<Term> {
    let io = |e: std::io::Error| Error::Other(format!("cannot set up the terminal: {e}"));
    crossterm::terminal::enable_raw_mode().map_err(io)?;
    let mut out = std::io::stdout();
    crossterm::execute!(
        out,
        crossterm::terminal::EnterAlternateScreen,
        crossterm::event::EnableBracketedPaste,
        crossterm::cursor::Hide
    )
    .map_err(io)?;
    if MOUSE.load(std::sync::atomic::Ordering::SeqCst) {
        crossterm::execute!(out, crossterm::event::EnableMouseCapture).map_err(io)?;
    }
    // Where the terminal can tell shift+enter from enter (the kitty protocol), ask it to.
    if crossterm::terminal::supports_keyboard_enhancement().unwrap_or(false)
        && crossterm::execute!(
            out,
            crossterm::event::PushKeyboardEnhancementFlags(
                crossterm::event::KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES
            )
        )
        .is_ok()
    {
        ENHANCED_KEYS.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(io)
}

/// Whether the TUI takes the mouse (set once from the options).
static MOUSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether keyboard enhancement was turned on (and must be turned off on leaving).
static ENHANCED_KEYS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Puts the terminal back as it was (safe to call twice).
pub fn leave() {
    let mut out = std::io::stdout();
    if ENHANCED_KEYS.swap(false, std::sync::atomic::Ordering::SeqCst) {
        let _ = crossterm::execute!(out, crossterm::event::PopKeyboardEnhancementFlags);
    }
    if MOUSE.load(std::sync::atomic::Ordering::SeqCst) {
        let _ = crossterm::execute!(out, crossterm::event::DisableMouseCapture);
    }
    let _ = crossterm::execute!(
        out,
        crossterm::event::DisableBracketedPaste,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = out.flush();
}

/// Restores the terminal before a panic message is printed.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave();
        previous(info);
    }));
}

/// Leaves the terminal when dropped (errors and early returns).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        leave();
    }
}

/// Runs the TUI until the user quits.
pub fn run(opts: Options) -> Result<i32> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "`loom` without a command opens the terminal UI and needs a terminal; use `loom list`, `loom ready` or `loom run` in scripts".into(),
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    install_panic_hook();
    MOUSE.store(opts.mouse, std::sync::atomic::Ordering::SeqCst);
    let mut terminal = enter()?;
    let _restore = Restore;
    rt.block_on(async move {
        let mut session = Session::new(opts);
        let result = event_loop(&mut session, &mut terminal).await;
        let pairing = session.app.pair.as_ref().is_some_and(|p| p.busy());
        if pairing || session.app.live.busy() > 0 {
            // Stopping can take a moment: say what happens rather than freeze.
            session.handle(AppEvent::Done {
                ok: true,
                message: "stopping: giving running beads back and recording the conversation…"
                    .into(),
            });
            let _ = session.draw(&mut terminal);
        }
        session.shutdown().await;
        result
    })?;
    Ok(0)
}

async fn event_loop(session: &mut Session, terminal: &mut Term) -> Result<()> {
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let due = session.frames.due();
        let ticking = session.app.live.busy() > 0;
        let after = tokio::select! {
            biased;
            t = input.next() => match t {
                Some(Ok(e)) => match terminal_event(e) {
                    Some(e) => session.handle(e),
                    None => continue,
                },
                Some(Err(e)) => return Err(Error::Other(format!("cannot read the terminal: {e}"))),
                None => return Ok(()),
            },
            // Before the app's events: under a flood of them (16 agents streaming) a frame
            // that is due still gets drawn.
            () = sleep_until(due), if due.is_some() => {
                session.draw(terminal)?;
                continue;
            }
            e = session.events.recv() => match e {
                Some(e) => session.handle(e),
                None => return Ok(()),
            },
            () = sleep_until(session.wake), if session.wake.is_some() => {
                session.wake = None;
                session.handle(AppEvent::Tick)
            }
            _ = tick.tick(), if ticking => session.handle(AppEvent::Tick),
        };
        if after.quit {
            return Ok(());
        }
        if !after.tell.is_empty() {
            use std::io::Write;
            let out = terminal.backend_mut();
            // A terminal that cannot take it only misses a notification.
            let _ = out
                .write_all(after.tell.as_bytes())
                .and_then(|()| Write::flush(out));
        }
        if let Some(id) = after.edit {
            drop(input);
            edit_external(session, terminal, &id).await;
            input = EventStream::new();
        }
    }
}

/// The OSC 52 sequence that puts `text` on the terminal's clipboard.
fn osc52(text: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(text);
    format!("\x1b]52;c;{b64}\x07")
}

/// A terminal event as an app event (key releases and mouse moves are ignored).
fn terminal_event(e: TermEvent) -> Option<AppEvent> {
    match e {
        TermEvent::Key(k) if k.kind != KeyEventKind::Release => Some(AppEvent::Key(k)),
        // Moves and drags would only wake the loop for nothing.
        TermEvent::Mouse(m)
            if matches!(
                m.kind,
                MouseEventKind::ScrollUp | MouseEventKind::ScrollDown | MouseEventKind::Down(_)
            ) =>
        {
            Some(AppEvent::Mouse(m))
        }
        TermEvent::Paste(text) => Some(AppEvent::Paste(text)),
        TermEvent::Resize(..) => Some(AppEvent::Resize),
        _ => None,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Hands the terminal to `$EDITOR` for bead `id`, then applies a valid edit.
async fn edit_external(session: &mut Session, terminal: &mut Term, id: &str) {
    let outcome = {
        leave();
        let r = tokio::task::block_in_place(|| edit_rounds(session.worker(), id));
        // Back to the TUI whatever happened.
        let back = enter().map(|t| *terminal = t);
        if let Err(e) = back {
            Err(e)
        } else {
            let _ = terminal.clear();
            r
        }
    };
    let message = match outcome {
        Ok(Some(b)) => {
            session.worker.mutate(Mutation::Replace(b));
            return;
        }
        Ok(None) => AppEvent::Done {
            ok: true,
            message: format!("{id}: nothing changed"),
        },
        Err(e) => AppEvent::Done {
            ok: false,
            message: e.to_string(),
        },
    };
    session.handle(message);
}

/// Editor rounds until the text is a valid bead or the user cancels.
fn edit_rounds(worker: &Worker, id: &str) -> Result<Option<Box<crate::bead::Bead>>> {
    let original = worker.full_bead(id)?;
    let file = tempfile::Builder::new()
        .prefix(&format!("loom-{id}-"))
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| Error::Other(format!("cannot create a temp file for the editor: {e}")))?;
    let first = external::initial_text(&original)?;
    let mut text = first.clone();
    loop {
        std::fs::write(file.path(), &text).map_err(|e| Error::io(file.path(), e))?;
        external::run_editor(file.path())?;
        let after = std::fs::read_to_string(file.path()).map_err(|e| Error::io(file.path(), e))?;
        match external::check(&original, &first, &after) {
            Edited::Unchanged => return Ok(None),
            Edited::Changed(b) => return Ok(Some(b)),
            Edited::Invalid(why) => text = external::retry_text(&why, &after),
        }
    }
}
