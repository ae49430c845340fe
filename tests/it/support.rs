//! Test support: temporary git repositories and the real `loom` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary git repository (isolated from the user's global git and Loom config).
pub struct TestRepo {
    dir: tempfile::TempDir,
    config: tempfile::TempDir,
}

/// A finished command.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// The `loom` binary under test: this build's, or `LOOM_TEST_BIN` (to run the suite against
/// another build, e.g. to see that the security tests fail on an older one).
pub fn loom_bin() -> String {
    std::env::var("LOOM_TEST_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_loom").to_owned())
}

/// The shared fixtures folder, or `None` (with a notice) where it is absent.
pub fn shared_fixture(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("notice: {} not found; skipping this check", p.display());
        None
    }
}

/// Environment that makes git and loom deterministic and independent of the machine.
pub fn isolate(cmd: &mut Command, config_dir: &Path) {
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LOOM_CONFIG_DIR", config_dir)
        .env("LOOM_DATA_DIR", config_dir.join("data"))
        .env("NO_COLOR", "1")
        .env_remove("TOKENHUB_URL")
        .env_remove("TOKENHUB_API_KEY")
        .env_remove("LOOM_MODEL")
        .env_remove("LOOM_RECORD")
        .env_remove("LOOM_REPLAY")
        .env_remove("LOOM_ACTOR")
        .env_remove("BD_ACTOR")
        .env_remove("BEADS_ACTOR")
        .env_remove("LOOM_AUTO_COMMIT");
}

impl TestRepo {
    /// `git init` with a local identity; no commits yet.
    pub fn new() -> TestRepo {
        let repo = TestRepo {
            dir: tempfile::Builder::new()
                .prefix("loomtest")
                .tempdir()
                .unwrap(),
            config: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test User"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    /// A repository with `loom init` done in `format`, prefix `t`.
    pub fn with_loom(format: &str) -> TestRepo {
        let repo = TestRepo::new();
        repo.ok(&["init", "--format", format, "--prefix", "t"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// Writes the user's own `config.yaml` (where provider and sandbox settings belong).
    pub fn user_config(&self, yaml: &str) {
        std::fs::write(self.config_dir().join("config.yaml"), yaml).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(loom_bin());
        cmd.args(args).current_dir(self.path()).stdin(Stdio::null());
        isolate(&mut cmd, self.config_dir());
        cmd
    }

    pub fn loom(&self, args: &[&str]) -> Out {
        Out::from(self.command(args).output().unwrap())
    }

    /// Runs loom and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.loom(args);
        assert_eq!(
            out.code, 0,
            "loom {args:?} failed\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs loom, asserts it fails with `code`, returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.loom(args);
        assert_eq!(
            out.code, code,
            "loom {args:?} should exit {code}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        out.stderr
    }

    /// `loom create -q …` and the new id.
    pub fn create(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["create", title, "-q"];
        args.extend_from_slice(extra);
        self.ok(&args).trim().to_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: bad JSON {e}: {out}"))
    }

    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(self.path());
        isolate(&mut cmd, self.config_dir());
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Writes an executable file (a script).
    pub fn write_executable(&self, rel: &str, content: impl AsRef<[u8]>) {
        use std::os::unix::fs::PermissionsExt;
        self.write(rel, content);
        let p = self.path().join(rel);
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path().join(rel)).unwrap()
    }

    pub fn read_string(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).unwrap()
    }

    /// Number of commits on HEAD.
    pub fn commit_count(&self) -> usize {
        self.git(&["rev-list", "--count", "HEAD"])
            .trim()
            .parse()
            .unwrap()
    }
}

/// Ids in a JSON array of beads.
pub fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A YAML repository with a committed `notes.txt` ("draft") and a bead "Polish the notes"
/// (the pair tests' scene); its id.
pub fn notes_repo() -> (TestRepo, String) {
    let repo = TestRepo::with_loom("yaml");
    repo.write("notes.txt", "draft\n");
    repo.git(&["add", "notes.txt"]);
    repo.git(&["commit", "-qm", "notes"]);
    let id = repo.create("Polish the notes", &[]);
    (repo, id)
}
