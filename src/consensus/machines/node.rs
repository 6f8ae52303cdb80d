//! The engine's side of the RaftNode API (@ruvector/raft's): a state machine that
//! only hands committed proposals on (the user's state machine runs in JS), and Raft's
//! messages as JSON in that package's shapes, so that a transport written in JS can
//! carry them and `handleRequestVote` / `handleAppendEntries` can take them back.
//!
//! The JSON has the seed's fields (`term`, `candidateId`, `lastLogIndex`,
//! `lastLogTerm`; `leaderId`, `prevLogIndex`, `prevLogTerm`, `entries`,
//! `leaderCommit`; `voteGranted`; `success`, `matchIndex`) plus what openraft needs that
//! the seed's Raft does not carry: the leader that wrote a log id (`...Leader`), whether
//! a vote is committed, and an entry's kind. An absent log id has index -1.

use crate::consensus::network::net::{Reply, Request};
use crate::consensus::state_machine::{Codec, Machine};
use crate::consensus::types::{raft_id, Blob, Command, NodeId, TypeConfig};
use bytes::{BufMut, Bytes, BytesMut};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest, VoteResponse};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, Vote};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io;

/// The state machine of a RaftNode group: it keeps nothing; each committed proposal
/// goes to the owner's event sink, and JS applies it.
pub struct NodeMachine;

/// A RaftNode proposal (the @ruvector/raft API): the user's command, applied by the
/// user's state machine in JS, and when the leader took it (ms since the epoch).
///
/// In the log: `timestamp u64` (little endian), then the command's JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeCommand {
    pub command: Value,
    pub timestamp: u64,
}

impl NodeCommand {
    /// The proposal an entry carries, if it carries one.
    pub fn of(e: &Entry<TypeConfig>) -> Option<NodeCommand> {
        match &e.payload {
            EntryPayload::Normal(Command::App(b)) => NodeCommand::decode(b).ok(),
            _ => None,
        }
    }

    fn entry(self) -> Command {
        Command::App(Blob(self.encode()))
    }
}

impl Codec for NodeCommand {
    fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(64).writer();
        b.get_mut().put_u64_le(self.timestamp);
        serde_json::to_writer(&mut b, &self.command).expect("a JSON value always encodes");
        b.into_inner().freeze()
    }

    fn decode(b: &Bytes) -> Result<NodeCommand, String> {
        let (t, json) = b
            .split_first_chunk::<8>()
            .ok_or("a RaftNode command cut short")?;
        Ok(NodeCommand {
            timestamp: u64::from_le_bytes(*t),
            command: serde_json::from_slice(json).map_err(|e| e.to_string())?,
        })
    }
}

/// The answer to a proposal: whether it was one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted(pub bool);

impl Codec for Accepted {
    fn encode(&self) -> Bytes {
        Bytes::from_static(if self.0 { &[1] } else { &[0] })
    }

    fn decode(b: &Bytes) -> Result<Accepted, String> {
        Ok(Accepted(b.first() == Some(&1)))
    }
}

impl Machine for NodeMachine {
    type State = ();
    type Extra = ();
    type Captured = ();
    type Command = NodeCommand;
    type Response = Accepted;

    fn apply(&self, _st: &mut (), _cmd: NodeCommand, _index: u64) -> Accepted {
        Accepted(true)
    }

    fn refuse(_why: &str) -> Accepted {
        Accepted(false)
    }

    fn encode(_: ()) {}
}

/// Node names by openraft id, for the group's members (ids are hashes of names).
#[derive(Debug, Clone, Default)]
pub struct Names(BTreeMap<u64, String>);

impl Names {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Names {
        Names(
            names
                .into_iter()
                .map(|n| (raft_id(n), n.to_string()))
                .collect(),
        )
    }

    /// The member's name of an openraft id.
    pub fn name_of(&self, id: u64) -> Option<String> {
        self.0.get(&id).cloned()
    }

    fn name(&self, id: u64) -> Value {
        match self.0.get(&id) {
            Some(n) => Value::String(n.clone()),
            // openraft's own ids (0 in the first membership entry) are not members.
            None => Value::Null,
        }
    }

