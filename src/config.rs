//! Typed settings. Precedence, lowest first: built-in defaults < a TOML file (`--config PATH`) <
//! environment variables `SAFEGUARD__SECTION__KEY` < command-line flags. Tests build [`Settings`] in
//! code and never touch the process environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything safeguard can be configured with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub snapshot: SnapshotSettings,
    pub registry: RegistrySettings,
    pub policy: PolicySettings,
    pub auth: AuthSettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
    pub decisions: DecisionSettings,
    pub audit: AuditSettings,
    pub console: ConsoleSettings,
}

/// The console: web pages for legal and auditors, and the public recipient register.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// Serve the console beside gRPC.
    pub enabled: bool,
    /// Where the console listens; port 0 picks a free port. Loopback by default: the pages carry
    /// legal's session, so exposing them is a deliberate choice (behind a TLS-terminating proxy).
    pub listen_addr: SocketAddr,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self { enabled: true, listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)) }
    }
}

/// The decision records auditors read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionSettings {
    /// `all`, `deny-only` (DENY and ALLOW_PARTIAL) or `off`.
    pub mode: crate::domain::record::RecordMode,
    /// Records waiting to be written; beyond it they are counted as lost (and that is recorded).
    pub queue_capacity: usize,
    /// Most records per batch: one transaction, which also moves the decision log's head and
    /// appends the batch's leaves to its Merkle tree. A batch is only as big as what was queued when
    /// the writer took it; at saturation every batch is full. Each batch has a cost of its own (the
    /// head and frontier reads, the commit and its WAL sync, and the decisions waiting meanwhile),
    /// so at saturation 16,000 took about a fifth off the CPU per recorded decision against 2,000
    /// on SQLite (README, Benchmarks); a full batch holds SQLite's write lock for ~0.1–0.2 s.
    pub batch_size: usize,
    /// How long a decision waits for room in a full queue while the writer is writing (it is
    /// behind, not failing) before its record is counted as lost: backpressure, so that a
    /// saturated service slows to the pace its records are written at instead of losing them.
    /// While the writer is failing (the database is away) nothing waits: the loss is counted at
    /// once. 0 never waits.
    pub full_queue_wait_ms: u64,
    /// How long the writer goes on gathering a batch that is not full before it writes it. Under
    /// light load each record would otherwise be a transaction of its own, with its commit and WAL
    /// sync competing with the decisions for the cores; at saturation batches are full and never
    /// wait. A record becomes readable by auditors up to this much later. 0 writes at once.
    pub linger_ms: u64,
    /// Records older than this are pruned.
    pub retention_days: u32,
    /// How often pruning runs.
    pub prune_interval_s: u64,
    /// Rows deleted per statement when pruning records and quarantined records, so a prune never
    /// holds a long lock or a huge transaction.
    pub prune_batch_size: u64,
}

impl Default for DecisionSettings {
    fn default() -> Self {
        Self {
            mode: crate::domain::record::RecordMode::All,
            queue_capacity: 65_536,
            batch_size: 16_000,
            full_queue_wait_ms: 1_000,
            linger_ms: 20,
            retention_days: 400,
            prune_interval_s: 3_600,
            prune_batch_size: 1_000,
        }
    }
}

/// The verifiable log: signed checkpoints of the registry's Merkle tree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Keep the Merkle tree with every write and sign checkpoints. Off only to measure what they
    /// cost: the tree is then caught up from the log at the next start with it on.
    pub checkpoints: bool,
    /// The log's origin, and the signing key's name (C2SP: a schema-less URL is customary).
    pub origin: String,
    /// The Ed25519 signer key (`PRIVATE+KEY+name+id+key`); never stored in the database. Unset
    /// with SQLite: `safeguard.signing-key` beside the database, created on the first run. Required
    /// with PostgreSQL (created there too if the file does not exist yet).
    pub signing_key_file: Option<PathBuf>,
    /// Seconds between checkpoints (a checkpoint is signed only when the log grew).
    pub checkpoint_interval_s: u64,
    /// The last checkpoint and one file per checkpoint; unset: `checkpoints/` beside the key.
    pub checkpoint_dir: Option<PathBuf>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            checkpoints: true,
            origin: "safeguard".to_owned(),
            signing_key_file: None,
            checkpoint_interval_s: 60,
            checkpoint_dir: None,
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` (Prometheus text format) here.
    pub enabled: bool,
    pub listen_addr: SocketAddr,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self { enabled: true, listen_addr: SocketAddr::from(([127, 0, 0, 1], 9464)) }
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: crate::telemetry::LogFormat,
    /// A tracing filter (`info`, `safeguard=debug,info`); `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: crate::telemetry::LogFormat::Text, level: "info".to_owned() }
    }
}

