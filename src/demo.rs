//! `loom demo`'s scratch project: a tiny POSIX-sh calculator with a failing test and three
//! beads (a bug, then a feature and a docs task that both wait for it) in a fresh git
//! repository, and the
//! recording of a session on it that ships in the binary, so the whole pipeline runs offline.

use std::path::Path;

use crate::bead::Timestamp;
use crate::error::{Error, Result};
use crate::ops::{self, CommitKind, DepSpec, NewBead};
use crate::store::{Format, TxOptions};
use crate::workspace::{OpenOptions, Workspace};

/// The recorded model exchanges of a demo run (keyed by bead and persona; see
/// `tests/it/demo.rs` for how it is made).
pub const TAPE: &str = include_str!("../demo/tape.jsonl");

/// The demo's beads, in the order they are created.
pub const BEADS: [&str; 3] = ["demo-1", "demo-2", "demo-3"];

const CALC: &str = r#"#!/bin/sh
# calc.sh: a tiny calculator. Usage: calc.sh add|sub A B
case "$1" in
  add) echo $(($2 + $3)) ;;
  sub) echo $(($2 + $3)) ;;
  *)
    echo "usage: calc.sh add|sub A B" >&2
    exit 2
    ;;
esac
"#;

const TEST: &str = r#"#!/bin/sh
# Runs the calculator's checks (tests/checks.sh): every one must pass.
fail=0
check() {
  want=$1
  shift
  got=$(./calc.sh "$@" 2>&1)
  if [ "$got" = "$want" ]; then
    echo "ok   calc.sh $*"
  else
    echo "FAIL calc.sh $*: want $want, got $got"
    fail=1
  fi
}
. ./tests/checks.sh
exit $fail
"#;

const CHECKS: &str =
    "# The calculator's checks: check WANT ARGS...\ncheck 5 add 2 3\ncheck 2 sub 5 3\n";

const README: &str = "# calc\n\nA tiny command-line calculator, written in POSIX sh.\n\nRun the tests with `./test.sh`.\n";

const CONFIG: &str =
    "# Loom settings for this repository.\ntest_command: ./test.sh\nmax_agents: 2\n";

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| Error::Git {
            command: args.join(" "),
            message: format!("cannot run git: {e}"),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Git {
            command: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn write(root: &Path, rel: &str, text: &str, executable: bool) -> Result<()> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// Creates the demo project in the empty directory `root` and returns its workspace.
pub fn scaffold(root: &Path) -> Result<Workspace> {
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    git(root, &["init", "-q", "-b", "main"])?;
    for (k, v) in [
        ("user.name", "Loom Demo"),
        ("user.email", "demo@loom.invalid"),
        ("commit.gpgsign", "false"),
    ] {
        git(root, &["config", k, v])?;
    }
    write(root, "calc.sh", CALC, true)?;
    write(root, "test.sh", TEST, true)?;
    write(root, "tests/checks.sh", CHECKS, false)?;
    write(root, "README.md", README, false)?;
    write(root, ".loom/config.yaml", CONFIG, false)?;
    let repo = crate::git::Repo::require(root)?;
    crate::store::init(root, Format::Yaml, "demo", &repo.beads_lock_path())?;
    git(root, &["add", "-A"])?;
    git(
        root,
        &[
            "commit",
            "-q",
            "-m",
            "calc: a tiny calculator (its sub is broken)",
        ],
    )?;
    let ws = Workspace::open(&OpenOptions {
        dir: Some(root.to_path_buf()),
        actor: Some("demo".into()),
        no_commit: false,
    })?;
    let now = Timestamp::now();
    let bead =
        |id: &str, kind: &str, priority: i64, title: &str, description: &str, acceptance: &str| {
            let mut new = NewBead::new(title, "demo");
            new.id = Some(id.to_owned());
            new.issue_type = kind.to_owned();
            new.priority = priority;
            new.description = Some(description.to_owned());
            new.acceptance_criteria = Some(acceptance.to_owned());
            new
        };
    let mut fix = bead(
        BEADS[0],
        "bug",
        1,
        "Fix subtraction: calc.sh sub 5 3 prints 8",
        "`./calc.sh sub 5 3` prints 8; it should print 2. tests/checks.sh already has the failing check.",
        "`./test.sh` passes.",
    );
    fix.labels = vec!["calc".into()];
    let after_fix = || vec![DepSpec::parse(BEADS[0])];
    let mut mul = bead(
        BEADS[1],
        "feature",
        2,
        "Add multiplication: calc.sh mul",
        "Support `./calc.sh mul A B`, printing A times B, and name it in the usage line.",
        "`./calc.sh mul 4 3` prints 12; tests/checks.sh checks it and ./test.sh passes.",
    );
    mul.deps = after_fix().into_iter().collect::<Result<_>>()?;
    let mut docs = bead(
        BEADS[2],
        "task",
        2,
        "Document the commands in README.md",
        "README.md does not say what calc.sh can do. List add and sub, with an example each.",
        "README.md has a Commands section with an example per command.",
    );
    // Documented behaviour should be right: the docs wait for the fix too.
    docs.deps = after_fix().into_iter().collect::<Result<_>>()?;
    ws.mutate(CommitKind::Created, TxOptions::default(), |tx| {
        for b in [&fix, &mul, &docs] {
            ops::create(tx, b, &now)?;
        }
        Ok(())
    })?;
    Ok(ws)
}