    fn id(&self, v: Option<&Value>, what: &str) -> Result<u64, String> {
        match v {
            None | Some(Value::Null) => Ok(0),
            Some(Value::String(n)) if self.0.contains_key(&raft_id(n)) => Ok(raft_id(n)),
            Some(Value::String(n)) => Err(format!("{what}: {n:?} is not a member of this group")),
            Some(other) => Err(format!("{what} must be a node id (string), got {other}")),
        }
    }
}

fn bad(m: impl Into<String>) -> String {
    m.into()
}

fn int(o: &Map<String, Value>, k: &str) -> Result<i64, String> {
    o.get(k)
        .and_then(Value::as_i64)
        .ok_or_else(|| bad(format!("{k} must be an integer")))
}

fn uint(o: &Map<String, Value>, k: &str) -> Result<u64, String> {
    o.get(k)
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(format!("{k} must be a non-negative integer")))
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| bad(format!("{what} must be an object")))
}

/// `(index, term, leader)` of a log id: index -1 for none.
fn put_log_id(o: &mut Map<String, Value>, prefix: &str, l: Option<&LogId<u64>>, names: &Names) {
    let (i, t, who) = match l {
        Some(l) => (
            l.index as i64,
            l.leader_id.term,
            names.name(l.leader_id.node_id),
        ),
        None => (-1, 0, Value::Null),
    };
    o.insert(format!("{prefix}Index"), json!(i));
    o.insert(format!("{prefix}Term"), json!(t));
    o.insert(format!("{prefix}Leader"), who);
}

fn get_log_id(
    o: &Map<String, Value>,
    prefix: &str,
    names: &Names,
) -> Result<Option<LogId<u64>>, String> {
    let index = int(o, &format!("{prefix}Index"))?;
    if index < 0 {
        return Ok(None);
    }
    let term = uint(o, &format!("{prefix}Term"))?;
    let who = names.id(
        o.get(&format!("{prefix}Leader")),
        &format!("{prefix}Leader"),
    )?;
    Ok(Some(LogId::new(
        CommittedLeaderId::new(term, who),
        index as u64,
    )))
}

/// One log entry in the seed's `LogEntry` shape (`{ term, index, command, timestamp }`),
/// with `leader`, and `kind` for the engine's own entries.
pub fn entry_json(e: &Entry<TypeConfig>, names: &Names) -> Value {
    let mut o = Map::new();
    o.insert("term".into(), json!(e.log_id.leader_id.term));
    o.insert("index".into(), json!(e.log_id.index));
    o.insert("leader".into(), names.name(e.log_id.leader_id.node_id));
    match (&e.payload, NodeCommand::of(e)) {
        (_, Some(NodeCommand { command, timestamp })) => {
            o.insert("command".into(), command);
            o.insert("timestamp".into(), json!(timestamp));
        }
        (EntryPayload::Normal(other), None) => {
            o.insert("command".into(), Value::Null);
            o.insert("kind".into(), json!("engine"));
            o.insert(
                "engine".into(),
                serde_json::to_value(other).unwrap_or(Value::Null),
            );
        }
        (EntryPayload::Blank, None) => {
            o.insert("command".into(), Value::Null);
            o.insert("kind".into(), json!("blank"));
        }
        (EntryPayload::Membership(m), None) => {
            o.insert("command".into(), Value::Null);
            o.insert("kind".into(), json!("membership"));
            o.insert("membership".into(), membership_json(m, names));
        }
    }
    Value::Object(o)
}

pub fn entry_from_json(v: &Value, names: &Names) -> Result<Entry<TypeConfig>, String> {
    let o = obj(v, "a log entry")?;
    let index = uint(o, "index")?;
    let term = uint(o, "term")?;
    let who = names.id(o.get("leader"), "leader")?;
    let log_id = LogId::new(CommittedLeaderId::new(term, who), index);
    let payload = match o.get("kind").and_then(Value::as_str) {
        None | Some("normal") => EntryPayload::Normal(
            NodeCommand {
                command: o.get("command").cloned().unwrap_or(Value::Null),
                timestamp: o.get("timestamp").and_then(Value::as_u64).unwrap_or(0),
            }
            .entry(),
        ),
        Some("blank") => EntryPayload::Blank,
        Some("membership") => {
            let m = membership_from(o.get("membership").unwrap_or(&Value::Null))
                .map_err(|e| format!("entry {index}: membership: {e}"))?;
            EntryPayload::Membership(m)
        }
        Some("engine") => {
            let c: Command =
                serde_json::from_value(o.get("engine").cloned().unwrap_or(Value::Null))
                    .map_err(|e| format!("entry {index}: {e}"))?;
            EntryPayload::Normal(c)
        }
        Some(k) => return Err(format!("entry {index}: unknown kind {k:?}")),
    };
    Ok(Entry { log_id, payload })
}

