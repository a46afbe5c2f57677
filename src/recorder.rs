//! Decision records, off the hot path. VerifySeller hands each record to a bounded queue without
//! waiting (`try_send`); a writer task drains it in batched inserts. If the queue is full the
//! decision is still answered, and the loss is counted (metric) and itself recorded as a marker
//! record, so a gap in the record is never silent. A pruner deletes records past the retention.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::domain::Timestamp;
use crate::domain::record::{DecisionRecord, RecordMode, RecordedReasons};
use crate::store::Store;

/// Where VerifySeller sends its records.
pub struct DecisionLog {
    mode: RecordMode,
    tx: Option<mpsc::Sender<DecisionRecord>>,
    lost: Arc<AtomicU64>,
}

/// How the writer and pruner run.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    pub mode: RecordMode,
    pub queue_capacity: usize,
    pub batch_size: usize,
    pub retention: Duration,
    pub prune_interval: Duration,
}

impl DecisionLog {
    /// Starts the writer and the pruner (unless the mode is `off`).
    pub fn start(store: Store, options: &RecorderOptions) -> (Arc<Self>, Vec<JoinHandle<()>>) {
        let lost = Arc::new(AtomicU64::new(0));
        if options.mode == RecordMode::Off {
            return (Arc::new(Self { mode: options.mode, tx: None, lost }), Vec::new());
        }
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let writer = tokio::spawn(write_loop(store.clone(), rx, lost.clone(), options.batch_size.max(1)));
        let pruner = tokio::spawn(prune_loop(store, options.retention, options.prune_interval));
        (Arc::new(Self { mode: options.mode, tx: Some(tx), lost }), vec![writer, pruner])
    }

    /// Whether a decision with this outcome is to be recorded (so the caller can skip building it).
    pub fn wants(&self, decision: crate::domain::Decision) -> bool {
        self.tx.is_some() && self.mode.records(decision)
    }

    /// Queues a record without waiting; counts it as lost if the queue is full.
    pub fn record(&self, record: DecisionRecord) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(record).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("safeguard_decision_records_lost_total").increment(1);
        }
    }
}

fn lost_marker(count: u64) -> DecisionRecord {
    DecisionRecord {
        decision_id: uuid::Uuid::now_v7().to_string(),
        time: Timestamp::now(),
        caller: "safeguard".to_owned(),
        seller_id: None,
        purpose: None,
        basis: None,
        basis_evidence_ref: String::new(),
        categories: Vec::new(),
        decision: None,
        allowed: Vec::new(),
        outcome: RecordedReasons::default(),
        revision: 0,
        policy_version: String::new(),
        lost_records: i64::try_from(count).unwrap_or(i64::MAX),
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<DecisionRecord>, lost: Arc<AtomicU64>, batch: usize) {
    let mut buf = Vec::with_capacity(batch);
    loop {
        if rx.recv_many(&mut buf, batch).await == 0 {
            return;
        }
        let missing = lost.swap(0, Ordering::Relaxed);
        if missing > 0 {
            buf.push(lost_marker(missing));
        }
        // Retry a failed batch (the database may be briefly away); meanwhile the queue fills and
        // overflow is counted, never hidden.
        let mut delay = Duration::from_millis(100);
        while let Err(e) = store.insert_decisions(&buf).await {
            tracing::warn!(error = %e, records = buf.len(), "cannot write decision records; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        metrics::counter!("safeguard_decision_records_written_total").increment(buf.len() as u64);
        buf.clear();
    }
}

async fn prune_loop(store: Store, retention: Duration, interval: Duration) {
    loop {
        let cutoff = Timestamp::now().plus_seconds(-i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
        loop {
            match store.prune_decisions(cutoff, 1000).await {
                Ok(n) if n > 0 => metrics::counter!("safeguard_decision_records_pruned_total").increment(n),
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot prune decision records");
                    break;
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}
