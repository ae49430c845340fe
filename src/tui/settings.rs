//! The `tui:` section of the configuration: theme, key overrides, mouse.

use serde::Deserialize;

/// The `tui:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TuiFile {
    /// A theme name: built-in (`dark`, `light`, `high-contrast`, `terminal`) or a file in the
    /// config dir's `themes/`.
    pub theme: Option<String>,
    /// Action name → key(s), e.g. `new: ctrl+n` or `quit: [q, ctrl+q]`.
    pub keys: std::collections::BTreeMap<String, KeySpec>,
    /// Take the mouse (wheel, clicks); default on. Off keeps the terminal's own selection.
    pub mouse: Option<bool>,
    /// Ring the terminal bell when a decision waits; default on.
    pub bell: Option<bool>,
    /// Also send a desktop notification (OSC 9 / OSC 777) when a decision waits; default off.
    pub notify: Option<bool>,
}

/// One key or several for an action.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum KeySpec {
    One(String),
    Many(Vec<String>),
}

impl KeySpec {
    pub fn keys(&self) -> Vec<String> {
        match self {
            KeySpec::One(k) => vec![k.clone()],
            KeySpec::Many(ks) => ks.clone(),
        }
    }
}

impl TuiFile {
    pub fn merge(&mut self, other: TuiFile) {
        if other.theme.is_some() {
            self.theme = other.theme;
        }
        if other.mouse.is_some() {
            self.mouse = other.mouse;
        }
        if other.bell.is_some() {
            self.bell = other.bell;
        }
        if other.notify.is_some() {
            self.notify = other.notify;
        }
        self.keys.extend(other.keys);
    }
}

impl TuiFile {
    /// How a window tells of a decision.
    pub fn notify_style(&self) -> super::notify::Style {
        super::notify::Style {
            bell: self.bell.unwrap_or(true),
            desktop: self.notify.unwrap_or(false),
        }
    }

    /// The `tui:` section of `config`, over all its layers.
    pub fn from_config(config: &crate::config::Config) -> crate::error::Result<TuiFile> {
        config.section("tui", TuiFile::merge)
    }
}