/// A membership by names (`{ configs: [[name, ...], ...], nodes: [name, ...] }`): JS
/// numbers cannot hold the 64-bit ids, and the names give them back.
fn membership_json(m: &Membership<u64, NodeId>, names: &Names) -> Value {
    let configs: Vec<Vec<Value>> = m
        .get_joint_config()
        .iter()
        .map(|c| c.iter().map(|id| names.name(*id)).collect())
        .collect();
    let nodes: Vec<&str> = m.nodes().map(|(_, n)| n.name()).collect();
    json!({ "configs": configs, "nodes": nodes })
}

fn membership_from(v: &Value) -> Result<Membership<u64, NodeId>, String> {
    let name_list = |v: &Value| -> Result<Vec<String>, String> {
        v.as_array()
            .ok_or("a list of node ids")?
            .iter()
            .map(|n| {
                n.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "node ids must be strings".to_string())
            })
            .collect()
    };
    let o = obj(v, "membership")?;
    let configs = o
        .get("configs")
        .and_then(Value::as_array)
        .ok_or("configs must be an array")?
        .iter()
        .map(|c| Ok(name_list(c)?.iter().map(|n| raft_id(n)).collect()))
        .collect::<Result<Vec<std::collections::BTreeSet<u64>>, String>>()?;
    let nodes: BTreeMap<u64, NodeId> = name_list(o.get("nodes").unwrap_or(&Value::Null))?
        .into_iter()
        .map(|n| (raft_id(&n), NodeId::named(&n)))
        .collect();
    Ok(Membership::new(configs, nodes))
}

fn vote_fields(o: &mut Map<String, Value>, who: &str, v: &Vote<u64>, names: &Names) {
    o.insert("term".into(), json!(v.leader_id.term));
    o.insert(who.into(), names.name(v.leader_id.node_id));
    o.insert("committed".into(), json!(v.committed));
}

fn vote_from(o: &Map<String, Value>, who: &str, names: &Names) -> Result<Vote<u64>, String> {
    let term = uint(o, "term")?;
    let id = names.id(o.get(who), who)?;
    Ok(
        match o.get("committed").and_then(Value::as_bool).unwrap_or(false) {
            true => Vote::new_committed(term, id),
            false => Vote::new(term, id),
        },
    )
}

/// `RequestVoteRequest`: `{ term, candidateId, lastLogIndex, lastLogTerm, ... }`.
pub fn vote_request_json(r: &VoteRequest<u64>, names: &Names) -> Value {
    let mut o = Map::new();
    vote_fields(&mut o, "candidateId", &r.vote, names);
    put_log_id(&mut o, "lastLog", r.last_log_id.as_ref(), names);
    Value::Object(o)
}

pub fn vote_request_from(v: &Value, names: &Names) -> Result<VoteRequest<u64>, String> {
    let o = obj(v, "a RequestVote request")?;
    if !o.contains_key("candidateId") {
        return Err("a RequestVote request needs candidateId".into());
    }
    Ok(VoteRequest {
        vote: vote_from(o, "candidateId", names)?,
        last_log_id: get_log_id(o, "lastLog", names)?,
    })
}

/// `RequestVoteResponse`: `{ term, voteGranted, ... }`.
pub fn vote_response_json(r: &VoteResponse<u64>, names: &Names) -> Value {
    let mut o = Map::new();
    vote_fields(&mut o, "votedFor", &r.vote, names);
    o.insert("voteGranted".into(), json!(r.vote_granted));
    put_log_id(&mut o, "lastLog", r.last_log_id.as_ref(), names);
    Value::Object(o)
}

pub fn vote_response_from(v: &Value, names: &Names) -> Result<VoteResponse<u64>, String> {
    let o = obj(v, "a RequestVote response")?;
    Ok(VoteResponse {
        vote: vote_from(o, "votedFor", names)?,
        vote_granted: o
            .get("voteGranted")
            .and_then(Value::as_bool)
            .ok_or("voteGranted must be a boolean")?,
        last_log_id: get_log_id(o, "lastLog", names)?,
    })
}

