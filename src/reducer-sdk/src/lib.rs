//! Write a reducer for redux-cluster-rs in Rust, compile it to a shared library, and load
//! it into the prebuilt addon with `loadReducer(path, config)`: no rebuild of the addon.
//!
//! ```ignore
//! use redux_cluster_reducer::{export_reducer, Reducer};
//!
//! struct Counter(i64);
//!
//! impl Reducer for Counter {
//!     const NAME: &'static str = "counter";
//!     fn new(_config: &[u8]) -> Result<Self, String> { Ok(Counter(0)) }
//!     fn apply(&mut self, action: &[u8]) -> Result<(), String> {
//!         if action.windows(5).any(|w| w == b"\"INC\"") { self.0 += 1 }
//!         Ok(())
//!     }
//!     fn snapshot(&self) -> Vec<u8> { self.0.to_string().into_bytes() }
//!     fn restore(&mut self, s: &[u8]) -> Result<(), String> {
//!         self.0 = std::str::from_utf8(s).ok().and_then(|s| s.parse().ok()).ok_or("not a number")?;
//!         Ok(())
//!     }
//! }
//!
//! export_reducer!(Counter);
//! ```
//!
//! Build it with `crate-type = ["cdylib"]`. The engine and the library meet at a C ABI
//! ([`VTable`]) that carries a version ([`ABI_VERSION`]): a library built for another
//! version is refused by `loadReducer` with a clear error instead of being called. The
//! reducer's state stays inside the library, opaque to the engine; actions go in as JSON
//! bytes, and the state comes out as JSON bytes ([`Reducer::snapshot`]), which is what
//! `getState()` returns, what snapshots and backups carry, and what [`Reducer::restore`]
//! takes back.
//!
//! The engine calls one reducer from one thread at a time (it may be a different thread
//! each time, hence `Send`). Every replica applies the same actions in the same order, so
//! the reducer must be deterministic: no clocks, no randomness, no iteration over a
//! `HashMap` into the state.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The version of the boundary below. The engine refuses a library whose
/// `redux_cluster_reducer_abi_version()` returns anything else.
pub const ABI_VERSION: u32 = 1;

/// The symbol that returns the library's ABI version (`extern "C" fn() -> u32`).
pub const ABI_SYMBOL: &[u8] = b"redux_cluster_reducer_abi_version";
/// The symbol that returns the library's [`VTable`] (`extern "C" fn() -> *const VTable`).
pub const VTABLE_SYMBOL: &[u8] = b"redux_cluster_reducer_v1";

/// `apply` / `restore` / `snapshot` succeeded.
pub const OK: i32 = 0;
/// The reducer refused (the message is in the error buffer); the state is unchanged.
pub const REFUSED: i32 = 1;
/// The reducer panicked (the panic message is in the error buffer).
pub const PANICKED: i32 = 2;

/// A reducer the engine can load. State lives in `Self`.
pub trait Reducer: Send + Sized + 'static {
    /// The reducer's name: stores sync only with stores that run the same reducer
    /// (the name and the config make the store's identity).
    const NAME: &'static str;
    /// A fresh state; `config` is the JSON text given to `loadReducer` (`null` without).
    fn new(config: &[u8]) -> Result<Self, String>;
    /// Applies one action (a JSON object with a string `type`). On `Err` the state must
    /// be left as it was: every replica refuses the action alike, and `dispatchAsync`
    /// rejects with `ERR_REDUCER`. A panic is caught and reported the same way, but what
    /// the reducer changed before it panicked stays changed (identically everywhere).
    fn apply(&mut self, action: &[u8]) -> Result<(), String>;
    /// The whole state as JSON text.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the state by one [`Reducer::snapshot`] made (or a backup's JSON).
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}

/// Bytes owned by the library, handed to the engine; the engine gives them back through
/// [`VTable::free`].
#[repr(C)]
pub struct Buf {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buf {
    pub const EMPTY: Buf = Buf {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };

