//! Client flows: the client side of the NAT gateway's connections (client → NAT and back, or a
//! client's own interface records), one flow per connection, for dropped attempts and attribution.
//!
//! A flow is a client 5-tuple's records whose times chain together: two records belong to one flow
//! when the gap between them is at most the NAT's idle timeout (after that the gateway has dropped
//! the connection, so a later packet is a new one). Put another way, flows are the connected
//! components of the records' intervals [start, end + 350 s]: that does not depend on the order the
//! records come in, so every path — all records in memory, or streamed — finds the same flows.
//!
//! [`ClientTracker`] streams one interface's records: it keeps only the flows still open and hands
//! the others to the aggregates ([`ClientAgg`]) as time moves on, so its memory follows the
//! connections of the last minutes, not the records. It closes a flow once the latest start seen is
//! past the flow's last second + 350 s + a lateness allowance: twice the longest record seen (the
//! log's aggregation interval), at least 120 s, at most [`LATENESS_SECS`]. A record that could still
//! have joined a flow already closed marks the tracker [`disordered`](ClientTracker::disordered): the
//! allowance is a bet on the input's order, never on the answer.

use std::net::IpAddr;

use rustc_hash::FxHashMap as HashMap;

use crate::limits::IDLE_TIMEOUT_SECS;
use crate::net::{Destination, Protocol};

/// The most a record may come behind the latest start seen (flow logs aggregate over at most 600 s).
pub const LATENESS_SECS: u64 = 600;

/// The least lateness allowed for.
const MIN_LATENESS_SECS: u64 = 120;

/// A client flow's 5-tuple, from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct ClientKey {
    pub(super) client: IpAddr,
    pub(super) client_port: u16,
    /// The destination, when the record names it (pkt-dstaddr, or a client's own interface).
    pub(super) host: Option<IpAddr>,
    pub(super) host_port: u16,
    pub(super) proto: Protocol,
}

/// One client-side record: its times, bytes and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ClientRec {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) bytes: u64,
    /// The request direction (client → destination), else the answer.
    pub(super) request: bool,
}

/// One flow, as far as its records have been seen. Times are Unix seconds in 32 bits (until 2106;
/// records past that make the tracker refuse): the tracker holds many of these.
#[derive(Debug, Clone, Copy)]
struct Flow {
    first: u32,
    last: u32,
    /// The earliest start of its request-direction records (`u32::MAX` until one is seen).
    request_start: u32,
    answered: bool,
    bytes: u64,
}

/// Seconds past this do not fit a [`Flow`].
const LAST_SECOND: u64 = u32::MAX as u64 - 1;

impl Flow {
    fn of(r: &ClientRec) -> Flow {
        let (start, end) = (r.start.min(LAST_SECOND) as u32, r.end.min(LAST_SECOND) as u32);
        Flow {
            first: start,
            last: end,
            request_start: if r.request { start } else { u32::MAX },
            bytes: r.bytes,
            answered: !r.request,
        }
    }

    /// Whether the two chain together (their gap is at most the idle timeout).
    fn touches(&self, other: &Flow) -> bool {
        let idle = IDLE_TIMEOUT_SECS;
        u64::from(other.first) <= u64::from(self.last) + idle && u64::from(self.first) <= u64::from(other.last) + idle
    }

    fn absorb(&mut self, other: &Flow) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        self.request_start = self.request_start.min(other.request_start);
        self.bytes += other.bytes;
        self.answered |= other.answered;
    }
}

/// The open flows of one 5-tuple: almost always one, kept inline.
#[derive(Debug, Clone)]
struct KeyFlows {
    first: Flow,
    /// Rare: boxed so that the common entry stays small.
    #[expect(clippy::box_collection, reason = "8 bytes per open 5-tuple instead of 24; most never have a second flow")]
    more: Option<Box<Vec<Flow>>>,
}

impl KeyFlows {
    fn new(r: &ClientRec) -> KeyFlows {
        KeyFlows { first: Flow::of(r), more: None }
    }

    /// Adds a record: it joins every flow it chains with (merging them), or starts its own.
    fn add(&mut self, r: &ClientRec) {
        let mut joined = Flow::of(r);
        let mut all: Vec<Flow> = Vec::new();
        if self.more.is_none() {
            if self.first.touches(&joined) {
                self.first.absorb(&joined);
                return;
            }
            self.more = Some(Box::new(vec![joined]));
            return;
        }
        all.push(self.first);
        all.extend(self.more.take().into_iter().flat_map(|v| *v));
        // Merge until nothing more chains (a record can bridge two flows).
        loop {
            let before = all.len();
            all.retain(|f| {
                if f.touches(&joined) {
                    joined.absorb(f);
                    false
                } else {
                    true
                }
            });
            if all.len() == before {
                break;
            }
        }
        all.push(joined);
        self.first = all.swap_remove(0);
        self.more = (!all.is_empty()).then(|| Box::new(all));
    }

