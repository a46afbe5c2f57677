//! Builds the whole service from [`Settings`]: database, migrations, policy, snapshot and its
//! follower, and the one gRPC server with its tower stack. Tests build it on 127.0.0.1:0 exactly as
//! production does.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::auth::keys::Verifier;
use crate::auth::layer::{AuthLayer, Authenticator};
use crate::auth::secret::resolve_hs256_secret;
use crate::config::{Settings, ms};
use crate::domain::Policy;
use crate::grpc::Shared;
use crate::recorder::{DecisionLog, RecorderOptions};
use crate::snapshot::{Registry, Sources, spawn_follower, spawn_heartbeat, spawn_history_check};
use crate::store::{DbOptions, Store};

fn recorder_options(settings: &Settings) -> RecorderOptions {
    let d = &settings.decisions;
    RecorderOptions {
        mode: d.mode,
        queue_capacity: d.queue_capacity,
        batch_size: d.batch_size,
        full_queue_wait: ms(d.full_queue_wait_ms),
        linger: ms(d.linger_ms),
        retention: std::time::Duration::from_secs(u64::from(d.retention_days) * 86_400),
        prune_interval: std::time::Duration::from_secs(d.prune_interval_s),
        prune_batch: d.prune_batch_size,
    }
}

/// A built, bound, not yet serving safeguard.
pub struct App {
    settings: Settings,
    listener: TcpListener,
    shared: Shared,
    /// The follower and the request-id pruner: aborted at shutdown.
    background: Vec<JoinHandle<()>>,
    recorder_tasks: Vec<JoinHandle<()>>,
    auth: AuthLayer,
    tls: Option<tonic::transport::ServerTlsConfig>,
    metrics_listener: Option<TcpListener>,
    console: Option<crate::console::Console>,
}

/// Builds the authentication layer from the settings (keys are parsed here, once).
pub fn auth_layer(settings: &Settings) -> anyhow::Result<AuthLayer> {
    if settings.auth.insecure_disabled {
        tracing::warn!("authentication is disabled");
        return Ok(AuthLayer::disabled());
    }
    let secret = resolve_hs256_secret(settings, true)?;
    let verifier = Verifier::new(&settings.auth, secret.as_deref())?;
    Ok(AuthLayer::new(Arc::new(Authenticator::new(verifier, settings.auth.cache_capacity))))
}

/// Loads the configured policy, or the built-in default.
pub fn load_policy(settings: &Settings) -> anyhow::Result<Policy> {
    match &settings.policy.path {
        None => Ok(Policy::default_pipa()),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read policy file {}", path.display()))?;
            Policy::from_toml(&text).with_context(|| format!("policy file {} is invalid", path.display()))
        }
    }
}

/// Connects to the configured database.
pub async fn connect_store(settings: &Settings) -> anyhow::Result<Store> {
    let options = DbOptions {
        url: settings.database.url.clone(),
        max_connections: settings.database.max_connections,
        connect_timeout: ms(settings.database.connect_timeout_ms),
        sqlite_cache_kib: settings.database.sqlite_cache_kib,
    };
    let store = Store::connect(&options).await.context("cannot connect to the database")?;
    store.set_merkle(settings.audit.checkpoints);
    Ok(store.with_request_id_window(std::time::Duration::from_secs(settings.registry.request_id_window_s)))
}

/// Connects to the primary and to the hot standbys the snapshot follows. With standbys, every
/// connection is lazy: a replica whose primary goes down keeps deciding from its standby, and writes
/// answer UNAVAILABLE until the primary is back. Migrations need the primary at once.
pub async fn connect_sources(settings: &Settings) -> anyhow::Result<(Store, Sources)> {
    let db = &settings.database;
    let options = |url: &str| DbOptions {
        url: url.to_owned(),
        max_connections: db.max_connections,
        connect_timeout: ms(db.connect_timeout_ms),
        sqlite_cache_kib: db.sqlite_cache_kib,
    };
    let window = std::time::Duration::from_secs(settings.registry.request_id_window_s);
    let store = if db.read_urls.is_empty() || db.migrate_on_start {
        connect_store(settings).await?
    } else {
        Store::connect_lazy(&options(&db.url))
            .await
            .context("cannot set up the primary's pool")?
            .with_request_id_window(window)
    };
    let mut readers = Vec::with_capacity(db.read_urls.len());
    for url in &db.read_urls {
        readers.push(Store::connect_lazy(&options(url)).await.context("cannot set up a standby's pool")?);
    }
    Ok((store.clone(), Sources::new(store, readers)))
}

/// How often expired request ids are pruned: a tenth of the window, at least every second and at
/// most every hour, so the table stays within about 1.1 windows of writes.
async fn prune_request_ids(store: Store) {
    let every = |window: std::time::Duration| {
        (window / 10).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(3600))
    };
    loop {
        loop {
            match store.prune_request_ids(crate::domain::Timestamp::now(), 1000).await {
                Ok(1000..) => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot prune expired request ids");
                    break;
                }
            }
        }
        tokio::time::sleep(every(store.request_id_window())).await;
    }
}

