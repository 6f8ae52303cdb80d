//! The engine's own metrics: counters, histograms and labelled families of them, kept in
//! atomics on the paths they measure and read as a [`Snapshot`] of families when someone
//! scrapes.
//!
//! Why not a Prometheus client crate: the same values go to three renderers — the
//! Prometheus text of `/metrics`, the dashboard's `/metrics.json` and a user's prom-client
//! registry (`src/js/prom.js`) — so the engine hands JS structured families and JS renders
//! them; the Rust clients only encode text. What is kept per observation is a few relaxed
//! atomic adds, so a histogram on a per-batch path costs nothing measurable.
//!
//! Names, types, labels and meaning of every metric: the README's metrics table.

use parking_lot::RwLock;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds, in seconds, of every latency histogram: from half a millisecond (a
/// commit on loopback) to ten seconds (an fsync on a dying disk).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A monotonic count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Observations of a duration, counted into [`LATENCY_BUCKETS`].
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    /// The sum in nanoseconds (an integer, so it is one atomic add).
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        // Only the first bucket that holds it: the cumulative counts are made when read.
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&le| s <= le) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn sample(&self, labels: Labels) -> Sample {
        let mut cumulative = 0;
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(&le, n)| {
                cumulative += n.load(Relaxed);
                (le, cumulative)
            })
            .collect();
        Sample {
            labels,
            value: None,
            buckets: Some(buckets),
            count: Some(self.count()),
            sum: Some(self.sum_ns.load(Relaxed) as f64 / 1e9),
        }
    }
}

/// Label values, in the order of the family's label names.
type Key = Vec<String>;

/// One metric per combination of label values, made on first use. Values known in advance
/// (reasons, phases) are made at start with [`Family::with`], so they are exported at 0
/// before anything happened: a rate over them has data at once.
#[derive(Debug)]
pub struct Family<M> {
    labels: &'static [&'static str],
    members: RwLock<BTreeMap<Key, Arc<M>>>,
}

impl<M: Default> Family<M> {
    pub fn new(labels: &'static [&'static str]) -> Family<M> {
        Family {
            labels,
            members: RwLock::new(BTreeMap::new()),
        }
    }

    /// A family whose one label takes each of `values`, made now.
    pub fn with(label: &'static [&'static str], values: &[&str]) -> Family<M> {
        let f = Family::new(label);
        for v in values {
            f.get(&[v]);
        }
        f
    }

    /// The metric for these label values (as many as the family has labels).
    pub fn get(&self, values: &[&str]) -> Arc<M> {
        debug_assert_eq!(values.len(), self.labels.len());
        if let Some(m) = self.members.read().get(
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Key>()
                .as_slice(),
        ) {
            return m.clone();
        }
        let key: Key = values.iter().map(|v| v.to_string()).collect();
        self.members.write().entry(key).or_default().clone()
    }

    /// Drops the metrics of label values no longer in use (a peer that left).
    pub fn retain(&self, keep: impl Fn(&[String]) -> bool) {
        self.members.write().retain(|k, _| keep(k));
    }

    fn each(&self, mut f: impl FnMut(Labels, &M)) {
        for (k, m) in self.members.read().iter() {
            let labels = self
                .labels
                .iter()
                .zip(k)
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect();
            f(labels, m);
        }
    }
}

/// Label name → value, as a sample carries them.
pub type Labels = BTreeMap<String, String>;

/// One sample of a family: a value (counter, gauge) or a histogram's buckets.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// `(le, cumulative count)` per bucket, +Inf left out (it is `count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<(f64, u64)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family as scraped: its name without the `redux_cluster_` prefix.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FamilySnapshot {
    pub name: &'static str,
    pub help: &'static str,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// What a scrape reads: families in a stable order.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Snapshot(pub Vec<FamilySnapshot>);

impl Snapshot {
    fn push(&mut self, name: &'static str, help: &'static str, kind: Kind, samples: Vec<Sample>) {
        self.0.push(FamilySnapshot {
            name,
            help,
            kind,
            samples,
        });
    }

    /// A counter or gauge with no labels, or with `labels`.
    pub fn value(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Labels,
        v: f64,
    ) {
        self.push(name, help, kind, vec![Sample::value(labels, v)]);
    }

    /// Several samples of one counter or gauge family.
    pub fn values(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        samples: Vec<(Labels, f64)>,
    ) {
        let samples = samples
            .into_iter()
            .map(|(l, v)| Sample::value(l, v))
            .collect();
        self.push(name, help, kind, samples);
    }

    pub fn counter(&mut self, name: &'static str, help: &'static str, base: &Labels, c: &Counter) {
        self.value(name, help, Kind::Counter, base.clone(), c.get() as f64);
    }

    pub fn counters(
        &mut self,
        name: &'static str,
        help: &'static str,
        base: &Labels,
        f: &Family<Counter>,
    ) {
        let mut samples = Vec::new();
        f.each(|l, c| samples.push(Sample::value(merged(base, l), c.get() as f64)));
        self.push(name, help, Kind::Counter, samples);
    }

    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        base: &Labels,
        h: &Histogram,
    ) {
        self.push(name, help, Kind::Histogram, vec![h.sample(base.clone())]);
    }

    pub fn histograms(
        &mut self,
        name: &'static str,
        help: &'static str,
        base: &Labels,
        f: &Family<Histogram>,
    ) {
        let mut samples = Vec::new();
        f.each(|l, h| samples.push(h.sample(merged(base, l))));
        self.push(name, help, Kind::Histogram, samples);
    }

    pub fn extend(&mut self, other: Snapshot) {
        self.0.extend(other.0);
    }
}

impl Sample {
    fn value(labels: Labels, v: f64) -> Sample {
        Sample {
            labels,
            value: Some(v),
            buckets: None,
            count: None,
            sum: None,
        }
    }
}

fn merged(base: &Labels, mut l: Labels) -> Labels {
    for (k, v) in base {
        l.entry(k.clone()).or_insert_with(|| v.clone());
    }
    l
}

/// `[(name, value)]` as labels.
pub fn labels<const N: usize>(pairs: [(&str, &str); N]) -> Labels {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_the_sum_is_in_seconds() {
        let h = Histogram::default();
        for ms in [0.2, 0.7, 3.0, 3.0, 20_000.0] {
            h.observe(Duration::from_secs_f64(ms / 1000.0));
        }
        let s = h.sample(Labels::new());
        let b = s.buckets.unwrap();
        assert_eq!(b[0], (0.0005, 1));
        assert_eq!(b[1], (0.001, 2));
        assert_eq!(b[3], (0.005, 4));
        // 20 s is past the last bound: only +Inf (the count) holds it.
        assert_eq!(b.last().unwrap().1, 4);
        assert_eq!(s.count, Some(5));
        assert!((s.sum.unwrap() - 20.0069).abs() < 1e-9);
    }

    #[test]
    fn families_export_known_values_at_zero_and_merge_base_labels() {
        let f: Family<Counter> = Family::with(&["reason"], &["timeout", "full"]);
        f.get(&["full"]).add(3);
        let mut s = Snapshot::default();
        s.counters("x_total", "x", &labels([("node", "n1")]), &f);
        let got: Vec<_> = s.0[0]
            .samples
            .iter()
            .map(|x| {
                (
                    x.labels["reason"].clone(),
                    x.labels["node"].clone(),
                    x.value,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("full".into(), "n1".into(), Some(3.0)),
                ("timeout".into(), "n1".into(), Some(0.0))
            ]
        );
        f.retain(|k| k[0] != "full");
        assert_eq!(f.members.read().len(), 1);
    }
}
