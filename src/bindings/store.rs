//! What a store's two native sides share (`src/js/store/`): the JS wake-up, the events
//! JS pulls, and how ordered batches cross the boundary. Data crosses as JSON text:
//! actions one string each into the engine, and ordered batches as one `[a,b,...]`
//! string out of it, parsed once by JS. The sides: [`super::authority`] (a server) and
//! [`super::client`] (a client replica).

use super::js::WakeFn;
use crate::store::{Event, EventKind, Wake};
use bytes::Bytes;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;

pub(super) struct JsWake(pub(super) WakeFn);

impl Wake for JsWake {
    fn wake(&self) {
        self.0.call((), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

#[napi(object)]
pub struct JsEvent {
    /// 'connected' | 'disconnected' | 'error'
    pub kind: String,
    pub code: String,
    pub message: String,
}

pub(super) fn events(ev: Vec<Event>) -> Vec<JsEvent> {
    ev.into_iter()
        .map(|e| {
            // A leader's name and a role travel in `code` too (store.js reads them there).
            let (kind, code) = match e.kind {
                EventKind::Connected => ("connected", String::new()),
                EventKind::Disconnected(c) => ("disconnected", c.as_str().to_string()),
                EventKind::Error(c) => ("error", c.as_str().to_string()),
                EventKind::Leader(name) => ("leader", name),
                EventKind::Role(role) => ("role", role),
            };
            JsEvent {
                kind: kind.to_string(),
                code,
                message: e.message,
            }
        })
        .collect()
}

/// `[a,b,...]` from JSON texts that are valid UTF-8 (checked when they entered).
pub(super) fn json_array(actions: &[Bytes]) -> Option<String> {
    if actions.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(actions.iter().map(|a| a.len() + 1).sum::<usize>() + 2);
    out.push(b'[');
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(a);
    }
    out.push(b']');
    Some(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

pub(super) fn text(b: Bytes) -> String {
    String::from_utf8(b.to_vec())
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
