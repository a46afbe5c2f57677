//! Decision records, off the hot path. VerifySeller hands each record to a bounded queue; a writer
//! task drains it in batched inserts. A queue with room takes the record without waiting. A full
//! queue while the writer is writing means the service answers faster than its records are
//! written: the decision waits for room (`decisions.full_queue_wait_ms`, and never past the
//! client's deadline), so a saturated service slows to its recording pace instead of losing
//! records. Only when the writer is failing (the database is away), the wait runs out, or the
//! client goes away while its decision waits, is the decision left unrecorded; the loss is
//! counted (metric) and itself recorded as a marker record, so a gap in the record is never
//! silent. A pruner deletes records past the retention.
//!
//! The writer never stops for good. When a batch fails, the rule is:
//! - the database is unreachable, or failed for reasons of its own (busy, a serialization
//!   conflict, a shutdown; see [`refused_by_database`]), or it refuses the batch but cannot even
//!   read the decision tables (renamed, dropped, a broken connection): nothing is wrong with the
//!   records, so the whole batch is retried with backoff; meanwhile the queue absorbs new records
//!   and its overflow is counted;
//! - the database answers, the tables are there, and it refuses the batch: some record is at
//!   fault. The batch is bisected until the refused records stand alone; each is quarantined
//!   (`decision_quarantine`, with the error) and counted, and the rest are written.
//!
//! Inserts are idempotent (ON CONFLICT DO NOTHING), so retrying a batch whose halves were partly
//! written already is safe: nothing is lost and nothing is written twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::domain::Timestamp;
use crate::domain::record::{DecisionRecord, RecordMode, RecordedReasons};
use crate::error::Error;
use crate::store::{Store, refused_by_database};

/// Where VerifySeller sends its records.
pub struct DecisionLog {
    mode: RecordMode,
    tx: Option<mpsc::Sender<DecisionRecord>>,
    lost: Arc<AtomicU64>,
    state: Arc<WriterState>,
    full_queue_wait: Duration,
}

/// How the writer and pruner run.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    pub mode: RecordMode,
    pub queue_capacity: usize,
    pub batch_size: usize,
    /// Longest a record waits for room in a full queue while the writer is not failing.
    pub full_queue_wait: Duration,
    /// How long a batch that is not full goes on gathering records before it is written.
    pub linger: Duration,
    pub retention: Duration,
    pub prune_interval: Duration,
    /// Rows per prune statement.
    pub prune_batch: u64,
}

/// What the writer is doing, for health and gauges.
#[derive(Default)]
struct WriterState {
    /// The last attempt to write failed and the writer is retrying.
    failing: AtomicBool,
    /// Records taken off the queue and not yet written.
    in_flight: AtomicUsize,
    /// The time (µs) of the oldest record not yet written; 0 when there is none.
    oldest_unwritten: AtomicI64,
    /// Ends a linger early: signalled when the queue is full (decisions are waiting for room) and
    /// when its sender goes (shutdown), so the gathered batch is written at once.
    wake: tokio::sync::Notify,
}

impl WriterState {
    /// `records` are taken off the queue and not yet written.
    fn hold(&self, records: &[DecisionRecord]) {
        let oldest = records.iter().map(|r| r.time.as_micros()).min().unwrap_or(0);
        self.oldest_unwritten.store(oldest, Ordering::Relaxed);
        self.in_flight.store(records.len(), Ordering::Relaxed);
    }
}

/// How far behind the recorder is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecorderStatus {
    /// Records waiting in the queue or being written.
    pub queued: usize,
    /// Age of the oldest record not yet written.
    pub oldest_unwritten_age: Duration,
    /// The writer's last attempt failed; it is retrying.
    pub failing: bool,
}

impl DecisionLog {
    /// Starts the writer and the pruner (unless the mode is `off`).
    pub fn start(store: Store, options: &RecorderOptions) -> (Arc<Self>, Vec<JoinHandle<()>>) {
        let lost = Arc::new(AtomicU64::new(0));
        let state = Arc::new(WriterState::default());
        let full_queue_wait = options.full_queue_wait;
        if options.mode == RecordMode::Off {
            return (Arc::new(Self { mode: options.mode, tx: None, lost, state, full_queue_wait }), Vec::new());
        }
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let writer = Writer { store: store.clone(), lost: lost.clone(), state: state.clone() };
        let writer = tokio::spawn(writer.run(rx, options.batch_size.max(1), options.linger));
        let pruner = tokio::spawn(prune_loop(store, options.retention, options.prune_interval, options.prune_batch));
        (Arc::new(Self { mode: options.mode, tx: Some(tx), lost, state, full_queue_wait }), vec![writer, pruner])
    }

