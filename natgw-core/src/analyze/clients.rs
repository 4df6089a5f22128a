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
//! connections of the last minutes, not the records. A flow may close once the latest start seen is
//! past the flow's last second + 350 s + a lateness allowance ([`lateness`]: twice the longest record
//! seen, the log's aggregation interval, within 120–600 s; the NAT flows' streams allow the same).
//! (It closes at the next merge of a batch of records, a little later; see [`ClientTracker`].) A
//! record that starts before the latest start seen less the lateness, as of the last merge, could
//! have joined a flow already closed: it marks the tracker [`disordered`](ClientTracker::disordered).
//! The allowance is a bet on the input's order, never on the answer.

use std::net::IpAddr;

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap as HashMap;

use crate::estimate::stream::lateness;
use crate::limits::IDLE_TIMEOUT_SECS;
use crate::net::{Destination, Protocol};

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
    /// Logged on the NAT gateway's interface (else on the client's own).
    pub(super) nat_side: bool,
}

/// One flow, as far as its records have been seen: 20 bytes, since the tracker holds hundreds of
/// thousands. Times are Unix seconds in 32 bits (until 2106; records past that make the tracker
/// refuse).
#[derive(Debug, Clone, Copy, Default)]
struct Flow {
    first: u32,
    last: u32,
    /// The earliest start of its request-direction records (`u32::MAX` until one is seen).
    request_start: u32,
    /// Its bytes and its [`ANSWERED`] and [`NAT_SIDE`] flags as a `u64` in two halves: a `u64`
    /// field would align the flow to 8 bytes, 4 more per open flow or waiting record.
    tally: [u32; 2],
}

/// In a flow's tally: it saw an answer-direction record.
const ANSWERED: u64 = 1 << 63;
/// In a flow's tally: it has records logged on the NAT gateway's interface, and its bytes are theirs.
/// A connection logged on both interfaces (the NAT's with pkt-dstaddr, and the client's own) has
/// the same bytes in each: counting both would double them. (When the two logs cover different
/// times, a flow's windows logged by the client's interface alone are left out of its bytes.)
const NAT_SIDE: u64 = 1 << 62;
/// In a flow's tally: it has no records on the NAT gateway's interface, but the connection shows
/// there: a flow that does not name its destination (the NAT interface's client legs in a format
/// without pkt-dstaddr) of the same client, client port, destination port and protocol chains with
/// it (see [`match_connection`]). A client's own interface logs all its traffic, whichever way it
/// leaves the VPC (another NAT gateway, an internet gateway for an instance with a public address):
/// only its flows with one of these two flags went through this gateway.
const MATCHED: u64 = 1 << 61;
/// In a flow's tally: its bytes (they saturate there, at 2 EiB).
const BYTES: u64 = MATCHED - 1;

/// Seconds past this do not fit a [`Flow`].
const LAST_SECOND: u64 = u32::MAX as u64 - 1;

impl Flow {
    fn of(r: &ClientRec) -> Flow {
        let (start, end) = (r.start.min(LAST_SECOND) as u32, r.end.min(LAST_SECOND) as u32);
        let mut f =
            Flow { first: start, last: end, request_start: if r.request { start } else { u32::MAX }, tally: [0; 2] };
        f.set_tally(r.bytes.min(BYTES) | if r.request { 0 } else { ANSWERED } | if r.nat_side { NAT_SIDE } else { 0 });
        f
    }

    fn tally(&self) -> u64 {
        u64::from(self.tally[0]) | u64::from(self.tally[1]) << 32
    }

    fn set_tally(&mut self, t: u64) {
        self.tally = [t as u32, (t >> 32) as u32];
    }

    fn bytes(&self) -> u64 {
        self.tally() & BYTES
    }

    fn answered(&self) -> bool {
        self.tally() & ANSWERED != 0
    }

    /// Whether the two chain together (their gap is at most the idle timeout).
    fn touches(&self, other: &Flow) -> bool {
        let idle = IDLE_TIMEOUT_SECS;
        u64::from(other.first) <= u64::from(self.last) + idle && u64::from(self.first) <= u64::from(other.last) + idle
    }

    /// Joins `other`'s records to this flow's. Its bytes are those of its records on the NAT
    /// gateway's interface if it has any, else of all: in any order, the same.
    fn absorb(&mut self, other: &Flow) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        self.request_start = self.request_start.min(other.request_start);
        let (mine, theirs) = (self.tally() & NAT_SIDE, other.tally() & NAT_SIDE);
        let bytes = match () {
            () if mine == theirs => (self.bytes() + other.bytes()).min(BYTES),
            () if mine != 0 => self.bytes(),
            () => other.bytes(),
        };
        self.set_tally(bytes | (self.tally() | other.tally()) & (ANSWERED | NAT_SIDE | MATCHED));
    }

    /// Whether the connection went through the NAT gateway: logged on its interface, or matched with
    /// a flow that was ([`MATCHED`]).
    fn through_nat(&self) -> bool {
        self.tally() & (NAT_SIDE | MATCHED) != 0
    }

    fn set_matched(&mut self) {
        self.set_tally(self.tally() | MATCHED);
    }
}