    fn flows(&self) -> impl Iterator<Item = &Flow> {
        std::iter::once(&self.first).chain(self.more.iter().flat_map(|v| v.iter()))
    }
}

/// (destination if named, port, protocol, minute of the flow's first request).
pub(super) type MinuteKey = (Option<IpAddr>, u16, Protocol, u64);

/// What the report needs of the client flows: per destination (when named), port, protocol and
/// minute, flows not answered and all flows; per named destination and client, flows and bytes.
/// Sums: mergeable and bounded by minutes, destinations and clients, not by records.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientAgg {
    /// In no order (a hash map: every flow closed lands here); sort before reading in order.
    pub(super) minutes: HashMap<MinuteKey, (u64, u64)>,
    pub(super) sources: HashMap<(Destination, IpAddr), (u64, u64)>,
    /// Some client leg named its destination.
    pub(super) any_host: bool,
}

impl ClientAgg {
    fn add(&mut self, k: &ClientKey, f: &Flow) {
        self.any_host |= k.host.is_some();
        // Flows only seen answering (their request was logged elsewhere) are not counted.
        if f.request_start == u32::MAX {
            return;
        }
        let e = self.minutes.entry((k.host, k.host_port, k.proto, u64::from(f.request_start) / 60)).or_default();
        e.1 += 1;
        if !f.answered {
            e.0 += 1;
        }
        if let Some(h) = k.host {
            let d = Destination { address: h, port: k.host_port, protocol: k.proto };
            let s = self.sources.entry((d, k.client)).or_default();
            s.0 += 1;
            s.1 += f.bytes;
        }
    }

    pub(super) fn merge(&mut self, other: ClientAgg) {
        for (k, (u, n)) in other.minutes {
            let e = self.minutes.entry(k).or_default();
            e.0 += u;
            e.1 += n;
        }
        for (k, (c, b)) in other.sources {
            let e = self.sources.entry(k).or_default();
            e.0 += c;
            e.1 += b;
        }
        self.any_host |= other.any_host;
    }

    /// The flows of records held in memory (any order).
    pub(super) fn of_records(mut recs: Vec<(ClientKey, ClientRec)>) -> ClientAgg {
        recs.sort_unstable_by_key(|(k, r)| (*k, r.start, r.end));
        let mut agg = ClientAgg::default();
        let mut i = 0;
        while i < recs.len() {
            let key = recs[i].0;
            let mut flows = KeyFlows::new(&recs[i].1);
            i += 1;
            while i < recs.len() && recs[i].0 == key {
                flows.add(&recs[i].1);
                i += 1;
            }
            flows.flows().for_each(|f| agg.add(&key, f));
        }
        agg
    }
}

/// A [`ClientKey`] with its addresses numbered: 16 bytes instead of 40, for the many open flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct OpenKey {
    client: u32,
    /// `u32::MAX`: not named.
    host: u32,
    client_port: u16,
    host_port: u16,
    proto: Protocol,
}

/// The streaming client flows; see the module docs.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientTracker {
    open: HashMap<OpenKey, KeyFlows>,
    /// The addresses seen (clients and named destinations: bounded by the hosts, not the records).
    addresses: Vec<IpAddr>,
    /// Per address: seen as a client with its destination named (2), not named (1).
    roles: Vec<u8>,
    numbers: HashMap<IpAddr, u32>,
    agg: ClientAgg,
    /// The latest start seen.
    latest: u64,
    /// The longest record seen (end − start).
    longest: u64,
    /// Flows that ended before this (+ 350 s) are closed: a record starting earlier comes too late.
    closed_before: u64,
    /// When to look for flows to close next.
    next_close: u64,
    disordered: bool,
}

/// How often (in seconds of the data) the tracker closes the flows time has passed.
const CLOSE_EVERY_SECS: u64 = 60;

impl ClientTracker {
    /// Adds a record; returns whether its client address is new to this tracker in its role (with
    /// its destination named or not).
    pub(super) fn push(&mut self, key: ClientKey, r: &ClientRec) -> bool {
        if r.start < self.closed_before || r.end > LAST_SECOND {
            // The streams will not be used: stop here (nothing below can overflow then).
            self.disordered = true;
            return false;
        }
        self.latest = self.latest.max(r.start);
        self.longest = self.longest.max(r.end.saturating_sub(r.start));
        let client = self.number(key.client);
        let role = if key.host.is_some() { 2 } else { 1 };
        let new_role = self.roles[client as usize] & role == 0;
        self.roles[client as usize] |= role;
        let key = OpenKey {
            client,
            host: key.host.map_or(u32::MAX, |h| self.number(h)),
            client_port: key.client_port,
            host_port: key.host_port,
            proto: key.proto,
        };
        match self.open.get_mut(&key) {
            Some(flows) => flows.add(r),
            None => {
                self.open.insert(key, KeyFlows::new(r));
            }
        }
        if self.latest >= self.next_close {
            let lateness = (2 * self.longest).clamp(MIN_LATENESS_SECS, LATENESS_SECS);
            self.close_before(self.latest.saturating_sub(lateness));
            self.next_close = self.latest.saturating_add(CLOSE_EVERY_SECS);
        }
        new_role
    }