/// The gRPC listener and its limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Where gRPC listens; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// Longest a VerifySeller with `min_revision` waits for this replica to catch up (the request's
    /// own deadline may cut it shorter).
    pub max_min_revision_wait_ms: u64,
    /// A unary RPC taking longer (or longer than the client's own `grpc-timeout`) is answered
    /// DEADLINE_EXCEEDED and counted as such. Client streams (ImportSellers) are exempt: they are
    /// bounded by `stream_idle_timeout_ms` between messages instead.
    pub request_timeout_ms: u64,
    /// Longest pause between two messages of a client stream; beyond it the stream is ended with
    /// DEADLINE_EXCEEDED (an import reports what it committed in the status message).
    pub stream_idle_timeout_ms: u64,
    /// Largest accepted request message.
    pub max_message_bytes: usize,
    /// Concurrent requests per connection (HTTP/2 streams).
    pub max_concurrent_streams: u32,
    /// Requests one connection may have in the handlers at once; beyond it a request waits its turn
    /// on that connection (it is never refused for this; the server-wide `concurrency_limit` is
    /// what sheds).
    pub concurrency_limit_per_connection: usize,
    /// Requests the whole server handles at once. Beyond it, with `load_shed` on, a request is
    /// refused at once with UNAVAILABLE (retry, preferably on another replica) and counted in
    /// `safeguard_rpc_requests_total{code="UNAVAILABLE"}`; with it off, the request waits.
    pub concurrency_limit: usize,
    /// Refuse work beyond `concurrency_limit` with UNAVAILABLE instead of queueing it.
    pub load_shed: bool,
    /// Optional TLS.
    pub tls: TlsSettings,
}

/// Server TLS (rustls). Both files set: TLS on; `client_ca_file` too: clients must present a
/// certificate signed by that CA (mTLS).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub client_ca_file: Option<PathBuf>,
}

/// A secret value: never printed, never logged.
#[derive(Clone, Deserialize, PartialEq, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// Token verification. With no key configured and an SQLite database, `safeguard serve` creates a
/// random HS256 secret in a 0600 file beside the database and reuses it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Shared HS256 secret (at least 32 bytes).
    pub hs256_secret: Option<Secret>,
    /// A file holding the HS256 secret (used when `hs256_secret` is unset).
    pub hs256_secret_file: Option<PathBuf>,
    /// PEM public keys, each pinned to its algorithm.
    pub rs256_public_key_file: Option<PathBuf>,
    pub es256_public_key_file: Option<PathBuf>,
    pub eddsa_public_key_file: Option<PathBuf>,
    /// A JWKS document of public keys; each key must name its alg (RS256, ES256 or EdDSA).
    pub jwks_file: Option<PathBuf>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set; required itself when any public key or a JWKS is configured.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// Verified tokens remembered (each never past its expiry).
    pub cache_capacity: usize,
    /// Benchmarks only: no authentication at all. Not settable from a file or the environment.
    #[serde(skip)]
    pub insecure_disabled: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            hs256_secret_file: None,
            rs256_public_key_file: None,
            es256_public_key_file: None,
            eddsa_public_key_file: None,
            jwks_file: None,
            issuer: None,
            audience: None,
            leeway_seconds: 30,
            cache_capacity: 100_000,
            insecure_disabled: false,
        }
    }
}