/// Marks the flows of one connection (client, client port, destination port, protocol) that went
/// through the NAT gateway as seen on the clients' own interfaces: each flow that names its
/// destination, not logged on the NAT interface, and chains with one that does not name it (those
/// are the NAT interface's). `unnamed` tells those apart. Flows that name another destination do
/// not match (pkt-dstaddr names the destination on the NAT interface, and two connections from one
/// client port to two destinations are two); nor do flows `same` tells apart.
fn match_connection<T>(group: &mut [(T, Flow)], unnamed: impl Fn(&T) -> bool, same: impl Fn(&T, &T) -> bool) {
    if !group.iter().any(|(k, _)| unnamed(k)) {
        return;
    }
    for a in 0..group.len() {
        let (k, f) = &group[a];
        if unnamed(k) || f.through_nat() {
            continue;
        }
        if group.iter().any(|(u, g)| unnamed(u) && same(u, k) && g.touches(f)) {
            group[a].1.set_matched();
        }
    }
}

/// Whether a flow whose last second is `last` is closed for records starting at `horizon` or later
/// (they come more than the idle timeout after it).
fn ended_before(last: u32, horizon: u64) -> bool {
    u64::from(last) + IDLE_TIMEOUT_SECS < horizon
}

/// Adds `joined` to `all`, the open flows of one 5-tuple: it absorbs every flow it chains with (a
/// record can bridge two), and takes their place.
fn chain(all: &mut Vec<Flow>, mut joined: Flow) {
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
    /// Some client leg that went through the NAT gateway named its destination.
    pub(super) any_host: bool,
    /// Flows (with a request) logged only on other interfaces than the NAT gateway's whose
    /// connection does not show on its: they went another way (clients' connections, but also other
    /// gateways' egress and load balancers' replies), or its records do not cover their time. Left
    /// out.
    pub(super) elsewhere: u64,
}

impl ClientAgg {
    fn add(&mut self, k: &ClientKey, f: &Flow) {
        if !f.through_nat() {
            self.elsewhere += u64::from(f.request_start != u32::MAX);
            return;
        }
        self.any_host |= k.host.is_some();
        // Flows only seen answering (their request was logged elsewhere) are not counted.
        if f.request_start == u32::MAX {
            return;
        }
        let e = self.minutes.entry((k.host, k.host_port, k.proto, u64::from(f.request_start) / 60)).or_default();
        e.1 += 1;
        if !f.answered() {
            e.0 += 1;
        }
        if let Some(h) = k.host {
            let d = Destination { address: h, port: k.host_port, protocol: k.proto };
            let s = self.sources.entry((d, k.client)).or_default();
            s.0 += 1;
            s.1 += f.bytes();
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
        self.elsewhere += other.elsewhere;
    }

    /// The flows of records held in memory (any order).
    pub(super) fn of_records(mut recs: Vec<(ClientKey, ClientRec)>) -> ClientAgg {
        // A connection's keys next to each other: by client, ports and protocol, then destination.
        let conn = |k: &ClientKey| (k.client, k.client_port, k.host_port, k.proto);
        recs.sort_unstable_by_key(|(k, r)| (conn(k), k.host, r.start, r.end));
        let mut agg = ClientAgg::default();
        let mut group: Vec<(ClientKey, Flow)> = Vec::new();
        let mut i = 0;
        while i < recs.len() {
            let c = conn(&recs[i].0);
            group.clear();
            while i < recs.len() && conn(&recs[i].0) == c {
                let key = recs[i].0;
                let mut flows = vec![Flow::of(&recs[i].1)];
                i += 1;
                while i < recs.len() && recs[i].0 == key {
                    chain(&mut flows, Flow::of(&recs[i].1));
                    i += 1;
                }
                group.extend(flows.into_iter().map(|f| (key, f)));
            }
            match_connection(&mut group, |k| k.host.is_none(), |_, _| true);
            group.iter().for_each(|(k, f)| agg.add(k, f));
        }
        agg
    }
}

/// A [`ClientKey`] with its addresses numbered: 12 bytes instead of 40, for the many open flows. In
/// the order it keeps ([`rank`](OpenKey::rank)) a connection's keys (client, ports; one per
/// destination named, and one not named) come together ([`conn`](OpenKey::conn)), and their
/// destinations last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct OpenKey {
    /// The client's number times an odd constant (spreading it over the high bits), XOR a hash of
    /// the protocol and ports: one-to-one ([`OpenKey::client`] undoes it), and its high bits, a
    /// batch's sort buckets, depend on them all.
    spread: u32,
    /// The client port in the high 16 bits, the destination port in the low 16.
    ports: u32,
    /// The protocol in the high 8 bits, the destination's number ([`NO_HOST`]: not named) in the low
    /// 24.
    dest: u32,
}

/// An [`OpenKey`]'s destination number when the record does not name one.
const NO_HOST: u32 = (1 << 24) - 1;

/// The addresses a tracker numbers, at most (a destination's number takes 24 bits of an open key):
/// past that it refuses, and the records are analysed in memory.
const MAX_ADDRESSES: usize = NO_HOST as usize;

impl OpenKey {
    /// The key of client `client` and of `target`: the destination's number in the high 24 bits,
    /// the protocol in the low 8.
    fn new(client: u32, target: u32, client_port: u16, host_port: u16) -> OpenKey {
        let (proto, ports) = (target & 0xFF, u32::from(client_port) << 16 | u32::from(host_port));
        OpenKey {
            spread: client.wrapping_mul(SPREAD) ^ OpenKey::hash(proto, ports),
            ports,
            dest: proto << 24 | target >> 8,
        }
    }

