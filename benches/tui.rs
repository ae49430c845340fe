//! TUI rendering: one full frame of the kanban with 10,000 beads at 200×60, and the logs and
//! detail views with 100,000 buffered log lines (following, scrolled back, filtered to one
//! bead), and the pair pane over 1,000 exchanges; the step-8 views: the Work view's diff of
//! 5,000 lines, the dependency view over 1,000 beads, the usage charts over 10,000 usage
//! events, and the list view over 10,000 beads. Frames are drawn into ratatui's `TestBackend` (the terminal's own write is the same
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

/// A diff of `files` files, `lines` changed lines each.
fn diff_text(files: usize, lines: usize) -> String {
    let mut d = String::new();
    for f in 0..files {
        d.push_str(&format!(
            "diff --git a/src/m{f}.rs b/src/m{f}.rs\nindex 1..2 100644\n--- a/src/m{f}.rs\n+++ b/src/m{f}.rs\n"
        ));
        for h in 0..lines / 10 {
            d.push_str(&format!("@@ -{0},10 +{0},10 @@ fn f{h}() {{\n", h * 10 + 1));
            for i in 0..5 {
                d.push_str(&format!("-    let old_{i} = compute({i}, \"{h}\");\n"));
                d.push_str(&format!(
                    "+    let new_{i} = compute_better({i}, \"{h}\");\n"
                ));
            }
        }
    }
    d
}

fn step8_views(c: &mut Criterion) {
    let t0 = Instant::now();
    let now = t0 + Duration::from_secs(60);
    let beads = loom::synth::beads(10_000, "b", 7);
    let mut g = c.benchmark_group("tui step 8");
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let draw = |term: &mut Terminal<TestBackend>, a: &App| {
        term.draw(|f| loom::tui::ui::draw(f, a, now)).unwrap();
    };

    // The Work view on a 5,000-line diff (one file), scrolled to its middle.
    let mut a = app(&beads[..200], t0);
    key(&mut a, KeyCode::Char('w'));
    let id = a.work.id.clone();
    let mut files = loom::tui::work::parse_diff(&diff_text(1, 5_000));
    loom::tui::work::highlight(&mut files);
    let work = loom::tui::work::Work {
        id,
        source: "loom/b-1 since 1a2b3c4".into(),
        files,
        ..Default::default()
    };
    g.bench_function("parse a 5,000-line diff (worker, once)", |b| {
        let text = diff_text(1, 5_000);
        b.iter(|| loom::tui::work::parse_diff(&text))
    });
    g.bench_function("highlight a 5,000-line Rust diff (worker, once)", |b| {
        let parsed = loom::tui::work::parse_diff(&diff_text(1, 5_000));
        b.iter(|| {
            let mut files = parsed.clone();
            loom::tui::work::highlight(&mut files);
            files
        })
    });
    a.event(AppEvent::Work(Box::new(work)), now);
    for _ in 0..120 {
        key(&mut a, KeyCode::PageDown);
    }
    g.bench_function("work frame, diff of 5,000 lines, 200x60", |b| {
        b.iter(|| draw(&mut term, &a))
    });

    // The dependency view of a bead over 1,000 beads: a chain of 1,000 and a fan of blockers.
    let mut deps_beads = loom::synth::beads(1_000, "d", 3);
    for i in 0..deps_beads.len() - 1 {
        let on = deps_beads[i + 1].id.clone();
        let from = deps_beads[i].id.clone();
        deps_beads[i].status = "open".into();
        deps_beads[i].dependencies = vec![loom::bead::Dependency {
            issue_id: from,
            depends_on_id: on,
            dep_type: "blocks".into(),
            ..Default::default()
        }];
    }
    let root = deps_beads[0].id.clone();
    g.bench_function("dependency view model, 1,000 beads (worker, once)", |b| {
        b.iter(|| loom::tui::deps::build(&deps_beads, &root))
    });
    let mut a = app(&deps_beads, t0);
    a.deps.root = root.clone();
    a.view = loom::tui::app::View::Deps;
    let d = loom::tui::deps::build(&deps_beads, &root).unwrap();
    a.event(AppEvent::Deps(Box::new(d)), now);
    for _ in 0..3 {
        key(&mut a, KeyCode::PageDown);
    }
    g.bench_function("dependency frame, 1,000 beads, 200x60", |b| {
        b.iter(|| draw(&mut term, &a))
    });

    // The usage charts over 10,000 usage events: 16 agents, 200 beads, 3 models, 2 hours.
    let mut a = app(&beads[..200], t0);
    for i in 0..10_000u64 {
        let usage = loom::llm::Usage {
            prompt_tokens: 900 + i % 300,
            completion_tokens: 100 + i % 50,
            total_tokens: 1000 + i % 350,
            cost_usd: Some(0.001 * (i % 7) as f64),
        };
        let bead = format!("b-{}", i % 200);
        let mut e = Event::about(bead, EventKind::Usage { usage }).by(format!("agent{}", i % 16));
        e.at = "2026-11-21T10:41:07Z".into();
        a.event(
            AppEvent::Run(Box::new(e)),
            t0 + Duration::from_millis(i * 720),
        );
    }
    key(&mut a, KeyCode::Char('U'));
    g.bench_function("usage frame, 10,000 usage events, by agent, 200x60", |b| {
        b.iter(|| draw(&mut term, &a))
    });
    key(&mut a, KeyCode::Right);
    g.bench_function("usage frame, 10,000 usage events, by bead, 200x60", |b| {
        b.iter(|| draw(&mut term, &a))
    });

    // The list view over 10,000 beads.
    let mut a = app(&beads, t0);
    key(&mut a, KeyCode::Char('v'));
    for _ in 0..50 {
        key(&mut a, KeyCode::PageDown);
    }
    g.bench_function("list frame, 10k beads, 200x60", |b| {
        b.iter(|| draw(&mut term, &a))
    });
    g.bench_function("list sort by title, 10k beads (on o)", |b| {
        b.iter(|| {
            a.list.sort = loom::tui::list::ListSort::Title;
            let board = std::sync::Arc::clone(&a.board);
            a.list.rebuild(&board, None);
        })
    });
    g.finish();
}

criterion_group!(benches, frames, step8_views);
criterion_main!(benches);
