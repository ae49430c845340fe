//! The TUI's pair pane driven with keys against the scripted model server on loopback: a real
//! repository, the bead's real worktree, real commits. The reply streams, a write waits for
//! `y`, a command is declined with `n`, a stalled reply is stopped with ctrl+c, and the
//! conversation is there again when the pane is opened in a new session.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use loom::llm::{Client, ProviderConfig, ProviderFile, Tape};
use loom::orchestrator::settings::{Overrides, RunSettings};
use loom::tui::app::{AppEvent, View};
use loom::tui::pair::{Entry, Phase, ToolState};
use loom::tui::runtime::Session;
use loom::tui::worker::AgentSetup;

use crate::llm_server::{Fault, LlmServer, Reply};
use crate::support::TestRepo;
use crate::tui::{key, session, typed, workspace};

const WAIT: Duration = Duration::from_secs(20);
const KEY: &str = "tokenhub_tui_pair_3f9e_do_not_leak";

fn open(repo: &TestRepo, server: &LlmServer) -> Session {
    let mut ws = workspace(repo);
    ws.config.repo_data_dir = Some(repo.config_dir().join("data"));
    let file = ProviderFile {
        url: Some(server.url()),
        model: Some("test-model".into()),
        ..ProviderFile::default()
    };
    let provider =
        ProviderConfig::resolve(&file, |k| (k == "TOKENHUB_API_KEY").then(|| KEY.to_owned()));
    let client = Client::new(provider, Tape::Live).unwrap();
    let settings =
        RunSettings::resolve(&ws.config, Some("main"), WAIT, Overrides::default()).unwrap();
    session(
        ws,
        Ok(AgentSetup {
            client,
            settings,
            personas: None,
            helper: None,
        }),
    )
}

fn screen(s: &mut Session) -> String {
    crate::tui::screen(s, 120, 40)
}

/// Handles events until the pane is in `phase` (bounded).
async fn until(s: &mut Session, phase: Phase) {
    let reached = s
        .settle(WAIT, |a| a.pair.as_ref().is_some_and(|p| p.phase == phase))
        .await;
    assert!(
        reached,
        "the pane never got to {phase:?}: {:?}",
        s.app.pair.as_ref().map(|p| (p.phase, &p.entries))
    );
}

fn phase(s: &Session) -> Option<Phase> {
    s.app.pair.as_ref().map(|p| p.phase)
}

/// Presses `c` on bead `id` on the board (once it shows).
async fn press_pair(s: &mut Session, id: &str) {
    assert!(s.settle(WAIT, |a| a.board.find(id).is_some()).await);
    let (c, i) = s.app.board.find(id).unwrap();
    s.app.col = c.index();
    s.app.rows[c.index()] = i;
    key(s, KeyCode::Char('c'));
    assert_eq!(s.app.view, View::Pair);
}

/// Opens the pair pane on `id` from the board, as a person would, and waits until it is ready.
async fn pair_on(s: &mut Session, id: &str) {
    press_pair(s, id).await;
    until(s, Phase::Ready).await;
}

