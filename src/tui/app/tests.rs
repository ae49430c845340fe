use std::sync::Arc;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::tui::model::{Card, Decision};

fn card(id: &str) -> Card {
    Card {
        id: id.into(),
        title: format!("Title {id}"),
        priority: 2,
        issue_type: "task".into(),
        status: "open".into(),
        assignee: None,
        stage: None,
        agent: None,
        note: None,
    }
}

fn app_with(columns: [Vec<&str>; 5]) -> App {
    let mut app = App::new(
        Theme::default_theme(),
        KeyMap::default(),
        RepoInfo::default(),
        Instant::now(),
    );
    let mut board = Board::default();
    for (i, ids) in columns.iter().enumerate() {
        board.columns[i] = ids.iter().map(|id| card(id)).collect();
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
    assert_eq!(cmds, [Command::SetFilter(Filter { text: "b".into() })]);
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
        press(&mut app, 'y'),
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
    assert!(matches!(app.overlay, Some(Overlay::Help)));
    press(&mut app, 'j');
    assert!(
        matches!(app.overlay, Some(Overlay::Help)),
        "other keys do nothing"
    );
    code(&mut app, KeyCode::Esc);
    assert!(app.overlay.is_none());
}
