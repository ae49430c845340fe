//! The command line: clap definitions mirroring bd's commands and flags, and the
//! non-interactive commands themselves (one file per group).

mod admin;
mod agent;
mod delete;
mod demo;
mod doctor;
mod fleet;
pub(crate) mod inert;
mod llm;
mod log;
mod output;
mod pair;
mod query;
mod read;
mod run;
mod search;
mod tui;
mod watch;
mod write;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::workspace::{OpenOptions, Workspace};

pub use output::ColorChoice;
use output::Painter;

/// Loom: beads (work items) kept as files in your git repository, every change a commit.
#[derive(Debug, Parser)]
#[command(name = "loom", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten, next_help_heading = "Global options")]
    pub global: Global,
    /// The terminal UI's theme: dark, light, high-contrast, terminal, or one of yours in the
    /// config dir's themes/ (default: tui.theme in the config, else dark).
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    #[command(
        flatten,
        next_help_heading = "Model exchanges (agents in the terminal UI)"
    )]
    pub exchanges: ModelArgs,
    /// Attach the terminal UI to runs coordinated through a NATS server (`loom run --nats`).
    #[command(flatten, next_help_heading = "Runs on other machines")]
    pub nats: fleet::NatsArgs,
    /// Without a command, `loom` opens the terminal UI.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print less (only ids where a command prints ids).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Who is making the change (recorded as Loom-Actor); default: git user.name.
    #[arg(long, global = true, env = "LOOM_ACTOR", hide_env = true)]
    pub actor: Option<String>,
    /// Run as if started in this directory.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Write beads without committing them (this command only).
    #[arg(long, global = true)]
    pub no_commit: bool,
    /// When to colour output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// Recording and replaying model exchanges: only for the commands that talk to a model.
#[derive(Debug, Args, Clone, Default)]
pub struct ModelArgs {
    /// Record every model exchange to this file (JSONL; no keys).
    #[arg(long, env = "LOOM_RECORD", value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Serve model exchanges from this recording instead of the network.
    #[arg(long, env = "LOOM_REPLAY", value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// How closely replayed requests must match the recording.
    #[arg(long, value_enum, default_value_t = crate::llm::ReplayMatch::Exact)]
    pub replay_match: crate::llm::ReplayMatch,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create .beads/ in this repository (YAML by default).
    Init(admin::InitArgs),
    /// Create a bead; prints its id.
    #[command(visible_alias = "new")]
    Create(write::CreateArgs),
    /// List beads (closed ones only with --all or -s closed).
    List(read::ListArgs),
    /// Show beads in full.
    Show(read::ShowArgs),
    /// Change fields of beads.
    Update(write::UpdateArgs),
    /// Close beads.
    Close(write::CloseArgs),
    /// Reopen closed beads.
    Reopen(write::ReopenArgs),
    /// Add, remove or show dependencies.
    #[command(subcommand)]
    Dep(DepCommand),
    /// Add, remove or list labels.
    #[command(subcommand)]
    Label(LabelCommand),
    /// Add a comment to a bead.
    Comment(write::CommentArgs),
    /// List a bead's comments (`comments add <id> "text"` adds one).
    Comments(query::CommentsArgs),
    /// Delete beads for good (shows what would go unless --force).
    Delete(delete::DeleteArgs),
    /// Find beads by words in their title or id.
    Search(search::SearchArgs),
    /// Count beads, optionally grouped (--by-status, --by-priority, --by-type, …).
    Count(search::CountArgs),
    /// Beads nobody has updated for a while.
    Stale(query::StaleArgs),
    /// The direct children of a bead (all statuses).
    Children(read::ChildrenArgs),
    /// Epics and how far their children are.
    #[command(subcommand)]
    Epic(EpicCommand),
    /// Beads ready to work on: open and not blocked.
    Ready(read::ReadyArgs),
    /// Beads held back by open dependencies.
    Blocked(read::BlockedArgs),
    /// Counts by status.
    Stats,
    /// Import beads from a bd JSONL export (new ids added, newer records replace older).
    Import(admin::ImportArgs),
    /// Export all beads as bd-compatible JSONL.
    Export(admin::ExportArgs),
    /// The history of a bead (or all bead changes) from git.
    Log(log::LogArgs),
    /// Switch the store between YAML and JSONL, losslessly.
    Convert(admin::ConvertArgs),
    /// Print a line for each bead created, changed or deleted on disk by others.
    Watch(fleet::WatchArgs),
    /// Check git, the store, the configuration and the LLM endpoint; say how to fix each problem.
    Doctor(DoctorArgs),
    /// Talk a bead through with the model (one exchange, kept in the bead's conversation log).
    Pair(pair::PairArgs),
    /// Run one agent on one bead in its own worktree, to the end of its loop.
    Agent(agent::AgentArgs),
    /// List the personas (built-in, yours, the repository's) and where each comes from.
    Personas(agent::PersonasArgs),
    /// List agent worktrees and their state; --sweep removes merged, clean ones.
    Worktrees(agent::WorktreesArgs),
    /// Dispatch ready beads to agents until none is left: implement, test, review, merge.
    Run(run::RunArgs),
    /// Resolve a decision bead: approve, deny, or answer "…".
    Decide(run::DecideArgs),
    /// Take work orders from a coordinator (`loom run --nats`) and work them on this machine.
    Worker(fleet::WorkerArgs),
    /// Watch the whole pipeline on a scratch repository, offline (no network, no key).
    Demo(demo::DemoArgs),
    /// Print a completion script for your shell (e.g. `loom completions bash > ~/.local/share/bash-completion/completions/loom`).
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub exchanges: ModelArgs,
    /// Also check the NATS server at URL (version, JetStream, this repository's streams).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// A NATS credentials file (JWT and NKey seed).
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_creds: Option<std::path::PathBuf>,
    /// A CA certificate (PEM) to trust for the NATS server's TLS; TLS is then required.
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_ca: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

/// Writes the completion script for `shell` to stdout.
fn completions(a: &CompletionsArgs) -> Result<()> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "loom", &mut out);
    let mut stdout = std::io::stdout();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(output::stdout_err)
}

