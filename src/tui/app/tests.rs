use std::sync::Arc;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::event::EventKind;
use crate::tui::model::{Card, Decision};
use crate::tui::pair::Phase;

fn card(id: &str) -> Card {
    Card::sample(id)
}

fn app_with(columns: [Vec<&str>; 5]) -> App {
    let mut app = App::new(
        Theme::default_theme(),
        KeyMap::default(),
        RepoInfo::default(),
        Instant::now(),
    );
    let mut board = Board::default();
    // Ready, Blocked, In progress, Review, Done (no Deferred: it folds away when empty).
    let order = [
        Column::Ready,
        Column::Blocked,
        Column::InProgress,
        Column::Review,
        Column::Done,
    ];
    for (c, ids) in order.iter().zip(columns.iter()) {
        board.columns[c.index()] = ids.iter().map(|id| card(id)).collect();
    }
    board.decisions = vec![Decision {
        id: "t-d".into(),
        title: "Which way?".into(),
        description: String::new(),
        blocks: vec!["t-b".into()],
    }];
    app.event(AppEvent::Board(Arc::new(board)), Instant::now());
    app
}

fn press(app: &mut App, c: char) -> Vec<Command> {
    app.key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(app: &mut App, c: KeyCode) -> Vec<Command> {
    app.key(KeyEvent::new(c, KeyModifiers::NONE))
}

#[test]
fn moving_around_the_board() {
    let mut app = app_with([vec!["t-a", "t-b"], vec!["t-c"], vec![], vec![], vec!["t-z"]]);
    assert_eq!(app.selected().unwrap().id, "t-a");
    press(&mut app, 'j');
    assert_eq!(app.selected().unwrap().id, "t-b");
    press(&mut app, 'j');
    assert_eq!(app.selected().unwrap().id, "t-b", "stops at the end");
    press(&mut app, 'l');
    assert_eq!(app.selected().unwrap().id, "t-c");
    press(&mut app, 'l');
    assert!(app.selected().is_none(), "an empty column");
    for _ in 0..5 {
        press(&mut app, 'l');
    }
    assert_eq!(app.column(), Column::Done);
    assert!(app.selected().is_none(), "Done is folded");
    code(&mut app, KeyCode::Enter);
    assert_eq!(app.selected().unwrap().id, "t-z", "enter unfolds it");
}

#[test]
fn the_selection_follows_a_bead_to_its_new_column() {
    let mut app = app_with([vec!["t-a", "t-b"], vec![], vec![], vec![], vec![]]);
    press(&mut app, 'j');
    let mut board = Board::default();
    board.columns[0] = vec![card("t-a")];
    board.columns[1] = vec![card("t-x"), card("t-b")];
    app.event(AppEvent::Board(Arc::new(board)), Instant::now());
    assert_eq!(app.column(), Column::Blocked);
    assert_eq!(app.selected().unwrap().id, "t-b");
}

#[test]
fn bead_actions_become_commands() {
    let mut app = app_with([vec!["t-a"], vec![], vec![], vec![], vec![]]);
    assert_eq!(
        code(&mut app, KeyCode::Enter),
        [
            Command::LoadDetail("t-a".into()),
            Command::LoadHistory("t-a".into())
        ]
    );
    assert_eq!(app.view, View::Detail);
    code(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Board);
    press(&mut app, 'p');
    assert_eq!(
        press(&mut app, '0'),
        [Command::Mutate(Mutation::Priority {
            id: "t-a".into(),
            priority: 0
        })]
    );
    press(&mut app, 'x');
    for c in "done".chars() {
        press(&mut app, c);
    }
    assert_eq!(
        code(&mut app, KeyCode::Enter),
        [Command::Mutate(Mutation::Close {
            id: "t-a".into(),
            reason: "done".into()
        })]
    );
    assert_eq!(
        press(&mut app, 'r'),
        [Command::Mutate(Mutation::Reopen { id: "t-a".into() })]
    );
    assert_eq!(press(&mut app, 's'), [Command::Start("t-a".into())]);
    assert_eq!(press(&mut app, 'S'), [Command::Auto(true)]);
    assert_eq!(press(&mut app, 'q'), [Command::Quit]);
}

#[test]
fn the_filter_applies_as_you_type_and_esc_clears_it() {
    let mut app = app_with([vec!["t-a"], vec![], vec![], vec![], vec![]]);
    press(&mut app, '/');
    let cmds = press(&mut app, 'b');
    assert_eq!(
        cmds,
        [Command::SetFilter(Filter {
            text: "b".into(),
            ..Filter::default()
        })]
    );
    code(&mut app, KeyCode::Enter);
    assert!(app.overlay.is_none());
    assert_eq!(
        code(&mut app, KeyCode::Esc),
        [Command::SetFilter(Filter::default())]
    );
}

#[test]
fn decisions_are_answered() {
    let mut app = app_with([vec![], vec!["t-b"], vec![], vec![], vec![]]);
    press(&mut app, 'D');
    assert_eq!(app.view, View::Decisions);
    assert_eq!(
        press(&mut app, 'Y'),
        [Command::Decide {
            id: "t-d".into(),
            verdict: Verdict::Approve
        }]
    );
    press(&mut app, 'a');
    assert!(
        code(&mut app, KeyCode::Enter).is_empty(),
        "an empty answer is not sent"
    );
    for c in "use B".chars() {
        press(&mut app, c);
    }
    assert_eq!(
        code(&mut app, KeyCode::Enter),
        [Command::Decide {
            id: "t-d".into(),
            verdict: Verdict::Answer("use B".into())
        }]
    );
}

#[test]
fn help_opens_and_closes() {
    let mut app = app_with([vec![], vec![], vec![], vec![], vec![]]);
    press(&mut app, '?');
    assert!(matches!(app.overlay, Some(Overlay::Help { .. })));
    press(&mut app, 'j');
    assert!(
        matches!(app.overlay, Some(Overlay::Help { .. })),
        "other keys do nothing"
    );
    code(&mut app, KeyCode::Esc);
    assert!(app.overlay.is_none());
}

fn pair_event(app: &mut App, session: u64, event: PairEvent) {
    app.event(AppEvent::Pair { session, event }, Instant::now());
}

fn opened(app: &mut App, session: u64) {
    pair_event(
        app,
        session,
        PairEvent::Opened {
            persona: "coder".into(),
            personas: vec!["coder".into(), "reviewer".into()],
            branch: "loom/t-a".into(),
            history: Vec::new(),
            unreadable: 0,
        },
    );
}

#[test]
fn pair_sessions_are_numbered_and_late_events_of_old_ones_dropped() {
    let mut app = app_with([vec!["t-a", "t-b"], vec![], vec![], vec![], vec![]]);
    let open_a = press(&mut app, 'c');
    assert_eq!(
        open_a,
        [Command::PairOpen {
            session: 1,
            bead: "t-a".into(),
            persona: None
        }]
    );
    opened(&mut app, 1);
    code(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Board);
    assert!(press(&mut app, 'c').is_empty(), "the same session again");
    code(&mut app, KeyCode::Esc);
    press(&mut app, 'j');
    assert_eq!(
        press(&mut app, 'c'),
        [
            Command::PairClose,
            Command::PairOpen {
                session: 2,
                bead: "t-b".into(),
                persona: None
            }
        ]
    );
    // The first session's last words arrive late: not for this pane.
    pair_event(
        &mut app,
        1,
        PairEvent::Finished {
            ok: true,
            summary: "old".into(),
        },
    );
    let p = app.pair.as_ref().unwrap();
    assert_eq!((p.bead.as_str(), p.phase), ("t-b", Phase::Opening));
    assert!(p.entries.is_empty());
}

#[test]
fn a_question_while_the_pane_is_hidden_is_said_and_a_failed_pane_reopens() {
    let mut app = app_with([vec!["t-a"], vec![], vec![], vec![], vec![]]);
    press(&mut app, 'c');
    opened(&mut app, 1);
    for c in "go".chars() {
        press(&mut app, c);
    }
    assert_eq!(
        code(&mut app, KeyCode::Enter),
        [Command::PairSend("go".into())]
    );
    code(&mut app, KeyCode::Esc);
    pair_event(
        &mut app,
        1,
        PairEvent::Ask {
            title: "run_command make".into(),
            preview: vec![],
        },
    );
    let said = app
        .message
        .as_ref()
        .map(|m| m.1.clone())
        .unwrap_or_default();
    assert!(
        said.contains("asks to run_command make — c to answer"),
        "{said}"
    );
    press(&mut app, 'c');
    assert_eq!(
        press(&mut app, 'y'),
        [Command::PairAnswer(crate::agent::run::Confirm::Yes)]
    );
    pair_event(&mut app, 1, PairEvent::Lost("broke".into()));
    code(&mut app, KeyCode::Esc);
    assert_eq!(
        press(&mut app, 'c'),
        [
            Command::PairClose,
            Command::PairOpen {
                session: 2,
                bead: "t-a".into(),
                persona: None
            }
        ],
        "a session that cannot talk opens again"
    );
}

#[test]
fn no_pairing_on_a_bead_an_agent_works_on() {
    let mut app = app_with([vec![], vec![], vec!["t-a"], vec![], vec![]]);
    app.event(
        AppEvent::Run(Box::new(crate::event::Event::about(
            "t-a",
            EventKind::AgentStarted {
                persona: "coder".into(),
                model: "m".into(),
                round: 1,
            },
        ))),
        Instant::now(),
    );
    press(&mut app, 'l');
    press(&mut app, 'l');
    assert!(press(&mut app, 'c').is_empty());
    assert_eq!(app.view, View::Board);
    assert!(
        app.message
            .as_ref()
            .is_some_and(|m| m.0 && m.1.contains("an agent works on t-a"))
    );
}

fn draw(app: &App) {
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).unwrap();
    term.draw(|f| crate::tui::ui::draw(f, app, Instant::now()))
        .unwrap();
}

