//! Liveness of a link: when it last showed a sign of life, and a watch that says when it
//! has been silent for too long.
//!
//! Any byte read is a sign of life (a large frame still arriving counts, not only whole
//! frames), and both ends send a small heartbeat after an idle interval, so a silent link
//! is a peer that stopped (SIGSTOP, a VM or GC pause, a path that drops packets), not a
//! quiet one. Two things are not the peer's silence and are not counted: a time when this
//! side chose not to read (backpressure: [`Liveness::pause`]), and a time when this
//! process itself was busy or frozen (silence is counted in the watch's own ticks, which
//! run late then too).

use super::ReadHalf;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;

/// How a link is watched. The defaults let a client leave a silent server within about
/// half a second, with heartbeats only on links idle for a sixth of a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    /// An idle sender sends a heartbeat after this long.
    pub heartbeat: Duration,
    /// A peer silent for this long is gone.
    pub timeout: Duration,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        LivenessConfig {
            heartbeat: Duration::from_millis(150),
            timeout: Duration::from_millis(500),
        }
    }
}

impl LivenessConfig {
    /// How long a server waits for a silent client before it drops it: twenty timeouts
    /// (10 s by default). A client's move is what a user waits for, so the client
    /// watches its server closely; a server's drop only frees a socket sooner, and a
    /// false drop costs a live client its session and adds a reconnect to a herd, so the
    /// server gives a busy client process room: with four timeouts (2 s), 4,000 clients
    /// in one process on 2 cores, busy after a failover, had 2,427 of them dropped.
    pub fn drop_after(&self) -> Duration {
        self.timeout * 20
    }

    /// How often an idle client sends its heartbeat: three intervals (the server waits
    /// four timeouts for it), so that thousands of idle clients cost their server a
    /// third of the messages.
    pub fn client_heartbeat(&self) -> Duration {
        self.heartbeat * 3
    }

    /// The heartbeat must come well inside the timeout, or a healthy idle link would look
    /// dead between two heartbeats.
    pub fn validate(&self) -> Result<(), String> {
        if self.timeout < Duration::from_millis(20) {
            return Err("livenessTimeoutMs must be at least 20".into());
        }
        if self.heartbeat.is_zero() || self.heartbeat * 2 > self.timeout {
            return Err(
                "heartbeatIntervalMs must be positive and at most half of livenessTimeoutMs".into(),
            );
        }
        Ok(())
    }
}

/// One link's record of life. Shared by its reader (which marks it) and its watch.
#[derive(Debug, Default)]
pub struct Liveness {
    /// Something was read since the watch's last tick.
    heard: AtomicBool,
    paused: AtomicBool,
}

impl Liveness {
    pub fn new() -> Arc<Liveness> {
        Arc::default()
    }

    /// A sign of life now.
    pub fn touch(&self) {
        self.heard.store(true, Ordering::Relaxed);
    }

    /// This side stops reading on purpose (backpressure): the peer's silence meanwhile is
    /// ours, not its own.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
    }

    /// Reading again: the peer's time starts now. Cheap when not paused (the read loops
    /// call it per frame).
    pub fn resume(&self) {
        if self.paused.load(Ordering::Relaxed) {
            self.touch();
            self.paused.store(false, Ordering::Relaxed);
        }
    }

    /// The read half, marking this record whenever it reads a byte.
    pub fn watch(self: &Arc<Self>, inner: ReadHalf) -> ReadHalf {
        self.touch();
        Box::new(Watched {
            inner,
            live: self.clone(),
        })
    }

    /// Resolves once the peer has been silent for `timeout`, with how long it was.
    ///
    /// Silence is counted in this watch's ticks (a fifth of the timeout), each worth at
    /// most 1.5 ticks however late it comes: when this process is busy (its runtime runs
    /// the ticks late, and its readers may not yet have read what waits in their
    /// sockets) or was frozen, the timeout stretches instead of raising an alarm; on a
    /// responsive host the peer is gone between one timeout and one tick more after its
    /// last byte. Poll the reader before this (a `biased` select), so bytes already
    /// there count.
    pub async fn silent_for(&self, timeout: Duration) -> Duration {
        let tick = (timeout / 5).max(Duration::from_millis(5));
        let mut last_tick = Instant::now();
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(tick).await;
            let now = Instant::now();
            let step = now.duration_since(last_tick).min(tick * 3 / 2);
            last_tick = now;
            let heard = self.heard.swap(false, Ordering::Relaxed);
            if heard || self.paused.load(Ordering::Relaxed) {
                quiet = Duration::ZERO;
            } else {
                quiet += step;
            }
            if quiet >= timeout {
                return quiet;
            }
        }
    }
}

struct Watched {
    inner: ReadHalf,
    live: Arc<Liveness>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.live.touch();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_is_noticed_bytes_and_pauses_are_not_silence() {
        let live = Liveness::new();
        let timeout = Duration::from_millis(500);
        // Touched every 100 ms: never silent.
        let toucher = async {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                live.touch();
            }
        };
        let watch = live.silent_for(timeout);
        tokio::pin!(watch);
        tokio::select! {
            _ = &mut watch => panic!("a link touched every 100 ms is alive"),
            _ = toucher => {}
        }
        // Then silent: noticed after the timeout, within one tick.
        let t0 = Instant::now();
        let quiet = watch.await;
        assert!(quiet >= timeout);
        assert!(t0.elapsed() <= timeout + timeout / 5, "{:?}", t0.elapsed());
        // Paused, the peer's silence does not count.
        live.pause();
        let paused = tokio::time::timeout(Duration::from_secs(5), live.silent_for(timeout)).await;
        assert!(paused.is_err(), "silence while paused is ours");
        // Resumed, the peer gets a whole timeout again.
        live.resume();
        let t1 = Instant::now();
        live.silent_for(timeout).await;
        assert!(t1.elapsed() >= timeout, "{:?}", t1.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_frozen_observer_raises_no_alarm() {
        use futures_util::FutureExt;
        let live = Liveness::new();
        let timeout = Duration::from_millis(500);
        let watch = live.silent_for(timeout);
        tokio::pin!(watch);
        assert!((&mut watch).now_or_never().is_none());
        // This process frozen for 10 s (SIGSTOP, then SIGCONT): its watch's tick comes
        // 10 s late and counts as 1.5 ticks, not as 10 s of the peer's silence.
        tokio::time::advance(Duration::from_secs(10)).await;
        let soon = tokio::time::timeout(Duration::from_millis(300), &mut watch).await;
        assert!(soon.is_err(), "no alarm right after a freeze of our own");
        // The peer still silent afterwards is noticed, a timeout's worth of ticks later.
        let quiet = watch.await;
        assert!(quiet >= timeout);
    }

    #[test]
    fn heartbeat_must_fit_inside_the_timeout() {
        LivenessConfig::default().validate().unwrap();
        let c = LivenessConfig {
            heartbeat: Duration::from_millis(300),
            timeout: Duration::from_millis(500),
        };
        assert!(c.validate().unwrap_err().contains("heartbeatIntervalMs"));
    }
}
