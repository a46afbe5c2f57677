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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub snapshot: SnapshotSettings,
    pub policy: PolicySettings,
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
    /// Requests taking longer are cancelled with DEADLINE_EXCEEDED.
    pub request_timeout_ms: u64,
    /// Largest accepted request message.
    pub max_message_bytes: usize,
    /// Concurrent requests per connection (HTTP/2 streams).
    pub max_concurrent_streams: u32,
}

/// The registry database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH?mode=rwc` (embedded, the default) or `postgres://USER@HOST:PORT/DB`.
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_ms: u64,
    /// Apply pending migrations at start-up (otherwise run `safeguard migrate`).
    pub migrate_on_start: bool,
}

/// The in-memory registry that VerifySeller reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotSettings {
    /// How often the snapshot polls the event log (writes through this replica wake it at once).
    pub poll_interval_ms: u64,
    /// Older than this without a successful sync, every decision is DENY REGISTRY_STALE.
    pub max_staleness_ms: u64,
}

/// The transfer policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// A policy TOML file; unset: the built-in PIPA default.
    pub path: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            snapshot: SnapshotSettings::default(),
            policy: PolicySettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_min_revision_wait_ms: 2_000,
            request_timeout_ms: 10_000,
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_streams: 256,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://safeguard.db?mode=rwc".to_owned(),
            max_connections: 10,
            connect_timeout_ms: 5_000,
            migrate_on_start: true,
        }
    }
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        Self { poll_interval_ms: 250, max_staleness_ms: 30_000 }
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

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError("database.url must start with sqlite:, postgres:// or postgresql://".into()));
        }
        let positive = [
            ("database.max_connections", u64::from(self.database.max_connections)),
            ("snapshot.poll_interval_ms", self.snapshot.poll_interval_ms),
            ("snapshot.max_staleness_ms", self.snapshot.max_staleness_ms),
            ("server.request_timeout_ms", self.server.request_timeout_ms),
            ("server.max_message_bytes", self.server.max_message_bytes as u64),
            ("server.max_concurrent_streams", u64::from(self.server.max_concurrent_streams)),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError(format!("{key} must be positive")));
            }
        }
        if self.snapshot.max_staleness_ms <= self.snapshot.poll_interval_ms {
            return Err(ConfigError("snapshot.max_staleness_ms must exceed snapshot.poll_interval_ms".into()));
        }
        Ok(())
    }
}

/// Milliseconds as a duration.
pub fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}
