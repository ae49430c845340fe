//! Snapshots of every view and overlay at 80×24 and 160×48 in the dark and light themes. Each
//! snapshot is the screen's text, then a map of the colour role of every cell (a letter per
//! role, legend at the end), so a change of layout or of meaning-carrying colour shows up in
//! review. The app is built from fixed beads and fixed events; time is a fixed offset.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use loom::bead::{Bead, Comment, Dependency, Timestamp};
use loom::event::{Event, EventKind};
use loom::git::LogEntry;
use loom::llm::{Health, HealthSnapshot, Usage};
use loom::store::ConversationEntry;
use loom::tui::app::{App, AppEvent, Detail, RepoInfo};
use loom::tui::keys::KeyMap;
use loom::tui::model::{self, Filter};
use loom::tui::pair::PairEvent;
use loom::tui::theme::{Role, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];
const THEMES: [&str; 2] = ["dark", "light"];

fn ts(s: &str) -> Option<Timestamp> {
    Timestamp::parse_user(s)
}

fn bead(id: &str, title: &str, p: i64, kind: &str, status: &str) -> Bead {
    Bead {
        id: id.into(),
        title: title.into(),
        priority: p,
        issue_type: kind.into(),
        status: status.into(),
        created_at: ts("2026-11-20T09:00:00Z"),
        updated_at: ts("2026-11-20T09:30:00Z"),
        closed_at: (status == "closed")
            .then(|| ts("2026-11-20T10:00:00Z"))
            .flatten(),
        ..Bead::default()
    }
}

fn blocks(from: &str, on: &str) -> Dependency {
    Dependency {
        issue_id: from.into(),
        depends_on_id: on.into(),
        dep_type: "blocks".into(),
        ..Dependency::default()
    }
}

/// A small shop: ready, blocked (by work and by a decision), in progress, awaiting approval,
/// done.
fn beads() -> Vec<Bead> {
    let mut v = vec![
        bead(
            "shop-a3f",
            "Checkout total rounds wrong for 3-decimal currencies",
            1,
            "bug",
            "open",
        ),
        bead("shop-b01", "Add CSV export", 2, "task", "open"),
        bead("shop-e55", "Search box ignores accents", 3, "bug", "open"),
        bead("shop-k2p", "Refund flow", 2, "task", "open"),
        bead("shop-m3r", "Bump dependencies", 3, "chore", "open"),
        bead("shop-9xq", "Apple Pay button", 1, "feature", "in_progress"),
        bead("shop-77d", "Rename cart module", 2, "task", "open"),
        bead(
            "shop-d91",
            "Which payment provider for refunds?",
            1,
            "decision",
            "open",
        ),
    ];
    for i in 0..14 {
        v.push(bead(
            &format!("shop-z{i:02}"),
            &format!("Finished work {i}"),
            2,
            "task",
            "closed",
        ));
    }
    v[0].description =
        Some("Totals use `round(2)`.\n\n## Steps\n- put **JPY** in the cart\n- check out".into());
    v[0].labels = vec!["money".into(), "web".into()];
    v[0].assignee = Some("ann".into());
    v[0].comments = vec![Comment {
        author: "ann".into(),
        text: "Seen in production twice.".into(),
        created_at: ts("2026-11-20T09:10:00Z"),
        ..Comment::default()
    }];
    v[3].dependencies = vec![blocks("shop-k2p", "shop-9xq")];
    v[4].dependencies = vec![blocks("shop-m3r", "shop-d91")];
    v[5].assignee = Some("coder".into());
    let loom = serde_json::json!({"loom": {"stage": "verifying", "persona": "coder", "dispatches": 1,
        "branch": "loom/shop-9xq", "tokens": 31000, "cost_usd": 0.12}});
    v[5].metadata = Some(loom.as_object().unwrap().clone().into_iter().collect());
    let waiting = serde_json::json!({"loom": {"stage": "merge_waiting", "persona": "reviewer"}});
    v[6].metadata = Some(waiting.as_object().unwrap().clone().into_iter().collect());
    v[6].status = "blocked".into();
    v[7].description = Some("Stripe or Adyen? The refund API differs.\n\nOptions: approve = Stripe, deny = drop refunds".into());
    v
}

const AT: &str = "2026-11-21T10:41:07Z";