/// `AppendEntriesRequest`: `{ term, leaderId, prevLogIndex, prevLogTerm, entries,
/// leaderCommit, ... }`.
pub fn append_request_json(r: &AppendEntriesRequest<TypeConfig>, names: &Names) -> Value {
    let mut o = Map::new();
    vote_fields(&mut o, "leaderId", &r.vote, names);
    put_log_id(&mut o, "prevLog", r.prev_log_id.as_ref(), names);
    o.insert(
        "entries".into(),
        Value::Array(r.entries.iter().map(|e| entry_json(e, names)).collect()),
    );
    put_log_id(&mut o, "leaderCommit", r.leader_commit.as_ref(), names);
    // The seed names the commit index `leaderCommit` itself.
    let commit = o.remove("leaderCommitIndex").unwrap_or(json!(-1));
    o.insert("leaderCommit".into(), commit);
    Value::Object(o)
}

pub fn append_request_from(
    v: &Value,
    names: &Names,
) -> Result<AppendEntriesRequest<TypeConfig>, String> {
    let o = obj(v, "an AppendEntries request")?;
    if !o.contains_key("leaderId") {
        return Err("an AppendEntries request needs leaderId".into());
    }
    let entries = o
        .get("entries")
        .and_then(Value::as_array)
        .ok_or("entries must be an array")?
        .iter()
        .map(|e| entry_from_json(e, names))
        .collect::<Result<Vec<_>, _>>()?;
    let prev = get_log_id(o, "prevLog", names)?;
    let mut c = o.clone();
    c.insert(
        "leaderCommitIndex".into(),
        o.get("leaderCommit").cloned().unwrap_or(json!(-1)),
    );
    Ok(AppendEntriesRequest {
        vote: vote_from(o, "leaderId", names)?,
        prev_log_id: prev,
        entries,
        leader_commit: get_log_id(&c, "leaderCommit", names)?,
    })
}

/// Whether an append's entries follow its `prevLogIndex` one by one (checked apart from
/// its shape: the RaftNode API answers `INVALID_LOG_INDEX` for this one).
pub fn entries_follow(r: &AppendEntriesRequest<TypeConfig>) -> Result<(), String> {
    for (next, e) in (r.prev_log_id.map_or(0, |l| l.index + 1)..).zip(&r.entries) {
        if e.log_id.index != next {
            return Err(format!(
                "entries must follow prevLogIndex one by one: expected index {next}, got {}",
                e.log_id.index
            ));
        }
    }
    Ok(())
}

/// Whether a log's indexes are consecutive.
pub fn log_follows(log: &[Entry<TypeConfig>]) -> Result<(), String> {
    for w in log.windows(2) {
        if w[1].log_id.index != w[0].log_id.index + 1 {
            return Err(format!(
                "log indexes must be consecutive: {} after {}",
                w[1].log_id.index, w[0].log_id.index
            ));
        }
    }
    Ok(())
}

/// `AppendEntriesResponse`: `{ term, success, matchIndex? }`, and `conflict` when the
/// follower's log does not hold `prevLog`.
pub fn append_response_json(r: &AppendEntriesResponse<u64>, req_term: u64, names: &Names) -> Value {
    let mut o = Map::new();
    match r {
        AppendEntriesResponse::Success => {
            o.insert("term".into(), json!(req_term));
            o.insert("success".into(), json!(true));
        }
        AppendEntriesResponse::PartialSuccess(l) => {
            o.insert("term".into(), json!(req_term));
            o.insert("success".into(), json!(true));
            put_log_id(&mut o, "match", l.as_ref(), names);
        }
        AppendEntriesResponse::Conflict => {
            o.insert("term".into(), json!(req_term));
            o.insert("success".into(), json!(false));
            o.insert("conflict".into(), json!(true));
        }
        AppendEntriesResponse::HigherVote(v) => {
            vote_fields(&mut o, "votedFor", v, names);
            o.insert("success".into(), json!(false));
        }
    }
    Value::Object(o)
}

pub fn append_response_from(
    v: &Value,
    names: &Names,
) -> Result<AppendEntriesResponse<u64>, String> {
    let o = obj(v, "an AppendEntries response")?;
    let success = o
        .get("success")
        .and_then(Value::as_bool)
        .ok_or("success must be a boolean")?;
    Ok(match (success, o.contains_key("matchIndex")) {
        (true, true) => AppendEntriesResponse::PartialSuccess(get_log_id(o, "match", names)?),
        (true, false) => AppendEntriesResponse::Success,
        (false, _) if o.get("conflict").and_then(Value::as_bool) == Some(true) => {
            AppendEntriesResponse::Conflict
        }
        (false, _) => AppendEntriesResponse::HigherVote(vote_from(o, "votedFor", names)?),
    })
}