impl App {
    /// Connects, migrates (if configured), loads the snapshot and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let policy = Arc::new(load_policy(&settings)?);
        let auth = auth_layer(&settings)?;
        // Read certificates before anything else is started, so a missing file fails fast.
        let tls = tls_config(&settings)?;
        let (store, sources) = connect_sources(&settings).await?;
        if settings.database.migrate_on_start {
            store.migrate().await.context("cannot apply migrations")?;
        }
        // A heartbeat before the load, so that a single database vouches for the snapshot at once;
        // with standbys this may fail (the primary is down) and the standby's own heartbeat counts.
        if let Err(e) = store.write_heartbeat().await {
            tracing::warn!(error = %e, "cannot write the heartbeat to the primary");
        }
        // The snapshot is the verified log folded, never the state tables: a table edited under the
        // service cannot change a decision.
        // A saved snapshot file that verifies spares the fold of the log under it (checked after
        // SERVING instead, below).
        let saved = crate::tlog::saved_file(&settings).context("cannot open the saved snapshot file")?;
        let loaded = crate::snapshot::load_from(&sources, saved.as_ref()).await.context("cannot load the registry")?;
        let snapshot = loaded.snapshot;
        tracing::info!(revision = snapshot.revision, sellers = snapshot.len(), policy = %policy.version, standbys = settings.database.read_urls.len(), start_up = ?loaded.start_up, "registry loaded");
        let from_file = match &loaded.start_up {
            crate::snapshot::StartUp::FromFile { revision, .. } => *revision,
            crate::snapshot::StartUp::WholeLog { .. } => 0,
        };
        metrics::gauge!("safeguard_registry_loaded_from_saved_revision").set(from_file as f64);
        let registry = Registry::with_clock(
            snapshot,
            policy,
            ms(settings.snapshot.max_staleness_ms),
            settings.snapshot.clock.clone(),
        );
        registry.start_synced(loaded.synced_at);
        registry.set_start_up(loaded.start_up);
        if let Some((revision, problem)) = loaded.broken {
            registry.halt(format!("registry log rejected at revision {revision}: {problem}"));
        }
        // The events under a saved snapshot were checked when it was written; they are checked
        // again against this database, so that one edited since halts as the whole fold would.
        if loaded.from_file.is_none() {
            metrics::gauge!("safeguard_registry_history_checked").set(1.0);
        }
        let history = loaded
            .from_file
            .map(|(revision, hash)| spawn_history_check(loaded.store.clone(), registry.clone(), revision, hash));
        let tlog = crate::tlog::start(&settings, &store, &registry, saved).await?;
        let follower = spawn_follower(registry.clone(), sources.clone(), ms(settings.snapshot.poll_interval_ms));
        let heartbeat = spawn_heartbeat(store.clone(), ms(settings.snapshot.heartbeat_ms));
        let pruner = tokio::spawn(prune_request_ids(store.clone()));
        let listener = TcpListener::bind(settings.server.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.listen_addr))?;
        let (decisions, recorder_tasks) = DecisionLog::start(store.clone(), &recorder_options(&settings));
        let shared = Shared {
            store,
            sources,
            registry,
            max_min_revision_wait: ms(settings.server.max_min_revision_wait_ms),
            stream_idle_timeout: ms(settings.server.stream_idle_timeout_ms),
            decisions,
            tlog,
        };
        let metrics_listener = if settings.metrics.enabled {
            crate::telemetry::metrics_handle();
            Some(
                TcpListener::bind(settings.metrics.listen_addr)
                    .await
                    .with_context(|| format!("cannot listen for metrics on {}", settings.metrics.listen_addr))?,
            )
        } else {
            None
        };
        let console = console(&settings, &shared, tls.is_some()).await?;
        let mut background = vec![follower, heartbeat, pruner];
        background.extend(history);
        Ok(Self { settings, listener, shared, background, recorder_tasks, auth, tls, metrics_listener, console })
    }

    /// Where the server listens (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.settings.server.listen_addr)
    }

    /// Where metrics are served, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Where the console is served, if enabled (the real port when configured with port 0).
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console.as_ref().and_then(crate::console::Console::local_addr)
    }

    /// The in-memory registry.
    pub fn registry(&self) -> Arc<Registry> {
        self.shared.registry.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting and finishes in-flight requests.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let App { settings, listener, shared, background, recorder_tasks, auth, tls, metrics_listener, console } = self;
        let (console_stop, console_stopped) = tokio::sync::oneshot::channel::<()>();
        let console = console.map(|c| {
            tokio::spawn(c.serve(async {
                let _ = console_stopped.await;
            }))
        });
        let max_msg = settings.server.max_message_bytes;

        // The snapshot is loaded (build did it), so verification can serve from the first request,
        // unless the log it was loaded from could not be trusted.
        let (routes, health) = crate::grpc::routes(&shared, max_msg)?;
        crate::grpc::health::set_all(&health, shared.registry.is_fresh(), true, true).await;
        let monitor = tokio::spawn(crate::grpc::health::monitor(
            health.clone(),
            shared.store.clone(),
            shared.registry.clone(),
            shared.decisions.clone(),
        ));
        let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_server = metrics_listener.map(|listener| {
            tokio::spawn(crate::telemetry::serve_metrics(listener, async {
                let _ = metrics_stopped.await;
            }))
        });
        tracing::info!(addr = %listener.local_addr()?, "safeguard serving");
        let mut server = Server::builder();
        if let Some(tls) = tls {
            server = server.tls_config(tls)?;
        }
        // The limits live in our own stack, under the metrics layer, so a shed or timed-out request
        // is counted with the code its client saw; tonic's own `timeout`/`load_shed` would refuse
        // outside it, uncounted, as CANCELLED and RESOURCE_EXHAUSTED. From the outside in: count,
        // turn tower errors into statuses, shed, time out unary calls, limit, authenticate.
        let stack = tower::ServiceBuilder::new()
            .layer(crate::telemetry::MetricsLayer)
            .layer(crate::overload::StatusLayer)
            .option_layer(settings.server.load_shed.then(tower::load_shed::LoadShedLayer::new))
            .layer(crate::overload::UnaryTimeoutLayer::new(ms(settings.server.request_timeout_ms)))
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(settings.server.concurrency_limit))
            .layer(auth);
        let result = server
            .max_concurrent_streams(settings.server.max_concurrent_streams)
            // Without load shedding this only queues a connection's requests, refusing none.
            .concurrency_limit_per_connection(settings.server.concurrency_limit_per_connection)
            .layer(stack)
            .add_routes(routes)
            .serve_with_incoming_shutdown(no_delay(listener), async {
                shutdown.await;
                tracing::info!("shutting down: finishing in-flight requests");
                let _ = console_stop.send(());
                // Stop the monitor first, so it cannot report SERVING again.
                monitor.abort();
                crate::grpc::health::set_all(&health, false, false, false).await;
            })
            .await;
        background.iter().for_each(JoinHandle::abort);
        // Every acknowledged decision reaches the record: dropping the last sender closes the
        // queue, and the writer drains it before it stops.
        drop(shared);
        let mut recorder_tasks = recorder_tasks.into_iter();
        if let Some(writer) = recorder_tasks.next()
            && tokio::time::timeout(std::time::Duration::from_secs(10), writer).await.is_err()
        {
            tracing::error!("decision records were still being written at shutdown");
        }
        recorder_tasks.for_each(|t| t.abort());
        if let Some(console) = console
            && let Ok(Err(e)) = console.await
        {
            tracing::error!(error = %e, "console server failed");
        }
        let _ = metrics_stop.send(());
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        result.context("gRPC server failed")
    }
}

