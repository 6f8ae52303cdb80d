//! Core errors as JS errors: `err.code` is one of the stable strings below, documented in
//! `index.d.ts`.

use crate::consensus::net::ApiError;
use crate::error::Error as CoreError;
use crate::error::{AnyCode, ErrorCode};
use napi::Status;

/// The `code` of a JS error thrown by the addon.
#[derive(Debug, Clone)]
pub struct Code(pub String);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Status> for Code {
    fn from(s: Status) -> Code {
        Code(format!("ERR_NAPI_{}", s.as_ref().to_uppercase()))
    }
}

pub fn js_error(code: impl Into<AnyCode>, message: impl Into<String>) -> napi::Error<Code> {
    napi::Error::new(Code(code.into().as_str().to_string()), message.into())
}

pub fn from_core(e: CoreError) -> napi::Error<Code> {
    js_error(e.code(), e.to_string())
}

/// The code of an I/O error met while starting something (a port, a `dataDir`).
pub fn io_code(e: &std::io::Error) -> ErrorCode {
    let old = e
        .get_ref()
        .is_some_and(|x| x.is::<crate::consensus::storage::disk::OldFormat>());
    match e.kind() {
        _ if old => ErrorCode::DataFormat,
        std::io::ErrorKind::AddrInUse => ErrorCode::AddrInUse,
        std::io::ErrorKind::PermissionDenied => ErrorCode::Permission,
        std::io::ErrorKind::InvalidInput => ErrorCode::InvalidConfig,
        _ => ErrorCode::Io,
    }
}

pub fn from_io(e: std::io::Error, what: &str) -> napi::Error<Code> {
    js_error(io_code(&e), format!("{what}: {e}"))
}

/// Heads the message of a rejection that carries its code. napi types an `async fn`'s
/// rejections by its own `Status`, so the code, the message and the leader (for a
/// not-leader refusal) travel in the message, as JSON after this marker (node ids hold
/// ':' and '@', so no separator would do); `src/js/native.js`, which knows the same
/// marker, moves them to `err.code`, `err.message` and `err.leaderId`, so that a
/// rejected call and a thrown one look the same to the user.
pub const REJECTION: &str = "redux-cluster-rs rejection ";

/// An `async fn`'s failure, with its code (either API's) and, when known, the leader.
pub fn rejection(
    code: impl Into<AnyCode>,
    message: impl Into<String>,
    leader: Option<String>,
) -> napi::Error {
    coded(code.into().as_str(), message.into(), leader)
}

fn coded(code: &str, message: String, leader: Option<String>) -> napi::Error {
    let body = serde_json::json!({"code": code, "message": message, "leaderId": leader});
    napi::Error::new(Status::GenericFailure, format!("{REJECTION}{body}"))
}

/// What a synchronous call would have thrown, as an `async fn`'s rejection.
#[cfg_attr(test, allow(dead_code))]
pub fn rejected(e: napi::Error<Code>) -> napi::Error {
    coded(e.status.as_ref(), e.reason, None)
}

/// A Raft engine's refusal (with the leader, for `ERR_NOT_LEADER`), as a rejection.
pub fn refused(e: ApiError) -> napi::Error {
    rejection(e.code, e.message, e.leader)
}

/// Every error code a user can meet, as `err.code` spells it (the JS `ErrorCode` object).
#[cfg_attr(test, allow(dead_code))]
#[napi_derive::napi(catch_unwind)]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL
        .into_iter()
        .filter(|c| c.is_public())
        .map(|c| c.as_str().to_string())
        .collect()
}

/// Panics on purpose, synchronously or in an async call, so the tests can check that a
/// bug in the engine reaches JS as an `ERR_INTERNAL` error instead of aborting Node.
// napi registers the exported functions only outside `cfg(test)`.
#[cfg_attr(test, allow(dead_code))]
#[napi_derive::napi(js_name = "__panicForTest", catch_unwind)]
pub fn panic_for_test(message: String) -> napi::Result<()> {
    panic!("{message}")
}

#[cfg_attr(test, allow(dead_code))]
#[napi_derive::napi(js_name = "__panicForTestAsync", catch_unwind)]
pub async fn panic_for_test_async(message: String) -> napi::Result<()> {
    panic!("{message}")
}