/// What a JS transport is asked to carry: the method (`requestVote` / `appendEntries`)
/// and its request.
pub fn outgoing(req: &Request, names: &Names) -> io::Result<(&'static str, Value, u64)> {
    match req {
        Request::Vote(r) => Ok((
            "requestVote",
            vote_request_json(r, names),
            r.vote.leader_id.term,
        )),
        Request::Append(r) => Ok((
            "appendEntries",
            append_request_json(r, names),
            r.vote.leader_id.term,
        )),
        _ => Err(io::Error::other(
            "a RaftNode group sends only votes and appends (its log is never compacted)",
        )),
    }
}

/// The peer's answer (as the JS transport resolved it) as openraft's reply.
pub fn incoming(method: &str, v: &Value, names: &Names) -> io::Result<Reply> {
    let r = match method {
        "requestVote" => vote_response_from(v, names).map(|r| Reply::Vote(Ok(r))),
        _ => append_response_from(v, names).map(|r| Reply::Append(Ok(r))),
    };
    r.map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the transport's {method} answer: {e}"),
        )
    })
}

/// A node's vote and log, as `getState` gives them and `loadState` takes them.
pub type Persistent = (Option<Vote<u64>>, Vec<Entry<TypeConfig>>);

/// Persistent state in the seed's shape: `{ currentTerm, votedFor, log }` (plus
/// `voteCommitted`).
pub fn persistent_json(vote: Option<Vote<u64>>, log: &[Entry<TypeConfig>], names: &Names) -> Value {
    let v = vote.unwrap_or_default();
    json!({
        "currentTerm": v.leader_id.term,
        "votedFor": names.name(v.leader_id.node_id),
        "voteCommitted": v.committed,
        "log": log.iter().map(|e| entry_json(e, names)).collect::<Vec<_>>(),
    })
}

