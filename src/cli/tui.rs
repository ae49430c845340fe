//! `loom` with no command: the terminal UI on the current repository (and `loom demo --tui`).
//! This file only gathers what the UI needs — the workspace, how agents run (or why they
//! cannot), the theme and the keys — and hands over to `crate::tui`.

use crate::config;
use crate::error::Result;
use crate::tui::keys::KeyMap;
use crate::tui::runtime::{self, Options};
use crate::tui::settings::TuiFile;
use crate::tui::theme::{self, Theme};
use crate::tui::worker::AgentSetup;
use crate::workspace::Workspace;

use super::{Ctx, llm, run};

/// The theme from `--theme`, else `tui.theme`, else the default; plain with `NO_COLOR` or
/// `--color never`.
pub(super) fn theme(ctx: &Ctx, ws_config: &config::Config) -> Result<Theme> {
    // The same decision as every command's output (NO_COLOR, --color, TERM=dumb).
    let no_color = !ctx.paint.color;
    let tui = TuiFile::from_config(ws_config)?;
    let name = ctx.theme.as_deref().or(tui.theme.as_deref());
    theme::choose(name, config::user_config_dir().as_deref(), no_color)
}

/// The configured keys (`tui.keys`).
pub(super) fn keys(ws_config: &config::Config) -> Result<KeyMap> {
    KeyMap::with_overrides(&TuiFile::from_config(ws_config)?.keys)
}

/// How agents run in this repository, or why they cannot (said when the user presses `s`).
fn agents(ctx: &Ctx, ws: &Workspace) -> std::result::Result<AgentSetup, String> {
    let describe = |e: crate::error::Error| format!("agents cannot run: {}", e.with_hint());
    let settings = run::settings(ctx, ws, &run::RunArgs::default()).map_err(describe)?;
    let client = llm::provider(ws)
        .and_then(|p| llm::client_for_agent(ctx, p))
        .map_err(describe)?;
    Ok(AgentSetup {
        client,
        settings,
        personas: None,
        helper: std::env::current_exe().ok(),
    })
}

pub fn tui(ctx: &Ctx, nats: &super::fleet::NatsArgs) -> Result<i32> {
    let ws = ctx.workspace()?;
    let remote = super::fleet::remote(&ws, nats)?;
    let theme = theme(ctx, &ws.config)?;
    let keys = keys(&ws.config)?;
    let agents = agents(ctx, &ws);
    let settings = TuiFile::from_config(&ws.config)?;
    runtime::run(Options {
        ws,
        theme,
        keys,
        agents,
        auto: false,
        mouse: settings.mouse.unwrap_or(true),
        notify: settings.notify_style(),
        remote,
    })
}