    /// A hash of the protocol and ports, well mixed in its high bits (Fibonacci hashing).
    fn hash(proto: u32, ports: u32) -> u32 {
        ((u64::from(proto) << 32 | u64::from(ports)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
    }

    /// The client's number, from the spread.
    fn client(&self) -> u32 {
        (self.spread ^ OpenKey::hash(u32::from(self.proto()), self.ports)).wrapping_mul(UNSPREAD)
    }

    /// The destination's number in the high 24 bits, the protocol in the low 8 (as given to
    /// [`new`](OpenKey::new)).
    #[cfg(test)]
    fn target(&self) -> u32 {
        self.host() << 8 | u32::from(self.proto())
    }

    /// The destination's number ([`NO_HOST`]: not named).
    fn host(&self) -> u32 {
        self.dest & NO_HOST
    }

    fn proto(&self) -> u8 {
        (self.dest >> 24) as u8
    }

    fn client_port(&self) -> u16 {
        (self.ports >> 16) as u16
    }

    fn host_port(&self) -> u16 {
        self.ports as u16
    }

    /// The spread and the ports: equal for a connection's keys (and, rarely, for another client's
    /// of another protocol: [`same_client`](OpenKey::same_client) tells).
    fn conn(&self) -> u64 {
        u64::from(self.spread) << 32 | u64::from(self.ports)
    }

    /// Of two keys with the same [`conn`](OpenKey::conn): the same client and protocol.
    fn same_client(&self, other: &OpenKey) -> bool {
        self.proto() == other.proto()
    }

    /// The key as one number, the order the tracker keeps its flows in: equal keys, equal ranks.
    fn rank(&self) -> u128 {
        u128::from(self.conn()) << 32 | u128::from(self.dest)
    }

    /// The key does not name its destination.
    fn unnamed(&self) -> bool {
        self.host() == NO_HOST
    }

    /// The key's bucket in a batch's sort: the high bits of its rank.
    fn bucket(&self) -> usize {
        (self.spread >> (32 - BUCKET_BITS)) as usize
    }
}

/// The client's factor in [`OpenKey::spread`] (a prime near 2^32 / the golden ratio), and its
/// inverse modulo 2^32 (a test checks that the key gives its client back).
const SPREAD: u32 = 0x9E37_79B1;
const UNSPREAD: u32 = 0x0E8B_2F51;

/// A 5-tuple and one of its flows (or a record not merged yet, as a flow of its own): 32 bytes.
type Keyed = (OpenKey, Flow);

/// The streaming client flows; see the module docs.
///
/// Nearly every record on a NAT gateway's interface is a new 5-tuple, and flows stay open for minutes
/// of data: hundreds of thousands at a time, more than the caches hold, so looking each record's
/// 5-tuple up in a table of them misses the cache. Instead the tracker works in batches, as a
/// log-structured store does: records wait in a batch; a full batch is sorted by 5-tuple and merged
/// in one pass with the open flows, kept sorted the same way, and that pass also closes the flows
/// time has passed. The merge reads and writes in order; only the batch's counting sort scatters
/// its records, over 8,192 buckets.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientTracker {
    /// Records not merged yet, in the order they came.
    batch: Vec<Keyed>,
    /// The batch, sorted for a merge; kept for the next, whose sort overwrites it ([`sort_batch`]).
    sorted: Vec<Keyed>,
    /// The open flows, by [`OpenKey::rank`] (a 5-tuple's flows next to each other, in no order).
    open: Vec<Keyed>,
    /// One connection's flows while a merge chains and matches them.
    group: Vec<Keyed>,
    /// One 5-tuple's flows while a merge chains them.
    chained: Vec<Flow>,
    /// Tests set a small floor, to make many merges of few records.
    batch_floor: Option<usize>,
    /// Tests set fewer addresses than [`MAX_ADDRESSES`].
    max_addresses: Option<usize>,
    /// The addresses seen (clients and named destinations: bounded by the hosts, not the records).
    addresses: Vec<IpAddr>,
    /// Per address: this tracker takes its flows as a client ([`own`](ClientTracker::own)).
    owned: Vec<bool>,
    numbers: HashMap<IpAddr, u32>,
    /// The IPv4 addresses numbered lately, by a hash of the address ([`RECENT_BITS`]): (address,
    /// number + 1; 0 when the slot is empty). Allocated on first use.
    recent: Vec<(u32, u32)>,
    agg: ClientAgg,
    /// The latest start seen.
    latest: u64,
    /// The longest record seen (end − start).
    longest: u64,
    /// Flows that ended before this (+ 350 s) are closed: a record starting earlier comes too late.
    closed_before: u64,
    /// When to merge next, if the batch is not full before.
    next_merge: u64,
    disordered: bool,
    /// Merges done (for tests).
    #[cfg(test)]
    merges: usize,
}

/// How often (in seconds of the data) the tracker merges its batch, full or not, and so closes the
/// flows time has passed: a quiet tracker's flows close as time moves on too. Busy data fills a
/// batch sooner. Measured on the benchmark's client records (5.4 M pushed into one tracker, about
/// 56 ns each now, against 110–130 for the hash tables this replaced; 65 when these were measured):
/// merging every 60 s took about 10 % more time than every 300 s, for flows that close a few
/// minutes later.
const MERGE_EVERY_SECS: u64 = 300;

/// Records a batch takes before it is merged, at least: 8 Ki of 32 bytes.
const BATCH: usize = 8 << 10;

/// A batch also takes at least this share of the open flows' number: a merge passes over all of
/// them, so each record moves about two of them. Measured as above: a quarter took about 5 % more
/// time; the whole number was no faster, with more memory.
const BATCH_SHARE: usize = 2;

/// [`ClientTracker::number`] remembers 2^this IPv4 addresses in a direct-mapped table before it looks in
/// the hash map of [`IpAddr`]s. Each record numbers its client: measured with callgrind on 2 M lines
/// of the benchmark's file, a look-up in the map took about 60 instructions, a hit here about 10
/// (a NAT gateway's clients are few, or a few at a time).
const RECENT_BITS: u32 = 8;

/// An IPv4 address's slot in [`ClientTracker::recent`].
fn recent_slot(a: u32) -> usize {
    (a.wrapping_mul(SPREAD) >> (32 - RECENT_BITS)) as usize
}

/// A batch is sorted in 2^this buckets of [`OpenKey::bucket`] first (one pass), then each bucket
/// on its own (about ten records, in the L1 cache). Measured as above: 8 bits took 20–40 % more
/// time than 12, 12 bits 5 % more than 13 (with 32-bit counts, 32 KiB), 14 bits no less.
const BUCKET_BITS: u32 = 13;

/// Sorts `batch` by [`OpenKey::rank`] into `sorted`, emptying `batch`: a counting sort by bucket,
/// then each bucket.
fn sort_batch(batch: &mut Vec<Keyed>, sorted: &mut Vec<Keyed>) {
    if u32::try_from(batch.len()).is_err() {
        // Past what the counts hold (a batch of 128 GiB): one sort.
        sorted.clear();
        sorted.append(batch);
        sorted.sort_unstable_by_key(|(k, _)| k.rank());
        return;
    }
    // Each bucket's end, then (once its records are in) its start.
    let mut bounds = [0u32; 1 << BUCKET_BITS];
    batch.iter().for_each(|(k, _)| bounds[k.bucket()] += 1);
    let mut sum = 0;
    for b in &mut bounds {
        sum += *b;
        *b = sum;
    }
    // Every place is written below, so what the last batch left in it need not be cleared: only
    // places a larger batch adds are filled first (filling them all was 1 % of the benchmark's
    // instructions, and a pass over megabytes).
    sorted.resize(batch.len(), Keyed::default());
    for e in batch.drain(..) {
        let end = &mut bounds[e.0.bucket()];
        *end -= 1;
        sorted[*end as usize] = e;
    }
    for (b, start) in bounds.iter().enumerate() {
        let end = bounds.get(b + 1).map_or(sorted.len(), |e| *e as usize);
        sorted[*start as usize..end].sort_unstable_by_key(|(k, _)| k.rank());
    }
}

impl ClientTracker {
    /// Numbers `key`'s client address, and says whether this tracker takes its flows
    /// ([`own`](ClientTracker::own)).
    pub(super) fn client(&mut self, key: &ClientKey) -> (u32, bool) {
        let client = self.number(key.client);
        (client, self.owned[client as usize])
    }