#[derive(Debug, Subcommand)]
pub enum DepCommand {
    /// Make a bead depend on another (default type: blocks).
    Add(write::DepAddArgs),
    /// Remove a dependency.
    #[command(visible_alias = "rm")]
    Remove(write::DepRemoveArgs),
    /// Show the dependency tree of a bead.
    Tree(query::TreeArgs),
    /// List dependency cycles (over blocks and conditional-blocks).
    Cycles,
}

#[derive(Debug, Subcommand)]
pub enum EpicCommand {
    /// Each open epic with child beads: how many are closed, whether it can close.
    Status(query::EpicStatusArgs),
}

#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// Add a label: `loom label add <id>... <label>`.
    Add(write::LabelArgs),
    /// Remove a label: `loom label remove <id>... <label>`.
    Remove(write::LabelArgs),
    /// A bead's labels.
    List(query::LabelListArgs),
    /// Every label in use, with how many beads carry it.
    ListAll,
}

/// What a command needs besides its arguments.
pub(crate) struct Ctx {
    pub global: Global,
    pub paint: Painter,
    /// `--record`/`--replay` of the command that talks to a model (default: neither).
    pub model: ModelArgs,
    /// `--theme` (the terminal UI).
    pub theme: Option<String>,
}

impl Ctx {
    fn open_options(&self) -> OpenOptions {
        OpenOptions {
            dir: self.global.dir.clone(),
            actor: self.global.actor.clone(),
            no_commit: self.global.no_commit,
        }
    }

    /// Opens the workspace, printing load problems as warnings on stderr.
    pub fn workspace(&self) -> Result<Workspace> {
        Workspace::open(&self.open_options())
    }

    /// Standard output: JSON as the JSON writer escapes it; anything else made inert (data
    /// cannot drive the terminal; Loom's own colours pass when colour is on).
    pub fn out(&self) -> Box<dyn Write> {
        if self.global.json {
            Box::new(std::io::stdout().lock())
        } else {
            Box::new(inert::Inert::new(
                std::io::stdout().lock(),
                self.paint.color,
            ))
        }
    }

    /// Prints a human line on stdout (nothing with --json or --quiet).
    pub fn say(&self, line: &str) -> Result<()> {
        if self.global.json || self.global.quiet {
            return Ok(());
        }
        writeln!(self.out(), "{line}").map_err(output::stdout_err)
    }

    /// Prints what went wrong after a commit was made (e.g. a locked index).
    pub fn commit_warnings(&self, commit: Option<&crate::git::Committed>) {
        for w in commit.iter().flat_map(|c| &c.warnings) {
            self.warn(w);
        }
    }

    /// A warning on stderr.
    pub fn warn(&self, line: &str) {
        let label = self.paint_stderr("warning:", crossterm::style::Color::Yellow);
        eprintln!("{label} {}", crate::text::inert(line));
    }

