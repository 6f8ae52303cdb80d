//! The store over real loopback sockets, without Node: a server authority, its listener
//! and client replicas, with JS played by polling.

use super::auth::Logins;
use super::ban::BanPolicy;
use super::client::Credentials;
use super::*;
use crate::config::StoreConfig;
use crate::error::ErrorCode;
use crate::protocol::Mode;
use crate::transport::Endpoint;
use bytes::Bytes;
use std::time::Duration;

struct NoWake;
impl Wake for NoWake {
    fn wake(&self) {}
}

fn tcp(port: u16) -> Endpoint {
    Endpoint::Tcp {
        host: "127.0.0.1".into(),
        port,
    }
}

fn action(i: u64) -> Bytes {
    Bytes::from(format!("{{\"type\":\"A\",\"i\":{i}}}"))
}

fn index(a: &Bytes) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(a).unwrap();
    v["i"].as_u64().unwrap()
}

/// Polls until `cond` holds; panics with `what` after 10 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn authority() -> std::sync::Arc<LocalAuthority> {
    LocalAuthority::new(
        "h".into(),
        Mode::Action,
        StoreConfig::local(),
        Bytes::from_static(b"{}"),
        Box::new(NoWake),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_stream_loses_and_duplicates_nothing() {
    let auth = authority();
    let cfg = StoreConfig::local();
    let server =
        ServerHandle::listen(auth.clone(), &tcp(0), cfg.clone(), Default::default()).unwrap();
    let port = server.port().unwrap();
    let client = Client::start(
        vec![tcp(port)],
        "h".into(),
        cfg.clone(),
        Default::default(),
        Box::new(NoWake),
    );
    for i in 0..20_000 {
        client.dispatch(action(i)).unwrap();
    }
    until("part of the stream ordered", || auth.log_stats().0 > 0).await;
    // Cut every connection while actions are in flight, then listen again.
    server.close().await;
    for i in 20_000..30_000 {
        client.dispatch(action(i)).unwrap();
    }
    let server = ServerHandle::listen(auth.clone(), &tcp(port), cfg, Default::default()).unwrap();
    until("all 30,000 ordered", || auth.log_stats().0 >= 30_000).await;
    until("all acknowledged", || client.pending() == 0).await;

    let ordered = auth.poll(1, u64::MAX, 100_000).actions;
    let got: Vec<u64> = ordered.iter().map(index).collect();
    assert_eq!(
        got,
        (0..30_000).collect::<Vec<_>>(),
        "each action once, in dispatch order"
    );

    // The client's replica receives the same sequence (after its initial state).
    let mut seen = Vec::new();
    until("the client replica caught up", || {
        let p = client.poll(100_000);
        seen.extend(p.actions.iter().map(index));
        seen.len() >= 30_000
    })
    .await;
    assert_eq!(seen, got);
    client.close(Duration::from_millis(100)).await;
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_another_store_is_refused_and_stops_retrying() {
    let auth = authority();
    let server = ServerHandle::listen(
        auth.clone(),
        &tcp(0),
        StoreConfig::local(),
        Default::default(),
    )
    .unwrap();
    let client = Client::start(
        vec![tcp(server.port().unwrap())],
        "other".into(),
        StoreConfig::local(),
        Default::default(),
        Box::new(NoWake),
    );
    client.dispatch(action(1)).unwrap();
    let mut events = Vec::new();
    until("the refusal", || {
        events.extend(client.poll(10).events);
        events
            .iter()
            .any(|e| e.code() == Some(ErrorCode::StoreMismatch))
    })
    .await;
    assert_eq!(
        auth.log_stats().0,
        0,
        "nothing of the other store was ordered"
    );
    assert!(!client.is_connected());
    server.close().await;
    client.close(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_client_gets_the_state_then_the_actions_after_it() {
    let auth = authority();
    for i in 0..10 {
        auth.submit_local(action(i));
    }
    auth.set_snapshot(10, Bytes::from_static(b"{\"n\":10}"));
    auth.submit_local(action(10));
    auth.flush();
    let path = std::env::temp_dir().join(format!("rcrs-store-{}.sock", std::process::id()));
    let server = ServerHandle::listen(
        auth.clone(),
        &Endpoint::Unix(path.clone()),
        StoreConfig::local(),
        Default::default(),
    )
    .unwrap();
    let client = Client::start(
        vec![Endpoint::Unix(path.clone())],
        "h".into(),
        StoreConfig::local(),
        Default::default(),
        Box::new(NoWake),
    );
    let mut snapshot = None;
    let mut actions = Vec::new();
    until("state and the action after it", || {
        let p = client.poll(100);
        if p.snapshot.is_some() {
            snapshot = p.snapshot;
        }
        actions.extend(p.actions.iter().map(index));
        !actions.is_empty()
    })
    .await;
    // Either the state as of 10 then action 10, or (retention keeps them) state 0 and all.
    let (seq, state) = snapshot.expect("a state first");
    assert_eq!(
        seq + actions.len() as u64,
        11,
        "state {seq} plus actions {actions:?}"
    );
    if seq == 10 {
        assert_eq!(&state[..], b"{\"n\":10}");
    }
    server.close().await;
    client.close(Duration::ZERO).await;
    assert!(!path.exists());
}

fn events_until<'a>(client: &'a Client, code: ErrorCode) -> impl FnMut() -> bool + 'a {
    let mut seen = Vec::new();
    move || {
        seen.extend(client.poll(10).events);
        seen.iter().any(|e| e.code() == Some(code))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_admit_the_right_password_refuse_others_and_ban_repeat_offenders() {
    let auth = authority();
    let access = std::sync::Arc::new(Access::new(
        Logins::new([("alice", "s3cret")]),
        // Long enough that a loaded machine still counts three failures (a count idle
        // for a whole duration is forgotten) and sees the ban before it expires.
        BanPolicy {
            attempts: 3,
            duration: Duration::from_millis(2000),
        },
    ));
    let server =
        ServerHandle::listen(auth.clone(), &tcp(0), StoreConfig::local(), access.clone()).unwrap();
    let ep = tcp(server.port().unwrap());
    let start = |creds: Credentials| {
        Client::start(
            vec![ep.clone()],
            "h".into(),
            StoreConfig::local(),
            creds,
            Box::new(NoWake),
        )
    };

    let good = start(Credentials::new("alice", "s3cret"));
    good.dispatch(action(1)).unwrap();
    until("alice's action ordered", || auth.log_stats().0 == 1).await;

    // Wrong password, and no credentials at all: a clear error, no retry, nothing applied.
    let wrong = start(Credentials::new("alice", "guess"));
    wrong.dispatch(action(2)).unwrap();
    until(
        "a wrong password refused",
        events_until(&wrong, ErrorCode::Auth),
    )
    .await;
    let none = start(Credentials::default());
    until(
        "ERR_AUTH without credentials",
        events_until(&none, ErrorCode::Auth),
    )
    .await;
    assert_eq!(auth.log_stats().0, 1);

    // A third failure from this address bans it, for everyone at that address...
    let third = start(Credentials::new("bob", "x"));
    until("the ban", events_until(&third, ErrorCode::Banned)).await;
    let banned = start(Credentials::new("alice", "s3cret"));
    until(
        "ERR_BANNED for the right password too",
        events_until(&banned, ErrorCode::Banned),
    )
    .await;
    // ...until it expires; a success then clears the count.
    tokio::time::sleep(Duration::from_millis(2050)).await;
    let later = start(Credentials::new("alice", "s3cret"));
    later.dispatch(action(3)).unwrap();
    until("admitted after the ban expired", || auth.log_stats().0 == 2).await;
    assert!(access.bans.is_empty(), "the success cleared the address");
    for c in [good, wrong, none, third, banned, later] {
        c.close(Duration::ZERO).await;
    }
    server.close().await;
}

/// Servers of one store forming a Raft group, each serving its clients and its peers on
/// one port.
async fn raft_servers(n: usize) -> Vec<(std::sync::Arc<replicated::RaftAuthority>, ServerHandle)> {
    use crate::consensus::engine::RaftConfig;
    use crate::transport::Listener;
    let mut out: Vec<(std::sync::Arc<replicated::RaftAuthority>, ServerHandle)> = Vec::new();
    for i in 0..n {
        let listener = Listener::bind(&tcp(0)).unwrap();
        let raft = RaftConfig {
            bootstrap: i == 0,
            listen: false,
            port: listener.port().unwrap(),
            ..RaftConfig::local(&format!("s{i}"))
        };
        let auth = replicated::RaftAuthority::start(
            "h".into(),
            Mode::Action,
            StoreConfig::local(),
            Bytes::from_static(b"{}"),
            Box::new(NoWake),
            raft,
            None,
        )
        .await
        .unwrap();
        let server = ServerHandle::serve(
            auth.clone(),
            listener,
            StoreConfig::local(),
            Default::default(),
        );
        if i > 0 {
            out[0]
                .0
                .engine()
                .add_node(auth.engine().member().clone())
                .await
                .unwrap();
        }
        out.push((auth, server));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_store_keeps_every_acknowledged_action_once_when_its_leader_dies() {
    let servers = raft_servers(3).await;
    // The client knows every server, the leader (s0, the founder) first.
    let ports: Vec<u16> = servers.iter().map(|(_, s)| s.port().unwrap()).collect();
    let client = Client::start(
        ports.iter().map(|p| tcp(*p)).collect(),
        "h".into(),
        StoreConfig::local(),
        Default::default(),
        Box::new(NoWake),
    );
    for i in 0..300 {
        client.dispatch(action(i)).unwrap();
    }
    until("the first 300 acknowledged", || client.pending() == 0).await;
    let (leader_auth, leader_server) = &servers[0];
    assert_eq!(leader_auth.engine().state().role, "leader");

    // kill the leader (its Raft node and its listener) while more actions are queued.
    for i in 300..600 {
        client.dispatch(action(i)).unwrap();
    }
    leader_server.close().await;
    leader_auth.engine().shutdown().await;
    until("the rest acknowledged through another server", || {
        client.pending() == 0
    })
    .await;

    // Both survivors hold one sequence: each action once, in dispatch order (one client).
    for (auth, _) in &servers[1..] {
        until("a survivor applied all 600", || {
            auth.local().log_stats().0 >= 600
        })
        .await;
        let got: Vec<u64> = auth
            .local()
            .poll(1, u64::MAX, 10_000)
            .actions
            .iter()
            .map(index)
            .collect();
        assert_eq!(
            got,
            (0..600).collect::<Vec<_>>(),
            "each action once, in order"
        );
    }
    // And the client's replica received exactly that.
    let mut seen = Vec::new();
    until("the client replica caught up", || {
        seen.extend(client.poll(10_000).actions.iter().map(index));
        seen.len() >= 600
    })
    .await;
    assert_eq!(seen, (0..600).collect::<Vec<_>>());
    client.close(Duration::from_millis(100)).await;
    for (auth, server) in &servers[1..] {
        server.close().await;
        auth.engine().shutdown().await;
    }
}
