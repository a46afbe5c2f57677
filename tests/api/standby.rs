//! What the replication and failover tests share: the standby URLs (skipped without them, failed
//! without them in CI), SQL on a standby, a TCP proxy that can cut or move "the primary", a lock
//! that keeps tests that pause the shared standby apart, and a pause that always resumes.

use std::net::SocketAddr;
use std::sync::Arc;

use safeguard::config::Settings;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use crate::harness::*;

pub const VERIFICATION: &str = "safeguard.v1.VerificationService";
pub const REGISTRY: &str = "safeguard.v1.RegistryService";

/// The standby URL in `var`, or `None` (skipped) when it is not configured outside CI.
pub fn standby_base(var: &str) -> Option<String> {
    match std::env::var(var).ok().filter(|u| !u.is_empty()) {
        Some(url) => Some(url),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set: CI must run the replication tests against a real standby (.ci/standby.sh start)")
        }
        None => {
            eprintln!("{var} is not set: replication test skipped");
            None
        }
    }
}

/// `db`'s URL with the host and port of `server` (a base URL such as the standby's).
pub fn same_schema_on(db: &TestDb, server: &str) -> String {
    let base = postgres_url().unwrap();
    let suffix = db.url.strip_prefix(base.as_str()).unwrap();
    format!("{server}{suffix}")
}

/// Runs `statements` on `url`.
pub async fn exec(url: &str, statements: &str) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(url).await.unwrap();
    db.execute_unprepared(statements).await.unwrap();
    db.close().await.unwrap();
}

/// Runs one statement on `url` and returns the first column of the first row as text.
pub async fn sql(url: &str, statement: &str) -> Option<String> {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(url).await.unwrap();
    let stmt = sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Postgres, statement.to_owned());
    let row = db.query_one_raw(stmt).await.unwrap();
    db.close().await.unwrap();
    row.and_then(|r| r.try_get_by_index::<Option<String>>(0).ok().flatten())
}

/// Waits until the standby at `url` has replayed the schema's migrations.
pub async fn replayed_schema(url: &str) {
    eventually("the standby has replayed the schema", || async {
        sql(url, "SELECT CAST(to_regclass('registry_heartbeat') AS TEXT)").await.is_some()
    })
    .await;
}

/// Settings for a replica that writes to `primary` and follows `standby`.
pub fn replica_settings(db: &TestDb, primary: String, standby: String) -> Settings {
    let mut s = test_settings(db);
    s.database.url = primary;
    s.database.read_urls = vec![standby];
    s.database.migrate_on_start = false;
    s.database.connect_timeout_ms = 500;
    s
}

/// A TCP proxy whose upstream can be cut or switched: "the primary is down" or "the primary moved"
/// for the servers behind it, without touching the PostgreSQL server other tests share.
pub struct Proxy {
    pub addr: SocketAddr,
    upstream: Arc<std::sync::Mutex<Option<String>>>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(std::sync::Mutex::new(Some(upstream.to_owned())));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (up, conns2) = (upstream.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                let Some(target) = up.lock().unwrap().clone() else { continue };
                conns2.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Self { addr, upstream, conns }
    }

    /// Drops every connection and refuses new ones (`None`), or sends new ones to `to`.
    pub async fn point_to(&self, to: Option<&str>) {
        *self.upstream.lock().unwrap() = to.map(str::to_owned);
        for c in self.conns.lock().await.drain(..) {
            c.abort();
        }
    }

    /// `url` (host:port after the `@`) routed through this proxy.
    pub fn route(&self, url: &str) -> String {
        let (head, tail) = url.split_once('@').unwrap();
        let (_, path) = tail.split_once('/').unwrap();
        format!("{head}@{}/{path}", self.addr)
    }
}

/// Host and port of a `postgres://user@host:port/db…` URL.
pub fn host_port(url: &str) -> String {
    url.split_once('@').unwrap().1.split_once('/').unwrap().0.to_owned()
}

/// Holds the shared standby for one test: pausing replay would break another test reading from it
/// at the same time, and nextest runs tests in separate processes, so the lock is a file lock.
pub struct StandbyLock(#[allow(dead_code)] std::fs::File);

impl StandbyLock {
    pub async fn exclusive(exclusive: bool) -> Self {
        tokio::task::spawn_blocking(move || {
            let path = std::env::temp_dir().join("safeguard-test-standby.lock");
            let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
            if exclusive {
                file.lock().unwrap()
            } else {
                file.lock_shared().unwrap()
            }
            Self(file)
        })
        .await
        .unwrap()
    }
}

/// Pauses WAL replay on a standby, and resumes it when dropped, even if the test fails first.
pub struct Paused(String);

impl Paused {
    pub async fn pause(standby: &str) -> Self {
        exec(standby, "SELECT pg_wal_replay_pause()").await;
        Self(standby.to_owned())
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ =
            std::process::Command::new("psql").arg(&self.0).arg("-Atqc").arg("SELECT pg_wal_replay_resume()").status();
    }
}
