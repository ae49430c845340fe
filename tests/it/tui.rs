//! The TUI driven in-process with key events on a real repository (real store, real git, the
//! real watcher), asserting on the app's state, the drawn buffer and what lands on disk.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use loom::tui::app::{AppEvent, Overlay, View};
use loom::tui::keys::KeyMap;
use loom::tui::model::Column;
use loom::tui::runtime::{Options, Session};
use loom::tui::theme::Theme;
use loom::tui::worker::AgentSetup;
use loom::workspace::{OpenOptions, Workspace};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::support::TestRepo;

const WAIT: Duration = Duration::from_secs(10);

/// `repo` opened as the tester.
pub fn workspace(repo: &TestRepo) -> Workspace {
    Workspace::open(&OpenOptions {
        dir: Some(repo.path().to_path_buf()),
        actor: Some("tester".into()),
        no_commit: false,
    })
    .unwrap()
}

/// A window on `ws` with the default theme and keys, agents as given, no mouse.
pub fn session(ws: Workspace, agents: Result<AgentSetup, String>) -> Session {
    Session::new(Options {
        ws,
        theme: Theme::default_theme(),
        keys: KeyMap::default(),
        agents,
        auto: false,
        mouse: false,
        notify: loom::tui::notify::Style {
            bell: true,
            desktop: true,
        },
        remote: None,
    })
}

fn open(repo: &TestRepo) -> Session {
    session(workspace(repo), Err("no agents in this test".into()))
}