    /// Takes the flows of client `client` (numbered by [`client`](ClientTracker::client)).
    pub(super) fn own(&mut self, client: u32) {
        self.owned[client as usize] = true;
    }

    /// Adds a record of client `client` (numbered by [`client`](ClientTracker::client)).
    pub(super) fn push(&mut self, client: u32, key: ClientKey, r: &ClientRec) {
        if r.start < self.closed_before || r.end > LAST_SECOND {
            // The streams will not be used: stop here (nothing below can overflow then).
            self.disordered = true;
            return;
        }
        self.latest = self.latest.max(r.start);
        self.longest = self.longest.max(r.end.saturating_sub(r.start));
        let target = key.host.map_or(NO_HOST, |h| self.number(h)) << 8 | u32::from(key.proto.0);
        let key = OpenKey::new(client, target, key.client_port, key.host_port);
        let flow = Flow::of(r);
        match self.batch.last_mut() {
            // A connection's records often come one after the other (on a NAT gateway's interface,
            // its request and its answer): joined here, as the merge would join them, they take one
            // place in the batch and its sort, and half as many merges pass over the open flows.
            Some((k, f)) if *k == key && f.touches(&flow) => f.absorb(&flow),
            _ => self.batch.push((key, flow)),
        }
        if self.batch.len() >= self.batch_limit() || self.latest >= self.next_merge {
            self.merge(self.latest.saturating_sub(lateness(self.longest)));
            self.next_merge = self.latest.saturating_add(MERGE_EVERY_SECS);
        }
    }

    /// Adds a record of any client (tests).
    #[cfg(test)]
    fn add(&mut self, key: ClientKey, r: &ClientRec) {
        let (client, _) = self.client(&key);
        self.push(client, key, r);
    }

    /// The address's number; past [`MAX_ADDRESSES`] the tracker refuses (and says 0).
    #[inline]
    fn number(&mut self, address: IpAddr) -> u32 {
        if let IpAddr::V4(a) = address
            && let Some(&(seen, n)) = self.recent.get(recent_slot(u32::from(a)))
            && seen == u32::from(a)
            && n != 0
        {
            return n - 1;
        }
        self.number_in_map(address)
    }

    /// [`number`](ClientTracker::number) from the map (out of line: most look-ups do not get here).
    #[inline(never)]
    fn number_in_map(&mut self, address: IpAddr) -> u32 {
        let full = self.addresses.len() >= self.max_addresses.unwrap_or(MAX_ADDRESSES);
        let n = match self.numbers.entry(address) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(_) if full => {
                // Not remembered: each record of an address refused says so.
                self.disordered = true;
                return 0;
            }
            Entry::Vacant(e) => {
                self.addresses.push(address);
                self.owned.push(false);
                *e.insert(self.addresses.len() as u32 - 1)
            }
        };
        if let IpAddr::V4(a) = address {
            if self.recent.is_empty() {
                self.recent = vec![(0, 0); 1 << RECENT_BITS];
            }
            self.recent[recent_slot(u32::from(a))] = (u32::from(a), n + 1);
        }
        n
    }

    /// The records a batch takes before it is merged.
    fn batch_limit(&self) -> usize {
        self.batch_floor.unwrap_or(BATCH).max(self.open.len() / BATCH_SHARE)
    }

