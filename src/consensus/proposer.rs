//! Proposal batching: concurrent writes share one log entry.
//!
//! Why: openraft 0.9's core appends every client write as its own entry and waits for
//! that append's fsync before it takes the next message, so 64 concurrent writers cost
//! 64 fsyncs in a row on the leader (about 2,000 commits/s on this project's disks).
//! The proposer keeps [`IN_FLIGHT`] entry in flight; writes arriving meanwhile queue,
//! and everything queued goes into the next entry as one [`Command::Batch`]: one
//! append, one fsync, one replication round for all of them. Each write still gets its
//! own result, and the state machine applies the commands of an entry in queue order,
//! as if they were consecutive entries.
//!
//! Under load it also gathers: the writers the last entry answered usually propose
//! again at once, so before proposing it waits (at most [`GATHER`], without spinning)
//! until as many writes wait as the last entry carried. A lone writer, whose last entry
//! carried one write, never waits.

use super::types::{Command, NodeId, Response, TypeConfig};
use openraft::error::ClientWriteError;
use openraft::Raft;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

/// Entries the proposer keeps in flight. More would let one entry's append overlap the
/// previous one's replication, but openraft 0.9 replicates one request at a time per
/// follower, so in measurements more only made entries smaller.
pub const IN_FLIGHT: usize = 1;
/// The most commands in one entry (an entry travels whole in one frame).
pub const MAX_BATCH: usize = 256;

/// The most writes waiting for an entry. Writers past it are refused at once (a caller
/// that floods the node gets ERR_QUEUE_FULL instead of growing memory without bound);
/// a node's own store batches stay far below it (one batch per client connection).
pub const MAX_QUEUED: usize = 65_536;

/// How long, at most, the proposer waits under load for the writers the last entry
/// answered to propose again (tokio's timer rounds this up to its 1 ms tick).
const GATHER: Duration = Duration::from_micros(1000);

/// Why a proposal was not committed.
#[derive(Debug, Clone)]
pub enum Rejected {
    /// openraft refused it (not the leader, membership change in progress, ...).
    Raft(ClientWriteError<u64, NodeId>),
    /// The Raft node stopped.
    Stopped,
    /// [`MAX_QUEUED`] writes were already waiting.
    Full,
}

pub type Outcome = Result<(u64, Response), Rejected>;

struct Pending {
    cmd: Command,
    done: oneshot::Sender<Outcome>,
}

#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<Pending>,
    /// Writes sent and not yet taken into an entry (the channel itself is unbounded so
    /// that a send never waits; this count is its bound).
    queued: Arc<AtomicUsize>,
}

impl Proposer {
    /// Starts the proposing task on `tracker`; it ends when `stop` is cancelled or the
    /// last `Proposer` handle is dropped, and queued writes then fail with `Stopped`.
    /// `hold` bounds how long an uncommitted entry keeps its in-flight slot (a write stuck
    /// without quorum must not stop later ones from being proposed once it returns).
    pub fn start(
        raft: Raft<TypeConfig>,
        hold: Duration,
        tracker: &crate::tasks::Tasks,
        stop: CancellationToken,
    ) -> Proposer {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let t = tracker.clone();
        let q = queued.clone();
        tracker.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = run(raft, rx, hold, t, q) => {}
            }
        });
        Proposer { tx, queued }
    }

    /// Proposes `cmd`; resolves once it is committed and applied (or refused).
    pub async fn propose(&self, cmd: Command) -> Outcome {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejected::Full);
        }
        let (done, rx) = oneshot::channel();
        self.tx.send(Pending { cmd, done }).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            Rejected::Stopped
        })?;
        rx.await.map_err(|_| Rejected::Stopped)?
    }
}

async fn run(
    raft: Raft<TypeConfig>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    hold: Duration,
    tracker: crate::tasks::Tasks,
    queued: Arc<AtomicUsize>,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // The number of commands in the last entry proposed.
    let mut last = 1usize;
    let mut queue: VecDeque<Pending> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv().await {
                Some(p) => queue.push_back(p),
                None => return,
            }
        }
        // Waiting for a slot is what lets writes pile up into one entry.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        drain(&mut rx, &mut queue);
        // Under load, gather: the writers the last entry just answered are about to
        // propose again, and proposing the first of them alone would make the others
        // wait a whole round. So wait (without spinning) until as many writes wait as
        // the last entry carried, or `GATHER` passed. A lone writer never waits.
        if queue.len() < last {
            let deadline = tokio::time::Instant::now() + GATHER;
            while queue.len() < last {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(p)) => {
                        queue.push_back(p);
                        drain(&mut rx, &mut queue);
                    }
                    _ => break,
                }
            }
        }
        let n = queue.len().min(MAX_BATCH);
        queued.fetch_sub(n, Ordering::AcqRel);
        last = n;
        let (cmds, waiters): (Vec<Command>, Vec<oneshot::Sender<Outcome>>) =
            queue.drain(..n).map(|p| (p.cmd, p.done)).unzip();
        let single = cmds.len() == 1;
        let cmd = if single {
            cmds.into_iter().next().expect("one command")
        } else {
            Command::Batch(cmds)
        };
        // Submitted here, in queue order; only the wait for the commit is spawned.
        let mut reply = match raft.client_write_ff(cmd).await {
            Ok(r) => r,
            Err(_) => {
                for w in waiters {
                    let _ = w.send(Err(Rejected::Stopped));
                }
                continue;
            }
        };
        tracker.spawn(async move {
            let res = match tokio::time::timeout(hold, &mut reply).await {
                Ok(r) => r,
                Err(_) => {
                    drop(slot);
                    reply.await
                }
            };
            match res {
                Err(_) => {
                    for w in waiters {
                        let _ = w.send(Err(Rejected::Stopped));
                    }
                }
                Ok(Err(e)) => {
                    for w in waiters {
                        let _ = w.send(Err(Rejected::Raft(e.clone())));
                    }
                }
                Ok(Ok(r)) => {
                    let index = r.log_id.index;
                    if single {
                        let _ = waiters
                            .into_iter()
                            .next()
                            .expect("one waiter")
                            .send(Ok((index, r.data)));
                    } else {
                        let each = match r.data {
                            Response::Batch(each) => each,
                            _ => Vec::new(),
                        };
                        let mut each = each.into_iter();
                        for w in waiters {
                            let _ = w.send(Ok((index, each.next().unwrap_or_default())));
                        }
                    }
                }
            }
        });
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Pending>, queue: &mut VecDeque<Pending>) {
    while let Ok(p) = rx.try_recv() {
        queue.push_back(p);
    }
}
