//! The external-CLI runner: a persona with `runner: {command, args, prompt}` hands the
//! implementation to another coding-agent program, run in the bead's worktree under the same
//! sandbox rules (scrubbed environment, timeout, process group, Landlock). The prompt goes to
//! its stdin or into a file (`{prompt_file}` in the arguments is replaced by its path, else the
//! path is appended). Its output streams as log events; exit 0 means done.

use std::path::Path;
use std::time::Duration;

use super::persona::{PromptVia, RunnerSpec};
use super::run::{AgentEvent, LoopEnd, Terminal};
use super::sandbox::Sandbox;

/// Default time an external runner may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Runs the program as an agent session: its output lines go to `on_event` as
/// `runner_output`, and the end reads like a loop's (one iteration, the command as the model).
pub async fn session(
    spec: &RunnerSpec,
    sandbox: &Sandbox,
    tmp: &Path,
    prompt: &str,
    on_event: &mut (dyn FnMut(AgentEvent) + Send),
) -> LoopEnd {
    let mut on_line = |line: &str| {
        on_event(AgentEvent::RunnerOutput {
            line: line.to_owned(),
        })
    };
    let (terminal, detail) = run(spec, sandbox, tmp, prompt, &mut on_line).await;
    LoopEnd {
        iterations: 1,
        ..LoopEnd::new(terminal, detail, spec.command.clone())
    }
}

/// Runs the program; returns how it ended and the last lines of its output.
pub async fn run(
    spec: &RunnerSpec,
    sandbox: &Sandbox,
    tmp: &Path,
    prompt: &str,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> (Terminal, String) {
    let mut argv = vec![spec.command.clone()];
    let mut stdin = None;
    match spec.prompt {
        PromptVia::Stdin => {
            argv.extend(spec.args.iter().cloned());
            stdin = Some(prompt.as_bytes().to_vec());
        }
        PromptVia::File => {
            let file = tmp.join("loom-prompt.md");
            if let Err(e) = std::fs::write(&file, prompt) {
                return (
                    Terminal::RunnerFailed,
                    format!("cannot write the prompt file {}: {e}", file.display()),
                );
            }
            let path = file.to_string_lossy().into_owned();
            let mut placed = false;
            for a in &spec.args {
                if a.contains("{prompt_file}") {
                    placed = true;
                }
                argv.push(a.replace("{prompt_file}", &path));
            }
            if !placed {
                argv.push(path);
            }
        }
    }
    let timeout = spec
        .timeout_secs
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let out = sandbox
        .run_program(&argv, stdin, Some(timeout), on_line)
        .await;
    let tail = |s: &str| {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    };
    let last = tail(&out.stdout.text());
    if let Some(why) = out.tampered {
        return (
            Terminal::SecurityStop,
            format!("after {}: {why}", spec.command),
        );
    }
    match (out.exit_code, out.timed_out) {
        (_, true) => (
            Terminal::RunnerFailed,
            format!("{} was killed after {}s", spec.command, timeout.as_secs()),
        ),
        (Some(0), _) => (
            Terminal::Done,
            if last.is_empty() {
                format!("{} finished", spec.command)
            } else {
                last
            },
        ),
        (code, _) => (
            Terminal::RunnerFailed,
            format!(
                "{} exited with {}: {}",
                spec.command,
                code.map_or("a signal".into(), |c| format!("code {c}")),
                tail(&out.stderr.text())
            ),
        ),
    }
}