fn tools(s: &Session) -> Vec<(String, ToolState)> {
    s.app
        .pair
        .as_ref()
        .map(|p| {
            p.entries
                .iter()
                .filter_map(|e| match e {
                    Entry::Tool { title, state, .. } => Some((title.clone(), state.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_in_the_tui_confirms_writes_stops_and_keeps_the_conversation() {
    let server = LlmServer::start();
    let (repo, id) = crate::support::notes_repo();

    // 1. A read (no question), a write (asks; `y`), then the answer streams.
    server.push(Reply::tool(
        "read_file",
        serde_json::json!({"path": "notes.txt"}),
    ));
    server.push(Reply::tool(
        "write_file",
        serde_json::json!({"path": "notes.txt", "content": "final\n"}),
    ));
    server.push(Reply::text(&[
        "Done: ",
        "notes.txt says ",
        "final now.\n",
        "Anything else?",
    ]));
    let mut s = open(&repo, &server);
    assert!(s.settle(WAIT, |a| a.loaded).await);
    pair_on(&mut s, &id).await;
    let first = screen(&mut s);
    assert!(
        first.contains(&format!(
            "Pair · {id} Polish the notes · coder · worktree loom/{id}"
        )),
        "{first}"
    );
    typed(&mut s, "Finish the");
    s.handle(AppEvent::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::SHIFT,
    )));
    typed(&mut s, "notes");
    key(&mut s, KeyCode::Enter);
    assert_eq!(phase(&s), Some(Phase::Replying));
    until(&mut s, Phase::Asking).await;
    let asking = screen(&mut s);
    assert!(asking.contains("write_file notes.txt"), "{asking}");
    assert!(asking.contains("+ final"), "{asking}");
    assert!(
        asking.contains("apply? [y]es  [n]o  [a]lways this session"),
        "{asking}"
    );
    assert!(
        asking.contains("▸ read_file notes.txt"),
        "the read ran without asking: {asking}"
    );
    assert_eq!(
        repo.git(&["show", &format!("loom/{id}:notes.txt")]),
        "draft\n",
        "nothing written before the answer"
    );
    key(&mut s, KeyCode::Char('y'));
    until(&mut s, Phase::Ready).await;
    let done = screen(&mut s);
    assert!(done.contains("Done: notes.txt says final now."), "{done}");
    assert!(done.contains("Anything else?"), "{done}");
    assert!(
        done.contains(&format!("changes committed on loom/{id}")),
        "{done}"
    );
    assert_eq!(
        repo.git(&["show", &format!("loom/{id}:notes.txt")]),
        "final\n"
    );
    assert_eq!(
        repo.read_string("notes.txt"),
        "draft\n",
        "the user's checkout is untouched"
    );
    let sent = server.chats()[0].json();
    let user = sent["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    assert_eq!(user, "Finish the\nnotes", "the message keeps its newline");

    // 2. A command is declined with `n`; the model is told and answers.
    server.push(Reply::tool(
        "run_command",
        serde_json::json!({"command": "rm notes.txt"}),
    ));
    server.push(Reply::text(&["Fine, I left it alone."]));
    typed(&mut s, "Clean up");
    key(&mut s, KeyCode::Enter);
    until(&mut s, Phase::Asking).await;
    assert!(screen(&mut s).contains("$ rm notes.txt"));
    key(&mut s, KeyCode::Char('n'));
    until(&mut s, Phase::Ready).await;
    let declined = tools(&s);
    assert!(
        matches!(declined.last(), Some((t, ToolState::Done { ok: false, summary })) if t.contains("rm notes.txt") && summary.contains("declined")),
        "{declined:?}"
    );
    assert_eq!(
        repo.git(&["show", &format!("loom/{id}:notes.txt")]),
        "final\n"
    );

    // 3. A reply that stalls is stopped with ctrl+c; what came is kept.
    server.push(Reply::text(&["Let me think ", "about that", "…"]).with(Fault::StallAfter(1)));
    typed(&mut s, "Why?");
    key(&mut s, KeyCode::Enter);
    assert!(
        s.settle(WAIT, |a| a.pair.as_ref().is_some_and(|p| p.writing()))
            .await,
        "the first words arrive"
    );
    s.handle(AppEvent::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    until(&mut s, Phase::Ready).await;
    assert!(!s.app.quit, "ctrl+c stopped the reply, not the app");
    let stopped = screen(&mut s);
    assert!(stopped.contains("Let me think"), "{stopped}");
    assert!(stopped.contains("— stopped by you"), "{stopped}");

    // The log on disk holds all three exchanges, committed; the key is nowhere.
    let log = repo.read_string(&format!(".beads/conversations/{id}.jsonl"));
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 6, "{log}");
    assert_eq!(entries[0]["content"], "Finish the\nnotes");
    assert_eq!(entries[5]["content"], "Let me think\n\n(stopped)");
    assert!(
        repo.git(&["log", "--format=%s"])
            .contains(&format!("loom: {id} pair: Finish the"))
    );
    assert!(!log.contains(KEY));
    s.shutdown().await;
    drop(s);

    // 4. A new window: the pane shows the conversation again.
    let mut again = open(&repo, &server);
    assert!(again.settle(WAIT, |a| a.loaded).await);
    pair_on(&mut again, &id).await;
    let reopened = screen(&mut again);
    assert!(reopened.contains("Finish the"), "{reopened}");
    assert!(reopened.contains("Fine, I left it alone."), "{reopened}");
    key(&mut again, KeyCode::Esc);
    assert_eq!(again.app.view, View::Board, "esc goes back");
    key(&mut again, KeyCode::Char('c'));
    assert_eq!(again.app.view, View::Pair, "the same session again");
    assert!(
        again
            .app
            .pair
            .as_ref()
            .is_some_and(|p| p.phase == Phase::Ready)
    );
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_the_pane_says_why_and_shows_the_history() {
    let repo = TestRepo::with_loom("yaml");
    let id = repo.create("Talk it through", &[]);
    std::fs::create_dir_all(repo.path().join(".beads/conversations")).unwrap();
    repo.write(
        &format!(".beads/conversations/{id}.jsonl"),
        "{\"role\":\"user\",\"content\":\"Earlier question\",\"time\":\"2026-11-20T10:00:00Z\"}\n",
    );
    let mut s = session(
        workspace(&repo),
        Err("no model endpoint is configured: set TOKENHUB_URL".into()),
    );
    press_pair(&mut s, &id).await;
    until(&mut s, Phase::Unavailable).await;
    let text = screen(&mut s);
    assert!(text.contains("Earlier question"), "{text}");
    assert!(
        text.contains("cannot pair: no model endpoint is configured"),
        "{text}"
    );
    typed(&mut s, "hello");
    key(&mut s, KeyCode::Enter);
    assert!(
        s.app.message.as_ref().is_some_and(|m| m.0),
        "refused with a message"
    );
}
