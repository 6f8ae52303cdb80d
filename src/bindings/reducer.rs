//! `NativeReducer`: a store's reducer that runs in the engine (`reducers.patch()`,
//! `reducers.entities()`, `loadReducer()`), with its state held in Rust. JS reads the
//! state as JSON text once per change (`stateSince`), never per action.

use super::error::{js_error, Code};
use crate::error::ErrorCode;
use crate::reducer::dylib::ReducerLibrary;
use crate::reducer::entities::EntitiesReducer;
use crate::reducer::patch::PatchReducer;
use crate::reducer::{Divergence, Failure, NativeState, Reducer};
use napi::Result;
use napi_derive::napi;
use std::path::Path;
use std::sync::Arc;

fn json(text: &str, what: &str) -> Result<serde_json::Value, Code> {
    serde_json::from_str(text).map_err(|e| {
        js_error(
            ErrorCode::InvalidConfig,
            format!("invalid configuration: {what} is not JSON: {e}"),
        )
    })
}

fn refused(e: String) -> napi::Error<Code> {
    js_error(ErrorCode::Reducer, e)
}

/// The state as JSON text at a version.
#[napi(object)]
pub struct StateText {
    pub version: f64,
    pub json: String,
}

/// An action a native reducer refused, at its sequence number.
#[napi(object)]
pub struct JsFailure {
    pub seq: f64,
    pub message: String,
}

pub fn failures(list: Vec<Failure>) -> Option<Vec<JsFailure>> {
    (!list.is_empty()).then(|| {
        list.into_iter()
            .map(|f| JsFailure {
                seq: f.seq as f64,
                message: f.message,
            })
            .collect()
    })
}

/// A replica whose state differed from its authority's at a CHECK (issue 28's guard).
#[napi(object)]
pub struct JsDivergence {
    /// The CHECK's sequence number: the states compared are those just before it.
    pub seq: f64,
    /// The authority's digest.
    pub expected: String,
    /// This replica's.
    pub actual: String,
}

pub fn divergences(list: Vec<Divergence>) -> Option<Vec<JsDivergence>> {
    (!list.is_empty()).then(|| {
        list.into_iter()
            .map(|d| JsDivergence {
                seq: d.seq as f64,
                expected: d.expected,
                actual: d.actual,
            })
            .collect()
    })
}

/// The digest the divergence guard compares (SHA-256 of the JSON text, lowercase hex,
/// its first 16 characters): exposed so that JS digests a JS reducer's state by the one
/// definition the engine digests its own by.
#[cfg_attr(test, allow(dead_code))]
#[napi(catch_unwind)]
pub fn state_digest(json: String) -> String {
    crate::reducer::digest(json.as_bytes())
}

/// One store's reducer in the engine.
#[napi]
pub struct NativeReducer {
    pub(crate) state: Arc<NativeState>,
}

fn native(identity: String, r: impl Reducer + 'static) -> NativeReducer {
    NativeReducer {
        state: Arc::new(NativeState::new(identity, Box::new(r))),
    }
}

#[napi]
impl NativeReducer {
    /// A JSON document changed by RFC 6902 patches (`initial`: JSON text).
    #[napi(factory, catch_unwind)]
    pub fn patch(initial: String) -> Result<Self, Code> {
        let doc = json(&initial, "the initial state")?;
        Ok(native(
            "redux-cluster-rs/patch".into(),
            PatchReducer::new(doc),
        ))
    }

    /// Redux Toolkit's entity adapter under `name` (action types `name/addOne`, ...),
    /// entities identified by their `idKey` field.
    #[napi(factory, catch_unwind)]
    pub fn entities(initial: String, name: String, id_key: String) -> Result<Self, Code> {
        let doc = json(&initial, "the initial state")?;
        let identity = format!("redux-cluster-rs/entities:{name}:{id_key}");
        let r = EntitiesReducer::new(name, id_key, doc).map_err(|e| {
            js_error(
                ErrorCode::InvalidConfig,
                format!("invalid configuration: the initial entity state: {e}"),
            )
        })?;
        Ok(native(identity, r))
    }

    /// A reducer from a shared library built with the `redux-cluster-reducer` crate;
    /// `config` (JSON text) goes to its `new`.
    #[napi(factory, catch_unwind)]
    pub fn load(path: String, config: String) -> Result<Self, Code> {
        let lib = ReducerLibrary::open(Path::new(&path))
            .map_err(|e| js_error(ErrorCode::ReducerLoad, e.to_string()))?;
        let r = lib
            .create(config.as_bytes())
            .map_err(|e| js_error(ErrorCode::ReducerLoad, e.to_string()))?;
        Ok(native(format!("rust:{}:{config}", lib.name()), r))
    }

    /// What stores of this reducer sync by (clients of another reducer are refused).
    #[napi(getter, catch_unwind)]
    pub fn identity(&self) -> String {
        self.state.identity().to_string()
    }

    /// Applies an action (JSON text) dispatched on a store that is neither a server nor
    /// a client; returns its sequence number. Throws `ERR_REDUCER` when the reducer
    /// refused it (the state is unchanged).
    #[napi(catch_unwind)]
    pub fn apply(&self, action: String) -> Result<f64, Code> {
        let (seq, r) = self.state.apply_own(action.as_bytes());
        r.map_err(refused)?;
        Ok(seq as f64)
    }

    /// The state's version: it changes when the state does.
    #[napi(getter, catch_unwind)]
    pub fn version(&self) -> f64 {
        self.state.version() as f64
    }

    /// The last sequence number applied.
    #[napi(getter, catch_unwind)]
    pub fn seq(&self) -> f64 {
        self.state.seq() as f64
    }

    /// The state as JSON text, unless its version is still `known`.
    #[napi(catch_unwind)]
    pub fn state_since(&self, known: f64) -> Result<Option<StateText>, Code> {
        Ok(self
            .state
            .state_since(known as u64)
            .map_err(refused)?
            .map(|(version, json)| StateText {
                version: version as f64,
                json: String::from_utf8_lossy(&json).into_owned(),
            }))
    }

    /// Refusals not yet collected (by a store that neither serves nor is a client).
    #[napi(catch_unwind)]
    pub fn take_failures(&self) -> Option<Vec<JsFailure>> {
        failures(self.state.take_failures().0)
    }

    /// The digest of the state this replica recorded at the CHECK ordered as `seq`, for
    /// an authority to publish in a DIGEST; null when there was none (or it is older
    /// than the last 64 checks).
    #[napi(catch_unwind)]
    pub fn check_digest(&self, seq: f64) -> Option<String> {
        self.state.check_digest(seq as u64)
    }

    /// The answer to a resync, as the action's JSON text: the state and the sequence
    /// number it is at (`{"type":"REDUX_CLUSTER_SYNC","payload":…,"at":n}`), read together
    /// (the engine may be applying ordered actions meanwhile).
    #[napi(catch_unwind)]
    pub fn resync_answer(&self) -> Result<String, Code> {
        self.state.resync_answer().map_err(refused)
    }

    /// Whether a replica asked for a resync (its RESYNC was applied here) since the last
    /// call: the authority's JS answers it by sending its state.
    #[napi(catch_unwind)]
    pub fn take_resync(&self) -> bool {
        self.state.take_resync()
    }
}
