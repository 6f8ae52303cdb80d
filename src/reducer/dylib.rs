//! Reducers users write in Rust and compile to a shared library, loaded at run time
//! (`loadReducer`), through the C ABI of the `redux-cluster-reducer` crate
//! (`src/reducer-sdk/`), with its version checked before anything else is called.

use super::Reducer;
use libloading::Library;
use redux_cluster_reducer::{Buf, VTable, ABI_SYMBOL, ABI_VERSION, OK, VTABLE_SYMBOL};
use std::ffi::c_void;
use std::path::Path;
use std::sync::Arc;

/// Why a library could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot load {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("{path} is not a redux-cluster-rs reducer: it exports no `{symbol}` (build it with redux_cluster_reducer::export_reducer!)")]
    MissingSymbol { path: String, symbol: String },
    #[error("{path} was built for reducer ABI version {found}; this engine speaks version {ABI_VERSION} (rebuild it against this release's redux-cluster-reducer crate)")]
    AbiVersion { path: String, found: u32 },
    #[error("the reducer in {path} refused its config: {reason}")]
    Config { path: String, reason: String },
}

/// A loaded library: its table, valid while the library stays loaded.
pub struct ReducerLibrary {
    // Dropped last: every state made from it holds an Arc of it.
    lib: Library,
    vt: *const VTable,
    pub path: String,
}

// The table is immutable static data of the library, which stays loaded while shared.
unsafe impl Send for ReducerLibrary {}
unsafe impl Sync for ReducerLibrary {}

impl ReducerLibrary {
    pub fn open(path: &Path) -> Result<Arc<ReducerLibrary>, LoadError> {
        let shown = path.display().to_string();
        // Loading runs the library's initialisers: that is what loading a library is; the
        // path is the user's choice, as with `require` of a native module.
        let lib = unsafe { Library::new(path) }.map_err(|e| LoadError::Open {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let missing = |sym: &[u8]| LoadError::MissingSymbol {
            path: shown.clone(),
            symbol: String::from_utf8_lossy(sym).into_owned(),
        };
        let found = unsafe {
            let version = lib
                .get::<unsafe extern "C" fn() -> u32>(ABI_SYMBOL)
                .map_err(|_| missing(ABI_SYMBOL))?;
            version()
        };
        if found != ABI_VERSION {
            return Err(LoadError::AbiVersion { path: shown, found });
        }
        let vt = unsafe {
            let table = lib
                .get::<unsafe extern "C" fn() -> *const VTable>(VTABLE_SYMBOL)
                .map_err(|_| missing(VTABLE_SYMBOL))?;
            table()
        };
        if vt.is_null() || unsafe { (*vt).abi_version } != ABI_VERSION {
            return Err(LoadError::AbiVersion {
                path: shown,
                found: if vt.is_null() {
                    0
                } else {
                    unsafe { (*vt).abi_version }
                },
            });
        }
        Ok(Arc::new(ReducerLibrary {
            lib,
            vt,
            path: shown,
        }))
    }

    fn vt(&self) -> &VTable {
        let _ = &self.lib;
        unsafe { &*self.vt }
    }

    /// The name the library gives its reducer.
    pub fn name(&self) -> String {
        let vt = self.vt();
        let bytes = unsafe { std::slice::from_raw_parts(vt.name, vt.name_len) };
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// A fresh state, made with `config` (JSON text).
    pub fn create(self: &Arc<Self>, config: &[u8]) -> Result<LoadedReducer, LoadError> {
        let mut err = Buf::EMPTY;
        let state = unsafe { (self.vt().create)(config.as_ptr(), config.len(), &mut err) };
        if state.is_null() {
            return Err(LoadError::Config {
                path: self.path.clone(),
                reason: self.take(err),
            });
        }
        Ok(LoadedReducer {
            lib: self.clone(),
            state,
        })
    }

    /// The text of a buffer the library handed over, given back to it.
    fn take(&self, buf: Buf) -> String {
        if buf.ptr.is_null() {
            return String::new();
        }
        let s = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) })
            .into_owned();
        unsafe { (self.vt().free)(buf) };
        s
    }

    fn take_bytes(&self, buf: Buf) -> Vec<u8> {
        if buf.ptr.is_null() {
            return Vec::new();
        }
        let v = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
        unsafe { (self.vt().free)(buf) };
        v
    }
}

/// One state of a loaded reducer.
pub struct LoadedReducer {
    lib: Arc<ReducerLibrary>,
    state: *mut c_void,
}

// The SDK requires `Reducer: Send`; the engine calls one state from one thread at a time.
unsafe impl Send for LoadedReducer {}

impl LoadedReducer {
    fn call(
        &mut self,
        f: unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut Buf) -> i32,
        input: &[u8],
    ) -> Result<(), String> {
        let mut err = Buf::EMPTY;
        let rc = unsafe { f(self.state, input.as_ptr(), input.len(), &mut err) };
        let message = self.lib.take(err);
        match rc {
            OK => Ok(()),
            redux_cluster_reducer::PANICKED => Err(format!("the reducer panicked: {message}")),
            _ => Err(message),
        }
    }
}

impl Reducer for LoadedReducer {
    fn apply(&mut self, action: &[u8]) -> Result<bool, String> {
        let f = self.lib.vt().apply;
        self.call(f, action).map(|()| true)
    }

    fn state_json(&self) -> Result<Vec<u8>, String> {
        let mut out = Buf::EMPTY;
        let rc = unsafe { (self.lib.vt().snapshot)(self.state, &mut out) };
        let bytes = self.lib.take_bytes(out);
        if rc == OK {
            Ok(bytes)
        } else {
            Err(format!(
                "the reducer panicked in snapshot: {}",
                String::from_utf8_lossy(&bytes)
            ))
        }
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let f = self.lib.vt().restore;
        self.call(f, state)
    }
}

impl Drop for LoadedReducer {
    fn drop(&mut self) {
        unsafe { (self.lib.vt().destroy)(self.state) };
    }
}
