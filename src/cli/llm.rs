//! What the model-facing commands share: the client built from configuration and the
//! `--record`/`--replay` flags, and a runtime to drive it.

use crate::error::{Error, Result};
use crate::llm::record::{Recorder, Replayer};
use crate::llm::{Client, LlmError, ProviderConfig, ProviderFile, Tape};
use crate::workspace::Workspace;

use super::Ctx;

/// The endpoint settings: config files, then the environment.
pub fn provider(ws: &Workspace) -> Result<ProviderConfig> {
    let file = ws.config.section("provider", ProviderFile::merge)?;
    Ok(ProviderConfig::resolve(&file, |k| std::env::var(k).ok())
        .with_other_secrets(crate::agent::sandbox::env::secret_values_in_env()))
}

/// Says which security settings of the repository's config were ignored (it is not trusted),
/// before a command that would have used them.
pub fn warn_untrusted(ctx: &Ctx, ws: &Workspace) {
    if ws.config.ignored.is_empty() || ctx.global.quiet {
        return;
    }
    ctx.warn(&format!(
        ".loom/config.yaml sets {} — ignored: only a repository you trust may set provider and sandbox settings (see `loom doctor`)",
        ws.config.ignored.join(", ")
    ));
}

/// A client over `provider`, recording or replaying as the flags say.
pub fn client(ctx: &Ctx, provider: ProviderConfig) -> Result<Client> {
    let tape = match (&ctx.model.record, &ctx.model.replay) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "--record and --replay cannot be used together".into(),
            ));
        }
        (Some(path), None) => Tape::Record(Recorder::create(path)?),
        (None, Some(path)) => Tape::Replay(Replayer::open(path, ctx.model.replay_match)?),
        (None, None) => Tape::Live,
    };
    if matches!(tape, Tape::Live | Tape::Record(_)) && provider.url.is_none() {
        return Err(LlmError::NotConfigured.into());
    }
    Ok(Client::new(provider, tape)?)
}

/// Like [`client`], but without an endpoint the client is still built (calls then fail with a
/// clear "not configured" error): for agents whose persona may not use the model.
pub fn client_for_agent(ctx: &Ctx, provider: ProviderConfig) -> Result<Client> {
    if provider.url.is_some() || ctx.model.record.is_some() || ctx.model.replay.is_some() {
        return client(ctx, provider);
    }
    Ok(Client::new(provider, Tape::Live)?)
}

/// Runs a future to completion on a small runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    Ok(rt.block_on(future))
}