    /// Merges the batch into the open flows, and closes the flows no record starting at `horizon`
    /// or later can chain with.
    ///
    /// The merge runs from the back, in place: the open flows make room for the batch at their end,
    /// and each 5-tuple, the greatest first, takes the last free places. A 5-tuple's flows after
    /// the merge are at most its flows and records before it, so a place is free before it is
    /// taken.
    fn merge(&mut self, horizon: u64) {
        #[cfg(test)]
        {
            self.merges += 1;
        }
        self.closed_before = self.closed_before.max(horizon);
        let horizon = self.closed_before;
        let ClientTracker { batch, sorted, open, group, chained, agg, addresses, .. } = self;
        sort_batch(batch, sorted);
        let batch = &*sorted;
        let (mut i, mut j) = (open.len(), batch.len());
        open.resize(i + j, Keyed::default());
        let mut free = open.len();
        // A flow after the merge: closed, or kept in the last free place.
        let mut settle = |open: &mut Vec<Keyed>, free: &mut usize, key: OpenKey, f: Flow| {
            if ended_before(f.last, horizon) {
                agg.add(&client_key(addresses, &key), &f);
            } else {
                *free -= 1;
                open[*free] = (key, f);
            }
        };
        loop {
            // The common case, in short: connections greater than the batch's greatest, so with no
            // record in it (their flows settle one by one).
            let top = j.checked_sub(1).map(|b| batch[b].0.conn());
            while i > 0 && top.is_none_or(|t| open[i - 1].0.conn() > t) {
                let (key, f) = open[i - 1];
                i -= 1;
                settle(open, &mut free, key, f);
            }
            // Then the batch's greatest connection: each 5-tuple's open flows and records chain
            // together (greatest first, as they settle), and the flows are matched.
            let Some(conn) = top else { break };
            group.clear();
            loop {
                let of = |k: OpenKey| (k.conn() == conn).then_some(k);
                let key =
                    match (i.checked_sub(1).and_then(|i| of(open[i].0)), j.checked_sub(1).and_then(|j| of(batch[j].0)))
                    {
                        (None, None) => break,
                        (Some(a), Some(b)) => {
                            if a.dest >= b.dest {
                                a
                            } else {
                                b
                            }
                        }
                        (Some(k), None) | (None, Some(k)) => k,
                    };
                chained.clear();
                while i > 0 && open[i - 1].0 == key {
                    chained.push(open[i - 1].1);
                    i -= 1;
                }
                while j > 0 && batch[j - 1].0 == key {
                    chain(chained, batch[j - 1].1);
                    j -= 1;
                }
                let more = i.checked_sub(1).is_some_and(|i| open[i].0.conn() == conn)
                    || j.checked_sub(1).is_some_and(|j| batch[j].0.conn() == conn);
                if group.is_empty() && !more {
                    // The common case: the connection's only 5-tuple, nothing to match.
                    chained.drain(..).for_each(|f| settle(open, &mut free, key, f));
                    break;
                }
                group.extend(chained.drain(..).map(|f| (key, f)));
            }
            match_connection(group, OpenKey::unnamed, OpenKey::same_client);
            group.drain(..).for_each(|(key, f)| settle(open, &mut free, key, f));
        }
        open.drain(..free);
    }

    pub(super) fn disordered(&self) -> bool {
        self.disordered
    }

    /// A tracker whose batches are merged at `records` records already.
    #[cfg(test)]
    fn with_batch_floor(records: usize) -> ClientTracker {
        ClientTracker { batch_floor: Some(records), ..ClientTracker::default() }
    }

    /// Flows still open and records not merged yet (for tests and memory accounting).
    #[cfg(test)]
    pub(super) fn open_flows(&self) -> usize {
        self.open.len() + self.batch.len()
    }

    /// Closes every flow and returns the aggregates.
    pub(super) fn finish(mut self) -> ClientAgg {
        self.merge(u64::MAX);
        debug_assert!(self.open.is_empty(), "open flows left behind");
        self.agg
    }
}

