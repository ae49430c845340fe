//! Real-terminal journeys: `loom` and `loom demo --tui` in a tmux pane (120×40) driven with
//! `send-keys` and read with `capture-pane`. Each test has its own tmux server (socket), so
//! nothing leaks into the user's sessions. `.ci/run` installs tmux; without it these skip
//! with a notice.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::llm_server::{LlmServer, Reply};
use crate::support::{TestRepo, isolate, loom_bin};

/// A tmux server of one pane, killed on drop.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `cmd` in a 120×40 pane in `dir`; after it exits the pane shows `LOOM-EXIT=<code>`
    /// and stays open.
    pub(crate) fn start(dir: &Path, config: &Path, args: &[&str]) -> Option<Tmux> {
        Tmux::start_with(dir, config, args, &[])
    }

    /// [`Tmux::start`] with extra environment for `loom`.
    pub(crate) fn start_with(
        dir: &Path,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Option<Tmux> {
        Tmux::start_sized(dir, config, args, env, (120, 40))
    }

    /// [`Tmux::start_with`] in a pane of `(columns, rows)`.
    pub(crate) fn start_sized(
        dir: &Path,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        (w, h): (u16, u16),
    ) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("notice: tmux is not installed; skipping this journey (.ci/run installs it)");
            return None;
        }
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let socket = format!("loomtest-{}-{n}", std::process::id());
        let line = format!(
            "{} {}; echo LOOM-EXIT=$?; sleep 600",
            loom_bin(),
            args.join(" ")
        );
        let mut cmd = Command::new("tmux");
        isolate(&mut cmd, config);
        cmd.env_remove("NO_COLOR").env("TERM", "xterm-256color");
        cmd.envs(env.iter().copied());
        let out = cmd
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                "-c",
            ])
            .arg(dir)
            .arg(line)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Tmux { socket })
    }

    pub(crate) fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    pub(crate) fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    pub(crate) fn text(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
    }

    /// Waits (bounded) until the screen satisfies `pred`; the screen it ended on.
    pub(crate) fn wait(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    /// Waits until the screen shows all of `needles` (a capture can catch a frame half
    /// written: what a test asserts on belongs in what it waits for).
    pub(crate) fn wait_all(&self, what: &str, timeout: Duration, needles: &[&str]) -> String {
        self.wait(what, timeout, |s| needles.iter().all(|n| s.contains(n)))
    }

    pub(crate) fn flag(&self, name: &str) -> String {
        self.tmux(&["display-message", "-p", &format!("#{{{name}}}")])
            .trim()
            .to_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn create_a_bead_open_help_and_quit_in_a_real_terminal() {
    let repo = TestRepo::with_loom("yaml");
    repo.create("Already here", &[]);
    let Some(t) = Tmux::start(repo.path(), repo.config_dir(), &[]) else {
        return;
    };
    t.wait("the board", WAIT, |s| {
        s.contains("Ready 1") && s.contains("Already here")
    });
    assert_eq!(
        t.flag("alternate_on"),
        "1",
        "the TUI uses the alternate screen"
    );
    assert_eq!(t.flag("mouse_any_flag"), "1", "the TUI takes the mouse");
    t.keys(&["n"]);
    t.wait("the form", WAIT, |s| s.contains("New bead"));
    t.text("Typed in tmux");
    t.keys(&["C-s"]);
    // A confirmation in the footer.
    t.wait_all(
        "the new card",
        WAIT,
        &["Ready 2", "Typed in tmux", "created"],
    );
    let list = repo.ok(&["list", "--json"]);
    assert!(list.contains("Typed in tmux"), "{list}");
    t.keys(&["?"]);
    t.wait_all(
        "the help",
        WAIT,
        &["Keys", "this help", "new bead", "add a dependency", "quit"],
    );
    t.keys(&["Escape"]);
    t.wait("the board again", WAIT, |s| !s.contains("this help"));
    t.keys(&["q"]);
    let s = t.wait("the exit", WAIT, |s| s.contains("LOOM-EXIT="));
    assert!(s.contains("LOOM-EXIT=0"), "{s}");
    assert!(
        !s.contains("Ready 2"),
        "the board is gone from the screen:\n{s}"
    );
    assert_eq!(t.flag("alternate_on"), "0", "the alternate screen was left");
    assert_eq!(t.flag("cursor_flag"), "1", "the cursor is visible again");
    assert_eq!(
        t.flag("mouse_any_flag"),
        "0",
        "the mouse is the terminal's again"
    );
}

#[test]
fn a_filter_is_shown_while_it_hides_beads_and_esc_clears_it() {
    let repo = TestRepo::with_loom("yaml");
    repo.create("Fix the login", &["-l", "auth"]);
    repo.create("Write the docs", &[]);
    repo.create("Later, maybe", &["--defer", "2999-01-01"]);
    let Some(t) = Tmux::start(repo.path(), repo.config_dir(), &[]) else {
        return;
    };
    // Waiting for all of it: a capture can catch a frame half written.
    let s = t.wait("the board", WAIT, |s| {
        s.contains("Ready 2") && s.contains("Deferred 1") && s.contains("until 2999-01-01")
    });
    assert!(
        !s.contains("Blocked 1"),
        "a deferred bead is not blocked:
{s}"
    );
    t.keys(&["/"]);
    t.text("label:auth");
    t.keys(&["Enter"]);
    // The header says what is filtered.
    let s = t.wait_all(
        "the filtered board",
        WAIT,
        &["Ready 1", "filter label:auth (2 hidden)", "esc clears"],
    );
    assert!(!s.contains("Write the docs"), "{s}");
    t.keys(&["o"]);
    t.wait("the sort in the header", WAIT, |s| {
        s.contains("sort updated")
    });
    t.keys(&["Escape"]);
    let s = t.wait("the whole board", WAIT, |s| s.contains("Ready 2"));
    assert!(
        !s.contains("filter label") && !s.contains("sort updated"),
        "esc cleared the filter and the sort:\n{s}"
    );
    t.keys(&["q"]);
    t.wait("the exit", WAIT, |s| s.contains("LOOM-EXIT=0"));
}

/// After a `loom run` whose tests failed, the branch's diff and the failing output are two
/// keys from the board.
#[test]
fn a_runs_diff_and_failing_tests_are_reached_from_the_board() {
    let (repo, id) = crate::orchestrate::failed_run();
    let Some(t) = Tmux::start(repo.path(), repo.config_dir(), &[]) else {
        return;
    };
    t.wait("the board", WAIT, |s| s.contains("Make notes say ok"));
    // The bead waits on a decision: go to it with the palette.
    t.keys(&[":"]);
    t.text(&id);
    t.keys(&["Enter"]);
    t.keys(&["w"]);
    let work = format!("Work · {id}");
    t.wait_all("the diff", WAIT, &[&work, "+nope", "-draft", "notes.txt"]);
    t.keys(&["Right"]);
    t.wait_all(
        "the failing tests",
        WAIT,
        &["FAIL: notes.txt does not say ok", "failed"],
    );
    t.keys(&["Escape"]);
    t.wait("the board again", WAIT, |s| !s.contains("Work ·"));
    t.keys(&["q"]);
    t.wait("the exit", WAIT, |s| s.contains("LOOM-EXIT=0"));
}

#[test]
fn a_new_decision_rings_the_bell_and_sends_a_desktop_notification() {
    let repo = TestRepo::with_loom("yaml");
    repo.user_config("tui:\n  notify: true\n");
    repo.create("Some work", &[]);
    let Some(t) = Tmux::start(repo.path(), repo.config_dir(), &[]) else {
        return;
    };
    t.wait("the board", WAIT, |s| s.contains("Some work"));
    let raw = repo.path().join("pane-output.bin");
    t.tmux(&["pipe-pane", "-o", &format!("cat >> '{}'", raw.display())]);
    repo.create("Which payment provider?", &["-t", "decision"]);
    let deadline = Instant::now() + WAIT;
    let bytes = loop {
        let b = std::fs::read(&raw).unwrap_or_default();
        if b.windows(4).any(|w| w == b"\x1b]9;") || Instant::now() > deadline {
            break b;
        }
        std::thread::sleep(Duration::from_millis(40));
    };
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("\x1b]9;Loom: ") && text.contains("Which payment provider?"),
        "an OSC 9 notification naming the decision: {text:?}"
    );
    assert!(text.contains("\x1b]777;notify;"), "and OSC 777");
    assert!(text.contains('\x07'), "the bell");
    t.keys(&["q"]);
    t.wait("the exit", WAIT, |s| s.contains("LOOM-EXIT=0"));
}

#[test]
fn the_demo_tells_its_story_at_80_by_24() {
    let dir = tempfile::tempdir().unwrap();
    let Some(t) = Tmux::start_sized(dir.path(), dir.path(), &["demo", "--tui"], &[], (80, 24))
    else {
        return;
    };
    t.wait("a log line under the board", Duration::from_secs(30), |s| {
        s.contains("Logs")
            && s.lines()
                .any(|l| l.contains("demo-1") && l.contains("coder"))
    });
    // The finished board shows what was done.
    t.wait_all(
        "the finished board",
        Duration::from_secs(90),
        &["Done 3", "agents 0/2", "demo-1", "demo-2", "demo-3"],
    );
    t.keys(&["L"]);
    t.wait("the merges in the logs", WAIT, |s| s.contains("merged"));
    t.keys(&["q"]);
    let s = t.wait("the exit", WAIT, |s| s.contains("LOOM-EXIT="));
    assert!(s.contains("LOOM-EXIT=0"), "{s}");
    assert_eq!(t.flag("alternate_on"), "0");
}

#[test]
fn without_a_terminal_loom_says_what_to_use_instead() {
    let repo = TestRepo::with_loom("yaml");
    let out = repo.loom(&[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("needs a terminal") && out.stderr.contains("loom list"),
        "{}",
        out.stderr
    );
}

#[test]
fn pair_on_a_bead_in_a_real_terminal() {
    let server = LlmServer::start();
    let (repo, id) = crate::support::notes_repo();
    server.push(Reply::tool(
        "write_file",
        serde_json::json!({"path": "notes.txt", "content": "final\n"}),
    ));
    server.push(Reply::text(&["Done: ", "the notes say final now."]));
    let url = server.url();
    let env = [
        ("TOKENHUB_URL", url.as_str()),
        ("TOKENHUB_API_KEY", "tokenhub_tmux_pair_do_not_leak"),
    ];
    let Some(t) = Tmux::start_with(repo.path(), repo.config_dir(), &[], &env) else {
        return;
    };
    t.wait("the board", WAIT, |s| s.contains("Polish the notes"));
    t.keys(&["c"]);
    t.wait("the pair pane", WAIT, |s| {
        s.contains(&format!("Pair · {id}")) && s.contains("Ask about this bead")
    });
    t.text("Finish the");
    t.keys(&["M-Enter"]);
    t.text("notes");
    t.wait("two lines typed", WAIT, |s| {
        s.contains("> Finish the")
            && s.lines()
                .any(|l| l.trim_matches(|c| c == '│' || c == ' ') == "notes")
    });
    t.keys(&["Enter"]);
    t.wait_all(
        "the question",
        WAIT,
        &["apply? [y]es", "write_file notes.txt", "+ final"],
    );
    t.keys(&["y"]);
    // The write ran.
    t.wait_all(
        "the answer",
        WAIT,
        &[
            "Done: the notes say final now.",
            "changes committed on",
            "▸ write_file",
        ],
    );
    let asked = server.chats()[0].json();
    let last = asked["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    assert_eq!(last, "Finish the\nnotes", "alt+enter made a new line");
    assert_eq!(
        repo.git(&["show", &format!("loom/{id}:notes.txt")]),
        "final\n"
    );
    t.keys(&["Escape"]);
    t.wait("the board again", WAIT, |s| {
        s.contains("Ready 1") && !s.contains("Pair ·")
    });
    t.keys(&["q"]);
    let s = t.wait("the exit", WAIT, |s| s.contains("LOOM-EXIT="));
    assert!(s.contains("LOOM-EXIT=0"), "{s}");
}
