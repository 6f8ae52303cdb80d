//! Engine configuration: defaults, a fast preset for tests, and `validate()`.

use crate::error::Error;
use crate::protocol::FrameLimits;
use crate::transport::LivenessConfig;
use std::time::Duration;

/// Settings shared by a store's server and client sides.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Frame size limit and compression threshold.
    pub limits: FrameLimits,
    /// Most actions a client keeps waiting for the server's acknowledgement (sent or not).
    /// Past it `dispatch` fails with `ERR_QUEUE_FULL` instead of growing without bound.
    pub queue_limit: usize,
    /// Ordered actions the server keeps so that reconnecting clients catch up with only
    /// what they missed; further behind, they get a snapshot.
    pub log_retention: usize,
    /// How far the server's network side may run ahead of its JS reducer before it stops
    /// reading from clients (backpressure instead of unbounded memory).
    pub max_apply_lag: usize,
    /// Target size of one batch frame of actions.
    pub batch_bytes: usize,
    /// Bytes of received, not yet applied data a client buffers before it stops reading.
    pub inbox_bytes: usize,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// Time a peer has to complete the handshake before it is dropped.
    pub handshake_timeout: Duration,
    /// Heartbeats on idle links and how long a silent peer is waited for.
    pub liveness: LivenessConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            limits: FrameLimits::default(),
            queue_limit: 1_000_000,
            log_retention: 100_000,
            max_apply_lag: 262_144,
            batch_bytes: 64 * 1024,
            inbox_bytes: 64 * 1024 * 1024,
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            liveness: LivenessConfig::default(),
        }
    }
}

impl StoreConfig {
    /// Fast timers and small buffers, for tests.
    pub fn local() -> Self {
        StoreConfig {
            reconnect_initial: Duration::from_millis(20),
            reconnect_max: Duration::from_millis(200),
            handshake_timeout: Duration::from_secs(2),
            ..StoreConfig::default()
        }
    }

    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::InvalidConfig(m.to_string()));
        if self.limits.max_frame < 1024 {
            return bad("maxFrameSize must be at least 1024 bytes");
        }
        if self.limits.max_frame > u32::MAX as usize - 16 {
            return bad("maxFrameSize must be below 4 GiB");
        }
        if self.queue_limit == 0 {
            return bad("queueLimit must be at least 1");
        }
        if self.log_retention == 0 {
            return bad("logRetention must be at least 1");
        }
        if self.reconnect_initial.is_zero() || self.reconnect_initial > self.reconnect_max {
            return bad("reconnect delays must satisfy 0 < reconnectInitialMs <= reconnectMaxMs");
        }
        if self.batch_bytes == 0 || self.batch_bytes >= self.limits.max_frame {
            return bad("batch size must be positive and below maxFrameSize");
        }
        if let Err(m) = self.liveness.validate() {
            return bad(&m);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn defaults_and_preset_are_valid_and_bad_values_are_named() {
        StoreConfig::default().validate().unwrap();
        StoreConfig::local().validate().unwrap();
        let mut c = StoreConfig::default();
        c.limits.max_frame = 10;
        let e = c.validate().unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidConfig);
        assert!(e.to_string().contains("maxFrameSize"));
        let c = StoreConfig {
            reconnect_initial: Duration::from_secs(10),
            reconnect_max: Duration::from_secs(1),
            ..StoreConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
