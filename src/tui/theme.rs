//! Themes: semantic colour roles (accent, muted, success, warning, error, priorities, status
//! columns, …) read from YAML. The shipped themes (`themes/*.yaml`) are compiled in; the user's
//! `<config dir>/themes/*.yaml` add or replace them by name. With `NO_COLOR` every role keeps
//! its modifiers (bold, dim, reverse) and loses its colours.

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::error::{Error, Result};

/// What a colour means. Widgets ask for a role, never for a colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Text,
    Muted,
    Accent,
    Selection,
    Border,
    BorderFocus,
    Title,
    Success,
    Warning,
    Error,
    Key,
    P0,
    P1,
    P2,
    P3,
    P4,
    ColumnReady,
    ColumnBlocked,
    ColumnInProgress,
    ColumnReview,
    ColumnDone,
    You,
    Agent,
}

impl Role {
    pub const ALL: [Role; 23] = [
        Role::Text,
        Role::Muted,
        Role::Accent,
        Role::Selection,
        Role::Border,
        Role::BorderFocus,
        Role::Title,
        Role::Success,
        Role::Warning,
        Role::Error,
        Role::Key,
        Role::P0,
        Role::P1,
        Role::P2,
        Role::P3,
        Role::P4,
        Role::ColumnReady,
        Role::ColumnBlocked,
        Role::ColumnInProgress,
        Role::ColumnReview,
        Role::ColumnDone,
        Role::You,
        Role::Agent,
    ];

    /// The key in a theme file.
    pub fn key(self) -> &'static str {
        match self {
            Role::Text => "text",
            Role::Muted => "muted",
            Role::Accent => "accent",
            Role::Selection => "selection",
            Role::Border => "border",
            Role::BorderFocus => "border_focus",
            Role::Title => "title",
            Role::Success => "success",
            Role::Warning => "warning",
            Role::Error => "error",
            Role::Key => "key",
            Role::P0 => "p0",
            Role::P1 => "p1",
            Role::P2 => "p2",
            Role::P3 => "p3",
            Role::P4 => "p4",
            Role::ColumnReady => "column_ready",
            Role::ColumnBlocked => "column_blocked",
            Role::ColumnInProgress => "column_in_progress",
            Role::ColumnReview => "column_review",
            Role::ColumnDone => "column_done",
            Role::You => "you",
            Role::Agent => "agent",
        }
    }

    /// The role of priority `p` (0–4; others read as P4).
    pub fn priority(p: i64) -> Role {
        match p {
            i64::MIN..=0 => Role::P0,
            1 => Role::P1,
            2 => Role::P2,
            3 => Role::P3,
            _ => Role::P4,
        }
    }
}

/// A role's style as written in a file: a colour, or a map.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum RoleSpec {
    Color(String),
    Full {
        #[serde(default)]
        fg: Option<String>,
        #[serde(default)]
        bg: Option<String>,
        #[serde(default)]
        bold: bool,
        #[serde(default)]
        dim: bool,
        #[serde(default)]
        italic: bool,
        #[serde(default)]
        underline: bool,
        #[serde(default)]
        reversed: bool,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    #[serde(default)]
    description: String,
    roles: BTreeMap<String, RoleSpec>,
}

/// A resolved theme.
#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    pub description: String,
    styles: Vec<Style>,
}

/// The shipped themes, by file.
pub const BUILTIN: [(&str, &str); 4] = [
    ("dark", include_str!("../../themes/dark.yaml")),
    ("light", include_str!("../../themes/light.yaml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.yaml"),
    ),
    ("terminal", include_str!("../../themes/terminal.yaml")),
];

/// The default theme's name.
pub const DEFAULT: &str = "dark";

