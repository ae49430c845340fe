//! A repository opened for bead work: the store, the git repository that records every change,
//! the effective configuration and the actor. The CLI (and later the TUI and orchestrator) go
//! through [`Workspace::mutate`], so every change is validated, written atomically and
//! committed the same way.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::git::{CommitKind, CommitRequest, Committed, Repo};
use crate::store::{Applied, Layout, Store, Tx, TxOptions};

/// How to open a workspace.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Where to start looking for `.beads/` (the current directory by default).
    pub dir: Option<PathBuf>,
    /// `--actor`.
    pub actor: Option<String>,
    /// `--no-commit`: write beads without committing, this once.
    pub no_commit: bool,
}

/// A repository opened for bead work.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub store: Store,
    pub repo: Option<Repo>,
    pub config: Config,
    /// Who is making changes (`Loom-Actor`).
    pub actor: String,
}

/// The result of a mutation.
#[derive(Debug)]
pub struct Mutation<T> {
    pub value: T,
    pub applied: Applied,
    pub commit: Option<Committed>,
}

fn start_dir(opts: &OpenOptions) -> Result<PathBuf> {
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir().map_err(|e| Error::io(".", e))?,
    };
    std::fs::canonicalize(&dir).map_err(|e| Error::io(&dir, e))
}

