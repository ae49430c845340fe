//! `loom demo`: the whole pipeline on a scratch repository, offline. It builds the demo project
//! (`crate::demo`) in a temp dir and runs the orchestrator on it against the recording shipped
//! in the binary; `--keep` keeps the repository to look around in. With `--record FILE` it
//! talks to the configured endpoint instead and records the session (how the shipped
//! recording is made).

use std::path::Path;
use std::time::Duration;

use clap::Args;

use crate::agent::persona::PersonaSet;
use crate::config::Config;
use crate::demo;
use crate::error::{Error, Result};
use crate::llm::record::Replayer;
use crate::llm::{Client, ProviderConfig, ProviderFile, ReplayMatch, Tape};
use crate::orchestrator::settings::{Budget, MergeMode, RunSettings};

use super::{Ctx, llm, run};

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub exchanges: super::ModelArgs,
    /// The terminal UI's theme (with --tui).
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// Keep the scratch repository afterwards and print where it is.
    #[arg(long)]
    keep: bool,
    /// Watch it in the terminal UI (quit with q when you have seen enough).
    #[arg(long)]
    tui: bool,
}

/// One replayed chunk per this in `loom demo --tui`.
const TUI_PACE: Duration = Duration::from_millis(110);

/// The demo's client: the shipped recording, another recording (`--replay`), or the live
/// endpoint while recording (`--record`). Never the user's key for a replay.
fn client(ctx: &Ctx, ws: &crate::workspace::Workspace, watched: bool) -> Result<Client> {
    let offline = || ProviderConfig::resolve(&ProviderFile::default(), |_| None);
    if ctx.model.record.is_some() {
        return llm::client(ctx, llm::provider(ws)?);
    }
    let tape = match &ctx.model.replay {
        Some(path) => Replayer::open(path, ReplayMatch::Off)?,
        None => Replayer::parse(
            Path::new("the demo recording"),
            demo::TAPE,
            ReplayMatch::Off,
        )?,
    };
    // In the terminal UI people watch the text stream in, so it streams at a readable pace.
    let tape = if watched { tape.paced(TUI_PACE) } else { tape };
    Ok(Client::new(offline(), Tape::Replay(tape))?)
}

pub fn demo(ctx: &Ctx, a: DemoArgs) -> Result<i32> {
    let tmp = tempfile::Builder::new()
        .prefix("loom-demo-")
        .tempdir()
        .map_err(|e| Error::Other(format!("cannot create a temp directory: {e}")))?;
    let root = tmp.path().join("calc");
    if !ctx.global.quiet && !a.tui {
        eprintln!(
            "Loom demo: a scratch repository with a tiny calculator, a failing test and 3 beads\n  {}\n\
             Agents replay a recorded session: no network, no key. demo-1 goes first; then two agents work at once.\n",
            root.display()
        );
    }
    let mut ws = demo::scaffold(&root)?;
    // The demo is the same everywhere: the user's configuration does not apply.
    ws.config = Config::default();
    ws.config.repo_data_dir = Some(tmp.path().join("data"));
    let settings = RunSettings {
        test_command: Some("./test.sh".into()),
        test_timeout: Duration::from_secs(60),
        target: "main".into(),
        max_agents: 2,
        review: true,
        merge: MergeMode::Auto,
        budget: Budget::from_file(&Default::default()),
        beads: Vec::new(),
        max_beads: None,
        timeout: Some(Duration::from_secs(300)),
        max_tokens: None,
        limits: Default::default(),
        provider_down_limit: Duration::from_secs(30),
        idle_exit: true,
        agent: Default::default(),
        notify_command: None,
    };
    let client = client(ctx, &ws, a.tui)?;
    let personas = PersonaSet::load(None, Some(&root));
    let repo = ws.require_repo()?.clone();
    if a.tui {
        let theme = super::tui::theme(ctx, &ws.config)?;
        let user = Config::load(None)?;
        let keys = super::tui::keys(&user)?;
        let tui = crate::tui::settings::TuiFile::from_config(&user)?;
        let code = crate::tui::runtime::run(crate::tui::runtime::Options {
            ws,
            theme,
            keys,
            agents: Ok(crate::tui::worker::AgentSetup {
                client,
                settings,
                personas: Some(personas),
                helper: std::env::current_exe().ok(),
            }),
            auto: true,
            mouse: tui.mouse.unwrap_or(true),
            notify: tui.notify_style(),
            remote: None,
        })?;
        if a.keep {
            let kept = tmp.keep();
            ctx.say(&format!("Kept: {}", kept.join("calc").display()))?;
        }
        return Ok(code);
    }
    let summary = run::execute(ctx, ws, client, settings, "loom demo", Some(personas))?;
    run::finish(ctx, &summary, None)?;
    if !ctx.global.json && !ctx.global.quiet {
        let log = repo
            .git_ok(
                &["log", "--oneline", "--no-decorate", "-n", "14", "main"],
                &[],
                None,
            )
            .unwrap_or_default();
        ctx.say(&format!(
            "\nmain now reads (newest first):\n{}",
            log.trim_end()
        ))?;
    }
    if a.keep {
        let kept = tmp.keep();
        ctx.say(&format!(
            "\nKept: {}\n  cd {}   then try `loom list --all`, `loom show demo-2`, `loom log demo-1`, `git log --stat`",
            kept.display(),
            kept.join("calc").display()
        ))?;
    } else if !ctx.global.json && !ctx.global.quiet {
        eprintln!("\n(The scratch repository was removed; `loom demo --keep` keeps it.)");
    }
    Ok(summary.exit_code)
}