    fn number(&mut self, address: IpAddr) -> u32 {
        *self.numbers.entry(address).or_insert_with(|| {
            self.addresses.push(address);
            self.roles.push(0);
            self.addresses.len() as u32 - 1
        })
    }

    /// Closes the flows no record starting at `horizon` or later can chain with.
    fn close_before(&mut self, horizon: u64) {
        self.closed_before = self.closed_before.max(horizon);
        let agg = &mut self.agg;
        let addresses = &self.addresses;
        // The key with its addresses, built only for flows that close (most open ones stay open).
        let client_key = |k: &OpenKey| ClientKey {
            client: addresses[k.client as usize],
            client_port: k.client_port,
            host: (k.host != u32::MAX).then(|| addresses[k.host as usize]),
            host_port: k.host_port,
            proto: k.proto,
        };
        self.open.retain(|k, flows| {
            let closed = |f: &Flow| u64::from(f.last) + IDLE_TIMEOUT_SECS < horizon;
            if flows.flows().all(closed) {
                let k = client_key(k);
                flows.flows().for_each(|f| agg.add(&k, f));
                return false;
            }
            if flows.more.is_some() && flows.flows().any(closed) {
                // Close the old flows of a 5-tuple that is in use again.
                let k = client_key(k);
                let mut keep: Vec<Flow> = Vec::new();
                for f in flows.flows() {
                    if closed(f) {
                        agg.add(&k, f);
                    } else {
                        keep.push(*f);
                    }
                }
                flows.first = keep.swap_remove(0);
                flows.more = (!keep.is_empty()).then(|| Box::new(keep));
            }
            true
        });
    }

    pub(super) fn disordered(&self) -> bool {
        self.disordered
    }

    /// Flows still open (for tests and memory accounting).
    #[cfg(test)]
    pub(super) fn open_flows(&self) -> usize {
        self.open.len()
    }

    /// Closes every flow and returns the aggregates.
    pub(super) fn finish(mut self) -> ClientAgg {
        self.close_before(u64::MAX);
        self.agg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> ClientKey {
        ClientKey {
            client: "10.0.1.5".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            client_port: port,
            host: None,
            host_port: 443,
            proto: Protocol::TCP,
        }
    }

    fn rec(start: u64, end: u64, request: bool) -> ClientRec {
        ClientRec { start, end, bytes: 100, request }
    }

    /// A deterministic mix of 5-tuples reused after short and long gaps, in time order.
    fn records(seed: u64, n: usize) -> Vec<(ClientKey, ClientRec)> {
        let mut s = seed;
        let mut rnd = move |m: u64| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) % m
        };
        let mut out: Vec<(ClientKey, ClientRec)> = (0..n)
            .map(|_| {
                let start = 1_000 + rnd(20_000);
                (key(30_000 + rnd(50) as u16), rec(start, start + rnd(60), rnd(3) > 0))
            })
            .collect();
        out.sort_by_key(|(_, r)| r.start);
        out
    }

    fn summary(a: &ClientAgg) -> Vec<(MinuteKey, (u64, u64))> {
        let mut v: Vec<(MinuteKey, (u64, u64))> = a.minutes.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn streamed_flows_equal_the_flows_in_memory() {
        for seed in 0..30 {
            let recs = records(seed, 200 + seed as usize * 100);
            let mut t = ClientTracker::default();
            recs.iter().for_each(|(k, r)| {
                t.push(*k, r);
            });
            assert!(!t.disordered());
            let want = ClientAgg::of_records(recs.iter().rev().copied().collect());
            assert_eq!(summary(&t.finish()), summary(&want), "seed {seed}");
        }
    }

    #[test]
    fn a_gap_longer_than_the_idle_timeout_starts_a_new_flow_and_a_bridge_joins_two() {
        let recs = vec![(key(1), rec(0, 10, true)), (key(1), rec(361, 370, true)), (key(1), rec(100, 200, false))];
        // 0–10 and 361–370 are 351 s apart: two flows; 100–200 bridges them into one, answered.
        let two = ClientAgg::of_records(recs[..2].to_vec());
        assert_eq!(two.minutes.values().map(|v| v.1).sum::<u64>(), 2);
        let one = ClientAgg::of_records(recs.clone());
        assert_eq!(summary(&one), vec![((None, 443, Protocol::TCP, 0), (0, 1))]);
    }

    #[test]
    fn the_tracker_keeps_only_recent_flows_and_flags_late_records() {
        let recs = records(3, 20_000);
        let mut t = ClientTracker::default();
        let mut most = 0;
        for (k, r) in &recs {
            t.push(*k, r);
            most = most.max(t.open_flows());
        }
        // 50 5-tuples in all; never more open than that, whatever the number of records.
        assert!(most <= 50, "{most}");
        t.push(key(1), &rec(1_000, 1_010, true));
        assert!(t.disordered());
    }
}