    fn paint_stderr(&self, text: &str, color: crossterm::style::Color) -> String {
        use std::io::IsTerminal;
        if self.global.color != ColorChoice::Never
            && std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        {
            crossterm::style::Stylize::with(text, color).to_string()
        } else {
            text.to_owned()
        }
    }
}

/// Values of a repeatable, comma-separated flag (`-l a,b -l c`), trimmed, empties dropped.
pub(crate) fn split_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A `-p` value: `0`-`4` or `P0`-`P4`.
pub(crate) fn priority_arg(p: &str) -> Result<i64> {
    crate::bead::parse_priority(p).map_err(Error::Usage)
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let model = match &cli.command {
        None => cli.exchanges.clone(),
        Some(Command::Pair(a)) => a.exchanges.clone(),
        Some(Command::Agent(a)) => a.exchanges.clone(),
        Some(Command::Run(a)) => a.exchanges.clone(),
        Some(Command::Demo(a)) => a.exchanges.clone(),
        Some(Command::Doctor(a)) => a.exchanges.clone(),
        Some(_) => ModelArgs::default(),
    };
    let theme = match &cli.command {
        Some(Command::Demo(a)) => a.theme.clone(),
        _ => cli.theme.clone(),
    };
    let ctx = Ctx {
        paint: Painter::new(cli.global.color),
        global: cli.global,
        model,
        theme,
    };
    let Some(command) = cli.command else {
        return tui::tui(&ctx, &cli.nats);
    };
    match command {
        Command::Init(a) => admin::init(&ctx, a),
        Command::Create(a) => write::create(&ctx, a),
        Command::List(a) => read::list(&ctx, a),
        Command::Show(a) => read::show(&ctx, a),
        Command::Update(a) => write::update(&ctx, a),
        Command::Close(a) => write::close(&ctx, a),
        Command::Reopen(a) => write::reopen(&ctx, a),
        Command::Dep(DepCommand::Add(a)) => write::dep_add(&ctx, a),
        Command::Dep(DepCommand::Remove(a)) => write::dep_remove(&ctx, a),
        Command::Dep(DepCommand::Tree(a)) => query::tree(&ctx, a),
        Command::Label(LabelCommand::Add(a)) => write::label(&ctx, a, true),
        Command::Label(LabelCommand::Remove(a)) => write::label(&ctx, a, false),
        Command::Comment(a) => write::comment(&ctx, a),
        Command::Comments(a) => query::comments(&ctx, a),
        Command::Delete(a) => delete::delete(&ctx, a),
        Command::Search(a) => search::search(&ctx, a),
        Command::Count(a) => search::count(&ctx, a),
        Command::Stale(a) => query::stale(&ctx, a),
        Command::Children(a) => read::children(&ctx, a),
        Command::Epic(EpicCommand::Status(a)) => query::epic_status(&ctx, a),
        Command::Dep(DepCommand::Cycles) => query::dep_cycles(&ctx),
        Command::Label(LabelCommand::List(a)) => query::label_list(&ctx, a),
        Command::Label(LabelCommand::ListAll) => query::label_list_all(&ctx),
        Command::Ready(a) => read::ready(&ctx, a),
        Command::Blocked(a) => read::blocked(&ctx, a),
        Command::Stats => query::stats(&ctx),
        Command::Import(a) => admin::import(&ctx, a),
        Command::Export(a) => admin::export(&ctx, a),
        Command::Log(a) => log::log(&ctx, a),
        Command::Convert(a) => admin::convert(&ctx, a),
        Command::Watch(a) if a.nats.nats.is_some() => fleet::watch(&ctx, &a),
        Command::Watch(_) => watch::watch(&ctx),
        Command::Doctor(a) => return doctor::doctor(&ctx, &a),
        Command::Pair(a) => return pair::pair(&ctx, a),
        Command::Agent(a) => return agent::agent(&ctx, a),
        Command::Personas(a) => agent::personas(&ctx, a),
        Command::Worktrees(a) => agent::worktrees(&ctx, a),
        Command::Run(a) => return run::run(&ctx, a),
        Command::Decide(a) => run::decide(&ctx, a),
        Command::Worker(a) => return fleet::worker(&ctx, a),
        Command::Demo(a) => return demo::demo(&ctx, a),
        Command::Completions(a) => completions(&a),
    }?;
    Ok(0)
}

/// Prints an error the way every command does: what, where, and what to do.
pub fn report(err: &Error) {
    eprintln!("error: {}", crate::text::inert(&err.to_string()));
    if let Some(hint) = err.hint() {
        eprintln!("  hint: {}", crate::text::inert(&hint));
    }
}
