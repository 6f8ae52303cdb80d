//! The membership logic with no IO (the runtime feeds it link events, heartbeats and
//! ticks, and carries out what it returns), so it can be tested deterministically.
//!
//! Full mesh, as noex: every node keeps a link to every other node it knows of, learned
//! from seeds or from the `known` lists that heartbeats carry (gossip). Differences from
//! noex's code that users rely on: `nodeUp` fires as soon as a link is up (not at the
//! next heartbeat); a node that answers late but within `interval × threshold` stays up;
//! a node that left gracefully is not redialled (unless it comes back).
//!
//! A node's identity is what it says in its hello, never the address it was reached at.
//! A seed is only an address: whoever answers there becomes a member under its own id
//! (and is redialled at the seed's address), the seed spelling is never a member, never
//! gossiped and never reported; a seed that is ourselves, under any spelling, is dropped.
//! `nodeDown` only follows a `nodeUp`, as in noex: a node that never came up is retried
//! quietly.

use super::node_id::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Connecting,
    Connected,
    Disconnected,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Connecting => "connecting",
            NodeStatus::Connected => "connected",
            NodeStatus::Disconnected => "disconnected",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    HeartbeatTimeout,
    ConnectionClosed,
    ConnectionRefused,
    GracefulShutdown,
}

impl DownReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DownReason::HeartbeatTimeout => "heartbeat_timeout",
            DownReason::ConnectionClosed => "connection_closed",
            DownReason::ConnectionRefused => "connection_refused",
            DownReason::GracefulShutdown => "graceful_shutdown",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MembershipConfig {
    pub heartbeat_interval: Duration,
    pub miss_threshold: u32,
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    /// Seeds the reconnect jitter, so runs can be replayed.
    pub rng_seed: u64,
}

impl Default for MembershipConfig {
    /// noex's defaults: heartbeat every 5 s, down after 3 misses, reconnect 1 s → 30 s.
    fn default() -> Self {
        MembershipConfig {
            heartbeat_interval: Duration::from_millis(5000),
            miss_threshold: 3,
            reconnect_base: Duration::from_millis(1000),
            reconnect_max: Duration::from_millis(30000),
            rng_seed: rand::random(),
        }
    }
}

impl MembershipConfig {
    /// How long a connected node may stay silent.
    pub fn failure_timeout(&self) -> Duration {
        self.heartbeat_interval * self.miss_threshold
    }
}

/// What we know of one other node.
#[derive(Debug, Clone)]
pub struct Peer {
    pub status: NodeStatus,
    pub last_heartbeat: Option<Instant>,
    pub process_count: u32,
    pub uptime_ms: u64,
    /// Consecutive failed dials; drives the backoff.
    failures: u32,
    next_dial: Option<Instant>,
    /// Left gracefully: not redialled until it shows up again.
    left: bool,
}

impl Peer {
    fn new() -> Peer {
        Peer {
            status: NodeStatus::Disconnected,
            last_heartbeat: None,
            process_count: 0,
            uptime_ms: 0,
            failures: 0,
            next_dial: None,
            left: false,
        }
    }
}

/// Whom a dial is for. A seed is only an address: whoever answers there is the node, by
/// the id it gives. A member is dialed expecting its own id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Seed(NodeId),
    Member(NodeId),
}

/// A seed address and what we know of it.
#[derive(Debug, Clone, Default)]
struct Seed {
    /// The node that answered there (possibly ourselves).
    answered: Option<NodeId>,
    failures: u32,
    /// When to try again; `None` while a dial is under way or once it answered.
    next_dial: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Join through these nodes.
    Seeds(Vec<NodeId>),
    /// A dial to a seed reached the node `id` (it said so in its hello). A `LinkUp(id)`
    /// follows unless the pair already had a link or `id` is ourselves.
    SeedAnswered {
        seed: NodeId,
        id: NodeId,
    },
    /// A link to `peer` is up (both sides identified themselves).
    LinkUp(NodeId),
    Heartbeat {
        from: NodeId,
        uptime_ms: u64,
        process_count: u32,
        known: Vec<NodeId>,
    },
    LinkClosed(NodeId),
    DialFailed(Target),
    /// The peer announced it is stopping.
    Leaving(NodeId),
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Connect to `host:port` and exchange hellos; report `SeedAnswered` + `LinkUp`, or
    /// `DialFailed(target)`.
    Dial {
        target: Target,
        host: String,
        port: u16,
    },
    Hangup(NodeId),
    /// Send a heartbeat (with `known()`) to this peer.
    Heartbeat(NodeId),
    NodeUp(NodeId),
    NodeDown(NodeId, DownReason),
}