/// The actor: flag, then config/`LOOM_ACTOR`, then bd's variables, then git's `user.name`,
/// then `$USER`.
fn resolve_actor(flag: Option<&str>, config: &Config, repo: Option<&Repo>) -> String {
    let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    nonempty(flag.map(str::to_owned))
        .or_else(|| nonempty(config.actor.clone()))
        .or_else(|| nonempty(std::env::var("BD_ACTOR").ok()))
        .or_else(|| nonempty(std::env::var("BEADS_ACTOR").ok()))
        .or_else(|| nonempty(repo.and_then(|r| r.user_name())))
        .or_else(|| nonempty(std::env::var("USER").ok()))
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Workspace {
    /// Opens the repository around `opts.dir`: finds `.beads/`, its format, the git
    /// repository (if any) and the configuration.
    pub fn open(opts: &OpenOptions) -> Result<Workspace> {
        let dir = start_dir(opts)?;
        let repo = Repo::discover(&dir)?;
        let layout = Layout::discover(&dir)?;
        Self::with_layout(layout, repo, opts)
    }

    fn with_layout(layout: Layout, repo: Option<Repo>, opts: &OpenOptions) -> Result<Workspace> {
        let mut config = Config::load(Some(&layout.root))?;
        if opts.no_commit {
            config.auto_commit = false;
        }
        let lock = match &repo {
            Some(r) => r.beads_lock_path(),
            None => layout.beads_dir.join(".loom.lock"),
        };
        let actor = resolve_actor(opts.actor.as_deref(), &config, repo.as_ref());
        Ok(Workspace {
            store: Store::new(layout, lock),
            repo,
            config,
            actor,
        })
    }

    /// The layout of the bead store.
    pub fn layout(&self) -> &Layout {
        self.store.layout()
    }

    /// The git repository, or the error that says to run `git init`.
    pub fn require_repo(&self) -> Result<&Repo> {
        self.repo.as_ref().ok_or_else(|| Error::NotGit {
            path: self.layout().root.clone(),
        })
    }

    /// Applies `change` to the latest beads, writes them and (unless auto-commit is off)
    /// commits the written files with Loom trailers, all under the store lock. `event` names
    /// the kind of change (the commit's `Loom-Event`).
    pub fn mutate<T>(
        &self,
        event: CommitKind,
        options: TxOptions,
        change: impl FnMut(&mut Tx) -> Result<T>,
    ) -> Result<Mutation<T>> {
        let repo = self.require_repo()?;
        self.refuse_unmerged(repo)?;
        let mut commit = None;
        let folded = std::cell::RefCell::new(Vec::new());
        let (value, applied) = self.store.transact_with(
            options,
            change,
            |paths, may_commit| self.commit_external(repo, paths, may_commit, &folded),
            |applied| {
                if self.config.auto_commit {
                    let mut request = self.describe(event, applied);
                    name_folded(&mut request, &folded.borrow());
                    commit = self.commit(repo, request)?;
                }
                Ok(())
            },
        )?;
        Ok(Mutation {
            value,
            applied,
            commit,
        })
    }

    /// Before Loom's change is written: files it is about to rewrite that hold edits made
    /// outside Loom and not committed (an editor, bd, a script) are committed first as they
    /// are, marked `external`, so the next commit's message describes exactly its own diff.
    /// This process's own uncommitted writes (the orchestrator's stages) ride along instead.
    /// Whether it committed something (the transaction then starts over). When it may not
    /// commit any more (the files keep changing), the files are named in `folded` instead, for
    /// Loom's own commit message to mention.
    fn commit_external(
        &self,
        repo: &Repo,
        paths: &[PathBuf],
        may_commit: bool,
        folded: &std::cell::RefCell<Vec<PathBuf>>,
    ) -> Result<bool> {
        if !self.config.auto_commit {
            return Ok(false);
        }
        let rel: Vec<PathBuf> = paths
            .iter()
            .filter(|p| !self.store.uncommitted_own(p))
            .filter_map(|p| p.strip_prefix(&repo.workdir).ok().map(Path::to_path_buf))
            .collect();
        let dirty = repo.changed_since_head(&rel)?;
        let Some(first) = dirty.first() else {
            folded.borrow_mut().clear();
            return Ok(false);
        };
        if !may_commit {
            *folded.borrow_mut() = dirty;
            return Ok(false);
        }
        let yaml_dir = self.layout().relative(&self.layout().yaml_dir());
        let beads: Vec<String> = dirty
            .iter()
            .filter(|p| p.parent() == Some(yaml_dir.as_path()))
            .filter_map(|p| crate::store::yaml::id_from_path(p))
            .collect();
        let subject = match dirty.as_slice() {
            [_] => format!("loom: record uncommitted edits to {}", first.display()),
            many => format!(
                "loom: record uncommitted edits to {} bead files",
                many.len()
            ),
        };
        let files: Vec<String> = dirty.iter().map(|p| format!("- {}", p.display())).collect();
        repo.commit_beads(&CommitRequest {
            paths: dirty.clone(),
            subject,
            body: Some(format!(
                "These bead files had changes nobody committed (made outside Loom, or with \
                 --no-commit). They are committed as they were, before Loom's own change, so \
                 that each commit holds only what its message says.\n\n{}",
                files.join("\n")
            )),
            beads,
            actor: "external".into(),
            event: CommitKind::External,
        })?;
        Ok(true)
    }

    /// A merge left bead files conflicted: nothing is written (and nothing marks them resolved)
    /// until a person resolves it.
    fn refuse_unmerged(&self, repo: &Repo) -> Result<()> {
        let rel = self.layout().relative(&self.layout().beads_dir);
        let unmerged = repo.unmerged_under(&rel)?;
        if unmerged.is_empty() {
            return Ok(());
        }
        Err(Error::Refused(format!(
            "resolve the merge in {} first: git reports conflicts there. Loom writes and commits nothing in the bead store until `git status` shows them resolved",
            unmerged.join(", ")
        )))
    }

    /// Like [`Workspace::mutate`] but without a commit: the change rides along with the next
    /// commit that touches the same files (the orchestrator's intermediate stages).
    pub fn write_only<T>(
        &self,
        options: TxOptions,
        change: impl FnMut(&mut Tx) -> Result<T>,
    ) -> Result<T> {
        if let Ok(repo) = self.require_repo() {
            self.refuse_unmerged(repo)?;
        }
        let options = TxOptions {
            uncommitted: true,
            ..options
        };
        let (value, _) = self.store.transact(options, change, |_| Ok(()))?;
        Ok(value)
    }

    /// Commits `req` (paths relative to the store root) unless auto-commit is off.
    pub fn commit(&self, repo: &Repo, mut req: CommitRequest) -> Result<Option<Committed>> {
        if !self.config.auto_commit {
            return Ok(None);
        }
        let root = &self.layout().root;
        req.paths = req
            .paths
            .iter()
            .map(|p| {
                let abs = root.join(p);
                abs.strip_prefix(&repo.workdir)
                    .map(Path::to_path_buf)
                    .unwrap_or(abs)
            })
            .collect();
        repo.commit_beads(&req)
    }

    /// The commit that records `applied`.
    fn describe(&self, event: CommitKind, applied: &Applied) -> CommitRequest {
        let lines: Vec<(String, String)> = applied
            .changes
            .iter()
            .map(|c| (c.id.clone(), c.summary()))
            .chain(
                applied
                    .removed
                    .iter()
                    .map(|b| (b.id.clone(), format!("deleted {:?}", b.title))),
            )
            .collect();
        let beads: Vec<String> = lines.iter().map(|(id, _)| id.clone()).collect();
        let gone: Vec<&str> = applied.removed.iter().map(|b| b.id.as_str()).collect();
        let (subject, body) = match lines.as_slice() {
            [(id, what)] => (format!("loom: {id} {what}"), None),
            // A deletion also edits the beads that linked to it: the subject names what went.
            many if !gone.is_empty() => (
                match gone.as_slice() {
                    [one] => format!("loom: delete {one}"),
                    _ => format!("loom: delete {} beads", gone.len()),
                },
                Some(
                    many.iter()
                        .map(|(id, what)| format!("{id}: {what}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            ),
            many => {
                const SHOWN: usize = 50;
                let mut body: Vec<String> = many
                    .iter()
                    .take(SHOWN)
                    .map(|(id, what)| format!("{id}: {what}"))
                    .collect();
                if many.len() > SHOWN {
                    body.push(format!("… and {} more", many.len() - SHOWN));
                }
                (
                    format!("loom: {event} {} beads", many.len()),
                    Some(body.join("\n")),
                )
            }
        };
        CommitRequest {
            paths: applied.paths.clone(),
            subject,
            body,
            beads,
            actor: self.actor.clone(),
            event,
        }
    }

    /// Appends messages to bead `id`'s conversation log and commits it (event `pair`).
    pub fn append_conversation(
        &self,
        id: &str,
        entries: &[crate::store::ConversationEntry],
        subject: &str,
    ) -> Result<Option<Committed>> {
        let repo = self.require_repo()?;
        let mut commit = None;
        self.store.append_conversation(id, entries, |paths| {
            commit = self.commit(
                repo,
                CommitRequest {
                    paths: paths.to_vec(),
                    subject: subject.to_owned(),
                    body: None,
                    beads: vec![id.to_owned()],
                    actor: self.actor.clone(),
                    event: CommitKind::Pair,
                },
            )?;
            Ok(())
        })?;
        Ok(commit)
    }

    /// This repository's runtime data directory (created on demand by writers).
    /// The file of bead `id` relative to the repository, where a bead has a file of its own
    /// (the YAML backend); `None` for JSONL or outside a repository.
    pub fn bead_file(&self, id: &str) -> Option<PathBuf> {
        if self.layout().format != crate::store::Format::Yaml {
            return None;
        }
        let abs = self.layout().yaml_dir().join(format!("{id}.yaml"));
        let repo = self.repo.as_ref()?;
        abs.strip_prefix(&repo.workdir).ok().map(Path::to_path_buf)
    }

    pub fn data_dir(&self) -> Option<PathBuf> {
        match &self.config.repo_data_dir {
            Some(d) => Some(d.clone()),
            None => crate::config::repo_data_dir(&self.layout().root),
        }
    }

    /// A workspace for a store that is being created (`init`) at `layout`.
    pub fn for_new_store(layout: Layout, repo: Repo, opts: &OpenOptions) -> Result<Workspace> {
        Self::with_layout(layout, Some(repo), opts)
    }

    /// Where to start looking, resolved (for `init`).
    pub fn start_dir(opts: &OpenOptions) -> Result<PathBuf> {
        start_dir(opts)
    }
}

/// Names in `req`'s message the files whose uncommitted edits it also carries (they kept
/// changing while Loom tried to commit them separately).
fn name_folded(req: &mut CommitRequest, folded: &[PathBuf]) {
    if folded.is_empty() {
        return;
    }
    let files: Vec<String> = folded.iter().map(|p| p.display().to_string()).collect();
    let note = format!(
        "Also carries edits made outside Loom to {} (they kept changing while Loom tried to \
         commit them on their own).",
        files.join(", ")
    );
    req.body = Some(match req.body.take() {
        Some(b) => format!("{b}\n\n{note}"),
        None => note,
    });
}

impl Repo {
    /// git's `user.name`, if configured.
    pub fn user_name(&self) -> Option<String> {
        let repo = self.gix().ok()?;
        let snapshot = repo.config_snapshot();
        snapshot.string("user.name").map(|s| s.to_string())
    }
}
