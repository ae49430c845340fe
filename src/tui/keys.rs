//! Keys: every action has a name and default keys; `tui.keys` in a config file rebinds them
//! (`close: X`, `new: [n, a]`). Panes read actions, never raw keys — except text inputs, which
//! take the keys themselves.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::error::{Error, Result};

/// Something a person can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    New,
    Edit,
    EditExternal,
    Priority,
    AddDependency,
    Close,
    Reopen,
    StartStop,
    Filter,
    /// Cycle the board's sort.
    Sort,
    Search,
    SearchNext,
    ToggleDone,
    Pair,
    Board,
    Logs,
    Agents,
    Decisions,
    Usage,
    NextPane,
    Approve,
    Deny,
    Answer,
    Auto,
    Help,
    /// The last message (or error) in full.
    Message,
    /// Copy the selected bead's id to the clipboard (OSC 52).
    Yank,
    /// Take back the last change made in this window.
    Undo,
    /// The command palette: every action, and going to a bead.
    Palette,
    /// What the agents did on the bead: diff, tests, transcript.
    Work,
    /// Mark the bead for a bulk edit (or unmark it).
    Mark,
    /// Add or remove labels.
    Label,
    /// Set the status.
    Status,
    /// The beads as a dense, sortable list (or back to the board).
    List,
    /// Reverse the list's order.
    Reverse,
    /// The bead's dependencies and dependents, critical path and cycles.
    Deps,
    /// The previous file (Work) or an older run (Logs).
    Older,
    /// The next file (Work) or a newer run (Logs).
    Newer,
    Quit,
}

/// Each action: its config name, what it does (for help), its default keys.
pub const ACTIONS: &[(Action, &str, &str, &[&str])] = &[
    (Action::Up, "up", "move up", &["up", "k"]),
    (Action::Down, "down", "move down", &["down", "j"]),
    (
        Action::Left,
        "left",
        "move left (previous column)",
        &["left", "h"],
    ),
    (
        Action::Right,
        "right",
        "move right (next column)",
        &["right", "l"],
    ),
    (
        Action::PageUp,
        "page_up",
        "a page up",
        &["pageup", "ctrl+u"],
    ),
    (
        Action::PageDown,
        "page_down",
        "a page down",
        &["pagedown", "ctrl+d"],
    ),
    (Action::Top, "top", "to the top", &["home", "g"]),
    (Action::Bottom, "bottom", "to the bottom", &["end", "G"]),
    (Action::Open, "open", "open the bead / expand", &["enter"]),
    (Action::Back, "back", "back to the board / cancel", &["esc"]),
    (Action::New, "new", "new bead", &["n"]),
    (Action::Edit, "edit", "edit the bead", &["e"]),
    (
        Action::EditExternal,
        "edit_external",
        "edit the bead file in $EDITOR",
        &["E"],
    ),
    (
        Action::Priority,
        "priority",
        "set priority (then 0–4)",
        &["p"],
    ),
    (
        Action::AddDependency,
        "add_dependency",
        "add a dependency",
        &["d"],
    ),
    (Action::Close, "close", "close the bead", &["x"]),
    (Action::Reopen, "reopen", "reopen the bead", &["r"]),
    (
        Action::StartStop,
        "start_stop",
        "start or stop an agent on the bead",
        &["s"],
    ),
    (
        Action::Filter,
        "filter",
        "filter (text, label:, type:, assignee:, status:)",
        &["/"],
    ),
    (
        Action::Sort,
        "sort",
        "sort the board (priority, updated, created, title)",
        &["o"],
    ),
    (Action::Search, "search", "search the log", &["ctrl+f"]),
    (Action::SearchNext, "search_next", "next match", &["N"]),
    (
        Action::ToggleDone,
        "toggle_done",
        "fold or unfold the Done column",
        &["z"],
    ),
    (
        Action::Pair,
        "pair",
        "pair with an agent on the bead",
        &["c"],
    ),
    (Action::Board, "board", "the board", &["B", "1"]),
    (Action::Logs, "logs", "logs", &["L", "2"]),
    (Action::Agents, "agents", "agents", &["A", "3"]),
    (Action::Decisions, "decisions", "decisions", &["D", "4"]),
    (Action::Usage, "usage", "usage", &["U", "5"]),
    (Action::NextPane, "next_pane", "next pane", &["tab"]),
    (Action::Approve, "approve", "approve (decisions)", &["Y"]),
    (Action::Deny, "deny", "deny (decisions)", &["X"]),
    (Action::Answer, "answer", "answer (decisions)", &["a"]),
    (
        Action::Auto,
        "auto",
        "dispatch ready beads automatically (on/off)",
        &["S"],
    ),
    (Action::Help, "help", "this help", &["?", "f1"]),
    (
        Action::Yank,
        "yank",
        "copy the bead's id (to the clipboard, OSC 52)",
        &["y"],
    ),
    (
        Action::Undo,
        "undo",
        "undo your last change in this window (a new commit)",
        &["u"],
    ),
    (
        Action::Palette,
        "palette",
        "command palette: every action, go to a bead by id",
        &[":"],
    ),
    (
        Action::Message,
        "message",
        "the last message or error in full",
        &["!"],
    ),
    (
        Action::Work,
        "work",
        "the agents' work on the bead: diff, tests, transcript",
        &["w"],
    ),
    (
        Action::Mark,
        "mark",
        "mark the bead for a bulk edit (x p t m act on all marked)",
        &["space"],
    ),
    (Action::Label, "label", "add or remove labels", &["t"]),
    (Action::Status, "status", "set the status", &["m"]),
    (
        Action::List,
        "list",
        "the beads as a sortable list (or the board again)",
        &["v"],
    ),
    (
        Action::Reverse,
        "reverse",
        "reverse the list's order",
        &["O"],
    ),
    (
        Action::Deps,
        "deps",
        "dependency view: what it waits on, what waits on it, critical path, cycles",
        &["T"],
    ),
    (
        Action::Older,
        "older",
        "previous file (work) · older run (logs)",
        &["["],
    ),
    (
        Action::Newer,
        "newer",
        "next file (work) · newer run (logs)",
        &["]"],
    ),
    (Action::Quit, "quit", "quit", &["q", "ctrl+c"]),
];

