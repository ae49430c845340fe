//! TUI rendering: one full frame of the kanban with 10,000 beads at 200×60, and the logs and
//! detail views with 100,000 buffered log lines (following, scrolled back, filtered to one
//! bead), and the pair pane over 1,000 exchanges. Frames are drawn into ratatui's `TestBackend` (the terminal's own write is the same
//! diff either way). Also building the board model from 10,000 beads (done in the background).
//! Run: `cargo bench --bench tui`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use loom::event::{Event, EventKind};
use loom::tui::app::{App, AppEvent, Detail, RepoInfo};
use loom::tui::keys::KeyMap;
use loom::tui::model::{self, Filter};
use loom::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn app(beads: &[loom::bead::Bead], t0: Instant) -> App {
    let repo = RepoInfo {
        name: "bench".into(),
        branch: "main".into(),
    };
    let mut app = App::new(Theme::default_theme(), KeyMap::default(), repo, t0);
    let board = model::build(beads, &Filter::default(), 0);
    app.event(AppEvent::Board(Arc::new(board)), t0);
    app.done_folded = false;
    app
}

/// 100,000 log lines over 16 beads: tool calls and results, stages, test output.
fn fill_logs(app: &mut App, t0: Instant) {
    let at = || "2026-11-21T10:41:07Z".to_owned();
    for i in 0..100_000u32 {
        let bead = format!("b-{}", i % 16);
        let mut e = match i % 4 {
            0 => Event::about(
                bead,
                EventKind::ToolCall {
                    iteration: i,
                    tool: "read_file".into(),
                    arguments: serde_json::json!({"path": format!("src/file_{i}.rs")}),
                },
            )
            .by("coder"),
            1 => Event::about(
                bead,
                EventKind::ToolResult {
                    iteration: i,
                    tool: "read_file".into(),
                    ok: true,
                    summary: format!("{} lines", i % 300),
                },
            )
            .by("coder"),
            2 => Event::about(
                bead,
                EventKind::StageChanged {
                    stage: loom::event::Stage::Verifying,
                    detail: format!("round {}", i % 3),
                },
            ),
            _ => Event::about(
                bead,
                EventKind::TestOutput {
                    round: 1,
                    command: "cargo test".into(),
                    exit_code: Some(1),
                    passed: false,
                    output: "test a ... ok\ntest b ... FAILED\n".repeat(4),
                },
            ),
        };
        e.at = at();
        app.event(AppEvent::Run(Box::new(e)), t0);
    }
}

fn key(app: &mut App, code: KeyCode) {
    app.key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn frames(c: &mut Criterion) {
    let t0 = Instant::now();
    let now = t0 + Duration::from_secs(60);
    let beads = loom::synth::beads(10_000, "b", 7);
    let mut g = c.benchmark_group("tui");
    g.bench_function("board model from 10k beads", |b| {
        b.iter(|| model::build(&beads, &Filter::default(), 0))
    });
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let mut a = app(&beads, t0);
    g.bench_function("kanban frame, 10k beads, 200x60", |b| {
        b.iter(|| {
            term.draw(|f| loom::tui::ui::draw(f, &a, now)).unwrap();
        })
    });
    // Scrolled deep into the Done column.
    for _ in 0..4 {
        key(&mut a, KeyCode::Right);
    }
    key(&mut a, KeyCode::End);
    g.bench_function(
        "kanban frame, 10k beads, 200x60, scrolled to the end",
        |b| {
            b.iter(|| {
                term.draw(|f| loom::tui::ui::draw(f, &a, now)).unwrap();
            })
        },
    );

    let mut a = app(&beads[..200], t0);
    fill_logs(&mut a, t0);
    key(&mut a, KeyCode::Char('L'));
    key(&mut a, KeyCode::Char('/'));
    g.bench_function("logs frame, 100k lines, following", |b| {
        b.iter(|| {
            term.draw(|f| loom::tui::ui::draw(f, &a, now)).unwrap();
        })
    });
    for _ in 0..5 {
        key(&mut a, KeyCode::PageUp);
    }
    key(&mut a, KeyCode::Enter);
    g.bench_function("logs frame, 100k lines, scrolled back, one expanded", |b| {
        b.iter(|| {
            term.draw(|f| loom::tui::ui::draw(f, &a, now)).unwrap();
        })
    });
    a.logs.only = Some("b-3".into());
    a.logs.jump_to_end();
    g.bench_function("logs frame, 100k lines, one bead", |b| {
        b.iter(|| {
            term.draw(|f| loom::tui::ui::draw(f, &a, now)).unwrap();
        })
    });
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Enter);
    let mut bead = beads[0].clone();
    bead.description = Some("Some **markdown**\n\n- one\n- two\n\n```\ncode\n```\n".repeat(20));
    a.event(
        AppEvent::Detail(Box::new(Detail {
            bead: Box::new(bead),
            dependents: Vec::new(),
            depends_on: Vec::new(),
        })),
        now,
    );
    g.bench_function("detail frame, 100k log lines buffered", |b| {
        b.iter(|| {
            term.draw(|f| loom::tui::ui::draw(f, &a, now)).unwrap();
        })
    });

    // The pair pane over a long conversation: 1,000 exchanges with Markdown replies.
    let mut a = app(&beads[..200], t0);
    key(&mut a, KeyCode::Char('g'));
    key(&mut a, KeyCode::Char('c'));
    let said = |role: &str, content: String| loom::store::ConversationEntry {
        role: role.into(),
        content,
        time: "2026-11-21T10:41:07Z".into(),
        author: Some(if role == "user" { "ann" } else { "coder" }.into()),
        model: None,
        prompt_tokens: None,
        completion_tokens: None,
        cost_usd: None,
    };
    let history = (0..1000)
        .flat_map(|i| {
            [
                said("user", format!("Question {i}: where does the rounding happen, and why twice?")),
                said(
                    "assistant",
                    format!(
                        "In **two** places ({i}): `money.rs` and the template filter. The filter rounds \
                         again after formatting, which loses the third decimal for BHD.\n\n\
                         ```rust\nfn round(x: f64) -> f64 {{ (x * 1000.0).round() / 1000.0 }}\n```\n\n\
                         - make the filter call `round_to_minor`\n- add a BHD case to the tests\n"
                    ),
                ),
            ]
        })
        .collect();
    a.event(
        AppEvent::Pair {
            session: 1,
            event: loom::tui::pair::PairEvent::Opened {
                persona: "coder".into(),
                personas: vec!["coder".into()],
                branch: "loom/b-1".into(),
                history,
                unreadable: 0,
            },
        },
        now,
    );
    g.bench_function("pair frame, 1,000 exchanges, 200x60, at the end", |b| {
        b.iter(|| {
            term.draw(|f| loom::tui::ui::draw(f, &a, now)).unwrap();
        })
    });
    for _ in 0..30 {
        key(&mut a, KeyCode::PageUp);
    }
    g.bench_function("pair frame, 1,000 exchanges, 200x60, 300 lines back", |b| {
        b.iter(|| {
            term.draw(|f| loom::tui::ui::draw(f, &a, now)).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
