//! The [`Bus`] over NATS JetStream (`async-nats`): the orders and reports are work-queue
//! streams with one shared durable pull consumer each, the claims a key-value bucket. Every
//! name carries the repository id, so one server serves many repositories:
//!
//! | what | name |
//! |---|---|
//! | orders | stream `LOOM_WORK_<repo>`, subject `loom.<repo>.work.agent`, consumer `workers` |
//! | reports | stream `LOOM_RESULT_<repo>`, subject `loom.<repo>.result`, consumer `coordinator` |
//! | claims | bucket `LOOM_CLAIMS_<repo>`, key = bead id |
//!
//! Everything is created idempotently by whoever connects first. The orders' consumer has no
//! delivery limit (the coordinator's dispatch count is the limit, `protocol` docs); acks are
//! double acks (the server confirms), and every operation is bounded by a timeout, so a
//! stalled server reads as unavailable and the worker fences.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, kv, stream};
use futures_util::StreamExt;

use super::bus::{Bus, BusError, BusResult, Delivery, Published, Versioned};
use super::protocol::{self, Claim, Order, Report};

mod fleet;
pub use fleet::{
    EVENTS_KEPT, EVENTS_PER_SUBJECT, Holder, LEASE_BUCKET, LEASE_TTL, PRESENCE_TTL, Presence,
};

/// How to reach the server, and the protocol's timings.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// `nats://host:port` (user and password may be in the URL).
    pub url: String,
    /// A `.creds` file (JWT and NKey seed), when the server wants one.
    pub creds: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for TLS; TLS is then required.
    pub ca: Option<PathBuf>,
    /// How long a delivery may go without an ack or progress before it is redelivered.
    pub ack_wait: Duration,
    /// The de-duplication window for orders.
    pub duplicate_window: Duration,
    /// How long one operation may take before it counts as a failure.
    pub timeout: Duration,
    /// How long [`Bus::next_order`] / [`Bus::next_report`] wait for a message.
    pub poll: Duration,
}

impl NatsOptions {
    pub fn new(url: &str) -> NatsOptions {
        NatsOptions {
            url: url.to_owned(),
            creds: None,
            ca: None,
            ack_wait: Duration::from_secs(60),
            duplicate_window: Duration::from_secs(600),
            timeout: Duration::from_secs(5),
            poll: Duration::from_millis(500),
        }
    }
}

/// A connection to the server for one repository.
pub struct NatsBus {
    js: jetstream::Context,
    orders: consumer::PullConsumer,
    reports: consumer::PullConsumer,
    claims: kv::Store,
    workers: kv::Store,
    leases: kv::Store,
    repo: String,
    result_stream: String,
    events: stream::Stream,
    work_subject: String,
    result_subject: String,
    timeout: Duration,
    poll: Duration,
    /// Deliveries handed out and not yet acknowledged, by token.
    pending: Mutex<HashMap<u64, jetstream::Message>>,
    next_token: AtomicU64,
}

/// The server's streams, bucket and consumers for `repo`, by name.
pub struct Names {
    pub work_stream: String,
    pub result_stream: String,
    pub claims_bucket: String,
    /// Workers' presence (values expire unless renewed).
    pub workers_bucket: String,
    /// Lifecycle events and agents' logs, replayable by a front end that attaches late.
    pub events_stream: String,
    pub work_subject: String,
    pub result_subject: String,
}

impl Names {
    /// `repo`: letters, digits, `-` and `_` (a repository id is hex).
    pub fn new(repo: &str) -> Result<Names, String> {
        if repo.is_empty()
            || !repo
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "repository id {repo:?} cannot name NATS streams: use letters, digits, - and _"
            ));
        }
        Ok(Names {
            work_stream: format!("LOOM_WORK_{repo}"),
            result_stream: format!("LOOM_RESULT_{repo}"),
            claims_bucket: format!("LOOM_CLAIMS_{repo}"),
            workers_bucket: format!("LOOM_WORKERS_{repo}"),
            events_stream: format!("LOOM_EVENTS_{repo}"),
            work_subject: format!("loom.{repo}.work.agent"),
            result_subject: format!("loom.{repo}.result"),
        })
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("{what}: {e}"))
}