pub fn key(s: &mut Session, code: KeyCode) {
    s.handle(AppEvent::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

pub fn typed(s: &mut Session, text: &str) {
    for c in text.chars() {
        key(s, KeyCode::Char(c));
    }
}

/// The screen as text, `w`×`h`.
pub fn screen(s: &mut Session, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    s.draw(&mut t).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn column_of(s: &Session, id: &str) -> Option<Column> {
    s.app.board.find(id).map(|(c, _)| c)
}

fn select(s: &mut Session, id: &str) {
    let (c, _) = s.app.board.find(id).unwrap();
    // Walk there with keys, as a person would.
    while s.app.col > c.index() {
        key(s, KeyCode::Left);
    }
    while s.app.col < c.index() {
        key(s, KeyCode::Right);
    }
    if c == Column::Done && s.app.done_folded {
        key(s, KeyCode::Char('z'));
    }
    key(s, KeyCode::Char('g'));
    for _ in 0..50 {
        if s.app.selected().map(|c| c.id.as_str()) == Some(id) {
            return;
        }
        key(s, KeyCode::Down);
    }
    panic!(
        "cannot select {id}: col {} rows {:?} selected {:?} board {:?}",
        s.app.col,
        s.app.rows,
        s.app.selected().map(|c| c.id.clone()),
        s.app
            .board
            .columns
            .iter()
            .map(|c| c.iter().map(|x| x.id.clone()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
}

fn ctrl_s(s: &mut Session) {
    s.handle(AppEvent::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    )));
}

/// Tabs to the form field labelled `label`.
fn to_field(s: &mut Session, label: &str) {
    for _ in 0..20 {
        match &s.app.overlay {
            Some(Overlay::Form(f)) if f.focus.label() == label => return,
            Some(Overlay::Form(_)) => key(s, KeyCode::Tab),
            other => panic!("no form open: {other:?}"),
        }
    }
    panic!("no field {label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_form_creates_an_epic_child_with_labels_and_a_parent() {
    let repo = TestRepo::with_loom("yaml");
    let epic = repo.create("Checkout epic", &["-t", "epic", "-l", "frontend"]);
    repo.create("Other", &["-l", "backend"]);
    let mut s = open(&repo);
    assert!(
        s.settle(WAIT, |a| a.board.total == 2).await,
        "the first board"
    );
    let commits = repo.commit_count();
    key(&mut s, KeyCode::Char('n'));
    typed(&mut s, "Make the login faster");
    to_field(&mut s, "Type");
    key(&mut s, KeyCode::Right); // → bug
    to_field(&mut s, "Priority");
    key(&mut s, KeyCode::Char('1'));
    to_field(&mut s, "Assignee");
    typed(&mut s, "ada");
    to_field(&mut s, "Labels");
    typed(&mut s, "fro");
    key(&mut s, KeyCode::Tab); // completes "frontend" from the store's labels
    typed(&mut s, "perf");
    to_field(&mut s, "Parent");
    key(&mut s, KeyCode::Enter); // the picker
    typed(&mut s, "checkout");
    key(&mut s, KeyCode::Enter);
    to_field(&mut s, "Description");
    typed(&mut s, "It takes *four* seconds.");
    to_field(&mut s, "Acceptance");
    typed(&mut s, "Under one second.");
    ctrl_s(&mut s);
    assert!(s.app.overlay.is_none(), "the form closed");
    assert!(
        s.settle(WAIT, |a| a.board.total == 3).await,
        "the new bead shows"
    );
    let child = format!("{epic}.1");
    let (col, _) = s
        .app
        .board
        .find(&child)
        .expect("the child by its <parent>.N id");
    let card = s
        .app
        .board
        .column(col)
        .iter()
        .find(|c| c.id == child)
        .unwrap()
        .clone();
    assert_eq!((card.priority, card.issue_type.as_str()), (1, "bug"));
    let shown = repo.ok(&["show", &child, "--json"]);
    let b: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let b = if b.is_array() { b[0].clone() } else { b };
    assert_eq!(b["assignee"], "ada");
    assert_eq!(b["labels"], serde_json::json!(["frontend", "perf"]));
    assert_eq!(b["description"], "It takes *four* seconds.");
    assert_eq!(b["acceptance_criteria"], "Under one second.");
    assert!(
        shown.contains("parent-child") && shown.contains(&epic),
        "{shown}"
    );
    assert_eq!(repo.commit_count(), commits + 1, "one commit");
    let log = repo.git(&["log", "-1", "--format=%s%n%b"]);
    assert!(log.contains(&format!("Loom-Bead: {child}")), "{log}");
    assert!(log.contains("Loom-Actor: tester"), "{log}");

    // Editing writes only what changed; a refused save keeps what was typed and says why.
    select(&mut s, &child);
    key(&mut s, KeyCode::Char('e'));
    assert!(
        s.settle(WAIT, |a| matches!(a.overlay, Some(Overlay::Form(_))))
            .await,
        "the edit form"
    );
    to_field(&mut s, "Parent");
    for _ in 0..20 {
        key(&mut s, KeyCode::Backspace);
    }
    typed(&mut s, "nosuchbead");
    to_field(&mut s, "Notes");
    typed(&mut s, "Measured on staging.");
    ctrl_s(&mut s);
    assert!(
        s.settle(
            WAIT,
            |a| matches!(&a.overlay, Some(Overlay::Form(f)) if f.error.is_some())
        )
        .await,
        "the refusal reopens the form"
    );
    let Some(Overlay::Form(f)) = &s.app.overlay else {
        unreachable!()
    };
    let error = f.error.clone().unwrap_or_default();
    assert!(error.contains("nosuchbead"), "{error}");
    assert_eq!(
        f.draft().notes,
        "Measured on staging.",
        "nothing typed is lost"
    );
    to_field(&mut s, "Parent");
    for _ in 0..20 {
        key(&mut s, KeyCode::Backspace);
    }
    typed(&mut s, &epic);
    ctrl_s(&mut s);
    assert!(
        s.settle(WAIT, |a| a.overlay.is_none()
            && a.message.as_ref().is_some_and(|m| m.1.contains("updated")))
            .await,
        "saved: {:?}",
        s.app.message
    );
    let text = screen(&mut s, 120, 30);
    assert!(text.contains("Make the login faster"), "{text}");
    let shown = repo.ok(&["show", &child, "--json"]);
    assert!(shown.contains("Measured on staging."), "{shown}");
    // Only the notes (and the store's updated_at) changed in the last commit.
    let diff = repo.git(&["show", "--format=", "-U0", "HEAD"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .filter(|l| !l.contains("updated_at"))
        .collect();
    assert!(
        !changed.is_empty()
            && changed
                .iter()
                .all(|l| l.contains("notes") || l.contains("Measured")),
        "{diff}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_moves_a_card_to_blocked_and_closing_moves_it_to_done() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("First thing", &["-p", "1"]);
    let b = repo.create("Second thing", &["-p", "2"]);
    let mut s = open(&repo);
    assert!(s.settle(WAIT, |app| app.board.total == 2).await);
    assert_eq!(column_of(&s, &b), Some(Column::Ready));
    // b depends on a: pick a in the fuzzy picker.
    select(&mut s, &b);
    key(&mut s, KeyCode::Char('d'));
    typed(&mut s, "first");
    key(&mut s, KeyCode::Enter);
    assert!(
        s.settle(WAIT, |app| app.board.find(&b).map(|x| x.0)
            == Some(Column::Blocked))
            .await,
        "b is blocked by a"
    );
    let text = screen(&mut s, 160, 48);
    assert!(text.contains(&format!("waits on {a}")), "{text}");
    // Close a: b becomes ready, a goes to Done.
    select(&mut s, &a);
    key(&mut s, KeyCode::Char('x'));
    typed(&mut s, "shipped");
    key(&mut s, KeyCode::Enter);
    assert!(
        s.settle(WAIT, |app| app.board.find(&a).map(|x| x.0)
            == Some(Column::Done)
            && app.board.find(&b).map(|x| x.0) == Some(Column::Ready))
            .await,
        "a is done, b is ready"
    );
    let shown = repo.json(&["show", &a]);
    let shown = if shown.is_array() {
        shown[0].clone()
    } else {
        shown
    };
    assert_eq!(shown["status"], "closed");
    assert_eq!(shown["close_reason"], "shipped");
    // Reopen from the board: it comes back.
    select(&mut s, &a);
    key(&mut s, KeyCode::Char('r'));
    assert!(
        s.settle(WAIT, |app| app.board.find(&a).map(|x| x.0)
            == Some(Column::Ready))
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_narrows_the_board_and_esc_clears_it() {
    let repo = TestRepo::with_loom("yaml");
    repo.create("Payment page", &["-t", "feature", "-l", "web"]);
    repo.create("Payment webhook", &["-t", "bug"]);
    repo.create("Docs typo", &["-t", "chore", "-l", "web"]);
    let mut s = open(&repo);
    assert!(s.settle(WAIT, |app| app.board.total == 3).await);
    key(&mut s, KeyCode::Char('/'));
    typed(&mut s, "payment");
    assert!(
        s.settle(WAIT, |app| app.board.column(Column::Ready).len() == 2)
            .await
    );
    // More words narrow further: a type and a label.
    typed(&mut s, " type:bug");
    assert!(
        s.settle(WAIT, |app| app.board.column(Column::Ready).len() == 1)
            .await
    );
    assert_eq!(
        s.app.board.column(Column::Ready)[0].title,
        "Payment webhook"
    );
    key(&mut s, KeyCode::Enter);
    let text = screen(&mut s, 120, 30);
    assert!(
        text.contains("Payment webhook") && !text.contains("Payment page"),
        "{text}"
    );
    key(&mut s, KeyCode::Char('/'));
    for _ in 0.."payment type:bug".len() {
        key(&mut s, KeyCode::Backspace);
    }
    typed(&mut s, "label:web");
    assert!(
        s.settle(WAIT, |app| app.board.column(Column::Ready).len() == 2)
            .await
    );
    key(&mut s, KeyCode::Enter);
    key(&mut s, KeyCode::Esc);
    assert!(
        s.settle(WAIT, |app| app.board.column(Column::Ready).len() == 3)
            .await,
        "esc clears"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_disk_shows_without_a_key_press() {
    let repo = TestRepo::with_loom("yaml");
    let id = repo.create("Old title", &[]);
    let mut s = open(&repo);
    assert!(s.settle(WAIT, |app| app.board.total == 1).await);
    // Someone else edits the file (an editor, git pull, another tool).
    let path = format!(".beads/beads/{id}.yaml");
    let text = repo
        .read_string(&path)
        .replace("title: Old title", "title: New title from disk");
    repo.write(&path, text);
    assert!(
        s.settle(WAIT, |app| app
            .board
            .column(Column::Ready)
            .first()
            .map(|c| c.title.as_str())
            == Some("New title from disk"))
            .await,
        "the watcher brought the change in"
    );
    // A new bead by another process too.
    repo.create("Made elsewhere", &[]);
    assert!(s.settle(WAIT, |app| app.board.total == 2).await);
    let shown = screen(&mut s, 120, 30);
    assert!(
        shown.contains("New title from disk") && shown.contains("Made elsewhere"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_view_loads_fields_dependencies_and_history() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("Base work", &[]);
    let b = repo.create("Built on it", &["-d", "Needs **the base**."]);
    repo.ok(&["dep", "add", &b, &a]);
    repo.ok(&["comment", &b, "Looks doable"]);
    let mut s = open(&repo);
    assert!(s.settle(WAIT, |app| app.board.total == 2).await);
    select(&mut s, &b);
    key(&mut s, KeyCode::Enter);
    assert_eq!(s.app.view, View::Detail);
    assert!(
        s.settle(WAIT, |app| app.detail.detail.is_some()
            && app.detail.history.is_some())
            .await,
        "detail and history arrive"
    );
    let text = screen(&mut s, 160, 48);
    for want in [
        "Built on it",
        "the base",
        &a,
        "Base work",
        "Looks doable",
        "dep_added",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // Follow the dependency link to a; its dependents show b.
    key(&mut s, KeyCode::Enter);
    assert!(
        s.settle(WAIT, |app| app.detail.id == a
            && app.detail.detail.is_some())
            .await
    );
    let text = screen(&mut s, 160, 48);
    assert!(text.contains(&b), "{text}");
    key(&mut s, KeyCode::Esc);
    assert_eq!(s.app.view, View::Board);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_edits_are_refused_with_a_message_and_lose_nothing() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("Base", &[]);
    let b = repo.create("Top", &[]);
    repo.ok(&["dep", "add", &b, &a]);
    let mut s = open(&repo);
    assert!(s.settle(WAIT, |app| app.board.total == 2).await);
    // a depending on b would be a cycle.
    select(&mut s, &a);
    key(&mut s, KeyCode::Char('d'));
    typed(&mut s, "top");
    key(&mut s, KeyCode::Enter);
    assert!(
        s.settle(WAIT, |app| app.message.as_ref().is_some_and(|m| m.0))
            .await,
        "an error message"
    );
    let msg = s.app.message.clone().unwrap().1;
    assert!(msg.contains("cycle"), "{msg}");
    // Closing b's blocker... closing b while a is open is fine; closing a blocked bead is not.
    select(&mut s, &b);
    key(&mut s, KeyCode::Char('x'));
    key(&mut s, KeyCode::Enter);
    assert!(
        s.settle(WAIT, |app| app
            .message
            .as_ref()
            .is_some_and(|m| m.1.contains("blocked by")))
            .await,
        "closing a blocked bead is refused"
    );
    assert_eq!(column_of(&s, &b), Some(Column::Blocked));
}

/// A window on `repo` with no agents of its own, using the data dir that `loom` processes of
/// the test environment use.
fn viewer(repo: &TestRepo) -> Session {
    let mut ws = workspace(repo);
    ws.config.repo_data_dir = Some(loom::config::repo_data_dir_in(
        &repo.config_dir().join("data"),
        &ws.layout().root,
    ));
    session(ws, Err("no agents in this window".into()))
}

/// `loom run` in another process, against `server`.
fn other_run(repo: &TestRepo, server: &crate::llm_server::LlmServer) -> std::process::Child {
    let mut run = repo.command(&["run", "--max-beads", "1"]);
    run.env("TOKENHUB_URL", server.url())
        .env("TOKENHUB_API_KEY", "tokenhub_follow_do_not_leak")
        .env("LOOM_MODEL", "test-model")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    run.spawn().unwrap()
}

/// A repository where agents need no review.
fn unreviewed() -> TestRepo {
    let repo = TestRepo::with_loom("yaml");
    repo.write(".loom/config.yaml", "review: false\n");
    repo.git(&["add", "."]);
    repo.git(&["commit", "-qm", "config"]);
    repo
}

/// A run in another process (`loom run`) shows live in an open window: its agents, its
/// model text and its end arrive through the run's event log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_s_run_shows_live() {
    use crate::llm_server::{LlmServer, Reply};
    let server = LlmServer::start();
    let repo = unreviewed();
    let id = repo.create("Write the notes", &[]);
    server.push(Reply::tool(
        "write_file",
        serde_json::json!({"path": "notes.txt", "content": "ok\n"}),
    ));
    server.push(Reply::tool(
        "done",
        serde_json::json!({"summary": "Wrote notes.txt."}),
    ));
    let mut s = viewer(&repo);
    assert!(s.settle(WAIT, |a| a.loaded).await);
    let mut child = other_run(&repo, &server);
    let seen = s
        .settle(WAIT, |a| {
            a.live
                .agents
                .get(&id)
                .is_some_and(|agent| agent.outcome == Some(loom::event::Outcome::Merged))
                && !a.live.orchestrating
        })
        .await;
    let status = child.wait().unwrap();
    assert!(
        seen,
        "the other run's agent and end did not show: agents {:?}, orchestrating {}",
        s.app.live.agents.keys().collect::<Vec<_>>(),
        s.app.live.orchestrating
    );
    assert!(status.success(), "loom run: {status:?}");
    let text = screen(&mut s, 160, 48);
    assert!(text.contains(&id), "{text}");
    key(&mut s, KeyCode::Char('L'));
    let logs = screen(&mut s, 160, 48);
    assert!(
        logs.contains("write_file"),
        "the other run's tool calls:\n{logs}"
    );
    let log = std::fs::read_to_string(
        loom::config::repo_data_dir_in(&repo.config_dir().join("data"), repo.path())
            .join("events.jsonl"),
    )
    .unwrap();
    assert!(!log.contains("tokenhub_follow_do_not_leak"));
}

/// A followed run whose process is killed ends in the window too, its agent interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_run_that_dies_ends_here_too() {
    use crate::llm_server::{Fault, LlmServer, Reply};
    let server = LlmServer::start();
    let repo = unreviewed();
    let id = repo.create("Think for ever", &[]);
    server.push(Reply::text(&["Let me think", " about it"]).with(Fault::StallAfter(1)));
    let mut s = viewer(&repo);
    assert!(s.settle(WAIT, |a| a.loaded).await);
    let mut child = other_run(&repo, &server);
    assert!(
        s.settle(WAIT, |a| a.live.running(&id)).await,
        "the agent shows as working"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        s.settle(WAIT, |a| !a.live.orchestrating).await,
        "the dead run ends"
    );
    assert_eq!(
        s.app.live.agents.get(&id).and_then(|a| a.outcome),
        Some(loom::event::Outcome::Interrupted)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u_takes_back_your_last_change_as_a_new_commit() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("Undo me", &["-p", "2"]);
    let mut s = open(&repo);
    assert!(s.settle(WAIT, |app| app.board.total == 1).await);
    select(&mut s, &a);
    key(&mut s, KeyCode::Char('x'));
    typed(&mut s, "by mistake");
    key(&mut s, KeyCode::Enter);
    assert!(
        s.settle(WAIT, |app| app.board.find(&a).map(|x| x.0)
            == Some(Column::Done))
            .await
    );
    let commits = repo.commit_count();
    key(&mut s, KeyCode::Char('u'));
    assert!(
        s.settle(WAIT, |app| app.board.find(&a).map(|x| x.0)
            == Some(Column::Ready))
            .await,
        "the close was taken back"
    );
    assert_eq!(
        repo.commit_count(),
        commits + 1,
        "a new commit, history kept"
    );
    let last = repo.git(&["log", "-1", "--format=%B"]);
    assert!(last.contains("Loom-Event: undone"), "{last}");
    let shown = repo.json(&["show", &a]);
    let shown = if shown.is_array() {
        shown[0].clone()
    } else {
        shown
    };
    assert_eq!(shown["status"], "open");
    assert!(shown.get("close_reason").is_none(), "{shown}");
    // Nothing more of this window's to undo.
    key(&mut s, KeyCode::Char('u'));
    assert!(
        s.settle(WAIT, |app| app
            .message
            .as_ref()
            .is_some_and(|m| m.1.contains("nothing you changed")))
            .await
    );
}

/// A run whose tests fail leaves a branch and a run log: from the board, `w` shows the
/// branch's diff against its fork point, → the failing test output, → the transcript; the
/// logs pane opened with that run, and `[` browses back to it after a newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_view_shows_a_branch_diff_failing_tests_and_the_transcript() {
    use crate::orchestrate::{failed_run, run};
    let (repo, id) = failed_run();
    let server = crate::llm_server::LlmServer::start();
    let mut s = viewer(&repo);
    assert!(s.settle(WAIT, |a| a.board.find(&id).is_some()).await);
    assert!(
        s.settle(WAIT, |a| a
            .logs
            .entries
            .iter()
            .any(|e| e.text.contains("write_file")))
            .await,
        "the last run's log is there on opening"
    );
    // Go to the bead with the palette, then its work.
    key(&mut s, KeyCode::Char(':'));
    typed(&mut s, &id);
    key(&mut s, KeyCode::Enter);
    key(&mut s, KeyCode::Char('w'));
    assert_eq!(s.app.view, View::Work);
    assert!(
        s.settle(WAIT, |a| a.work.loaded().is_some()).await,
        "the work loads"
    );
    let w = s.app.work.loaded().cloned().unwrap_or_default();
    assert!(
        w.source.starts_with(&format!("loom/{id} since")),
        "{}",
        w.source
    );
    assert_eq!(w.files.len(), 1, "{:?}", w.files);
    assert_eq!(w.files[0].path, "notes.txt");
    assert_eq!((w.files[0].added, w.files[0].removed), (1, 1));
    let text = screen(&mut s, 100, 30);
    assert!(text.contains("+nope") && text.contains("-draft"), "{text}");
    key(&mut s, KeyCode::Right);
    let text = screen(&mut s, 100, 30);
    assert!(
        text.contains("FAIL: notes.txt does not say ok") && text.contains("./test.sh"),
        "{text}"
    );
    key(&mut s, KeyCode::Right);
    let text = screen(&mut s, 100, 30);
    assert!(
        text.contains("write_file") && text.contains("done"),
        "{text}"
    );
    key(&mut s, KeyCode::Esc);
    assert_eq!(s.app.view, View::Board);

    // A newer run (nothing to do) moves that one to the past; `[` brings it back.
    drop(s);
    let (out, _) = run(&repo, &server, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let mut s = viewer(&repo);
    assert!(s.settle(WAIT, |a| a.loaded).await);
    key(&mut s, KeyCode::Char('L'));
    key(&mut s, KeyCode::Char('['));
    assert!(
        s.settle(WAIT, |a| a.logs.run.as_ref().is_some_and(|r| r.index == 1))
            .await,
        "the older run"
    );
    assert!(
        s.app
            .logs
            .entries
            .iter()
            .any(|e| e.text.contains("write_file"))
    );
    let text = screen(&mut s, 100, 30);
    assert!(text.contains("run 2 of 2"), "{text}");
    key(&mut s, KeyCode::Char(']'));
    assert!(s.app.logs.run.is_none(), "back to the live log");
    key(&mut s, KeyCode::Char('['));
    key(&mut s, KeyCode::Esc);
    assert!(s.app.logs.run.is_none(), "esc leaves the past run too");
}

/// Marking three beads and closing, relabelling and re-prioritising them writes each change
/// as one commit over all three; the list view shows them and `u` takes the last one back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marked_beads_are_edited_in_bulk_from_the_board_and_the_list() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("Alpha", &["-l", "old"]);
    let b = repo.create("Beta", &["-l", "old"]);
    let c = repo.create("Gamma", &[]);
    let keep = repo.create("Delta", &[]);
    let mut s = open(&repo);
    assert!(s.settle(WAIT, |x| x.board.total == 4).await);
    for id in [&a, &b, &c] {
        select(&mut s, id);
        key(&mut s, KeyCode::Char(' '));
    }
    assert_eq!(s.app.marked.len(), 3);
    let commits = repo.commit_count();
    key(&mut s, KeyCode::Char('t'));
    typed(&mut s, "ux -old");
    key(&mut s, KeyCode::Enter);
    let labelled = |repo: &TestRepo, id: &str| repo.json(&["show", id])["labels"].clone();
    assert!(
        s.settle(WAIT, |x| x
            .message
            .as_ref()
            .is_some_and(|m| m.1.contains("3 beads relabelled")))
            .await,
        "{:?}",
        s.app.message
    );
    for id in [&a, &b, &c] {
        assert_eq!(labelled(&repo, id), serde_json::json!(["ux"]), "{id}");
    }
    assert_eq!(
        repo.commit_count(),
        commits + 1,
        "one commit for three beads"
    );
    // The list: mark two, set their priority.
    key(&mut s, KeyCode::Char('v'));
    assert_eq!(s.app.view, View::List);
    let text = screen(&mut s, 120, 30);
    assert!(text.contains("List 4") && text.contains("Gamma"), "{text}");
    while s.app.selected().map(|x| x.id.clone()) != Some(a.clone()) {
        key(&mut s, KeyCode::Down);
    }
    key(&mut s, KeyCode::Char(' '));
    key(&mut s, KeyCode::Char('g'));
    while s.app.selected().map(|x| x.id.clone()) != Some(c.clone()) {
        key(&mut s, KeyCode::Down);
    }
    key(&mut s, KeyCode::Char(' '));
    key(&mut s, KeyCode::Char('p'));
    key(&mut s, KeyCode::Char('0'));
    assert!(
        s.settle(WAIT, |x| x.board.find(&a).is_some_and(|(col, i)| x
            .board
            .column(col)[i]
            .priority
            == 0)
            && x.board
                .find(&c)
                .is_some_and(|(col, i)| x.board.column(col)[i].priority == 0))
            .await
    );
    assert_eq!(repo.json(&["show", &keep])["priority"], 2, "unmarked stays");
    assert_eq!(repo.commit_count(), commits + 2);
    // u takes the whole bulk edit back, as one new commit.
    key(&mut s, KeyCode::Char('v'));
    key(&mut s, KeyCode::Char('u'));
    assert!(
        s.settle(WAIT, |x| x.board.find(&a).is_some_and(|(col, i)| x
            .board
            .column(col)[i]
            .priority
            == 2))
            .await,
        "{:?}",
        s.app.message
    );
    assert_eq!(repo.json(&["show", &c])["priority"], 2);
    assert_eq!(repo.commit_count(), commits + 3);
}

/// `T` on a bead shows what it waits on from the store, with the critical path and a cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dependency_view_shows_the_critical_path_from_the_store() {
    let repo = TestRepo::with_loom("yaml");
    let first = repo.create("Lay the foundation", &[]);
    let second = repo.create("Build the walls", &[]);
    let top = repo.create("Put on the roof", &[]);
    repo.ok(&["dep", "add", &second, &first]);
    repo.ok(&["dep", "add", &top, &second]);
    let mut s = open(&repo);
    assert!(s.settle(WAIT, |a| a.board.total == 3).await);
    select(&mut s, &top);
    key(&mut s, KeyCode::Char('T'));
    assert_eq!(s.app.view, View::Deps);
    assert!(s.settle(WAIT, |a| a.deps.deps.is_some()).await, "loaded");
    let d = s.app.deps.deps.clone().unwrap_or_default();
    assert_eq!(d.critical, [top.clone(), second.clone(), first.clone()]);
    let text = screen(&mut s, 120, 30);
    assert!(
        text.contains(&format!("start with {first}")) && text.contains("Build the walls"),
        "{text}"
    );
    // enter re-roots on the chosen line.
    key(&mut s, KeyCode::Down);
    key(&mut s, KeyCode::Enter);
    assert!(
        s.settle(WAIT, |a| a
            .deps
            .deps
            .as_ref()
            .is_some_and(|d| d.root == second))
            .await
    );
    key(&mut s, KeyCode::Esc);
    assert_eq!(s.app.view, View::Board);
}

/// A JSONL store opens on a glimpse of its last board (the file unchanged since), then the
/// board read from the store; a changed file gets no glimpse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_store_opens_on_its_cached_first_screen() {
    let repo = TestRepo::with_loom("jsonl");
    let a = repo.create("First", &[]);
    repo.create("Second", &["--defer", "2999-01-01"]);
    {
        let mut s = viewer(&repo);
        assert!(
            s.settle(WAIT, |x| x.loaded && !x.board.glimpse && x.board.total == 2)
                .await
        );
        assert!(!s.app.board.glimpse, "no glimpse the first time");
    }
    let data = loom::config::repo_data_dir_in(&repo.config_dir().join("data"), repo.path());
    let kept = data.join("board-glimpse.json");
    let mode = std::fs::metadata(&kept).expect("kept").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let mut s = viewer(&repo);
    assert!(s.settle(WAIT, |x| x.loaded).await);
    assert!(s.app.board.glimpse, "the first board is the glimpse");
    assert_eq!(s.app.board.find(&a).map(|x| x.0), Some(Column::Ready));
    assert_eq!(s.app.board.count(Column::Deferred), 1);
    assert!(
        s.settle(WAIT, |x| !x.board.glimpse).await,
        "then the board from the store"
    );
    drop(s);
    repo.create("Third", &[]);
    let mut s = viewer(&repo);
    assert!(s.settle(WAIT, |x| x.loaded).await);
    assert!(!s.app.board.glimpse, "a changed file: no glimpse");
    assert_eq!(s.app.board.total, 3);
}

/// Setting `closed` from the status picker or the form is closing: refused while an open bead
/// blocks it, with the form kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_through_status_or_the_form_respects_blockers() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("Blocker", &[]);
    let b = repo.create("Blocked one", &[]);
    repo.ok(&["dep", "add", &b, &a]);
    let mut s = open(&repo);
    assert!(s.settle(WAIT, |x| x.board.total == 2).await);
    let commits = repo.commit_count();
    select(&mut s, &b);
    key(&mut s, KeyCode::Char('m'));
    typed(&mut s, "clo");
    key(&mut s, KeyCode::Enter);
    assert!(
        s.settle(WAIT, |x| x
            .message
            .as_ref()
            .is_some_and(|m| m.0 && m.1.contains("blocked by")))
            .await,
        "{:?}",
        s.app.message
    );
    key(&mut s, KeyCode::Char('e'));
    assert!(
        s.settle(WAIT, |x| matches!(x.overlay, Some(Overlay::Form(_))))
            .await
    );
    to_field(&mut s, "Status");
    for _ in 0..4 {
        key(&mut s, KeyCode::Right); // open → … → closed
    }
    to_field(&mut s, "Notes");
    typed(&mut s, "kept");
    ctrl_s(&mut s);
    assert!(
        s.settle(WAIT, |x| matches!(&x.overlay, Some(Overlay::Form(f)) if f.error.as_deref().is_some_and(|e| e.contains("blocked by"))))
            .await,
        "the form comes back with why"
    );
    assert_eq!(repo.commit_count(), commits, "nothing written");
    assert_eq!(repo.json(&["show", &b])["status"], "open");
}