fn color(text: &str) -> std::result::Result<Color, String> {
    let t = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    let named = match t.as_str() {
        "default" | "reset" | "none" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "dark_gray" | "dark_grey" => Color::DarkGray,
        "light_red" => Color::LightRed,
        "light_green" => Color::LightGreen,
        "light_yellow" => Color::LightYellow,
        "light_blue" => Color::LightBlue,
        "light_magenta" => Color::LightMagenta,
        "light_cyan" => Color::LightCyan,
        "white" => Color::White,
        _ => {
            if let Some(hex) = t.strip_prefix('#')
                && hex.len() == 6
                && let Ok(v) = u32::from_str_radix(hex, 16)
            {
                return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
            }
            if let Ok(i) = t.parse::<u8>() {
                return Ok(Color::Indexed(i));
            }
            return Err(format!(
                "{text:?} is not a colour: use a name (red, light_blue, dark_gray, default, …), #rrggbb or 0–255"
            ));
        }
    };
    Ok(named)
}

fn style(spec: &RoleSpec) -> std::result::Result<Style, String> {
    match spec {
        RoleSpec::Color(c) => Ok(Style::new().fg(color(c)?)),
        RoleSpec::Full {
            fg,
            bg,
            bold,
            dim,
            italic,
            underline,
            reversed,
        } => {
            let mut s = Style::new();
            if let Some(f) = fg {
                s = s.fg(color(f)?);
            }
            if let Some(b) = bg {
                s = s.bg(color(b)?);
            }
            for (on, m) in [
                (*bold, Modifier::BOLD),
                (*dim, Modifier::DIM),
                (*italic, Modifier::ITALIC),
                (*underline, Modifier::UNDERLINED),
                (*reversed, Modifier::REVERSED),
            ] {
                if on {
                    s = s.add_modifier(m);
                }
            }
            Ok(s)
        }
    }
}

impl Theme {
    /// Parses a theme file (`origin` names it in errors). Every role must be given.
    pub fn parse(text: &str, origin: &str) -> Result<Theme> {
        let bad = |why: String| Error::Config(format!("theme {origin}: {why}"));
        let file: ThemeFile = serde_norway::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut styles = Vec::with_capacity(Role::ALL.len());
        for role in Role::ALL {
            let spec = file.roles.get(role.key()).ok_or_else(|| {
                bad(format!(
                    "role `{}` is missing (every theme sets all of: {})",
                    role.key(),
                    Role::ALL.map(Role::key).join(", ")
                ))
            })?;
            styles.push(style(spec).map_err(|e| bad(format!("role `{}`: {e}", role.key())))?);
        }
        if let Some(unknown) = file
            .roles
            .keys()
            .find(|k| !Role::ALL.iter().any(|r| r.key() == k.as_str()))
        {
            return Err(bad(format!("unknown role `{unknown}`")));
        }
        Ok(Theme {
            name: file.name,
            description: file.description,
            styles,
        })
    }

    /// The shipped default theme.
    pub fn default_theme() -> Theme {
        Theme::builtin(DEFAULT).unwrap_or_else(Theme::plain)
    }

    /// A shipped theme by name.
    pub fn builtin(name: &str) -> Option<Theme> {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(n, text)| Theme::parse(text, n).ok())
    }

    /// No colours at all, only modifiers (the fallback, and `NO_COLOR` without a theme).
    pub fn plain() -> Theme {
        let mut styles = vec![Style::new(); Role::ALL.len()];
        for (i, role) in Role::ALL.iter().enumerate() {
            styles[i] = match role {
                Role::Muted | Role::Border | Role::P4 => Style::new().add_modifier(Modifier::DIM),
                Role::Selection => Style::new().add_modifier(Modifier::REVERSED),
                Role::Accent
                | Role::Title
                | Role::Error
                | Role::P0
                | Role::BorderFocus
                | Role::You
                | Role::Agent => Style::new().add_modifier(Modifier::BOLD),
                r if r >= &Role::ColumnReady && r <= &Role::ColumnDone => {
                    Style::new().add_modifier(Modifier::BOLD)
                }
                _ => Style::new(),
            };
        }
        Theme {
            name: "plain".into(),
            description: "No colours (NO_COLOR)".into(),
            styles,
        }
    }

    /// The same theme without colours (for `NO_COLOR`): modifiers stay.
    pub fn without_colors(mut self) -> Theme {
        for s in &mut self.styles {
            s.fg = None;
            s.bg = None;
        }
        self
    }

    pub fn style(&self, role: Role) -> Style {
        let i = Role::ALL.iter().position(|r| *r == role).unwrap_or(0);
        self.styles.get(i).copied().unwrap_or_default()
    }
}