fn events() -> Vec<Event> {
    let at = || AT.to_owned();
    let usage = |t: u64| Usage {
        prompt_tokens: t * 3 / 4,
        completion_tokens: t / 4,
        total_tokens: t,
        cost_usd: Some(t as f64 * 0.000_004),
    };
    vec![
        Event::new(EventKind::RunStarted {
            target: "main".into(),
            max_agents: 4,
            beads_ready: 3,
        }),
        Event::new(EventKind::ProviderHealth {
            health: HealthSnapshot {
                health: Health::Healthy,
                consecutive_failures: 0,
                last_error: None,
                reachable: false,
            },
        }),
        Event::about(
            "shop-9xq",
            EventKind::AgentStarted {
                persona: "coder".into(),
                model: "qwen3-coder".into(),
                round: 1,
            },
        ),
        Event::about(
            "shop-9xq",
            EventKind::StageChanged {
                stage: loom::event::Stage::Implementing,
                detail: "round 1".into(),
            },
        ),
        Event::about(
            "shop-9xq",
            EventKind::ToolCall {
                iteration: 1,
                tool: "read_file".into(),
                arguments: serde_json::json!({"path": "src/pay/button.tsx"}),
            },
        )
        .by("coder"),
        Event::about(
            "shop-9xq",
            EventKind::ToolResult {
                iteration: 1,
                tool: "read_file".into(),
                ok: true,
                summary: "120 lines".into(),
            },
        )
        .by("coder"),
        Event::about(
            "shop-9xq",
            EventKind::ModelText {
                text: "The test expects the label \"Pay\"; updating the component.\n".into(),
            },
        )
        .by("coder"),
        Event::about(
            "shop-9xq",
            EventKind::TestOutput {
                round: 1,
                command: "npm test -- button".into(),
                exit_code: Some(1),
                passed: false,
                output:
                    "FAIL button.test.tsx\n  expected \"Pay\", got \"Buy\"\n2 failed, 41 passed\n"
                        .into(),
            },
        ),
        Event::about(
            "shop-9xq",
            EventKind::StageChanged {
                stage: loom::event::Stage::Verifying,
                detail: "`npm test`, round 2".into(),
            },
        ),
        Event::about(
            "shop-9xq",
            EventKind::Usage {
                usage: usage(31_000),
            },
        )
        .by("coder"),
        Event::about(
            "shop-77d",
            EventKind::AgentStarted {
                persona: "reviewer".into(),
                model: "qwen3-coder".into(),
                round: 1,
            },
        ),
        Event::about(
            "shop-77d",
            EventKind::ReviewVerdict {
                verdict: (true).into(),
                comments: "Clean rename.".into(),
            },
        ),
        Event::about(
            "shop-77d",
            EventKind::Usage {
                usage: usage(9_000),
            },
        )
        .by("reviewer"),
        Event::about(
            "shop-m3r",
            EventKind::DecisionNeeded {
                decision: "shop-d91".into(),
                question: "Which payment provider for refunds?".into(),
            },
        ),
        Event {
            bead: Some("shop-e55".into()),
            ..Event::new(EventKind::Error {
                message: "shop-e55 is not ready: it is blocked".into(),
            })
        },
    ]
    .into_iter()
    .map(|mut e| {
        e.at = at();
        e
    })
    .collect()
}

/// The app as a person sees it after a few minutes of work.
fn app(theme: &str, t0: Instant) -> App {
    let theme = Theme::builtin(theme).unwrap();
    let repo = RepoInfo {
        name: "shop".into(),
        branch: "main".into(),
    };
    let mut app = App::new(theme, KeyMap::default(), repo, t0);
    let board = model::build(&beads(), &Filter::default(), 0);
    app.event(AppEvent::Board(Arc::new(board)), t0);
    for (i, e) in events().into_iter().enumerate() {
        // Usage spread over minutes, for the chart.
        let at = t0 + Duration::from_secs(40 * i as u64);
        app.event(AppEvent::Run(Box::new(e)), at);
    }
    app.event(AppEvent::Tick, t0 + Duration::from_secs(600));
    app.auto = true;
    app
}

