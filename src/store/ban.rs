//! Address bans after failed logins: `attempts` failures from one address lock it out for
//! `duration` (redux-cluster's defaults: 5 and 3 hours). A successful login clears the
//! count; expired entries are swept as the table is used.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct BanPolicy {
    pub attempts: u32,
    pub duration: Duration,
}

impl Default for BanPolicy {
    fn default() -> Self {
        BanPolicy {
            attempts: 5,
            duration: Duration::from_secs(3 * 3600),
        }
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    /// Set once banned; also when the entry may be forgotten.
    until: Option<Instant>,
    last: Instant,
}

pub struct Bans {
    policy: BanPolicy,
    table: Mutex<HashMap<IpAddr, Entry>>,
}

impl Bans {
    pub fn new(policy: BanPolicy) -> Bans {
        Bans {
            policy,
            table: Mutex::new(HashMap::new()),
        }
    }

    pub fn policy(&self) -> BanPolicy {
        self.policy
    }

    /// Whether `ip` is banned now.
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        let mut t = self.table.lock();
        self.sweep(&mut t, now);
        matches!(t.get(&ip), Some(Entry { until: Some(u), .. }) if *u > now)
    }

    /// Records a failed login; returns whether `ip` is now banned.
    pub fn fail(&self, ip: IpAddr, now: Instant) -> bool {
        let mut t = self.table.lock();
        let e = t.entry(ip).or_insert(Entry {
            failures: 0,
            until: None,
            last: now,
        });
        e.failures += 1;
        e.last = now;
        if e.failures >= self.policy.attempts {
            e.until = Some(now + self.policy.duration);
            return true;
        }
        false
    }

    pub fn succeed(&self, ip: IpAddr) {
        self.table.lock().remove(&ip);
    }

    pub fn len(&self) -> usize {
        self.table.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets expired bans, and failure counts idle for a whole ban duration.
    fn sweep(&self, t: &mut HashMap<IpAddr, Entry>, now: Instant) {
        let d = self.policy.duration;
        t.retain(|_, e| match e.until {
            Some(u) => u > now,
            None => now.duration_since(e.last) < d,
        });
    }
}

/// "3 hours", "90 seconds": for the ban message redux-cluster users know.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s >= 3600 && s.is_multiple_of(3600) {
        (s / 3600, "hour")
    } else if s >= 60 && s.is_multiple_of(60) {
        (s / 60, "minute")
    } else {
        (s.max(1), "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_ban_until_expiry_and_success_clears() {
        let bans = Bans::new(BanPolicy::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 1..5 {
            assert!(!bans.fail(ip, t0), "failure {i} does not ban");
        }
        bans.succeed(ip);
        for _ in 1..5 {
            bans.fail(ip, t0);
        }
        assert!(!bans.is_banned(ip, t0), "the success reset the count");
        assert!(bans.fail(ip, t0));
        assert!(bans.is_banned(ip, t0));
        assert!(!bans.is_banned(other, t0));
        let later = t0 + Duration::from_secs(3 * 3600 + 1);
        assert!(!bans.is_banned(ip, later), "expired");
        assert!(bans.is_empty(), "expired entries are swept");
        assert_eq!(human(Duration::from_secs(3 * 3600)), "3 hours");
        assert_eq!(human(Duration::from_secs(60)), "1 minute");
        assert_eq!(human(Duration::from_millis(1500)), "1 second");
    }
}