/// Every theme: the shipped ones, then the user's (`<config dir>/themes/*.yaml`), later ones
/// replacing earlier ones of the same name. Broken user files are reported and skipped.
pub fn available(config_dir: Option<&Path>) -> (Vec<Theme>, Vec<String>) {
    let mut themes: Vec<Theme> = BUILTIN
        .iter()
        .filter_map(|(n, t)| Theme::parse(t, n).ok())
        .collect();
    let mut problems = Vec::new();
    let Some(dir) = config_dir.map(|d| d.join("themes")) else {
        return (themes, problems);
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return (themes, problems);
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    for p in paths {
        let parsed = std::fs::read_to_string(&p)
            .map_err(|e| Error::io(&p, e))
            .and_then(|t| Theme::parse(&t, &p.display().to_string()));
        match parsed {
            Ok(t) => {
                themes.retain(|x| x.name != t.name);
                themes.push(t);
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    (themes, problems)
}

/// The theme called `name` (`None`: the default), without colours when `no_color`.
pub fn choose(name: Option<&str>, config_dir: Option<&Path>, no_color: bool) -> Result<Theme> {
    let (themes, _) = available(config_dir);
    let wanted = name.unwrap_or(DEFAULT);
    let theme = themes
        .into_iter()
        .find(|t| t.name == wanted)
        .ok_or_else(|| {
            let (all, _) = available(config_dir);
            Error::Usage(format!(
                "no theme named {wanted:?}; available: {} (add your own in <config dir>/themes/)",
                all.iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    Ok(if no_color {
        theme.without_colors()
    } else {
        theme
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_themes_parse_and_differ() {
        let all: Vec<Theme> = BUILTIN
            .iter()
            .map(|(n, t)| Theme::parse(t, n).unwrap())
            .collect();
        assert_eq!(all.len(), 4);
        assert_ne!(all[0].style(Role::Accent), all[1].style(Role::Accent));
        let terminal = Theme::builtin("terminal").unwrap();
        for role in Role::ALL {
            let s = terminal.style(role);
            for c in [s.fg, s.bg].into_iter().flatten() {
                assert!(
                    !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                    "{role:?} uses a colour outside the 16"
                );
            }
        }
    }

    #[test]
    fn bad_themes_say_what_is_wrong() {
        let missing = Theme::parse("name: x\nroles: {text: default}\n", "x.yaml").unwrap_err();
        assert!(
            missing.to_string().contains("role `muted` is missing"),
            "{missing}"
        );
        let dark = BUILTIN[0].1.replace("#7aa2f7", "#7aa2fz");
        let err = Theme::parse(&dark, "d.yaml").unwrap_err().to_string();
        assert!(
            err.contains("not a colour") && err.contains("accent"),
            "{err}"
        );
        let extra = format!("{}  sparkle: red\n", BUILTIN[0].1);
        assert!(
            Theme::parse(&extra, "e")
                .unwrap_err()
                .to_string()
                .contains("unknown role")
        );
    }

    #[test]
    fn no_color_keeps_modifiers_only() {
        let t = Theme::default_theme().without_colors();
        let a = t.style(Role::Accent);
        assert_eq!((a.fg, a.bg), (None, None));
        assert!(a.add_modifier.contains(Modifier::BOLD));
        assert_eq!(Role::priority(7), Role::P4);
    }

    #[test]
    fn user_themes_add_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("themes")).unwrap();
        let mine = BUILTIN[0].1.replace("name: dark", "name: mine");
        std::fs::write(dir.path().join("themes/mine.yaml"), mine).unwrap();
        std::fs::write(dir.path().join("themes/broken.yaml"), "name: [").unwrap();
        let (themes, problems) = available(Some(dir.path()));
        assert!(themes.iter().any(|t| t.name == "mine"));
        assert_eq!(problems.len(), 1);
        assert!(choose(Some("mine"), Some(dir.path()), false).is_ok());
        let err = choose(Some("nope"), Some(dir.path()), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("available: dark, light"), "{err}");
    }
}