pub fn persistent_from(v: &Value, names: &Names) -> Result<Persistent, String> {
    let o = obj(v, "the state")?;
    let term = uint(o, "currentTerm")?;
    let who = names.id(o.get("votedFor"), "votedFor")?;
    let vote = match (
        term,
        o.get("voteCommitted")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    ) {
        (0, _) if who == 0 => None,
        (_, true) => Some(Vote::new_committed(term, who)),
        (_, false) => Some(Vote::new(term, who)),
    };
    let log = o
        .get("log")
        .and_then(Value::as_array)
        .ok_or("log must be an array of entries")?
        .iter()
        .map(|e| entry_from_json(e, names))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((vote, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::new(["a", "b", "c"])
    }

    fn lid(term: u64, who: &str, index: u64) -> LogId<u64> {
        LogId::new(CommittedLeaderId::new(term, raft_id(who)), index)
    }

    #[test]
    fn messages_round_trip_through_the_seed_shapes() {
        let n = names();
        let vr = VoteRequest {
            vote: Vote::new(3, raft_id("a")),
            last_log_id: Some(lid(2, "b", 7)),
        };
        let j = vote_request_json(&vr, &n);
        assert_eq!(
            (
                j["term"].as_u64(),
                j["candidateId"].as_str(),
                j["lastLogIndex"].as_i64(),
                j["lastLogTerm"].as_u64()
            ),
            (Some(3), Some("a"), Some(7), Some(2))
        );
        assert_eq!(vote_request_from(&j, &n).unwrap(), vr);
        let none = VoteRequest {
            vote: Vote::new(1, raft_id("c")),
            last_log_id: None,
        };
        assert_eq!(
            vote_request_from(&vote_request_json(&none, &n), &n).unwrap(),
            none
        );

        let entries = vec![
            Entry {
                log_id: lid(2, "b", 8),
                payload: EntryPayload::Normal(
                    NodeCommand {
                        command: json!({"type":"SET","key":"k"}),
                        timestamp: 5,
                    }
                    .entry(),
                ),
            },
            Entry {
                log_id: lid(3, "a", 9),
                payload: EntryPayload::Blank,
            },
        ];
        let ar = AppendEntriesRequest {
            vote: Vote::new_committed(3, raft_id("a")),
            prev_log_id: Some(lid(2, "b", 7)),
            entries,
            leader_commit: Some(lid(2, "b", 7)),
        };
        let j = append_request_json(&ar, &n);
        assert_eq!(
            (
                j["leaderId"].as_str(),
                j["prevLogIndex"].as_i64(),
                j["leaderCommit"].as_i64()
            ),
            (Some("a"), Some(7), Some(7))
        );
        assert_eq!(j["entries"][0]["command"]["key"], "k");
        let back = append_request_from(&j, &n).unwrap();
        assert_eq!(format!("{back:?}"), format!("{ar:?}"));

        for r in [
            AppendEntriesResponse::Success,
            AppendEntriesResponse::PartialSuccess(Some(lid(3, "a", 9))),
            AppendEntriesResponse::Conflict,
            AppendEntriesResponse::HigherVote(Vote::new(9, raft_id("c"))),
        ] {
            assert_eq!(
                append_response_from(&append_response_json(&r, 3, &n), &n).unwrap(),
                r
            );
        }
    }

    #[test]
    fn malformed_requests_are_refused_with_a_reason() {
        let n = names();
        for (v, want) in [
            (json!(1), "object"),
            (json!({"term": 1}), "candidateId"),
            (
                json!({"term": -1, "candidateId": "a", "lastLogIndex": -1}),
                "term",
            ),
            (
                json!({"term": 1, "candidateId": "zz", "lastLogIndex": -1}),
                "not a member",
            ),
            (
                json!({"term": 1, "candidateId": "a", "lastLogIndex": 3, "lastLogTerm": "x"}),
                "lastLogTerm",
            ),
        ] {
            let e = vote_request_from(&v, &n).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
        }
        let gap = json!({"term": 1, "leaderId": "a", "prevLogIndex": 2, "prevLogTerm": 1, "prevLogLeader": "a",
            "entries": [{"term": 1, "index": 4, "leader": "a", "command": 1}], "leaderCommit": -1});
        let gap = append_request_from(&gap, &n).unwrap();
        assert!(entries_follow(&gap).unwrap_err().contains("one by one"));
        assert!(append_request_from(
            &json!({"term": 1, "leaderId": "a", "prevLogIndex": -1, "entries": "x"}),
            &n
        )
        .is_err());
    }

    #[test]
    fn a_membership_travels_by_names() {
        let n = names();
        let nodes: BTreeMap<u64, NodeId> = ["a", "b", "c"]
            .iter()
            .map(|x| (raft_id(x), NodeId::named(x)))
            .collect();
        let m = Membership::new(vec![nodes.keys().copied().collect()], nodes);
        let e = Entry {
            log_id: lid(0, "a", 0),
            payload: EntryPayload::Membership(m),
        };
        let j = entry_json(&e, &n);
        assert_eq!(j["membership"]["configs"][0].as_array().unwrap().len(), 3);
        assert!(j["membership"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string));
        // Through JS numbers nothing is lost: there are none.
        let back = entry_from_json(&serde_json::from_str(&j.to_string()).unwrap(), &n).unwrap();
        assert_eq!(format!("{back:?}"), format!("{e:?}"));
    }

    #[test]
    fn persistent_state_round_trips() {
        let n = names();
        let log = vec![Entry {
            log_id: lid(1, "a", 1),
            payload: EntryPayload::Normal(
                NodeCommand {
                    command: json!("x"),
                    timestamp: 1,
                }
                .entry(),
            ),
        }];
        let j = persistent_json(Some(Vote::new(4, raft_id("b"))), &log, &n);
        assert_eq!(
            (j["currentTerm"].as_u64(), j["votedFor"].as_str()),
            (Some(4), Some("b"))
        );
        let (v, l) = persistent_from(&j, &n).unwrap();
        assert_eq!(v, Some(Vote::new(4, raft_id("b"))));
        assert_eq!(format!("{l:?}"), format!("{log:?}"));
        let (_, gap) = persistent_from(
            &json!({"currentTerm": 1, "votedFor": null, "log": [
            {"term":1,"index":1,"command":1}, {"term":1,"index":3,"command":1}]}),
            &n,
        )
        .unwrap();
        assert!(log_follows(&gap).unwrap_err().contains("consecutive"));
    }
}