impl AuthSettings {
    /// Whether any verification key is configured.
    pub fn has_keys(&self) -> bool {
        self.hs256_secret.is_some()
            || self.hs256_secret_file.is_some()
            || self.rs256_public_key_file.is_some()
            || self.es256_public_key_file.is_some()
            || self.eddsa_public_key_file.is_some()
            || self.jwks_file.is_some()
    }
}

/// The registry database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH?mode=rwc` (embedded, the default) or `postgres://USER@HOST:PORT/DB`: the
    /// primary, which every write goes to.
    pub url: String,
    /// Hot standbys of the primary, nearest first. When set, the snapshot is loaded and followed
    /// from the first one that answers (the next on failure), and auditors' reads go there too;
    /// writes, exports and long audit scans stay on the primary. Empty: the primary serves all.
    pub read_urls: Vec<String>,
    pub max_connections: u32,
    pub connect_timeout_ms: u64,
    /// SQLite only: the page cache each pooled connection keeps in this process, in KiB. The
    /// operating system caches the file as well, so a large one mostly holds the same pages twice.
    pub sqlite_cache_kib: u32,
    /// Apply pending migrations at start-up (otherwise run `safeguard migrate`).
    pub migrate_on_start: bool,
}

/// The in-memory registry that VerifySeller reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotSettings {
    /// How often the snapshot polls the event log (writes through this replica wake it at once).
    pub poll_interval_ms: u64,
    /// Older than this without a successful sync, every decision is DENY REGISTRY_STALE. Measured
    /// on the monotonic clock, so a step of the system clock neither hides nor fakes staleness.
    pub max_staleness_ms: u64,
    /// How often the heartbeat (the primary's time and revision) is written to the primary.
    /// Freshness is measured by the heartbeat replayed from the database this replica follows, so
    /// `max_staleness_ms` must leave room for one interval.
    pub heartbeat_ms: u64,
    /// Save the snapshot to a signed file in the checkpoint directory whenever the registry
    /// checkpoint is signed, and start from it: a restart then folds only the events after it and
    /// checks the rest of the log in the background. Needs `audit.checkpoints` (the file is
    /// signed with the checkpoint key); without them there is no file.
    pub saved_file: bool,
    /// The wall clock decisions are judged by: the system clock, which only tests step.
    #[serde(skip)]
    pub clock: crate::clock::WallClock,
}

/// Registry writes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySettings {
    /// How long a write's `request_id` is remembered: a retry within it is answered as the first time,
    /// a retry after it is a new write. Expired keys are pruned in batches.
    pub request_id_window_s: u64,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self { request_id_window_s: 7 * 86_400 }
    }
}

/// The transfer policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// A policy TOML file; unset: the built-in PIPA default.
    pub path: Option<PathBuf>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_min_revision_wait_ms: 2_000,
            request_timeout_ms: 10_000,
            stream_idle_timeout_ms: 30_000,
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_streams: 256,
            concurrency_limit_per_connection: 256,
            concurrency_limit: 1_024,
            load_shed: true,
            tls: TlsSettings::default(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://safeguard.db?mode=rwc".to_owned(),
            read_urls: Vec::new(),
            max_connections: 10,
            sqlite_cache_kib: 256,
            connect_timeout_ms: 5_000,
            migrate_on_start: true,
        }
    }
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: 250,
            max_staleness_ms: 30_000,
            heartbeat_ms: 1_000,
            saved_file: true,
            clock: crate::clock::WallClock::default(),
        }
    }
}