/// A key as written in config: `j`, `G`, `enter`, `ctrl+d`, `shift+tab`, `f1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub code: KeyCodeKey,
    pub ctrl: bool,
    pub alt: bool,
}

/// The comparable part of a key code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCodeKey {
    Char(char),
    F(u8),
    Named(&'static str),
}

const NAMED: &[(&str, KeyCode)] = &[
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("delete", KeyCode::Delete),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("space", KeyCode::Char(' ')),
];

impl Key {
    pub fn parse(text: &str) -> std::result::Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text.trim();
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl+") {
                ctrl = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt+") {
                alt = true;
                rest = &rest[rest.len() - r.len()..];
            } else if lower.starts_with("shift+") && lower != "shift+" {
                let r = &rest[6..];
                return match r.to_ascii_lowercase().as_str() {
                    "tab" => Ok(Key {
                        code: KeyCodeKey::Named("backtab"),
                        ctrl,
                        alt,
                    }),
                    _ if r.chars().count() == 1 => Ok(Key {
                        code: KeyCodeKey::Char(
                            r.chars().flat_map(char::to_uppercase).next().unwrap_or(' '),
                        ),
                        ctrl,
                        alt,
                    }),
                    _ => Err(format!("{text:?}: shift+ goes with a letter or tab")),
                };
            } else {
                break;
            }
        }
        let lower = rest.to_ascii_lowercase();
        if let Some((name, _)) = NAMED.iter().find(|(n, _)| *n == lower) {
            let code = if *name == "space" {
                KeyCodeKey::Char(' ')
            } else {
                KeyCodeKey::Named(name)
            };
            return Ok(Key { code, ctrl, alt });
        }
        if let Some(n) = lower.strip_prefix('f')
            && let Ok(n) = n.parse::<u8>()
            && (1..=12).contains(&n)
        {
            return Ok(Key {
                code: KeyCodeKey::F(n),
                ctrl,
                alt,
            });
        }
        let mut chars = rest.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(Key {
                code: KeyCodeKey::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
                ctrl,
                alt,
            }),
            _ => Err(format!(
                "{text:?} is not a key: use a character, enter, esc, tab, up, pagedown, f1, ctrl+x, …"
            )),
        }
    }

    /// The key of a terminal key event (`None` for keys Loom does not bind).
    pub fn from_event(e: &KeyEvent) -> Option<Key> {
        let ctrl = e.modifiers.contains(KeyModifiers::CONTROL);
        let alt = e.modifiers.contains(KeyModifiers::ALT);
        let code = match e.code {
            KeyCode::Char(c) => KeyCodeKey::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
            KeyCode::F(n) => KeyCodeKey::F(n),
            other => KeyCodeKey::Named(NAMED.iter().find(|(_, k)| *k == other)?.0),
        };
        Some(Key { code, ctrl, alt })
    }

    /// How help shows it.
    pub fn label(&self) -> String {
        let mut s = String::new();
        if self.ctrl {
            s.push_str("ctrl+");
        }
        if self.alt {
            s.push_str("alt+");
        }
        match self.code {
            KeyCodeKey::Char(' ') => s.push_str("space"),
            KeyCodeKey::Char(c) => s.push(c),
            KeyCodeKey::F(n) => s.push_str(&format!("f{n}")),
            KeyCodeKey::Named(n) => s.push_str(n),
        }
        s
    }
}