/// The key with its addresses: built only for flows that close.
fn client_key(addresses: &[IpAddr], k: &OpenKey) -> ClientKey {
    ClientKey {
        client: addresses[k.client() as usize],
        client_port: k.client_port(),
        host: (!k.unnamed()).then(|| addresses[k.host() as usize]),
        host_port: k.host_port(),
        proto: Protocol(k.proto()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rng;

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
        ClientRec { start, end, bytes: 100, request, nat_side: true }
    }

    /// A deterministic mix of 5-tuples reused after short and long gaps, in time order.
    fn records(seed: u64, n: usize) -> Vec<(ClientKey, ClientRec)> {
        let mut rnd = rng(seed);
        let mut out: Vec<(ClientKey, ClientRec)> = (0..n)
            .map(|_| {
                let start = 1_000 + rnd(20_000);
                (key(30_000 + rnd(50) as u16), rec(start, start + rnd(60), rnd(3) > 0))
            })
            .collect();
        out.sort_by_key(|(_, r)| r.start);
        out
    }

    fn summary(a: &ClientAgg) -> Minutes {
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
                t.add(*k, r);
            });
            assert!(!t.disordered());
            let want = ClientAgg::of_records(recs.iter().rev().copied().collect());
            assert_eq!(summary(&t.finish()), summary(&want), "seed {seed}");
        }
    }

    /// Many 5-tuples (clients, ports, destinations named or not), each seen a few times: at once
    /// (request and answer), a minute or so later (a long connection's next record), or after more
    /// than the idle timeout (a reused 5-tuple); they come in time order give or take `jitter`
    /// seconds, as flow logs do.
    fn busy_records(seed: u64, keys: u64, jitter: u64) -> Vec<(ClientKey, ClientRec)> {
        let mut rnd = rng(seed);
        let mut out = Vec::new();
        for i in 0..keys {
            let k = ClientKey {
                client: IpAddr::from([10, 0, 1, (i % 7) as u8]),
                client_port: 1024 + (i / 7) as u16,
                host: (i % 3 == 0).then(|| IpAddr::from([198, 51, 100, (i % 5) as u8])),
                host_port: [443, 80, 53][(i % 3) as usize],
                proto: if i % 3 == 2 { Protocol::UDP } else { Protocol::TCP },
            };
            let mut start = 1_000 + i * 20_000 / keys + rnd(200);
            for _ in 0..1 + rnd(4) {
                let end = start + rnd(60);
                let arrival = start + rnd(jitter + 1);
                out.push((
                    arrival,
                    k,
                    ClientRec { start, end, bytes: 40 + rnd(1_000), request: rnd(3) > 0, nat_side: rnd(4) > 0 },
                ));
                start = end + [0, 5, 60, 300, 349, 351, 900][rnd(7) as usize];
            }
            // Half the connections that name their destination also show on the NAT interface
            // without naming it, at times that chain with theirs or not.
            if k.host.is_some() && rnd(2) == 0 {
                let start = 1_000 + i * 20_000 / keys + [0, 200, 400, 1_000][rnd(4) as usize];
                let twin = ClientKey { host: None, ..k };
                let r = ClientRec { start, end: start + rnd(60), bytes: 40, request: true, nat_side: true };
                out.push((start + rnd(jitter + 1), twin, r));
            }
        }
        out.sort_by_key(|(arrival, _, _)| *arrival);
        out.into_iter().map(|(_, k, r)| (k, r)).collect()
    }

    type Minutes = Vec<(MinuteKey, (u64, u64))>;
    type Sources = Vec<((Destination, IpAddr), (u64, u64))>;

    fn summary_all(a: &ClientAgg) -> (Minutes, Sources, u64, bool) {
        let mut s: Vec<_> = a.sources.iter().map(|(k, v)| (*k, *v)).collect();
        s.sort_unstable();
        (summary(a), s, a.elsewhere, a.any_host)
    }

    #[test]
    fn flows_merged_in_batches_equal_the_flows_in_memory() {
        for (seed, floor, jitter) in [(1, 8, 0), (2, 8, 60), (3, 64, 100), (4, 1, 30), (5, 100, 60)] {
            let recs = busy_records(seed, 3_000, jitter);
            let mut t = ClientTracker::with_batch_floor(floor);
            let mut most = 0;
            for (k, r) in &recs {
                t.add(*k, r);
                most = most.max(t.open_flows());
            }
            assert!(!t.disordered(), "seed {seed}");
            // Many merges, each of many 5-tuples' flows and records; the open flows stay a fraction of
            // the 5-tuples (they close as time passes).
            assert!(t.merges > 10, "seed {seed}: {} merges", t.merges);
            assert!(most < 3_000 / 2, "seed {seed}: {most} open");
            let want = ClientAgg::of_records(recs.iter().rev().copied().collect());
            let got = t.finish();
            assert_eq!(summary_all(&got), summary_all(&want), "seed {seed}");
            // Some flows logged only on clients' own interfaces matched, some did not.
            let matched = want.sources.values().map(|(n, _)| n).sum::<u64>();
            assert!(want.elsewhere > 50 && matched > 50, "seed {seed}: {} {matched}", want.elsewhere);
        }
    }

    /// A connection's flow on a client's own interface counts when a flow of the NAT interface
    /// that does not name its destination chains with it (within the idle timeout), and only then.
    #[test]
    fn own_interface_flows_count_when_the_nat_interface_shows_them() {
        let own = ClientKey { host: Some(IpAddr::from([198, 51, 100, 1])), ..key(40_000) };
        let at = |start: u64, nat_side: bool| ClientRec { start, end: start + 10, bytes: 100, request: true, nat_side };
        for (nat_at, counts) in [(Some(1_000), true), (Some(1_350), true), (Some(1_361), false), (None, false)] {
            let mut recs = vec![(own, at(1_000, false))];
            recs.extend(nat_at.map(|t| (key(40_000), at(t, true))));
            // Another port of the client through the gateway, and another destination port, do not match.
            recs.push((key(40_001), at(1_000, true)));
            recs.push((ClientKey { host_port: 80, ..key(40_000) }, at(1_000, true)));
            recs.sort_by_key(|(_, r)| r.start);
            let mut t = ClientTracker::default();
            recs.iter().for_each(|(k, r)| t.add(*k, r));
            assert!(!t.disordered());
            let streamed = t.finish();
            let agg = ClientAgg::of_records(recs);
            assert_eq!(summary_all(&streamed), summary_all(&agg), "{nat_at:?}");
            assert_eq!((agg.sources.len(), agg.elsewhere), if counts { (1, 0) } else { (0, 1) }, "{nat_at:?}");
        }
    }

    /// A 5-tuple's records one after the other (a NAT interface's request and its answer) take one
    /// place in the batch when they chain, as the merge would chain them, and make the flows the
    /// records make in memory.
    #[test]
    fn records_of_one_5_tuple_in_a_row_join_before_the_merge() {
        let mut t = ClientTracker::default();
        // (The first record is merged at once: the tracker merges every 300 s of data.)
        t.add(key(3), &rec(0, 1, true));
        t.add(key(1), &rec(0, 10, true));
        t.add(key(1), &rec(0, 10, false));
        assert_eq!(t.open_flows(), 2);
        // 351 s after the last: a flow of its own (merged, as 300 s of data went by).
        t.add(key(1), &rec(361, 370, true));
        assert_eq!(t.open_flows(), 3);
        // Another 5-tuple's record between two: no join there (the merge chains them).
        t.add(key(2), &rec(361, 370, true));
        t.add(key(1), &rec(365, 375, false));
        assert_eq!(t.open_flows(), 5);
        let agg = t.finish();
        // Port 3: not answered; port 1: 0–10 answered, 361–375 answered; port 2: not answered.
        assert_eq!(
            summary(&agg),
            vec![((None, 443, Protocol::TCP, 0), (1, 2)), ((None, 443, Protocol::TCP, 6), (1, 2))]
        );

        for (seed, floor) in [(21, 8), (22, 300), (23, 5_000)] {
            // Each record followed by its 5-tuple's answer, at once or up to 100 s later, logged on
            // the NAT interface or not.
            let mut rnd = rng(seed);
            let mut recs = Vec::new();
            for (k, r) in busy_records(seed, 2_000, 0) {
                recs.push((k, r));
                let later = [0, 0, 0, 10, 100][rnd(5) as usize];
                let answer = ClientRec {
                    start: r.start + later,
                    end: r.end + later,
                    bytes: 7,
                    request: false,
                    nat_side: rnd(2) > 0,
                };
                recs.push((k, answer));
            }
            let mut t = ClientTracker::with_batch_floor(floor);
            recs.iter().for_each(|(k, r)| t.add(*k, r));
            assert!(!t.disordered(), "seed {seed}");
            let want = ClientAgg::of_records(recs.clone());
            assert_eq!(summary_all(&t.finish()), summary_all(&want), "seed {seed}");
        }
    }

    /// Records in a batch in any order (5-tuples reused within it, records bridging flows) make the
    /// flows the records do in memory: the merge sorts the batch by 5-tuple only.
    #[test]
    fn a_batch_in_any_order_makes_the_same_flows() {
        for (seed, floor) in [(11, 50), (12, 400), (13, 2_000), (14, 20_000)] {
            // 2,000 5-tuples over 20,000 s, 1 to 4 records each, up to 100 s out of order.
            let recs = busy_records(seed, 2_000, 100);
            let mut t = ClientTracker::with_batch_floor(floor);
            recs.iter().for_each(|(k, r)| t.add(*k, r));
            assert!(!t.disordered(), "seed {seed}");
            let want = ClientAgg::of_records(recs.clone());
            assert_eq!(summary_all(&t.finish()), summary_all(&want), "seed {seed}");
        }
    }

    /// A 5-tuple with two open flows, then a record that bridges them: the merge finds both flows
    /// of the 5-tuple and the record in the batch, whichever way they came.
    #[test]
    fn a_merge_joins_a_5_tuples_open_flows_through_a_record_in_the_batch() {
        for floor in [1, 2, 3] {
            let mut t = ClientTracker::with_batch_floor(floor);
            // Neighbours of the 5-tuple (by client port) in the same batches, open or closing.
            for (port, start) in [(0, 0), (2, 5), (1, 0), (1, 361), (2, 300)] {
                t.add(key(port), &rec(start, start + 9, true));
            }
            let open = t.open_flows();
            t.add(key(1), &rec(250, 260, false));
            t.add(key(1), &rec(362, 363, false));
            assert!(!t.disordered());
            assert!(open >= 4, "{open}");
            let agg = t.finish();
            // Port 1: one flow (0–9 and 361–370 bridged), answered; port 2: 5–14 and 300–309 are
            // 286 s apart, one flow, not answered; port 0: one flow, not answered.
            assert_eq!(summary(&agg), vec![((None, 443, Protocol::TCP, 0), (2, 3))]);
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

    /// A key gives its client back, and clients that share everything else (one destination, one
    /// source port) still spread over the sort's buckets.
    #[test]
    fn an_open_key_gives_its_client_back_and_spreads_clients_over_buckets() {
        let mut buckets = std::collections::HashSet::new();
        for client in (0..4_096).chain([u32::MAX, 1 << 31, 0xDEAD_BEEF]) {
            for (target, port) in [(NO_HOST << 8 | 6, 443), (7 << 8 | 17, 53)] {
                let k = OpenKey::new(client, target, 40_000, port);
                assert_eq!((k.client(), k.target(), k.client_port(), k.host_port()), (client, target, 40_000, port));
                buckets.insert(k.bucket());
            }
        }
        // 8,198 keys over 8,192 buckets: about 5,200 distinct if spread at random (each target
        // alone makes 4,099, which a bucket of the hash alone, or of the client alone, would give).
        assert!(buckets.len() > (1 << BUCKET_BITS) * 5 / 8, "{} buckets", buckets.len());
    }

    /// A batch's counting sort orders it as one sort by rank would, whatever its length, and
    /// whatever the last batch's length was (the buffer it sorts into keeps that batch).
    #[test]
    fn a_batch_sorts_as_one_sort_by_rank() {
        let mut rnd = rng(7);
        let (mut batch, mut sorted) = (Vec::new(), Vec::new());
        for len in [0, 1, 2, 17, 1_000, 30_000, 5, 1_000, 0, 3, 2_000] {
            let recs: Vec<Keyed> = (0..len)
                .map(|i| {
                    let k = OpenKey::new(rnd(50) as u32, (rnd(3) as u32) << 8 | 6, rnd(200) as u16, 443);
                    (k, Flow::of(&rec(i, i + rnd(9), rnd(2) == 0)))
                })
                .collect();
            batch.extend_from_slice(&recs);
            sort_batch(&mut batch, &mut sorted);
            assert!(batch.is_empty());
            let ranks: Vec<u128> = sorted.iter().map(|(k, _)| k.rank()).collect();
            let mut want: Vec<u128> = recs.iter().map(|(k, _)| k.rank()).collect();
            want.sort_unstable();
            assert_eq!(ranks, want, "{len} records");
            // The same records, each once.
            let mut got: Vec<(u128, u32, u32)> = sorted.iter().map(|(k, f)| (k.rank(), f.first, f.last)).collect();
            let mut all: Vec<(u128, u32, u32)> = recs.iter().map(|(k, f)| (k.rank(), f.first, f.last)).collect();
            got.sort_unstable();
            all.sort_unstable();
            assert_eq!(got, all, "{len} records");
        }
    }

    /// An open flow (or a waiting record) is a 5-tuple and one flow, in 32 bytes: the tracker holds
    /// hundreds of thousands.
    #[test]
    fn an_open_flow_takes_32_bytes() {
        assert_eq!(size_of::<(OpenKey, Flow)>(), 32);
    }

    #[test]
    fn bytes_add_up_and_flags_stay_apart() {
        let rec = |start, end, bytes, request| ClientRec { start, end, bytes, request, nat_side: true };
        let mut f = Flow::of(&rec(5, 9, 3 << 32, true));
        assert!(!f.answered());
        f.absorb(&Flow::of(&rec(1, 2, 7, false)));
        assert_eq!((f.bytes(), f.answered(), f.first, f.last, f.request_start), ((3 << 32) + 7, true, 1, 9, 5));
        f.absorb(&Flow::of(&rec(1, 2, u64::MAX, true)));
        assert_eq!((f.bytes(), f.answered(), f.request_start), (BYTES, true, 1));
        // A record's bytes past the field saturate and leave the flags alone.
        let f = Flow::of(&rec(1, 2, u64::MAX, true));
        assert_eq!((f.bytes(), f.answered(), f.tally() & NAT_SIDE != 0), (BYTES, false, true));
    }

    /// A connection logged on the NAT gateway's interface and on the client's has its bytes once:
    /// the NAT side's, in whatever order the records join.
    #[test]
    fn bytes_logged_on_both_interfaces_count_once() {
        let rec = |bytes, request, nat_side| Flow::of(&ClientRec { start: 10, end: 20, bytes, request, nat_side });
        // (The sides' bytes differ here, to tell which were kept.)
        let recs = [rec(100, true, true), rec(900, false, true), rec(3, true, false), rec(4, false, false)];
        for order in [[0, 1, 2, 3], [2, 3, 0, 1], [2, 0, 3, 1], [3, 2, 1, 0]] {
            // One by one, and as two flows joined.
            let mut f = recs[order[0]];
            order[1..].iter().for_each(|&i| f.absorb(&recs[i]));
            let (mut a, mut b) = (recs[order[0]], recs[order[2]]);
            a.absorb(&recs[order[1]]);
            b.absorb(&recs[order[3]]);
            a.absorb(&b);
            for f in [f, a] {
                assert_eq!((f.bytes(), f.answered()), (1_000, true), "{order:?}");
            }
        }
        // The client's side alone counts.
        let mut f = recs[2];
        f.absorb(&recs[3]);
        assert_eq!(f.bytes(), 7);
    }

    /// The numbers are the order of first appearance, whatever the remembered addresses: many more
    /// than the table's slots, colliding, and IPv6 among them.
    #[test]
    fn numbers_follow_first_appearance() {
        let mut rnd = rng(11);
        let mut t = ClientTracker::default();
        let mut first: Vec<IpAddr> = Vec::new();
        for _ in 0..20_000 {
            let k = rnd(2_000) as u32;
            let a = if k.is_multiple_of(7) {
                IpAddr::from(std::net::Ipv6Addr::from(u128::from(k)))
            } else {
                IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 | k << 4))
            };
            let want = match first.iter().position(|b| *b == a) {
                Some(n) => n,
                None => {
                    first.push(a);
                    first.len() - 1
                }
            };
            assert_eq!(t.number(a) as usize, want, "{a}");
        }
        assert!(first.len() > 4 << RECENT_BITS, "{}", first.len());
        assert!(!t.disordered());
    }

    #[test]
    fn a_tracker_past_its_addresses_refuses() {
        let mut t = ClientTracker { max_addresses: Some(3), ..ClientTracker::default() };
        let named = |host: [u8; 4]| ClientKey { host: Some(IpAddr::from(host)), ..key(1) };
        t.add(named([198, 51, 100, 1]), &rec(1_000, 1_010, true));
        t.add(named([198, 51, 100, 2]), &rec(1_000, 1_010, true));
        assert!(!t.disordered());
        t.add(named([198, 51, 100, 3]), &rec(1_000, 1_010, true));
        assert!(t.disordered());
    }

    #[test]
    fn the_tracker_keeps_only_recent_flows_and_flags_late_records() {
        let recs = records(3, 20_000);
        let mut t = ClientTracker::default();
        let mut most = 0;
        for (k, r) in &recs {
            t.add(*k, r);
            most = most.max(t.open_flows());
        }
        // 50 5-tuples in all; never more open than that and the records of a merge's period (one
        // record a second, give or take), whatever the number of records.
        assert!(most as u64 <= 50 + 2 * MERGE_EVERY_SECS, "{most}");
        t.add(key(1), &rec(1_000, 1_010, true));
        assert!(t.disordered());
    }
}