/// Every key of `bucket` (`what` names the operation in an error).
async fn keys(bucket: &kv::Store, what: &str) -> BusResult<Vec<String>> {
    let mut keys = bucket.keys().await.map_err(|e| unavailable(what, e))?;
    let mut names = Vec::new();
    while let Some(k) = keys.next().await {
        names.push(k.map_err(|e| unavailable(what, e))?);
    }
    Ok(names)
}

/// Connects to the server at `opts.url` (credentials and TLS as given).
pub async fn connect(opts: &NatsOptions) -> Result<async_nats::Client, String> {
    let mut o = async_nats::ConnectOptions::new()
        .connection_timeout(opts.timeout)
        .name("loom");
    if let Some(creds) = &opts.creds {
        o = o
            .credentials_file(creds)
            .await
            .map_err(|e| format!("cannot read the credentials file {}: {e}", creds.display()))?;
    }
    if let Some(ca) = &opts.ca {
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    o.connect(&opts.url)
        .await
        .map_err(|e| format!("cannot connect to the NATS server at {}: {e}", opts.url))
}

/// Gets stream `config.name`, creating it when missing. Two processes starting at once
/// race to create it: the loser's create fails (its subjects now overlap the winner's
/// stream), and it gets the winner's instead.
async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<stream::Stream, async_nats::jetstream::context::CreateStreamError> {
    let mut last = None;
    for _ in 0..3 {
        match js.get_or_create_stream(config.clone()).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        if let Ok(s) = js.get_stream(&config.name).await {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match last {
        Some(e) => Err(e),
        None => js.get_or_create_stream(config).await,
    }
}

/// A key-value bucket (`max_age` zero: values never expire), its stream made the way a
/// bucket is (one value per key, rollups, no deletes, direct gets), so it needs no account
/// query (which a 2.9 server answers in a form newer clients do not read).
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, String> {
    ensure_stream(
        js,
        stream::Config {
            name: format!("KV_{name}"),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    js.get_key_value(name).await.map_err(|e| e.to_string())
}

impl NatsBus {
    /// Connects and makes sure the streams, consumers and bucket for `repo` exist.
    pub async fn open(opts: &NatsOptions, repo: &str) -> Result<NatsBus, String> {
        let names = Names::new(repo)?;
        let client = connect(opts).await?;
        let js = jetstream::new(client);
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            format!(
                "cannot set up {what} on the NATS server at {} (is JetStream enabled: `nats-server -js`?): {e}",
                opts.url
            )
        };
        let queue = |name: &str, subject: &str, dedupe: Duration| stream::Config {
            name: name.to_owned(),
            subjects: vec![subject.to_owned()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: dedupe,
            ..Default::default()
        };
        let work = ensure_stream(
            &js,
            queue(
                &names.work_stream,
                &names.work_subject,
                opts.duplicate_window,
            ),
        )
        .await
        .map_err(|e| setup("the order stream", &e))?;
        let results = ensure_stream(
            &js,
            queue(
                &names.result_stream,
                &names.result_subject,
                opts.duplicate_window,
            ),
        )
        .await
        .map_err(|e| setup("the report stream", &e))?;
        let consumer = |name: &str| consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: opts.ack_wait,
            max_deliver: -1,
            ..Default::default()
        };
        let orders = work
            .get_or_create_consumer("workers", consumer("workers"))
            .await
            .map_err(|e| setup("the workers' consumer", &e))?;
        let reports = results
            .get_or_create_consumer("coordinator", consumer("coordinator"))
            .await
            .map_err(|e| setup("the coordinator's consumer", &e))?;
        let events = ensure_stream(
            &js,
            stream::Config {
                name: names.events_stream.clone(),
                subjects: vec![format!("loom.{repo}.evt.>"), format!("loom.{repo}.log.>")],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                max_messages_per_subject: EVENTS_PER_SUBJECT,
                max_age: EVENTS_KEPT,
                discard: stream::DiscardPolicy::Old,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| setup("the event stream", &e))?;
        let claims = bucket(&js, &names.claims_bucket, Duration::ZERO)
            .await
            .map_err(|e| setup("the claims bucket", &e))?;
        let workers = bucket(&js, &names.workers_bucket, PRESENCE_TTL)
            .await
            .map_err(|e| setup("the workers bucket", &e))?;
        let leases = bucket(&js, LEASE_BUCKET, LEASE_TTL)
            .await
            .map_err(|e| setup("the coordinator lease bucket", &e))?;
        Ok(NatsBus {
            js,
            orders,
            reports,
            claims,
            workers,
            leases,
            repo: repo.to_owned(),
            result_stream: names.result_stream,
            events,
            work_subject: names.work_subject,
            result_subject: names.result_subject,
            timeout: opts.timeout,
            poll: opts.poll,
            pending: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
        })
    }

    async fn bounded<T>(&self, what: &str, op: impl Future<Output = BusResult<T>>) -> BusResult<T> {
        tokio::time::timeout(self.timeout, op)
            .await
            .unwrap_or_else(|_| Err(unavailable(what, "timed out")))
    }

    /// Publishes `bytes` on `subject` with de-duplication id `id`, and waits for the
    /// server to have stored it.
    async fn publish(
        &self,
        subject: &str,
        bytes: Vec<u8>,
        id: String,
        what: &str,
    ) -> BusResult<Published> {
        self.bounded(what, async {
            let publish = jetstream::message::PublishMessage::build()
                .payload(bytes.into())
                .message_id(id);
            let ack = self
                .js
                .send_publish(subject.to_owned(), publish)
                .await
                .map_err(|e| unavailable(what, e))?
                .await
                .map_err(|e| unavailable(what, e))?;
            Ok(if ack.duplicate {
                Published::Duplicate
            } else {
                Published::Stored
            })
        })
        .await
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, jetstream::Message>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn next<T: for<'de> serde::Deserialize<'de>>(
        &self,
        from: &consumer::PullConsumer,
        what: &str,
    ) -> BusResult<Option<Delivery<T>>> {
        let fetch = async {
            let mut batch = from
                .fetch()
                .max_messages(1)
                .expires(self.poll)
                .messages()
                .await
                .map_err(|e| unavailable(what, e))?;
            match batch.next().await {
                None => Ok(None),
                Some(Err(e)) => Err(unavailable(what, e)),
                Some(Ok(m)) => Ok(Some(m)),
            }
        };
        let wait = self.poll + self.timeout;
        let Some(message) = tokio::time::timeout(wait, fetch)
            .await
            .unwrap_or_else(|_| Err(unavailable(what, "timed out")))?
        else {
            return Ok(None);
        };
        let delivered = message.info().map(|i| i.delivered as u64).unwrap_or(1);
        let value = match protocol::decode::<T>(&message.payload) {
            Ok(v) => v,
            Err(e) => {
                // Unreadable (another version, or garbage): never deliver it again.
                let _ = message.ack_with(AckKind::Term).await;
                return Err(unavailable(
                    what,
                    format!("an unreadable message was dropped: {e}"),
                ));
            }
        };
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.pending().insert(token, message);
        Ok(Some(Delivery {
            value,
            delivered,
            token,
        }))
    }

    async fn finish(&self, token: u64, kind: AckKind, what: &str) -> BusResult<()> {
        let Some(message) = self.pending().remove(&token) else {
            return Ok(());
        };
        self.bounded(what, async {
            message
                .double_ack_with(kind)
                .await
                .map_err(|e| unavailable(what, e))
        })
        .await
    }

    async fn read_claim(&self, bead: &str) -> BusResult<Option<Versioned<Claim>>> {
        let entry = self
            .claims
            .entry(bead)
            .await
            .map_err(|e| unavailable("reading a claim", e))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(None);
        };
        let value = protocol::decode::<Claim>(&entry.value)
            .map_err(|e| unavailable("reading a claim", format!("{bead}: {e}")))?;
        Ok(Some(Versioned {
            value,
            revision: entry.revision,
        }))
    }
}

impl Bus for NatsBus {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    async fn publish_order(&self, order: &Order, id: &str) -> BusResult<Published> {
        let bytes = protocol::encode(order);
        self.publish(
            &self.work_subject,
            bytes,
            id.to_owned(),
            "publishing an order",
        )
        .await
    }

    async fn next_order(&self) -> BusResult<Option<Delivery<Order>>> {
        self.next(&self.orders, "fetching an order").await
    }

    async fn ack(&self, token: u64) -> BusResult<()> {
        self.finish(token, AckKind::Ack, "acknowledging an order")
            .await
    }

    async fn progress(&self, token: u64) -> BusResult<()> {
        let message = self.pending().get(&token).cloned();
        let Some(message) = message else {
            return Ok(());
        };
        self.bounded("sending progress", async {
            message
                .ack_with(AckKind::Progress)
                .await
                .map_err(|e| unavailable("sending progress", e))
        })
        .await
    }

    async fn term(&self, token: u64) -> BusResult<()> {
        self.finish(token, AckKind::Term, "terminating an order")
            .await
    }

    async fn claim(&self, bead: &str) -> BusResult<Option<Versioned<Claim>>> {
        self.bounded("reading a claim", self.read_claim(bead)).await
    }

    async fn claims(&self) -> BusResult<Vec<(String, Versioned<Claim>)>> {
        self.bounded("listing claims", async {
            let names = keys(&self.claims, "listing claims").await?;
            let mut out = Vec::with_capacity(names.len());
            for bead in names {
                if let Some(v) = self.read_claim(&bead).await? {
                    out.push((bead, v));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn create_claim(&self, bead: &str, claim: &Claim) -> BusResult<u64> {
        self.bounded("taking a claim", async {
            self.claims
                .create(bead, protocol::encode(claim).into())
                .await
                .map_err(|e| match e.kind() {
                    kv::CreateErrorKind::AlreadyExists => BusError::Conflict,
                    _ => unavailable("taking a claim", e),
                })
        })
        .await
    }

    async fn update_claim(&self, bead: &str, claim: &Claim, revision: u64) -> BusResult<u64> {
        self.bounded("updating a claim", async {
            self.claims
                .update(bead, protocol::encode(claim).into(), revision)
                .await
                .map_err(|e| match e.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => BusError::Conflict,
                    _ => unavailable("updating a claim", e),
                })
        })
        .await
    }

    async fn publish_report(&self, report: &Report) -> BusResult<()> {
        let id = format!("{}:{}", report.bead, report.epoch);
        let bytes = protocol::encode(report);
        self.publish(&self.result_subject, bytes, id, "publishing a report")
            .await
            .map(|_| ())
    }

    async fn next_report(&self) -> BusResult<Option<Delivery<Report>>> {
        self.next(&self.reports, "fetching a report").await
    }

    async fn ack_report(&self, token: u64) -> BusResult<()> {
        self.finish(token, AckKind::Ack, "acknowledging a report")
            .await
    }
}

/// What `loom doctor --nats` reports about a server.
#[derive(Clone, Debug)]
pub struct Probe {
    pub version: String,
    pub jetstream: bool,
    /// Loom's streams for the repository (when one was given): name, present.
    pub streams: Vec<(String, bool)>,
}

/// Connects and looks: the server's version, whether JetStream is on, and which of the
/// repository's streams exist.
pub async fn probe(opts: &NatsOptions, repo: Option<&str>) -> Result<Probe, String> {
    let client = connect(opts).await?;
    let info = client.server_info();
    let js = jetstream::new(client);
    let mut streams = Vec::new();
    if let Some(repo) = repo {
        let names = Names::new(repo)?;
        for name in [
            names.work_stream,
            names.result_stream,
            format!("KV_{}", names.claims_bucket),
        ] {
            let present = js.get_stream(&name).await.is_ok();
            streams.push((name, present));
        }
    }
    Ok(Probe {
        version: info.version,
        jetstream: info.jetstream,
        streams,
    })
}

/// Whether a server `version` (`2.9.10`) is at least 2.9, the feature set Loom relies on.
pub fn version_ok(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 9)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_from_2_9_on_are_enough() {
        for (v, ok) in [
            ("2.9.10", true),
            ("v2.10.1", true),
            ("3.0.0", true),
            ("2.8.4", false),
            ("1.9", false),
            ("", false),
            ("garbage", false),
        ] {
            assert_eq!(super::version_ok(v), ok, "{v}");
        }
    }
}