fn key(app: &mut App, code: KeyCode) {
    app.key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// What an agent did on shop-a3f: a two-file diff, failing tests, a short transcript.
fn work() -> loom::tui::work::Work {
    use loom::tui::work::{Work, highlight, last_tests, parse_diff, transcript};
    let mut diff = String::from(
        "diff --git a/src/money.rs b/src/money.rs\nindex 1a2b3c4..5d6e7f8 100644\n--- a/src/money.rs\n+++ b/src/money.rs\n@@ -10,7 +10,7 @@ pub fn total(lines: &[Line]) -> Money {\n     let sum: Decimal = lines.iter().map(|l| l.amount).sum();\n-    (sum * 100.0).round() / 100.0\n+    sum.round_dp(currency.minor_units())\n }\n",
    );
    diff.push_str("diff --git a/tests/money.rs b/tests/money.rs\nnew file mode 100644\n--- /dev/null\n+++ b/tests/money.rs\n@@ -0,0 +1,4 @@\n+#[test]\n+fn three_decimals() {\n+    assert_eq!(total(&[bhd(1.2345)]), bhd(1.235));\n+}\n");
    let events = run_events();
    let mut files = parse_diff(&diff);
    highlight(&mut files);
    Work {
        id: "shop-a3f".into(),
        source: "loom/shop-a3f since 1a2b3c4".into(),
        files,
        tests: last_tests(&events),
        steps: transcript(&events),
        run: Some("2026-11-20T09:10:00Z".into()),
    }
}

fn run_events() -> Vec<Event> {
    let at = |mut e: Event, s: &str| {
        e.at = format!("2026-11-20T09:{s}Z");
        e
    };
    vec![
        at(Event::about("shop-a3f", EventKind::AgentStarted { persona: "coder".into(), model: "gpt-5".into(), round: 1 }).by("coder"), "10:00"),
        at(Event::about("shop-a3f", EventKind::ModelText { text: "Rounding happens in two places; I will make `total` use the currency's minor units.\n".into() }).by("coder"), "10:02"),
        at(Event::about("shop-a3f", EventKind::ToolCall { iteration: 1, tool: "edit_file".into(), arguments: serde_json::json!({"path": "src/money.rs", "old": "(sum * 100.0).round() / 100.0", "new": "sum.round_dp(currency.minor_units())"}) }).by("coder"), "10:05"),
        at(Event::about("shop-a3f", EventKind::ToolResult { iteration: 1, tool: "edit_file".into(), ok: true, summary: "src/money.rs +1 −1".into() }).by("coder"), "10:05"),
        at(Event::about("shop-a3f", EventKind::TestOutput { round: 1, command: "cargo test".into(), exit_code: Some(101), passed: false, output: "running 2 tests\ntest totals ... ok\ntest three_decimals ... FAILED\n\nfailures:\n  left: 1.234\n right: 1.235\ntest result: FAILED. 1 passed; 1 failed".into() }), "10:30"),
    ]
}

fn detail() -> Detail {
    let all = beads();
    Detail {
        bead: Box::new(all[0].clone()),
        depends_on: vec![],
        dependents: vec![(
            "shop-k2p".into(),
            "blocks".into(),
            "open".into(),
            "Refund flow".into(),
        )],
    }
}

fn history() -> Vec<LogEntry> {
    let e = |c: &str, t: &str, ev: &str, s: &str| LogEntry {
        commit: c.into(),
        time: t.into(),
        actor: "ann".into(),
        event: ev.into(),
        beads: vec!["shop-a3f".into()],
        subject: s.into(),
        agent: None,
        model: None,
    };
    vec![
        e(
            "4d2c9e1",
            "2026-11-20T09:10:00+01:00",
            "commented",
            "loom: shop-a3f commented",
        ),
        e(
            "9ab0f33",
            "2026-11-20T09:00:00+01:00",
            "created",
            "loom: shop-a3f created \"Checkout total rounds wrong\"",
        ),
    ]
}

fn pair(event: PairEvent) -> AppEvent {
    AppEvent::Pair { session: 1, event }
}

fn said(role: &str, who: &str, text: &str) -> ConversationEntry {
    ConversationEntry {
        role: role.into(),
        content: text.into(),
        time: AT.into(),
        author: Some(who.into()),
        model: None,
        prompt_tokens: None,
        completion_tokens: None,
        cost_usd: None,
    }
}

/// The pair pane on shop-a3f: the log so far, a question, a reply asking to edit a file.
fn pair_session(a: &mut App, t: Instant) {
    key(a, KeyCode::Char('c'));
    a.event(
        pair(PairEvent::Opened {
            persona: "coder".into(),
            personas: vec!["coder".into(), "reviewer".into(), "planner".into()],
            branch: "loom/shop-a3f".into(),
            history: vec![
                said("user", "ann", "The rounding happens in two places, right?"),
                said(
                    "assistant",
                    "coder",
                    "Yes — `money.rs:round_to_minor` and the template filter. I'd fix the first and make the filter call it.",
                ),
            ],
            unreadable: 0,
        }),
        t,
    );
    typed(a, "Do it, and keep the filter thin");
    key(a, KeyCode::Enter);
    a.event(
        pair(PairEvent::ToolCall("read_file src/money.rs".into())),
        t,
    );
    a.event(
        pair(PairEvent::ToolResult {
            ok: true,
            summary: "read_file src/money.rs (1-80)".into(),
        }),
        t,
    );
    a.event(
        pair(PairEvent::Text(
            "The cents are rounded before the currency is known.\n".into(),
        )),
        t,
    );
    a.event(
        pair(PairEvent::ToolCall("edit_file src/money.rs".into())),
        t,
    );
    a.event(
        pair(PairEvent::Ask {
            title: "edit_file src/money.rs  +1 −1".into(),
            preview: vec![
                "- (amount * 100.0).round() / 100.0".into(),
                "+ amount.round_dp(currency.minor_units())".into(),
            ],
        }),
        t,
    );
}

/// An error as git or the store might give one: longer than any footer.
const LONG_ERROR: &str = "cannot update shop-a3f: another program changed .beads/beads/shop-a3f.yaml while Loom was writing it (its content no longer matches what Loom read at 10:41:07). Nothing was lost: Loom kept its own version in .git/loom/conflicts/shop-a3f.yaml. Compare the two, keep what you want with `loom update`, then delete the saved copy.";

/// Every screen worth pinning: (name, how to get there from the board).
type Setup = fn(&mut App, Instant);

fn screens() -> Vec<(&'static str, Setup)> {
    vec![
        ("board", |_, _| {}),
        ("board_filtered_sorted", |a, t| {
            key(a, KeyCode::Char('/'));
            typed(a, "type:task");
            key(a, KeyCode::Enter);
            key(a, KeyCode::Char('o'));
            let board = model::build(&beads(), &a.filter, 0);
            a.event(AppEvent::Board(Arc::new(board)), t);
        }),
        ("board_deferred", |a, t| {
            let mut all = beads();
            let mut later = bead("shop-q7t", "Quarterly report", 2, "task", "deferred");
            later.defer_until = ts("2027-01-15T00:00:00Z");
            all.push(later);
            all.push(bead("shop-mol", "Release molecule", 2, "molecule", "open"));
            let board = model::build(&all, &a.filter, 0);
            a.event(AppEvent::Board(Arc::new(board)), t);
            key(a, KeyCode::Char('l'));
            key(a, KeyCode::Char('l'));
        }),
        ("footer_long_error", |a, t| {
            a.message = Some((true, LONG_ERROR.into(), t));
        }),
        ("overlay_palette", |a, _| {
            key(a, KeyCode::Char(':'));
            typed(a, "shop-9");
        }),
        ("overlay_message", |a, t| {
            a.message = Some((true, LONG_ERROR.into(), t));
            key(a, KeyCode::Char('!'));
        }),
        ("board_done_open", |a, _| {
            for _ in 0..4 {
                key(a, KeyCode::Char('l'));
            }
            key(a, KeyCode::Char('z'));
        }),
        ("detail", |a, t| {
            key(a, KeyCode::Enter);
            a.event(AppEvent::Detail(Box::new(detail())), t);
            a.event(
                AppEvent::History {
                    id: "shop-a3f".into(),
                    entries: Ok(history()),
                },
                t,
            );
        }),
        ("logs", |a, _| {
            key(a, KeyCode::Char('L'));
            key(a, KeyCode::Char('/'));
            // Expand the failing test's output.
            for _ in 0..3 {
                key(a, KeyCode::Up);
            }
            key(a, KeyCode::Enter);
        }),
        ("work_diff", |a, t| {
            key(a, KeyCode::Char('w'));
            a.event(AppEvent::Work(Box::new(work())), t);
        }),
        ("work_tests", |a, t| {
            key(a, KeyCode::Char('w'));
            a.event(AppEvent::Work(Box::new(work())), t);
            key(a, KeyCode::Right);
        }),
        ("work_transcript", |a, t| {
            key(a, KeyCode::Char('w'));
            a.event(AppEvent::Work(Box::new(work())), t);
            key(a, KeyCode::Left);
            key(a, KeyCode::Down);
            key(a, KeyCode::Down);
            key(a, KeyCode::Enter);
        }),
        ("logs_past_run", |a, t| {
            key(a, KeyCode::Char('L'));
            a.event(
                AppEvent::PastRun(Box::new(loom::tui::worker::PastRun {
                    index: 2,
                    total: 5,
                    started: "2026-11-20T09:10:00Z".into(),
                    events: run_events(),
                })),
                t,
            );
        }),
        ("list", |a, _| {
            key(a, KeyCode::Char('v'));
            key(a, KeyCode::Char(' '));
            key(a, KeyCode::Char('o'));
        }),
        ("board_marked", |a, _| {
            key(a, KeyCode::Char(' '));
            key(a, KeyCode::Char(' '));
        }),
        ("overlay_labels_bulk", |a, _| {
            key(a, KeyCode::Char(' '));
            key(a, KeyCode::Char(' '));
            key(a, KeyCode::Char('t'));
            typed(a, "ux -money");
        }),
        ("overlay_status", |a, _| key(a, KeyCode::Char('m'))),
        ("overlay_help_search", |a, _| {
            key(a, KeyCode::Char('?'));
            key(a, KeyCode::Char('/'));
            typed(a, "bead");
        }),
        ("deps", |a, t| {
            key(a, KeyCode::Char('T'));
            let mut all = beads();
            // shop-a3f waits on shop-k2p, which waits on shop-9xq; shop-m3r and shop-b01 wait
            // on each other.
            all[0].dependencies = vec![
                blocks("shop-a3f", "shop-k2p"),
                blocks("shop-a3f", "shop-m3r"),
            ];
            if let Some(b) = all.iter_mut().find(|b| b.id == "shop-m3r") {
                b.dependencies.push(blocks("shop-m3r", "shop-b01"));
            }
            if let Some(b) = all.iter_mut().find(|b| b.id == "shop-b01") {
                b.dependencies = vec![blocks("shop-b01", "shop-m3r")];
            }
            let root = a.deps.root.clone();
            let d = loom::tui::deps::build(&all, &root).unwrap_or_else(|| {
                panic!(
                    "root {root:?} view {:?} sel {:?}",
                    a.view,
                    a.selected().map(|c| c.id.clone())
                )
            });
            a.event(AppEvent::Deps(Box::new(d)), t);
            key(a, KeyCode::Down);
        }),
        ("agents", |a, _| key(a, KeyCode::Char('A'))),
        ("decisions", |a, _| key(a, KeyCode::Char('D'))),
        ("usage", |a, _| key(a, KeyCode::Char('U'))),
        ("usage_by_bead", |a, _| {
            key(a, KeyCode::Char('U'));
            key(a, KeyCode::Right);
        }),
        ("overlay_help", |a, _| key(a, KeyCode::Char('?'))),
        ("overlay_new_bead", |a, _| {
            key(a, KeyCode::Char('n'));
            typed(a, "Make the login faster");
            key(a, KeyCode::Tab);
            key(a, KeyCode::Right);
        }),
        ("overlay_edit_bead", |a, t| {
            key(a, KeyCode::Char('e'));
            a.event(AppEvent::Detail(Box::new(detail())), t);
        }),
        ("overlay_new_bead_refused", |a, _| {
            key(a, KeyCode::Char('n'));
            for _ in 0..5 {
                key(a, KeyCode::Tab);
            }
            typed(a, "two words");
            a.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
        }),
        ("overlay_new_bead_labels", |a, _| {
            key(a, KeyCode::Char('n'));
            typed(a, "Add CSV export");
            for _ in 0..5 {
                key(a, KeyCode::Tab);
            }
            typed(a, "m");
        }),
        ("overlay_new_bead_parent_picker", |a, _| {
            key(a, KeyCode::Char('n'));
            for _ in 0..6 {
                key(a, KeyCode::Tab);
            }
            key(a, KeyCode::Enter);
            typed(a, "ref");
        }),
        ("overlay_dependency_picker", |a, _| {
            key(a, KeyCode::Char('d'));
            typed(a, "ref");
        }),
        ("overlay_priority", |a, _| key(a, KeyCode::Char('p'))),
        ("overlay_filter", |a, _| {
            key(a, KeyCode::Char('/'));
            typed(a, "label:money");
        }),
        ("overlay_close", |a, _| {
            key(a, KeyCode::Char('x'));
            typed(a, "fixed in 4d2c9e1");
        }),
        ("overlay_search_logs", |a, _| {
            key(a, KeyCode::Char('L'));
            a.key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL));
            typed(a, "FAIL");
        }),
        ("pair", |a, t| pair_session(a, t)),
        ("overlay_pair_persona", |a, t| {
            pair_session(a, t);
            a.event(
                pair(PairEvent::Finished {
                    ok: true,
                    summary: "qwen3-coder · 2.1k tokens in, 180 out".into(),
                }),
                t,
            );
            key(a, KeyCode::Tab);
        }),
        ("overlay_answer_decision", |a, _| {
            key(a, KeyCode::Char('D'));
            key(a, KeyCode::Char('a'));
            typed(a, "Stripe, and only full refunds");
        }),
    ]
}

