//! Caps on how many connections a listener keeps open, in all and per address, with a
//! place per connection that is given back when it ends.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many connections an endpoint keeps at once, in all and per client address
/// (`None`: no cap). The store's server takes a place per client after its hello (past
/// a cap: `ERR_BUSY`); a WebSocket endpoint's `limit` takes one before the upgrade (past
/// it: HTTP 503).
#[derive(Debug, Default)]
pub struct Caps {
    pub total: Option<usize>,
    pub per_address: Option<usize>,
    open: AtomicUsize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place under the caps, given back when the connection ends.
pub struct Slot {
    caps: Arc<Caps>,
    ip: Option<IpAddr>,
}

impl Caps {
    pub fn new(total: Option<usize>, per_address: Option<usize>) -> Caps {
        Caps {
            total,
            per_address,
            ..Caps::default()
        }
    }

    /// Takes a place for a connection from `ip`, or says which cap is reached.
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Slot, String> {
        let open = self.open.fetch_add(1, Ordering::AcqRel);
        if let Some(max) = self.total {
            if open >= max {
                self.open.fetch_sub(1, Ordering::AcqRel);
                return Err(format!("connection limit reached ({})", plural(max)));
            }
        }
        if let (Some(max), Some(ip)) = (self.per_address, ip) {
            let mut by = self.by_address.lock();
            let n = by.entry(ip).or_insert(0);
            if *n >= max {
                drop(by);
                self.open.fetch_sub(1, Ordering::AcqRel);
                return Err(format!(
                    "connection limit per address reached ({} from {ip})",
                    plural(max)
                ));
            }
            *n += 1;
            return Ok(Slot {
                caps: self.clone(),
                ip: Some(ip),
            });
        }
        Ok(Slot {
            caps: self.clone(),
            ip: None,
        })
    }
}

fn plural(n: usize) -> String {
    format!("{n} connection{}", if n == 1 { "" } else { "s" })
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.caps.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            let mut by = self.caps.by_address.lock();
            if let Some(n) = by.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    by.remove(&ip);
                }
            }
        }
    }
}