    /// Whether a decision with this outcome is to be recorded (so the caller can skip building it).
    pub fn wants(&self, decision: crate::domain::Decision) -> bool {
        self.tx.is_some() && self.mode.records(decision)
    }

    /// Queues a record: at once if the queue has room; if it is full, waiting for room up to the
    /// configured wait and `deadline` (what is left of the client's), unless the writer is
    /// failing. A record that could not be queued is counted as lost.
    pub async fn record(&self, record: DecisionRecord, deadline: Option<Duration>) {
        use mpsc::error::TrySendError;
        let Some(tx) = &self.tx else { return };
        let record = match tx.try_send(record) {
            Ok(()) => return,
            Err(TrySendError::Closed(_)) => return self.lose(),
            Err(TrySendError::Full(record)) => record,
        };
        // A writer lingering over a batch writes it now, making room.
        self.state.wake.notify_one();
        let wait = deadline.map_or(self.full_queue_wait, |d| d.min(self.full_queue_wait));
        if wait.is_zero() || self.state.failing.load(Ordering::Relaxed) {
            return self.lose();
        }
        metrics::counter!("safeguard_decision_records_waited_total").increment(1);
        // A client that goes away while its decision waits drops this future, and the record with
        // it: the guard counts that loss too, so it is marked in the record like any other.
        let mut waiting = LoseOnDrop(Some(self));
        let sent = tx.send_timeout(record, wait).await;
        waiting.0 = None;
        if sent.is_err() {
            self.lose();
        }
    }

    fn lose(&self) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("safeguard_decision_records_lost_total").increment(1);
    }

    /// How far behind the writer is.
    pub fn status(&self) -> RecorderStatus {
        let waiting = self.tx.as_ref().map_or(0, |tx| tx.max_capacity() - tx.capacity());
        let oldest = self.state.oldest_unwritten.load(Ordering::Relaxed);
        let age = if oldest == 0 { 0 } else { (Timestamp::now().as_micros() - oldest).max(0) };
        RecorderStatus {
            queued: waiting + self.state.in_flight.load(Ordering::Relaxed),
            oldest_unwritten_age: Duration::from_micros(u64::try_from(age).unwrap_or(0)),
            failing: self.state.failing.load(Ordering::Relaxed),
        }
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        // A stored permit: a writer that starts lingering after this still wakes at once.
        self.state.wake.notify_one();
    }
}

/// Counts a record as lost unless disarmed: a waiting record whose request was cancelled.
struct LoseOnDrop<'a>(Option<&'a DecisionLog>);

impl Drop for LoseOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(log) = self.0 {
            log.lose();
        }
    }
}

fn lost_marker(count: u64) -> DecisionRecord {
    DecisionRecord {
        decision_id: uuid::Uuid::now_v7().to_string(),
        time: Timestamp::now(),
        caller: "safeguard".into(),
        seller_id: None,
        purpose: None,
        basis: None,
        basis_evidence_ref: String::new(),
        categories: Vec::new(),
        decision: None,
        allowed: Vec::new(),
        outcome: RecordedReasons::default(),
        revision: 0,
        policy_version: "".into(),
        lost_records: i64::try_from(count).unwrap_or(i64::MAX),
    }
}