/// The style of a cell as the role that gives it (first match), for the colour map.
fn role_of(theme: &Theme, fg: Color, bg: Color, m: Modifier) -> Option<Role> {
    Role::ALL.into_iter().find(|r| {
        let s = theme.style(*r);
        s.fg.unwrap_or(Color::Reset) == fg
            && s.bg.unwrap_or(Color::Reset) == bg
            && s.add_modifier == m
    })
}

fn render(app: &App, w: u16, h: u16, now: Instant) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| loom::tui::ui::draw(f, app, now)).unwrap();
    let buf = term.backend().buffer().clone();
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
    let mut legend: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut map = String::new();
    for y in 0..h {
        for x in 0..w {
            let c = &buf[(x, y)];
            text.push_str(c.symbol());
            let plain = c.fg == Color::Reset && c.bg == Color::Reset && c.modifier.is_empty();
            if plain {
                map.push('.');
                continue;
            }
            let name = match role_of(&app.theme, c.fg, c.bg, c.modifier) {
                Some(r) => r.key().to_owned(),
                None => format!("unthemed {:?}/{:?}/{:?}", c.fg, c.bg, c.modifier),
            };
            let i = legend.iter().position(|l| *l == name).unwrap_or_else(|| {
                legend.push(name.clone());
                legend.len() - 1
            });
            map.push(letters.get(i).copied().unwrap_or('?'));
        }
        text.push('\n');
        map.push('\n');
    }
    let legend: Vec<String> = legend
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{} {n}", letters.get(i).copied().unwrap_or('?')))
        .collect();
    format!(
        "{text}\ncolour roles ('.' = terminal default):\n{map}\n{}\n",
        legend.join("\n")
    )
}

#[test]
fn every_view_and_overlay_at_two_sizes_in_two_themes() {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        for theme in THEMES {
            for (name, setup) in screens() {
                for (w, h) in SIZES {
                    let t0 = Instant::now();
                    let mut a = app(theme, t0);
                    let now = t0 + Duration::from_secs(600);
                    setup(&mut a, now);
                    let screen = render(&a, w, h, now);
                    insta::assert_snapshot!(format!("tui_{name}_{w}x{h}_{theme}"), screen);
                }
            }
        }
    });
}

#[test]
fn without_colours_no_cell_has_a_colour() {
    let t0 = Instant::now();
    let now = t0 + Duration::from_secs(600);
    for (name, setup) in screens() {
        let mut a = app("dark", t0);
        a.theme = Theme::builtin("dark").unwrap().without_colors();
        setup(&mut a, now);
        let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
        term.draw(|f| loom::tui::ui::draw(f, &a, now)).unwrap();
        let buf = term.backend().buffer().clone();
        for c in &buf.content {
            assert!(
                c.fg == Color::Reset && c.bg == Color::Reset,
                "{name}: a coloured cell {:?} with NO_COLOR",
                c
            );
        }
    }
}
