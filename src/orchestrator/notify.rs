//! `notify_command`: a command run for every decision a run needs, so a person hears of it
//! when no window is open (CI, a headless `loom run`). It gets the `decision_needed` event as
//! one JSON object on stdin (with `repository`, the working tree's path), runs in the
//! repository with the allow-listed environment agents get — no secrets — and is stopped after
//! [`LIMIT`]. A failure is reported as an `error` event; the run goes on.
//!
//! The command runs outside the sandbox (it is yours: it may need the network or a desktop
//! session), so only your own config may set it — a repository's `.loom/config.yaml` can only
//! if you trust the repository (`trusted_repos`), like `provider:` and `sandbox:`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast::error::RecvError;

use crate::event::{Event, EventBus, EventKind};

/// How long the command may take.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The command and how it runs.
#[derive(Clone, Debug)]
pub struct Notifier {
    pub command: String,
    /// Where it runs: the repository's working tree.
    pub dir: PathBuf,
    /// Its whole environment.
    pub env: Vec<(OsString, OsString)>,
}

impl Notifier {
    /// A notifier for `command` in `dir`, with the environment agents get (no variable
    /// holding any of `secrets`).
    pub fn new(command: String, dir: PathBuf, secrets: &[String]) -> Notifier {
        let mut all: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let in_env = crate::agent::sandbox::env::secret_values_in_env();
        all.extend(in_env.iter().map(String::as_str));
        Notifier {
            command,
            env: crate::agent::sandbox::env::current(&all, &[]),
            dir,
        }
    }

    /// Runs the command with `event` on stdin; why it failed, if it did.
    pub async fn tell(&self, event: &Event) -> Result<(), String> {
        let mut body = serde_json::to_value(event).map_err(|e| e.to_string())?;
        if let Some(m) = body.as_object_mut() {
            m.insert(
                "repository".into(),
                self.dir.to_string_lossy().into_owned().into(),
            );
        }
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&self.command)
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start it: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its input is fine.
            let _ = stdin.write_all(format!("{body}\n").as_bytes()).await;
        }
        let out = tokio::time::timeout(LIMIT, child.wait_with_output())
            .await
            .map_err(|_| format!("it did not finish within {} s", LIMIT.as_secs()))?
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr);
        let said = crate::text::one_line(said.trim(), 200);
        Err(match out.status.code() {
            Some(c) if said.is_empty() => format!("it exited with {c}"),
            Some(c) => format!("it exited with {c}: {said}"),
            None => "it was killed by a signal".to_owned(),
        })
    }
}

/// Runs `notifier` for each `decision_needed` on `bus` until the run finishes. `redact` is
/// applied to what is reported of a failure.
pub fn spawn(
    bus: Arc<EventBus>,
    notifier: Notifier,
    redact: impl Fn(&str) -> String + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let mut sub = bus.subscribe();
    tokio::spawn(async move {
        loop {
            let e = match sub.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            };
            match &e.kind {
                EventKind::RunFinished { .. } => break,
                EventKind::DecisionNeeded { .. } => {
                    if let Err(why) = notifier.tell(&e).await {
                        bus.publish(Event {
                            bead: e.bead.clone(),
                            ..Event::new(EventKind::Error {
                                message: redact(&format!("notify_command failed: {why}")),
                            })
                        });
                    }
                }
                _ => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision() -> Event {
        Event::about(
            "t-1",
            EventKind::DecisionNeeded {
                decision: "t-9".into(),
                question: "Stripe or Adyen?".into(),
            },
        )
    }

    #[tokio::test]
    async fn the_command_reads_the_decision_and_sees_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("told.json");
        let n = Notifier {
            command: format!("cat > '{}'; env >> '{}'", out.display(), out.display()),
            dir: dir.path().to_path_buf(),
            env: vec![
                ("PATH".into(), std::env::var_os("PATH").unwrap_or_default()),
                ("HOME".into(), "/nonexistent".into()),
            ],
        };
        n.tell(&decision()).await.unwrap();
        let told = std::fs::read_to_string(&out).unwrap();
        let first = told.lines().next().unwrap();
        let v: serde_json::Value = serde_json::from_str(first).unwrap();
        assert_eq!(v["type"], "decision_needed");
        assert_eq!(v["decision"], "t-9");
        assert_eq!(v["question"], "Stripe or Adyen?");
        assert_eq!(v["repository"], dir.path().to_string_lossy().as_ref());
        assert!(!told.contains("TOKENHUB"), "{told}");
    }

    #[test]
    fn secrets_never_reach_its_environment() {
        let n = Notifier::new(
            "true".into(),
            PathBuf::from("/"),
            &["sk-very-secret-value".into()],
        );
        assert!(n.env.iter().all(|(k, v)| {
            !v.to_string_lossy().contains("sk-very-secret-value")
                && crate::agent::sandbox::env::allowed(&k.to_string_lossy(), &[])
        }));
    }

    #[tokio::test]
    async fn a_failing_command_says_why() {
        let n = Notifier {
            command: "echo no desktop here >&2; exit 3".into(),
            dir: std::env::temp_dir(),
            env: Vec::new(),
        };
        let why = n.tell(&decision()).await.unwrap_err();
        assert_eq!(why, "it exited with 3: no desktop here");
    }
}