/// The accepted connections, with Nagle's algorithm off. A response goes out as a HEADERS, a DATA
/// and a trailing HEADERS frame; with Nagle on, a write that follows an unacknowledged one waits
/// for the client's delayed ACK (40 ms on Linux), which capped VerifySeller DENY at about 11,000
/// req/s with the CPU mostly idle. (tonic sets this itself only for listeners it binds.)
fn no_delay(listener: TcpListener) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt as _;
    TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(conn)
    })
}

/// Binds the console, if enabled, with its own verifier built from the same settings as the auth
/// layer's, so a token the API accepts signs in and nothing else does.
async fn console(settings: &Settings, shared: &Shared, tls: bool) -> anyhow::Result<Option<crate::console::Console>> {
    if !settings.console.enabled {
        return Ok(None);
    }
    let verifier = if settings.auth.insecure_disabled {
        None
    } else {
        let secret = resolve_hs256_secret(settings, true)?;
        Some(Verifier::new(&settings.auth, secret.as_deref())?)
    };
    let state = crate::console::ConsoleState {
        store: shared.store.clone(),
        registry: shared.registry.clone(),
        verifier,
        key: crate::console::session::SessionKey::random(),
        secure_cookies: tls,
        register: crate::console::recipients::Cache::default(),
        tlog: shared.tlog.clone(),
        imports: crate::console::import::Jobs::default(),
    };
    let addr = settings.console.listen_addr;
    let console = crate::console::Console::bind(addr, state)
        .await
        .with_context(|| format!("cannot listen for the console on {addr}"))?;
    Ok(Some(console))
}

/// The server TLS configuration, if TLS is configured.
fn tls_config(settings: &Settings) -> anyhow::Result<Option<tonic::transport::ServerTlsConfig>> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let tls = &settings.server.tls;
    let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) else { return Ok(None) };
    let read = |p: &std::path::Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &tls.client_ca_file {
        config = config.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(config))
}