fn mouse(app: &mut App, kind: crossterm::event::MouseEventKind, x: u16, y: u16) -> Vec<Command> {
    app.mouse(crossterm::event::MouseEvent {
        kind,
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    })
}

#[test]
fn the_mouse_selects_opens_and_scrolls() {
    use crossterm::event::{MouseButton, MouseEventKind as M};
    let mut app = app_with([vec!["t-a", "t-b"], vec!["t-c"], vec![], vec![], vec!["t-z"]]);
    draw(&app);
    let ready = app.column_areas.get()[0];
    let second = ready.y + crate::tui::ui::board::CARD + 1;
    assert!(mouse(&mut app, M::Down(MouseButton::Left), ready.x + 2, second).is_empty());
    assert_eq!(app.selected().unwrap().id, "t-b", "a click selects");
    assert_eq!(
        mouse(&mut app, M::Down(MouseButton::Left), ready.x + 2, second),
        [
            Command::LoadDetail("t-b".into()),
            Command::LoadHistory("t-b".into())
        ],
        "a click on the selected card opens it"
    );
    code(&mut app, KeyCode::Esc);
    draw(&app);
    mouse(&mut app, M::ScrollUp, ready.x + 2, ready.y);
    assert_eq!(
        app.selected().unwrap().id,
        "t-a",
        "the wheel moves the selection"
    );
    let blocked = app.column_areas.get()[1];
    mouse(&mut app, M::ScrollDown, blocked.x + 1, blocked.y + 1);
    assert_eq!(
        app.column(),
        Column::Blocked,
        "in the column under the pointer"
    );
    let done = app.column_areas.get()[Column::Done.index()];
    mouse(&mut app, M::Down(MouseButton::Left), done.x + 1, done.y);
    assert!(!app.done_folded, "a click opens Done");
    press(&mut app, 'D');
    assert_eq!(app.view, View::Decisions);
    assert!(mouse(&mut app, M::Moved, 1, 1).is_empty());
    app.overlay = Some(Overlay::help());
    assert!(
        mouse(&mut app, M::ScrollDown, 1, 1).is_empty(),
        "overlays keep the focus"
    );
}