/// Keys to actions.
#[derive(Clone, Debug)]
pub struct KeyMap {
    map: BTreeMap<Key, Action>,
}

/// `tui.keys` in a config file: action name → one key or a list.
pub type KeysFile = BTreeMap<String, crate::tui::settings::KeySpec>;

impl Default for KeyMap {
    fn default() -> Self {
        let mut map = BTreeMap::new();
        for (action, _, _, keys) in ACTIONS {
            for k in *keys {
                if let Ok(key) = Key::parse(k) {
                    map.insert(key, *action);
                }
            }
        }
        KeyMap { map }
    }
}

impl KeyMap {
    /// The defaults with `overrides` applied: an action given keys loses its default ones.
    pub fn with_overrides(overrides: &KeysFile) -> Result<KeyMap> {
        let mut km = KeyMap::default();
        for (name, value) in overrides {
            let action = ACTIONS
                .iter()
                .find(|(_, n, _, _)| n == name)
                .map(|(a, ..)| *a)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "tui.keys: no action named {name:?}; actions: {}",
                        ACTIONS.iter().map(|a| a.1).collect::<Vec<_>>().join(", ")
                    ))
                })?;
            let keys = value.keys();
            km.map.retain(|_, a| *a != action);
            for k in keys {
                let key =
                    Key::parse(&k).map_err(|e| Error::Config(format!("tui.keys.{name}: {e}")))?;
                km.map.insert(key, action);
            }
        }
        Ok(km)
    }

    pub fn action(&self, e: &KeyEvent) -> Option<Action> {
        self.map.get(&Key::from_event(e)?).copied()
    }

    /// The keys of `action`, for help and hints.
    pub fn keys_of(&self, action: Action) -> Vec<String> {
        self.map
            .iter()
            .filter(|(_, a)| **a == action)
            .map(|(k, _)| k.label())
            .collect()
    }

    /// The first key of `action` (for short hints), or `?`.
    pub fn hint(&self, action: Action) -> String {
        // Prefer a single character, then the rest, in the defaults' order.
        let keys = self.keys_of(action);
        ACTIONS
            .iter()
            .find(|(a, ..)| *a == action)
            .and_then(|(_, _, _, defaults)| defaults.iter().find(|d| keys.contains(&d.to_string())))
            .map(|d| (*d).to_owned())
            .or_else(|| keys.into_iter().next())
            .unwrap_or_else(|| "?".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn defaults_cover_every_action_without_clashes() {
        let km = KeyMap::default();
        // Every action is listed (Quit is the last variant).
        let listed: std::collections::BTreeSet<usize> =
            ACTIONS.iter().map(|(a, ..)| *a as usize).collect();
        assert_eq!(
            listed,
            (0..=Action::Quit as usize).collect(),
            "an action without keys or help"
        );
        let mut seen = std::collections::BTreeSet::new();
        for (action, name, _, keys) in ACTIONS {
            assert!(!keys.is_empty(), "{name}");
            for k in *keys {
                let key = Key::parse(k).unwrap_or_else(|e| panic!("{e}"));
                assert!(seen.insert(key), "{k} is bound twice");
                assert_eq!(km.map.get(&key), Some(action));
            }
        }
        assert_eq!(
            km.action(&ev(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Bottom)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Enter, KeyModifiers::NONE)),
            Some(Action::Open)
        );
        assert_eq!(
            km.action(&ev(KeyCode::F(1), KeyModifiers::NONE)),
            Some(Action::Help)
        );
        assert_eq!(km.action(&ev(KeyCode::Char('W'), KeyModifiers::NONE)), None);
    }

    #[test]
    fn overrides_replace_an_actions_keys() {
        use crate::tui::settings::KeySpec;
        let mut o = KeysFile::new();
        o.insert("close".into(), KeySpec::One("ctrl+w".into()));
        o.insert("new".into(), KeySpec::Many(vec!["n".into(), "+".into()]));
        let km = KeyMap::with_overrides(&o).unwrap();
        assert_eq!(km.action(&ev(KeyCode::Char('x'), KeyModifiers::NONE)), None);
        assert_eq!(
            km.action(&ev(KeyCode::Char('w'), KeyModifiers::CONTROL)),
            Some(Action::Close)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Char('+'), KeyModifiers::NONE)),
            Some(Action::New)
        );
        assert_eq!(km.hint(Action::Close), "ctrl+w");
        let mut bad = KeysFile::new();
        bad.insert("explode".into(), KeySpec::One("q".into()));
        assert!(
            KeyMap::with_overrides(&bad)
                .unwrap_err()
                .to_string()
                .contains("no action named")
        );
        assert!(Key::parse("hyper+q").is_err());
        assert_eq!(Key::parse("shift+tab").unwrap().label(), "backtab");
    }
}