    fn from_vec(v: Vec<u8>) -> Buf {
        let mut v = std::mem::ManuallyDrop::new(v);
        Buf {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }
}

/// The C ABI between the engine and a reducer library, version [`ABI_VERSION`].
#[repr(C)]
pub struct VTable {
    pub abi_version: u32,
    pub name: *const u8,
    pub name_len: usize,
    /// A new state, or null with the reason in `err`.
    pub create: unsafe extern "C" fn(config: *const u8, len: usize, err: *mut Buf) -> *mut c_void,
    pub apply: unsafe extern "C" fn(
        state: *mut c_void,
        action: *const u8,
        len: usize,
        err: *mut Buf,
    ) -> i32,
    pub snapshot: unsafe extern "C" fn(state: *const c_void, out: *mut Buf) -> i32,
    pub restore:
        unsafe extern "C" fn(state: *mut c_void, data: *const u8, len: usize, err: *mut Buf) -> i32,
    pub destroy: unsafe extern "C" fn(state: *mut c_void),
    pub free: unsafe extern "C" fn(buf: Buf),
}

// The table is immutable and its pointers are to static data and functions.
unsafe impl Sync for VTable {}

impl VTable {
    /// The table for `R` (what [`export_reducer!`] exports).
    pub const fn of<R: Reducer>() -> VTable {
        VTable {
            abi_version: ABI_VERSION,
            name: R::NAME.as_ptr(),
            name_len: R::NAME.len(),
            create: create::<R>,
            apply: apply::<R>,
            snapshot: snapshot::<R>,
            restore: restore::<R>,
            destroy: destroy::<R>,
            free,
        }
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => match p.downcast::<&'static str>() {
            Ok(s) => s.to_string(),
            Err(_) => "the reducer panicked".to_string(),
        },
    }
}

unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

unsafe fn set(out: *mut Buf, v: Vec<u8>) {
    if !out.is_null() {
        *out = Buf::from_vec(v);
    }
}

// Each entry point catches panics: unwinding across `extern "C"` would abort Node.
unsafe extern "C" fn create<R: Reducer>(
    config: *const u8,
    len: usize,
    err: *mut Buf,
) -> *mut c_void {
    let config = slice(config, len);
    match catch_unwind(|| R::new(config)) {
        Ok(Ok(r)) => Box::into_raw(Box::new(r)) as *mut c_void,
        Ok(Err(e)) => {
            set(err, e.into_bytes());
            std::ptr::null_mut()
        }
        Err(p) => {
            set(err, panic_message(p).into_bytes());
            std::ptr::null_mut()
        }
    }
}

/// Calls `f` on the state with the input bytes, answering OK, REFUSED or PANICKED (the
/// reason in `err`): what `apply` and `restore` share.
unsafe fn call_mut<R: Reducer>(
    state: *mut c_void,
    input: *const u8,
    len: usize,
    err: *mut Buf,
    f: impl FnOnce(&mut R, &[u8]) -> Result<(), String>,
) -> i32 {
    let r = &mut *(state as *mut R);
    let input = slice(input, len);
    match catch_unwind(AssertUnwindSafe(|| f(r, input))) {
        Ok(Ok(())) => OK,
        Ok(Err(e)) => {
            set(err, e.into_bytes());
            REFUSED
        }
        Err(p) => {
            set(err, panic_message(p).into_bytes());
            PANICKED
        }
    }
}

unsafe extern "C" fn apply<R: Reducer>(
    state: *mut c_void,
    action: *const u8,
    len: usize,
    err: *mut Buf,
) -> i32 {
    call_mut::<R>(state, action, len, err, R::apply)
}

unsafe extern "C" fn snapshot<R: Reducer>(state: *const c_void, out: *mut Buf) -> i32 {
    let r = &*(state as *const R);
    match catch_unwind(AssertUnwindSafe(|| r.snapshot())) {
        Ok(v) => {
            set(out, v);
            OK
        }
        Err(p) => {
            set(out, panic_message(p).into_bytes());
            PANICKED
        }
    }
}

unsafe extern "C" fn restore<R: Reducer>(
    state: *mut c_void,
    data: *const u8,
    len: usize,
    err: *mut Buf,
) -> i32 {
    call_mut::<R>(state, data, len, err, R::restore)
}

unsafe extern "C" fn destroy<R: Reducer>(state: *mut c_void) {
    if !state.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(state as *mut R))));
    }
}