#[test]
fn a_new_decision_is_told_once_and_those_waiting_at_start_are_not() {
    let mut app = app_with([vec!["t-a"], vec!["t-b"], vec![], vec![], vec![]]);
    let mut board = (*app.board).clone();
    let again = app.event(AppEvent::Board(Arc::new(board.clone())), Instant::now());
    assert!(
        !again.iter().any(|c| matches!(c, Command::Notify { .. })),
        "t-d was there when the window opened"
    );
    board.decisions.push(Decision {
        id: "t-e".into(),
        title: "Merge shop-77d?".into(),
        description: String::new(),
        blocks: vec!["t-a".into()],
    });
    let told = app.event(AppEvent::Board(Arc::new(board.clone())), Instant::now());
    let notes: Vec<&Command> = told
        .iter()
        .filter(|c| matches!(c, Command::Notify { .. }))
        .collect();
    assert_eq!(notes.len(), 1, "{told:?}");
    assert!(
        matches!(notes[0], Command::Notify { body, .. } if body.contains("t-e Merge shop-77d?"))
    );
    let quiet = app.event(AppEvent::Board(Arc::new(board)), Instant::now());
    assert!(!quiet.iter().any(|c| matches!(c, Command::Notify { .. })));
}

#[test]
fn the_palette_runs_any_action_and_goes_to_a_bead_by_id() {
    let mut app = app_with([vec!["t-a"], vec!["t-b"], vec![], vec![], vec!["t-c"]]);
    press(&mut app, ':');
    assert!(matches!(app.overlay, Some(Overlay::Palette(_))));
    for c in "t-c".chars() {
        press(&mut app, c);
    }
    code(&mut app, KeyCode::Enter);
    assert!(app.overlay.is_none());
    assert_eq!(app.selected().unwrap().id, "t-c", "went to the closed bead");
    assert_eq!(app.column(), Column::Done);
    // An action by (part of) its description.
    press(&mut app, ':');
    for c in "this help".chars() {
        press(&mut app, c);
    }
    code(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.overlay, Some(Overlay::Help { .. })),
        "the help opened"
    );
    code(&mut app, KeyCode::Esc);
    press(&mut app, ':');
    for c in "nowhere-xyz".chars() {
        press(&mut app, c);
    }
    assert!(code(&mut app, KeyCode::Enter).is_empty());
    assert!(
        matches!(app.overlay, Some(Overlay::Palette(_))),
        "nothing matches: it stays open"
    );
    code(&mut app, KeyCode::Esc);
    assert!(app.overlay.is_none());
}