/// A settings value that does not hold up.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Defaults < `file` < `SAFEGUARD__SECTION__KEY` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!("config file {} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("SAFEGUARD__").split("__"));
        let settings: Settings = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The settings safe to print: secrets are redacted by their type, and a password inside the
    /// database URL is replaced.
    pub fn redacted(&self) -> Self {
        let mut s = self.clone();
        s.database.url = redact_url(&s.database.url);
        s.database.read_urls = s.database.read_urls.iter().map(|u| redact_url(u)).collect();
        s
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError("database.url must start with sqlite:, postgres:// or postgresql://".into()));
        }
        // A hot standby is PostgreSQL's streaming replication: there is no SQLite one.
        if let Some(bad) =
            self.database.read_urls.iter().find(|u| !(u.starts_with("postgres://") || u.starts_with("postgresql://")))
        {
            return Err(ConfigError(format!(
                "database.read_urls must be postgres:// or postgresql:// URLs of hot standbys, not {:?}",
                redact_url(bad)
            )));
        }
        if !self.database.read_urls.is_empty() && !url.starts_with("postgres") {
            return Err(ConfigError("database.read_urls needs a PostgreSQL primary in database.url".into()));
        }
        let positive = [
            ("database.max_connections", u64::from(self.database.max_connections)),
            ("snapshot.poll_interval_ms", self.snapshot.poll_interval_ms),
            ("snapshot.max_staleness_ms", self.snapshot.max_staleness_ms),
            ("snapshot.heartbeat_ms", self.snapshot.heartbeat_ms),
            ("server.request_timeout_ms", self.server.request_timeout_ms),
            ("server.stream_idle_timeout_ms", self.server.stream_idle_timeout_ms),
            ("server.concurrency_limit", self.server.concurrency_limit as u64),
            ("decisions.prune_batch_size", self.decisions.prune_batch_size),
            ("server.max_message_bytes", self.server.max_message_bytes as u64),
            ("server.max_concurrent_streams", u64::from(self.server.max_concurrent_streams)),
            ("server.concurrency_limit_per_connection", self.server.concurrency_limit_per_connection as u64),
            ("auth.cache_capacity", self.auth.cache_capacity as u64),
            ("decisions.queue_capacity", self.decisions.queue_capacity as u64),
            ("decisions.batch_size", self.decisions.batch_size as u64),
            ("decisions.retention_days", u64::from(self.decisions.retention_days)),
            ("decisions.prune_interval_s", self.decisions.prune_interval_s),
            ("registry.request_id_window_s", self.registry.request_id_window_s),
            ("audit.checkpoint_interval_s", self.audit.checkpoint_interval_s),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError(format!("{key} must be positive")));
            }
        }
        let tls = &self.server.tls;
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(ConfigError("server.tls.cert_file and server.tls.key_file go together".into()));
        }
        if tls.client_ca_file.is_some() && tls.cert_file.is_none() {
            return Err(ConfigError("server.tls.client_ca_file needs server.tls.cert_file and key_file".into()));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError(format!("log.level {:?} is not a valid filter", self.log.level)));
        }
        // A public key usually belongs to an identity provider that mints tokens for many services:
        // without a required audience, a token minted for any of them would be accepted here.
        // An HS256 secret is shared with safeguard alone, so it needs no audience.
        let public_keys = [
            &self.auth.rs256_public_key_file,
            &self.auth.es256_public_key_file,
            &self.auth.eddsa_public_key_file,
            &self.auth.jwks_file,
        ];
        if public_keys.iter().any(|k| k.is_some()) && self.auth.audience.as_deref().is_none_or(|a| a.trim().is_empty())
        {
            return Err(ConfigError(
                "auth.audience must be set when public keys or a JWKS are configured (auth.rs256_public_key_file, \
                 es256_public_key_file, eddsa_public_key_file, jwks_file), so that tokens the identity provider \
                 minted for other services are refused"
                    .into(),
            ));
        }
        let origin = &self.audit.origin;
        if origin.is_empty() || origin.chars().any(|c| c == '+' || c.is_whitespace() || c.is_control()) {
            return Err(ConfigError("audit.origin must be non-empty, without '+' or spaces".into()));
        }
        // A heartbeat is up to one interval old when written and read up to one poll later: with a
        // smaller bound a healthy replica would flap between fresh and stale.
        let snap = &self.snapshot;
        if snap.max_staleness_ms <= snap.poll_interval_ms.saturating_add(snap.heartbeat_ms) {
            return Err(ConfigError(
                "snapshot.max_staleness_ms must exceed snapshot.poll_interval_ms + snapshot.heartbeat_ms".into(),
            ));
        }
        Ok(())
    }
}

/// `url` with the password, if any, replaced.
fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _password)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:[redacted]@{host}");
    }
    url.to_owned()
}

/// Milliseconds as a duration.
pub fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}
