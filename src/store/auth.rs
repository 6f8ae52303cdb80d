//! Logins: challenge–response with HMAC-SHA256. The server sends a fresh random nonce per
//! connection; the client answers with an HMAC, keyed by (a hash of) its password, over
//! the nonce and the connection's identity. The password never crosses the wire, and a
//! captured answer is worthless on any other connection, whose nonce differs.

use crate::link::session::{mac, verify};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub const NONCE_LEN: usize = 32;

/// The secret both sides derive from a password; the server keeps only this.
pub fn derive_key(password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"redux-cluster-rs/login/v1\0");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// What a proof covers: the connection's nonce and identity. (The browser client computes
/// the same bytes with Web Crypto.)
fn covered<'a>(nonce: &'a [u8], id: &'a [u8; 8], store: &'a str, login: &'a str) -> [&'a [u8]; 5] {
    [nonce, id, store.as_bytes(), &[0], login.as_bytes()]
}

/// The client's answer to a challenge.
pub fn prove(key: &[u8; 32], nonce: &[u8], client_id: u64, store: &str, login: &str) -> Vec<u8> {
    let id = client_id.to_be_bytes();
    mac(key, &covered(nonce, &id, store, login)).to_vec()
}

pub fn nonce() -> [u8; NONCE_LEN] {
    rand::random()
}

/// A server's logins: name → derived key.
#[derive(Clone, Default)]
pub struct Logins(HashMap<String, [u8; 32]>);

impl Logins {
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Logins {
        Logins(
            pairs
                .into_iter()
                .map(|(u, p)| (u.to_string(), derive_key(p)))
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks a proof in constant time. An unknown login is checked against a throwaway
    /// key, so timing does not tell which logins exist.
    pub fn verify(
        &self,
        login: &str,
        nonce: &[u8],
        client_id: u64,
        store: &str,
        proof: &[u8],
    ) -> bool {
        let (key, known) = match self.0.get(login) {
            Some(k) => (*k, true),
            None => (derive_key("\0unknown"), false),
        };
        let id = client_id.to_be_bytes();
        verify(&key, &covered(nonce, &id, store, login), proof) && known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_wrong_and_replayed_proofs() {
        let logins = Logins::new([("alice", "s3cret"), ("bob", "hunter2")]);
        let n1 = nonce();
        let key = derive_key("s3cret");
        let p = prove(&key, &n1, 7, "store", "alice");
        assert!(logins.verify("alice", &n1, 7, "store", &p));
        // The same answer on another connection (another nonce) is refused.
        let n2 = nonce();
        assert_ne!(n1, n2);
        assert!(!logins.verify("alice", &n2, 7, "store", &p));
        // Bound to the client id, the store and the login name.
        assert!(!logins.verify("alice", &n1, 8, "store", &p));
        assert!(!logins.verify("alice", &n1, 7, "other", &p));
        assert!(!logins.verify("bob", &n1, 7, "store", &p));
        // Wrong password, unknown login.
        assert!(!logins.verify(
            "alice",
            &n1,
            7,
            "store",
            &prove(&derive_key("x"), &n1, 7, "store", "alice")
        ));
        assert!(!logins.verify(
            "mallory",
            &n1,
            7,
            "store",
            &prove(&derive_key("\0unknown"), &n1, 7, "store", "mallory")
        ));
        assert!(!logins.verify("alice", &n1, 7, "store", b"short"));
    }
}