#[test]
fn y_copies_the_selected_beads_id_and_only_y_does() {
    let mut app = app_with([vec!["t-a"], vec![], vec![], vec![], vec![]]);
    assert_eq!(press(&mut app, 'y'), [Command::Yank("t-a".into())]);
    press(&mut app, 'D');
    assert_eq!(
        press(&mut app, 'Y'),
        [Command::Decide {
            id: "t-d".into(),
            verdict: Verdict::Approve
        }],
        "approving a decision is Y"
    );
}

#[test]
fn the_detail_and_its_history_load_again_when_the_board_changes() {
    let mut app = app_with([vec!["t-a"], vec![], vec![], vec![], vec![]]);
    code(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Detail);
    let board = (*app.board).clone();
    let again = app.event(AppEvent::Board(Arc::new(board)), Instant::now());
    assert!(
        again.contains(&Command::LoadDetail("t-a".into())),
        "{again:?}"
    );
    assert!(
        again.contains(&Command::LoadHistory("t-a".into())),
        "{again:?}"
    );
}

#[test]
fn marked_beads_take_a_bulk_edit_in_one_mutation() {
    let mut app = app_with([vec!["t-a", "t-b", "t-c"], vec![], vec![], vec![], vec![]]);
    code(&mut app, KeyCode::Char(' ')); // marks t-a, moves to t-b
    code(&mut app, KeyCode::Char(' ')); // marks t-b
    assert_eq!(app.marked.len(), 2);
    assert!(crate::tui::ui::view_state(&app).contains("2 marked"));
    press(&mut app, 'p');
    let ids = vec!["t-a".to_owned(), "t-b".to_owned()];
    assert_eq!(
        press(&mut app, '1'),
        [Command::Mutate(Mutation::Bulk {
            ids: ids.clone(),
            change: Bulk::Priority(1)
        })]
    );
    assert!(app.marked.is_empty(), "a bulk edit uses up the marks");
    for id in ["t-a", "t-c"] {
        app.marked.insert(id.into());
    }
    press(&mut app, 't');
    for c in "ux, -old".chars() {
        press(&mut app, c);
    }
    assert_eq!(
        code(&mut app, KeyCode::Enter),
        [Command::Mutate(Mutation::Bulk {
            ids: vec!["t-a".into(), "t-c".into()],
            change: Bulk::Labels {
                add: vec!["ux".into()],
                remove: vec!["old".into()]
            }
        })]
    );
    app.marked.insert("t-b".into());
    app.marked.insert("t-c".into());
    press(&mut app, 'm');
    for c in "progr".chars() {
        press(&mut app, c);
    }
    assert_eq!(
        code(&mut app, KeyCode::Enter),
        [Command::Mutate(Mutation::Bulk {
            ids: vec!["t-b".into(), "t-c".into()],
            change: Bulk::Status("in_progress".into())
        })]
    );
    // esc unmarks before it clears anything else; with no marks, keys act on the selection.
    app.marked.insert("t-a".into());
    code(&mut app, KeyCode::Esc);
    assert!(app.marked.is_empty());
    press(&mut app, 'x');
    assert_eq!(
        code(&mut app, KeyCode::Enter),
        [Command::Mutate(Mutation::Close {
            id: "t-c".into(),
            reason: "Closed".into()
        })],
        "marking moved the cursor down to t-c"
    );
}