unsafe extern "C" fn free(buf: Buf) {
    if !buf.ptr.is_null() {
        drop(Vec::from_raw_parts(buf.ptr, buf.len, buf.cap));
    }
}

/// Exports `$t` (a [`Reducer`]) from a `cdylib` for `loadReducer`.
#[macro_export]
macro_rules! export_reducer {
    ($t:ty) => {
        #[no_mangle]
        pub extern "C" fn redux_cluster_reducer_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        #[no_mangle]
        pub extern "C" fn redux_cluster_reducer_v1() -> *const $crate::VTable {
            static TABLE: $crate::VTable = $crate::VTable::of::<$t>();
            &TABLE
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count(u64);
    impl Reducer for Count {
        const NAME: &'static str = "count";
        fn new(config: &[u8]) -> Result<Self, String> {
            if config == b"bad" {
                return Err("bad config".into());
            }
            Ok(Count(0))
        }
        fn apply(&mut self, action: &[u8]) -> Result<(), String> {
            match action {
                b"inc" => self.0 += 1,
                b"panic" => panic!("boom {}", self.0),
                _ => return Err("unknown".into()),
            }
            Ok(())
        }
        fn snapshot(&self) -> Vec<u8> {
            self.0.to_string().into_bytes()
        }
        fn restore(&mut self, s: &[u8]) -> Result<(), String> {
            self.0 = std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("nan")?;
            Ok(())
        }
    }

    fn text(vt: &VTable, b: Buf) -> String {
        let s = unsafe { String::from_utf8_lossy(slice(b.ptr, b.len)).into_owned() };
        unsafe { (vt.free)(b) };
        s
    }

    #[test]
    fn the_table_calls_through_and_catches_panics() {
        static VT: VTable = VTable::of::<Count>();
        let vt = &VT;
        unsafe {
            let mut err = Buf::EMPTY;
            assert!((vt.create)(b"bad".as_ptr(), 3, &mut err).is_null());
            assert_eq!(text(vt, err), "bad config");
            let st = (vt.create)(std::ptr::null(), 0, std::ptr::null_mut());
            assert!(!st.is_null());
            assert_eq!((vt.apply)(st, b"inc".as_ptr(), 3, std::ptr::null_mut()), OK);
            let mut err = Buf::EMPTY;
            assert_eq!((vt.apply)(st, b"x".as_ptr(), 1, &mut err), REFUSED);
            assert_eq!(text(vt, err), "unknown");
            let hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let mut err = Buf::EMPTY;
            assert_eq!((vt.apply)(st, b"panic".as_ptr(), 5, &mut err), PANICKED);
            std::panic::set_hook(hook);
            assert_eq!(text(vt, err), "boom 1");
            let mut out = Buf::EMPTY;
            assert_eq!((vt.snapshot)(st, &mut out), OK);
            assert_eq!(text(vt, out), "1");
            assert_eq!(
                (vt.restore)(st, b"41".as_ptr(), 2, std::ptr::null_mut()),
                OK
            );
            assert_eq!((vt.apply)(st, b"inc".as_ptr(), 3, std::ptr::null_mut()), OK);
            let mut out = Buf::EMPTY;
            (vt.snapshot)(st, &mut out);
            assert_eq!(text(vt, out), "42");
            (vt.destroy)(st);
            let name = std::str::from_utf8(slice(vt.name, vt.name_len)).unwrap();
            assert_eq!(name, "count");
        }
    }
}