pub struct Membership {
    local: NodeId,
    cfg: MembershipConfig,
    peers: BTreeMap<NodeId, Peer>,
    seeds: BTreeMap<NodeId, Seed>,
    next_heartbeat: Option<Instant>,
    rng: StdRng,
}

impl Membership {
    pub fn new(local: NodeId, cfg: MembershipConfig) -> Membership {
        let rng = StdRng::seed_from_u64(cfg.rng_seed);
        Membership {
            local,
            cfg,
            peers: BTreeMap::new(),
            seeds: BTreeMap::new(),
            next_heartbeat: None,
            rng,
        }
    }

    pub fn local(&self) -> &NodeId {
        &self.local
    }

    pub fn peers(&self) -> impl Iterator<Item = (&NodeId, &Peer)> {
        self.peers.iter()
    }

    pub fn peer(&self, id: &NodeId) -> Option<&Peer> {
        self.peers.get(id)
    }

    /// Every node we know of, ourselves included: what heartbeats gossip.
    pub fn known(&self) -> Vec<NodeId> {
        std::iter::once(self.local.clone())
            .chain(
                self.peers
                    .iter()
                    .filter(|(_, p)| !p.left)
                    .map(|(id, _)| id.clone()),
            )
            .collect()
    }

    pub fn connected(&self) -> impl Iterator<Item = &NodeId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.status == NodeStatus::Connected)
            .map(|(id, _)| id)
    }

    fn backoff(&mut self, failures: u32) -> Duration {
        let cap = self
            .cfg
            .reconnect_base
            .saturating_mul(1u32 << failures.min(16))
            .min(self.cfg.reconnect_max);
        // Jitter in [cap/2, cap]: spread out, but never much sooner than the backoff says.
        let ms = cap.as_millis() as u64;
        Duration::from_millis(self.rng.random_range(ms / 2..=ms.max(1)))
    }

    /// A member is dialed where a seed reached it, or else where its id says.
    fn dial(&self, target: Target) -> Output {
        let (host, port) = match &target {
            Target::Seed(s) => (s.host(), s.port()),
            Target::Member(id) => self
                .seeds
                .iter()
                .find(|(_, sd)| sd.answered.as_ref() == Some(id))
                .map_or((id.host(), id.port()), |(s, _)| (s.host(), s.port())),
        };
        Output::Dial {
            host: host.to_string(),
            port,
            target,
        }
    }

    fn learn(&mut self, id: NodeId, out: &mut Vec<Output>) {
        if id == self.local {
            return;
        }
        let peer = self.peers.entry(id.clone()).or_insert_with(Peer::new);
        if peer.status == NodeStatus::Disconnected && (peer.left || peer.next_dial.is_none()) {
            peer.left = false;
            peer.status = NodeStatus::Connecting;
            peer.next_dial = None;
            out.push(self.dial(Target::Member(id)));
        }
    }

    fn add_seeds(&mut self, seeds: Vec<NodeId>, out: &mut Vec<Output>) {
        for s in seeds {
            if self.seeds.contains_key(&s) {
                continue;
            }
            let answered = (s == self.local).then(|| self.local.clone());
            let dial = answered.is_none();
            self.seeds.insert(
                s.clone(),
                Seed {
                    answered,
                    ..Seed::default()
                },
            );
            if dial {
                out.push(self.dial(Target::Seed(s)));
            }
        }
    }

    /// A member reached through a seed left for good: the seed address is tried again
    /// (quietly, with backoff), so the node is found when it comes back.
    fn rearm_seeds_of(&mut self, id: &NodeId, now: Instant) {
        let delay = self.backoff(0);
        for sd in self.seeds.values_mut() {
            if sd.answered.as_ref() == Some(id) {
                sd.answered = None;
                sd.failures = 0;
                sd.next_dial = Some(now + delay);
            }
        }
    }

    fn lose(&mut self, id: &NodeId, reason: DownReason, now: Instant, out: &mut Vec<Output>) {
        let failures = match self.peers.get(id) {
            Some(p) => p.failures,
            None => return,
        };
        let delay = self.backoff(failures);
        let p = self.peers.get_mut(id).expect("checked above");
        let was_up = p.status == NodeStatus::Connected;
        p.status = NodeStatus::Disconnected;
        p.left = reason == DownReason::GracefulShutdown;
        p.next_dial = (!p.left).then_some(now + delay);
        if p.left {
            self.rearm_seeds_of(id, now);
        }
        if was_up {
            out.push(Output::NodeDown(id.clone(), reason));
            if reason == DownReason::HeartbeatTimeout {
                out.push(Output::Hangup(id.clone()));
            }
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        if self.next_heartbeat.is_none() {
            self.next_heartbeat = Some(now + self.cfg.heartbeat_interval);
        }
        match input {
            Input::Seeds(seeds) => self.add_seeds(seeds, &mut out),
            Input::SeedAnswered { seed, id } => {
                if let Some(sd) = self.seeds.get_mut(&seed) {
                    sd.answered = Some(id);
                    sd.failures = 0;
                    sd.next_dial = None;
                }
            }
            Input::LinkUp(id) => {
                if id == self.local {
                    return out;
                }
                let p = self.peers.entry(id.clone()).or_insert_with(Peer::new);
                let was_up = p.status == NodeStatus::Connected;
                p.status = NodeStatus::Connected;
                p.last_heartbeat = Some(now);
                p.failures = 0;
                p.next_dial = None;
                p.left = false;
                if !was_up {
                    out.push(Output::NodeUp(id));
                    // Gossip the change at once, to the newcomer and to everyone else, so
                    // that nobody waits a whole interval to meet the others.
                    let all: Vec<NodeId> = self.connected().cloned().collect();
                    out.extend(all.into_iter().map(Output::Heartbeat));
                }
            }
            Input::Heartbeat {
                from,
                uptime_ms,
                process_count,
                known,
            } => {
                let Some(p) = self.peers.get_mut(&from) else {
                    return out;
                };
                if p.status != NodeStatus::Connected {
                    return out;
                }
                p.last_heartbeat = Some(now);
                p.uptime_ms = uptime_ms;
                p.process_count = process_count;
                for id in known {
                    if self.peers.contains_key(&id) || id == self.local {
                        continue;
                    }
                    if self.local < id {
                        self.learn(id, &mut out);
                    } else {
                        // Both sides learn of each other in the same gossip round; the
                        // smaller id dials, so the pair does not end up with two links.
                        // The larger dials too if nothing came within an interval.
                        let mut p = Peer::new();
                        p.next_dial = Some(now + self.cfg.heartbeat_interval);
                        self.peers.insert(id, p);
                    }
                }
            }
            Input::LinkClosed(id) => {
                let up = self
                    .peers
                    .get(&id)
                    .map(|p| p.status == NodeStatus::Connected);
                if up == Some(true) {
                    self.lose(&id, DownReason::ConnectionClosed, now, &mut out);
                } else if up == Some(false) {
                    // A dial that connected and then dropped before identifying.
                    self.failed_dial(&id, now);
                }
            }
            Input::DialFailed(Target::Member(id)) => self.failed_dial(&id, now),
            Input::DialFailed(Target::Seed(s)) => {
                let Some(failures) = self.seeds.get(&s).map(|sd| sd.failures) else {
                    return out;
                };
                let delay = self.backoff(failures);
                let sd = self.seeds.get_mut(&s).expect("checked above");
                if sd.answered.is_none() {
                    sd.failures = sd.failures.saturating_add(1);
                    sd.next_dial = Some(now + delay);
                }
            }
            Input::Leaving(id) => self.lose(&id, DownReason::GracefulShutdown, now, &mut out),
            Input::Tick => self.tick(now, &mut out),
        }
        out
    }

    /// Quiet: a node that never came up is not reported down, and one that went down
    /// was reported when it did.
    fn failed_dial(&mut self, id: &NodeId, now: Instant) {
        let Some(failures) = self.peers.get(id).map(|p| p.failures) else {
            return;
        };
        let delay = self.backoff(failures);
        let p = self.peers.get_mut(id).expect("checked above");
        if p.status == NodeStatus::Connected || p.left {
            return;
        }
        p.status = NodeStatus::Disconnected;
        p.failures = p.failures.saturating_add(1);
        p.next_dial = Some(now + delay);
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Output>) {
        let timeout = self.cfg.failure_timeout();
        let silent: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.status == NodeStatus::Connected
                    && p.last_heartbeat
                        .is_some_and(|t| now.duration_since(t) > timeout)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in silent {
            self.lose(&id, DownReason::HeartbeatTimeout, now, out);
        }
        let due: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.status == NodeStatus::Disconnected && p.next_dial.is_some_and(|t| t <= now)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let p = self.peers.get_mut(&id).expect("listed above");
            p.status = NodeStatus::Connecting;
            p.next_dial = None;
            out.push(self.dial(Target::Member(id)));
        }
        let seeds_due: Vec<NodeId> = self
            .seeds
            .iter()
            .filter(|(_, sd)| sd.answered.is_none() && sd.next_dial.is_some_and(|t| t <= now))
            .map(|(s, _)| s.clone())
            .collect();
        for s in seeds_due {
            self.seeds.get_mut(&s).expect("listed above").next_dial = None;
            out.push(self.dial(Target::Seed(s)));
        }
        if self.next_heartbeat.is_some_and(|t| t <= now) {
            self.next_heartbeat = Some(now + self.cfg.heartbeat_interval);
            out.extend(
                self.connected()
                    .cloned()
                    .map(Output::Heartbeat)
                    .collect::<Vec<_>>(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    //! An in-memory network of state machines on virtual time: links can be cut, nodes
    //! frozen (as with SIGSTOP), stopped or refused.
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    struct Sim {
        t0: Instant,
        now: Duration,
        nodes: BTreeMap<NodeId, Membership>,
        frozen: BTreeSet<NodeId>,
        /// What a frozen node's sockets hold for it when it thaws.
        queued: HashMap<NodeId, Vec<Input>>,
        down: BTreeSet<NodeId>,
        links: BTreeSet<(NodeId, NodeId)>,
        events: HashMap<NodeId, Vec<(Duration, Output)>>,
    }

    fn id(n: &str) -> NodeId {
        NodeId::create(
            n,
            "127.0.0.1",
            4000 + n.len() as u32 * 7 + n.as_bytes()[0] as u32,
        )
        .unwrap()
    }

    fn cfg() -> MembershipConfig {
        MembershipConfig {
            heartbeat_interval: Duration::from_millis(100),
            miss_threshold: 3,
            reconnect_base: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(400),
            rng_seed: 7,
        }
    }

    fn pair(a: &NodeId, b: &NodeId) -> (NodeId, NodeId) {
        if a < b {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        }
    }

    impl Sim {
        fn new() -> Sim {
            Sim {
                t0: Instant::now(),
                now: Duration::ZERO,
                nodes: BTreeMap::new(),
                frozen: BTreeSet::new(),
                queued: HashMap::new(),
                down: BTreeSet::new(),
                links: BTreeSet::new(),
                events: HashMap::new(),
            }
        }

        fn start(&mut self, n: &NodeId, seeds: Vec<NodeId>) {
            self.down.remove(n);
            self.nodes
                .insert(n.clone(), Membership::new(n.clone(), cfg()));
            self.input(n, Input::Seeds(seeds));
        }

        fn input(&mut self, n: &NodeId, i: Input) {
            if self.down.contains(n) {
                return;
            }
            if self.frozen.contains(n) {
                if i != Input::Tick {
                    self.queued.entry(n.clone()).or_default().push(i);
                }
                return;
            }
            let at = self.t0 + self.now;
            let out = self.nodes.get_mut(n).unwrap().handle(at, i);
            for o in out {
                self.output(n, o);
            }
        }

        fn output(&mut self, from: &NodeId, o: Output) {
            match &o {
                Output::Dial { target, port, .. } => {
                    // Whoever listens on that port answers, whatever its id (ports are
                    // unique here, so the host part of an id is only a spelling).
                    let to = self
                        .nodes
                        .keys()
                        .find(|n| n.port() == *port && !self.down.contains(*n))
                        .filter(|n| !self.frozen.contains(*n))
                        .cloned();
                    let to = match (to, target) {
                        (Some(to), Target::Seed(seed)) => {
                            let answered = Input::SeedAnswered {
                                seed: seed.clone(),
                                id: to.clone(),
                            };
                            self.input(from, answered);
                            (&to != from).then_some(to)
                        }
                        (Some(to), Target::Member(m)) if &to == m => Some(to),
                        _ => {
                            self.input(from, Input::DialFailed(target.clone()));
                            None
                        }
                    };
                    if let Some(to) = to {
                        self.links.insert(pair(from, &to));
                        self.input(from, Input::LinkUp(to.clone()));
                        self.input(&to, Input::LinkUp(from.clone()));
                    }
                }
                Output::Heartbeat(to) => {
                    if self.links.contains(&pair(from, to)) {
                        let known = self.nodes[from].known();
                        let hb = Input::Heartbeat {
                            from: from.clone(),
                            uptime_ms: self.now.as_millis() as u64,
                            process_count: 0,
                            known,
                        };
                        self.input(to, hb);
                    }
                }
                Output::Hangup(to) => {
                    if self.links.remove(&pair(from, to)) {
                        self.input(to, Input::LinkClosed(from.clone()));
                    }
                }
                Output::NodeUp(_) | Output::NodeDown(..) => {
                    self.events
                        .entry(from.clone())
                        .or_default()
                        .push((self.now, o.clone()));
                }
            }
        }

        /// Advances virtual time in 10 ms ticks.
        fn run(&mut self, d: Duration) {
            let end = self.now + d;
            while self.now < end {
                self.now += Duration::from_millis(10);
                let ids: Vec<NodeId> = self.nodes.keys().cloned().collect();
                for n in ids {
                    self.input(&n, Input::Tick);
                }
            }
        }

        fn freeze(&mut self, n: &NodeId) {
            self.frozen.insert(n.clone());
        }

        /// Thaws `n`: it reads what its sockets buffered before its timers run.
        fn thaw(&mut self, n: &NodeId) {
            self.frozen.remove(n);
            for i in self.queued.remove(n).unwrap_or_default() {
                self.input(n, i);
            }
        }

        /// Closes every link of `n` (a crash or kill -9: the peers see the sockets close).
        fn kill(&mut self, n: &NodeId) {
            self.down.insert(n.clone());
            let gone: Vec<_> = self
                .links
                .iter()
                .filter(|(a, b)| a == n || b == n)
                .cloned()
                .collect();
            for (a, b) in gone {
                self.links.remove(&(a.clone(), b.clone()));
                let other = if &a == n { b } else { a };
                self.input(&other, Input::LinkClosed(n.clone()));
            }
        }

        fn stop(&mut self, n: &NodeId) {
            let peers: Vec<NodeId> = self.nodes[n].connected().cloned().collect();
            for p in &peers {
                self.input(p, Input::Leaving(n.clone()));
            }
            self.kill(n);
        }

        fn knows(&self, n: &NodeId) -> BTreeSet<NodeId> {
            self.nodes[n].connected().cloned().collect()
        }

        fn downs(&self, n: &NodeId) -> Vec<(Duration, NodeId, DownReason)> {
            self.events
                .get(n)
                .into_iter()
                .flatten()
                .filter_map(|(t, o)| match o {
                    Output::NodeDown(id, r) => Some((*t, id.clone(), *r)),
                    _ => None,
                })
                .collect()
        }

        fn ups(&self, n: &NodeId) -> Vec<(Duration, NodeId)> {
            self.events
                .get(n)
                .into_iter()
                .flatten()
                .filter_map(|(t, o)| match o {
                    Output::NodeUp(id) => Some((*t, id.clone())),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn joining_through_one_seed_meets_everyone_at_once() {
        let (a, b, c) = (id("a"), id("b"), id("c"));
        let mut sim = Sim::new();
        sim.start(&a, vec![]);
        sim.start(&b, vec![a.clone()]);
        sim.start(&c, vec![b.clone()]);
        // No time has passed: nodeUp fires on link-up and gossip rides the first heartbeat.
        assert_eq!(sim.knows(&a), BTreeSet::from([b.clone(), c.clone()]));
        assert_eq!(sim.knows(&c), BTreeSet::from([a.clone(), b.clone()]));
        assert!(sim
            .ups(&a)
            .iter()
            .any(|(t, n)| n == &c && *t == Duration::ZERO));
        sim.run(Duration::from_secs(2));
        assert!(
            sim.downs(&a).is_empty() && sim.downs(&c).is_empty(),
            "steady heartbeats keep everyone up"
        );
    }

    #[test]
    fn a_frozen_node_times_out_after_interval_times_threshold_and_returns() {
        let (a, b) = (id("a"), id("b"));
        let mut sim = Sim::new();
        sim.start(&a, vec![]);
        sim.start(&b, vec![a.clone()]);
        sim.run(Duration::from_millis(500));
        sim.freeze(&b);
        let frozen_at = sim.now;
        sim.run(Duration::from_millis(600));
        let d = sim.downs(&a);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].2, DownReason::HeartbeatTimeout);
        let after = d[0].0 - frozen_at;
        assert!(
            after > Duration::from_millis(200) && after <= Duration::from_millis(420),
            "detected after {after:?}"
        );
        // Thawed: it is redialled and comes up again.
        sim.frozen.remove(&b);
        sim.run(Duration::from_secs(2));
        assert_eq!(
            sim.ups(&a).iter().filter(|(_, n)| n == &b).count(),
            2,
            "nodeUp again"
        );
        assert!(sim.knows(&a).contains(&b));
    }

    #[test]
    fn late_heartbeats_within_the_threshold_are_not_a_failure() {
        let (a, b) = (id("a"), id("b"));
        let mut sim = Sim::new();
        sim.start(&a, vec![]);
        sim.start(&b, vec![a.clone()]);
        // b is frozen for 250 ms at a time (2.5 intervals) and then catches up.
        for _ in 0..5 {
            sim.freeze(&b);
            sim.run(Duration::from_millis(250));
            sim.thaw(&b);
            sim.run(Duration::from_millis(110));
        }
        assert!(sim.downs(&a).is_empty(), "{:?}", sim.downs(&a));
    }

    #[test]
    fn closed_connections_graceful_stops_and_refused_seeds() {
        let (a, b, c, x) = (id("a"), id("b"), id("c"), id("x"));
        let mut sim = Sim::new();
        sim.start(&a, vec![]);
        sim.start(&b, vec![a.clone()]);
        sim.start(&c, vec![a.clone()]);
        sim.kill(&b);
        assert_eq!(
            sim.downs(&a),
            vec![(Duration::ZERO, b.clone(), DownReason::ConnectionClosed)]
        );
        sim.stop(&c);
        assert_eq!(
            sim.downs(&a)[1],
            (Duration::ZERO, c.clone(), DownReason::GracefulShutdown)
        );
        // A seed that is not up yet is retried quietly with backoff until it answers: no
        // nodeDown (it never came up) and no member listed for it meanwhile.
        sim.start(&x, vec![id("y")]);
        sim.run(Duration::from_secs(3));
        assert!(sim.downs(&x).is_empty(), "{:?}", sim.downs(&x));
        assert_eq!(sim.nodes[&x].peers().count(), 0);
        sim.start(&id("y"), vec![]);
        sim.run(Duration::from_millis(500));
        assert!(
            sim.knows(&x).contains(&id("y")),
            "the seed is reached once it listens"
        );
        // b (killed) is redialled; c (stopped) is not.
        sim.start(&b, vec![]);
        sim.start(&c, vec![]);
        sim.run(Duration::from_secs(1));
        assert!(sim.knows(&a).contains(&b));
        assert!(
            !sim.knows(&a).contains(&c),
            "a node that left is not redialled"
        );
    }

    /// `name@localhost:port` for a node whose id says 127.0.0.1: another spelling of the
    /// same address, as a seed given by IP is for a node that advertises its hostname.
    fn alias(n: &NodeId) -> NodeId {
        NodeId::create(n.name(), "localhost", n.port() as u32).unwrap()
    }

    #[test]
    fn seeds_spelled_differently_from_the_ids_never_become_members_or_flap() {
        let nodes: Vec<NodeId> = ["a", "b", "c", "d", "e"].iter().map(|n| id(n)).collect();
        let seeds: Vec<NodeId> = nodes.iter().map(alias).collect();
        let mut sim = Sim::new();
        // Everyone is given every seed, itself included, all under the other spelling.
        for n in &nodes {
            sim.start(n, seeds.clone());
        }
        sim.run(Duration::from_secs(5));
        for n in &nodes {
            let others: BTreeSet<NodeId> = nodes.iter().filter(|m| *m != n).cloned().collect();
            let listed: BTreeSet<NodeId> = sim.nodes[n].peers().map(|(id, _)| id.clone()).collect();
            assert_eq!(
                listed, others,
                "{n} lists exactly the others, by their own ids"
            );
            assert_eq!(sim.knows(n), others);
            assert!(sim.downs(n).is_empty(), "{n}: {:?}", sim.downs(n));
            assert_eq!(
                sim.ups(n).len(),
                4,
                "{n}: one nodeUp per peer: {:?}",
                sim.ups(n)
            );
            assert!(!sim.nodes[n].known().iter().any(|k| k.host() == "localhost"));
        }

        // The seed node leaves and comes back with no seeds of its own: the others find it
        // again through its seed address.
        let a = nodes[0].clone();
        sim.stop(&a);
        sim.run(Duration::from_millis(100));
        sim.start(&a, vec![]);
        sim.run(Duration::from_secs(2));
        for n in &nodes[1..] {
            assert!(
                sim.knows(n).contains(&a),
                "{n} found the returning seed node"
            );
            assert!(!sim.nodes[n].peers().any(|(id, _)| id.host() == "localhost"));
        }
    }
}