#[test]
fn the_list_sorts_reverses_and_returns_to_the_same_bead() {
    let mut app = app_with([vec!["t-b", "t-a"], vec!["t-c"], vec![], vec![], vec![]]);
    press(&mut app, 'v');
    assert_eq!(app.view, View::List);
    let ids = |app: &App| -> Vec<String> {
        (0..app.list.order.len())
            .filter_map(|r| app.list.card(&app.board, r).map(|c| c.id.clone()))
            .collect()
    };
    assert_eq!(ids(&app), ["t-b", "t-a", "t-c"]);
    press(&mut app, 'o'); // priority: all P2, then by id
    press(&mut app, 'o'); // id
    assert_eq!(app.list.sort, crate::tui::list::ListSort::Id);
    assert_eq!(ids(&app), ["t-a", "t-b", "t-c"]);
    press(&mut app, 'O');
    assert_eq!(ids(&app), ["t-c", "t-b", "t-a"]);
    assert_eq!(
        app.selected().map(|c| c.id.as_str()),
        Some("t-b"),
        "kept t-b"
    );
    code(&mut app, KeyCode::Down);
    assert_eq!(
        code(&mut app, KeyCode::Enter),
        [
            Command::LoadDetail("t-a".into()),
            Command::LoadHistory("t-a".into())
        ]
    );
    code(&mut app, KeyCode::Esc);
    assert_eq!(
        app.view,
        View::List,
        "esc from the detail returns to the list"
    );
    press(&mut app, 'v');
    assert_eq!(app.view, View::Board);
    assert_eq!(app.selected().map(|c| c.id.as_str()), Some("t-a"));
}

#[test]
fn the_help_scrolls_and_searches() {
    let mut app = app_with([vec!["t-a"], vec![], vec![], vec![], vec![]]);
    press(&mut app, '?');
    code(&mut app, KeyCode::Down);
    code(&mut app, KeyCode::Down);
    assert!(matches!(app.overlay, Some(Overlay::Help { scroll: 2, .. })));
    press(&mut app, '/');
    for c in "undo".chars() {
        press(&mut app, c);
    }
    code(&mut app, KeyCode::Enter);
    let Some(Overlay::Help {
        search, searching, ..
    }) = &app.overlay
    else {
        panic!("the help stays open");
    };
    assert!(!searching);
    let found = help_entries(&app.keys, &search.text());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "u");
    press(&mut app, 'q');
    assert!(app.overlay.is_none());
}