/// The error with its cause chain, as the quarantine keeps it.
fn describe(err: &Error) -> String {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

struct Writer {
    store: Store,
    lost: Arc<AtomicU64>,
    state: Arc<WriterState>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<DecisionRecord>, batch: usize, linger: Duration) {
        let mut buf = Vec::with_capacity(batch);
        loop {
            if rx.recv_many(&mut buf, batch).await == 0 {
                return;
            }
            self.gather(&mut rx, &mut buf, batch, linger).await;
            metrics::histogram!("safeguard_decision_record_batch_size").record(buf.len() as f64);
            let missing = self.lost.swap(0, Ordering::Relaxed);
            if missing > 0 {
                buf.push(lost_marker(missing));
            }
            self.state.hold(&buf);
            let mut delay = Duration::from_millis(100);
            // A batch's first attempt offers records the database has never seen; a retry may
            // find some written already (a commit whose answer was lost), and looks them up.
            let mut fresh = true;
            loop {
                match self.write(&buf, fresh).await {
                    Ok(quarantined) => {
                        metrics::counter!("safeguard_decision_records_written_total")
                            .increment((buf.len() as u64).saturating_sub(quarantined));
                        break;
                    }
                    Err(e) => {
                        fresh = false;
                        self.state.failing.store(true, Ordering::Relaxed);
                        metrics::counter!("safeguard_decision_record_write_failures_total").increment(1);
                        tracing::warn!(error = %describe(&e), records = buf.len(), "cannot write decision records; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
            self.state.failing.store(false, Ordering::Relaxed);
            self.state.in_flight.store(0, Ordering::Relaxed);
            self.state.oldest_unwritten.store(0, Ordering::Relaxed);
            buf.clear();
        }
    }

    /// Lets a batch that is not full gather records for `linger` before it is written: the writer
    /// sleeps rather than waking for every record sent meanwhile, then takes what was queued. The
    /// records held meanwhile count as in flight. A full queue or a shutdown ends the wait at once
    /// ([`WriterState::wake`]), so no decision waits on a lingering writer for room and nothing
    /// gathered is left unwritten when the service stops.
    async fn gather(
        &self,
        rx: &mut mpsc::Receiver<DecisionRecord>,
        buf: &mut Vec<DecisionRecord>,
        batch: usize,
        linger: Duration,
    ) {
        if linger.is_zero() || buf.len() >= batch || rx.is_closed() {
            return;
        }
        self.state.hold(buf);
        tokio::select! {
            () = tokio::time::sleep(linger) => {}
            () = self.state.wake.notified() => {}
        }
        if !rx.is_empty() {
            rx.recv_many(buf, batch - buf.len()).await;
        }
    }

    /// Writes `records`, quarantining those the database refuses; returns how many were
    /// quarantined. An error means the batch is to be retried whole (the module's rule).
    async fn write(&self, records: &[DecisionRecord], fresh: bool) -> Result<u64, Error> {
        let err = match self.store.insert_decisions(records, fresh).await {
            Ok(()) => return Ok(0),
            Err(e) if !refused_by_database(&e) => return Err(e),
            Err(e) => e,
        };
        // Refused: by a record, or because the tables are gone? Only a readable table blames a record.
        self.store.probe_decisions().await?;
        if let [record] = records {
            tracing::error!(decision_id = %record.decision_id, error = %describe(&err), "decision record refused; quarantined");
            if self.store.quarantine_decision(record, &describe(&err)).await? {
                metrics::counter!("safeguard_decision_records_quarantined_total").increment(1);
            }
            return Ok(1);
        }
        let (left, right) = records.split_at(records.len() / 2);
        let left = Box::pin(self.write(left, false)).await?;
        Ok(left + Box::pin(self.write(right, false)).await?)
    }
}

/// Deletes records, and quarantined records, past the retention: `batch` rows per statement, so no
/// prune holds a long lock or a big transaction, yielding between statements so the writer gets its
/// turn.
async fn prune_loop(store: Store, retention: Duration, interval: Duration, batch: u64) {
    loop {
        let cutoff = Timestamp::now().plus_seconds(-i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
        prune(|| store.prune_decisions(cutoff, batch), "safeguard_decision_records_pruned_total").await;
        prune(|| store.prune_quarantine(cutoff, batch), "safeguard_decision_quarantine_pruned_total").await;
        tokio::time::sleep(interval).await;
    }
}

/// Runs one bounded prune statement after another until one deletes nothing.
async fn prune<F, Fut>(mut step: F, counter: &'static str)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, Error>>,
{
    loop {
        match step().await {
            Ok(0) => return,
            Ok(n) => {
                metrics::counter!(counter).increment(n);
                tokio::task::yield_now().await;
            }
            Err(e) => {
                tracing::warn!(error = %describe(&e), counter, "cannot prune decision records");
                return;
            }
        }
    }
}
