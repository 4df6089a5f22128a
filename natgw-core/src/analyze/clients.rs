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
//! (It closes with its generation, a little later; see [`ClientTracker`].) A record that starts
//! before the latest start seen less the lateness, as of the last closing, could have joined a flow
//! already closed: it marks the tracker [`disordered`](ClientTracker::disordered). The allowance is a
//! bet on the input's order, never on the answer.

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
}

/// One flow, as far as its records have been seen: 20 bytes, since the tracker holds hundreds of
/// thousands. Times are Unix seconds in 32 bits (until 2106; records past that make the tracker
/// refuse).
#[derive(Debug, Clone, Copy)]
struct Flow {
    first: u32,
    last: u32,
    /// The earliest start of its request-direction records (`u32::MAX` until one is seen).
    request_start: u32,
    /// Its bytes and flags ([`ANSWERED`], [`MORE`]) as a `u64` in two halves: a `u64` field would
    /// align the flow to 8 bytes, 4 more per open 5-tuple.
    tally: [u32; 2],
}

/// In a flow's tally: it saw an answer-direction record.
const ANSWERED: u64 = 1 << 63;
/// In a flow's tally, for the flow a tracker's table holds: its 5-tuple has more open flows, in the
/// tracker's `more`.
const MORE: u64 = 1 << 62;
/// In a flow's tally: its bytes (they saturate there, at 4 EiB).
const BYTES: u64 = MORE - 1;

/// Seconds past this do not fit a [`Flow`].
const LAST_SECOND: u64 = u32::MAX as u64 - 1;

impl Flow {
    fn of(r: &ClientRec) -> Flow {
        let (start, end) = (r.start.min(LAST_SECOND) as u32, r.end.min(LAST_SECOND) as u32);
        let mut f =
            Flow { first: start, last: end, request_start: if r.request { start } else { u32::MAX }, tally: [0; 2] };
        f.set_tally(r.bytes.min(BYTES) | if r.request { 0 } else { ANSWERED });
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

    /// Whether its 5-tuple has more open flows (the table's flow only).
    fn has_more(&self) -> bool {
        self.tally() & MORE != 0
    }

    /// The flow, marked as having more open flows of its 5-tuple or not.
    fn with_more(mut self, more: bool) -> Flow {
        self.set_tally(self.tally() & !MORE | if more { MORE } else { 0 });
        self
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
        let bytes = (self.bytes() + other.bytes()).min(BYTES);
        self.set_tally(self.tally() & !BYTES | bytes | other.tally() & ANSWERED);
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

/// The open flows of 5-tuples that have more than one, less the one in the table (rare: a 5-tuple
/// used again after the idle timeout while its first flow is still open). Kept apart, so that a
/// table's entry is its one flow and no more.
type MoreFlows = HashMap<OpenKey, Vec<Flow>>;

/// Adds a record to the open flows of `key`, whose flow in the table is `first`.
fn add_to(more: &mut MoreFlows, key: &OpenKey, first: &mut Flow, r: &ClientRec) {
    let joined = Flow::of(r);
    if !first.has_more() {
        if first.touches(&joined) {
            first.absorb(&joined);
        } else {
            more.insert(*key, vec![joined]);
            *first = first.with_more(true);
        }
        return;
    }
    let mut all = more.remove(key).unwrap_or_default();
    all.push(first.with_more(false));
    chain(&mut all, joined);
    *first = rejoin(more, key, all).unwrap_or(*first);
}

/// Puts the open flows `all` of `key` back: the one for the table (returned), the others in `more`.
fn rejoin(more: &mut MoreFlows, key: &OpenKey, mut all: Vec<Flow>) -> Option<Flow> {
    let first = all.pop()?;
    let others = !all.is_empty();
    if others {
        more.insert(*key, all);
    }
    Some(first.with_more(others))
}

/// Hands the flows of `key` (`first` is the table's) that ended before `horizon` (+ the idle
/// timeout) to `closed`; returns the flow for the table, if any is left open.
fn close_key(
    more: &mut MoreFlows,
    key: &OpenKey,
    first: Flow,
    horizon: u64,
    mut closed: impl FnMut(&Flow),
) -> Option<Flow> {
    let is_closed = |f: &Flow| ended_before(f.last, horizon);
    if !first.has_more() {
        if is_closed(&first) {
            closed(&first);
            return None;
        }
        return Some(first);
    }
    let mut all = more.remove(key).unwrap_or_default();
    all.push(first.with_more(false));
    all.retain(|f| {
        let done = is_closed(f);
        if done {
            closed(f);
        }
        !done
    });
    rejoin(more, key, all)
}

/// Every flow of `key` (`first` is the table's), taken out of `more`.
fn all_flows(more: &mut MoreFlows, key: &OpenKey, first: Flow) -> impl Iterator<Item = Flow> {
    let others = if first.has_more() { more.remove(key).unwrap_or_default() } else { Vec::new() };
    std::iter::once(first.with_more(false)).chain(others)
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
    }

    /// The flows of records held in memory (any order).
    pub(super) fn of_records(mut recs: Vec<(ClientKey, ClientRec)>) -> ClientAgg {
        recs.sort_unstable_by_key(|(k, r)| (*k, r.start, r.end));
        let mut agg = ClientAgg::default();
        let mut i = 0;
        while i < recs.len() {
            let key = recs[i].0;
            let mut flows = vec![Flow::of(&recs[i].1)];
            i += 1;
            while i < recs.len() && recs[i].0 == key {
                chain(&mut flows, Flow::of(&recs[i].1));
                i += 1;
            }
            flows.iter().for_each(|f| agg.add(&key, f));
        }
        agg
    }
}

/// A [`ClientKey`] with its addresses numbered: 12 bytes instead of 40, for the many open flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct OpenKey {
    client: u32,
    /// The destination's number ([`NO_HOST`]: not named) in the high 24 bits, the protocol in the
    /// low 8.
    target: u32,
    client_port: u16,
    host_port: u16,
}

/// An [`OpenKey`]'s destination number when the record does not name one.
const NO_HOST: u32 = (1 << 24) - 1;

/// The addresses a tracker numbers, at most (a destination's number takes 24 bits of an open key):
/// past that it refuses, and the records are analysed in memory.
const MAX_ADDRESSES: usize = NO_HOST as usize;

impl OpenKey {
    /// A well-mixed 64-bit hash, for the generations' filters (the tables hash on their own).
    fn mix(&self) -> u64 {
        let a = u64::from(self.client) | u64::from(self.target) << 32;
        let b = u64::from(self.client_port) | u64::from(self.host_port) << 16;
        // splitmix64's finalizer over the two words folded together.
        let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The open flows by 5-tuple: one each (the others of a 5-tuple are in [`MoreFlows`]).
type OpenFlows = HashMap<OpenKey, Flow>;

/// Which 5-tuples a generation may hold: a Bloom filter with each key's four bits in one 64-bit word
/// (one memory access per look-up), 16 to 32 bits per key: under 0.5 % false positives. A few lines, so
/// not a dependency; what matters here is that it fits the cache beside the young table.
#[derive(Debug, Clone)]
struct KeyFilter {
    words: Vec<u64>,
}

/// A key's place in the filters: which word (before masking to a filter's size) and which bits.
#[derive(Debug, Clone, Copy)]
struct Probe {
    word: usize,
    bits: u64,
}

impl Probe {
    fn of(k: &OpenKey) -> Probe {
        let h = k.mix();
        Probe { word: (h >> 32) as usize, bits: (0..4).fold(0, |acc, i| acc | 1 << ((h >> (6 * i)) & 63)) }
    }
}

impl KeyFilter {
    fn of<'a>(keys: impl ExactSizeIterator<Item = &'a OpenKey>) -> KeyFilter {
        let mut f = KeyFilter { words: vec![0; (keys.len() / 4).next_power_of_two()] };
        let mask = f.words.len() - 1;
        keys.map(Probe::of).for_each(|p| f.words[p.word & mask] |= p.bits);
        f
    }

    fn may_hold(&self, p: Probe) -> bool {
        self.words[p.word & (self.words.len() - 1)] & p.bits == p.bits
    }
}

/// An older generation of open flows: the young table as it was when it filled, less the 5-tuples
/// seen again since (they moved back to the young table).
#[derive(Debug, Clone)]
struct Generation {
    flows: OpenFlows,
    filter: KeyFilter,
    /// The latest second of its flows: once that is closed, so is the whole generation.
    last: u32,
}

/// The streaming client flows; see the module docs.
///
/// Nearly every record on a NAT gateway's interface is a new 5-tuple, and flows stay open for minutes
/// of data: hundreds of thousands at a time, more than the caches hold. So the open flows live in
/// generations. Records look up and start flows in a young table small enough to stay in the cache;
/// when it fills it becomes a generation, with a filter of its keys. A record new to the young table
/// asks the generations' filters (in the cache) and moves its 5-tuple's flows back from the one that
/// holds them: a 5-tuple is in one place at most. A generation closes whole once time has passed its
/// latest flow. Random accesses to memory happen only for 5-tuples seen again after a while, and the
/// open flows are never swept one by one.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientTracker {
    young: OpenFlows,
    /// The 5-tuples the young table takes before it becomes a generation (at least [`YOUNG_KEYS`],
    /// or `young_floor` when set).
    young_keys: usize,
    /// Tests set a small floor, to make many generations of few records.
    young_floor: Option<usize>,
    /// Tests set fewer addresses than [`MAX_ADDRESSES`].
    max_addresses: Option<usize>,
    /// Oldest first.
    generations: Vec<Generation>,
    /// The other open flows of 5-tuples with more than one, wherever their first is.
    more: MoreFlows,
    /// Tables of closed generations, emptied, for the next young ones: tables are reused, not
    /// freed and allocated again (which leaves the allocator's heap in holes the process keeps).
    spares: Vec<OpenFlows>,
    /// The addresses seen (clients and named destinations: bounded by the hosts, not the records).
    addresses: Vec<IpAddr>,
    /// Per address: the roles this tracker took for it as a client, with its destination named (2),
    /// not named (1).
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

/// 5-tuples the young table holds before it becomes a generation, at least: 7/8 of 8 Ki buckets, a
/// table of 264 KiB (33 bytes a bucket) that never grows; with the generations' filters (16 KiB
/// each) it stays in a 2 MiB cache. Measured on the benchmark's file (10 M lines) with 49-byte
/// buckets: 7 Ki and 3.5 Ki keys were as fast, 14 Ki and 28 Ki slower; with 33-byte buckets, 14 Ki
/// was as fast as 7 Ki.
const YOUNG_KEYS: usize = 7 << 10;

/// Emptied tables kept for reuse: generations close about as fast as they come. Freeing and
/// allocating these tables over and over left the process holding more memory (the allocator's
/// heap in holes): measured on the benchmark's files, reuse lowered the peak RSS by 1 to 6 MB.
const SPARES: usize = 8;

/// About how many generations there may be: a record new to the young table asks each one's
/// filter, so when the open flows outgrow this many young tables, the young table grows instead.
/// The benchmark's file makes 25 to 45 at a time.
const GENERATIONS: usize = 64;

impl ClientTracker {
    /// Numbers `key`'s client address, and says whether this tracker has taken its role (its
    /// destination named or not: see [`take_role`](ClientTracker::take_role)).
    pub(super) fn client(&mut self, key: &ClientKey) -> (u32, bool) {
        let client = self.number(key.client);
        (client, self.roles[client as usize] & role(key) != 0)
    }

    /// Takes the role of client `client` (numbered by [`client`](ClientTracker::client)) in `key`.
    pub(super) fn take_role(&mut self, client: u32, key: &ClientKey) {
        self.roles[client as usize] |= role(key);
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
        let key = OpenKey {
            client,
            target: key.host.map_or(NO_HOST, |h| self.number(h)) << 8 | u32::from(key.proto.0),
            client_port: key.client_port,
            host_port: key.host_port,
        };
        if let Some(first) = self.young.get_mut(&key) {
            add_to(&mut self.more, &key, first, r);
        } else {
            let flows = match self.take_from_generations(&key) {
                Some(mut first) => {
                    add_to(&mut self.more, &key, &mut first, r);
                    first
                }
                None => Flow::of(r),
            };
            if self.young.len() >= self.young_limit() {
                self.age();
            }
            self.young.insert(key, flows);
        }
        if self.latest >= self.next_close {
            self.close_before(self.latest.saturating_sub(lateness(self.longest)));
            self.next_close = self.latest.saturating_add(CLOSE_EVERY_SECS);
        }
    }

    /// Adds a record of any client (tests).
    #[cfg(test)]
    fn add(&mut self, key: ClientKey, r: &ClientRec) {
        let (client, _) = self.client(&key);
        self.push(client, key, r);
    }

    /// The address's number; past [`MAX_ADDRESSES`] the tracker refuses (and says 0).
    fn number(&mut self, address: IpAddr) -> u32 {
        let full = self.addresses.len() >= self.max_addresses.unwrap_or(MAX_ADDRESSES);
        match self.numbers.entry(address) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(_) if full => {
                self.disordered = true;
                0
            }
            Entry::Vacant(e) => {
                self.addresses.push(address);
                self.roles.push(0);
                *e.insert(self.addresses.len() as u32 - 1)
            }
        }
    }

    /// The open flows of `key` in a generation, taken out of it; the ones already closed go to the
    /// aggregates.
    fn take_from_generations(&mut self, key: &OpenKey) -> Option<Flow> {
        let probe = Probe::of(key);
        let first =
            self.generations.iter_mut().rev().filter(|g| g.filter.may_hold(probe)).find_map(|g| g.flows.remove(key))?;
        // Its flows time has passed close now (they would only travel on with the 5-tuple).
        let (agg, addresses) = (&mut self.agg, &self.addresses);
        close_key(&mut self.more, key, first, self.closed_before, |f| agg.add(&client_key(addresses, key), f))
    }

    /// The 5-tuples the young table takes before it becomes a generation.
    fn young_limit(&self) -> usize {
        self.young_keys.max(self.young_floor.unwrap_or(YOUNG_KEYS))
    }

    /// The young table becomes a generation; the next one is an emptied table or a new one.
    fn age(&mut self) {
        // Past the generations wanted, the next young tables are twice as big (so only a few more
        // come); well below, half as big again.
        if self.generations.len() + 1 >= GENERATIONS {
            self.young_keys = self.young_limit().saturating_mul(2);
        } else if self.generations.len() + 1 < GENERATIONS / 2 {
            self.young_keys /= 2;
        }
        let next = self
            .spares
            .pop()
            .unwrap_or_else(|| OpenFlows::with_capacity_and_hasher(self.young_limit(), Default::default()));
        let flows = std::mem::replace(&mut self.young, next);
        let more = &self.more;
        let last = flows
            .iter()
            .flat_map(|(k, f)| {
                let others = if f.has_more() { more.get(k).map_or(&[][..], Vec::as_slice) } else { &[] };
                std::iter::once(f).chain(others)
            })
            .map(|f| f.last)
            .max()
            .unwrap_or(0);
        self.generations.push(Generation { filter: KeyFilter::of(flows.keys()), flows, last });
    }

    /// Closes the flows no record starting at `horizon` or later can chain with: the generations
    /// time has passed, whole. (Flows elsewhere that could close stay until their generation does or
    /// their 5-tuple is seen again: no record can join them, so the aggregates are the same.)
    fn close_before(&mut self, horizon: u64) {
        self.closed_before = self.closed_before.max(horizon);
        let (agg, addresses, more, spares) = (&mut self.agg, &self.addresses, &mut self.more, &mut self.spares);
        self.generations.retain_mut(|g| {
            if !ended_before(g.last, horizon) {
                return true;
            }
            close_all(agg, addresses, more, &mut g.flows);
            if spares.len() < SPARES {
                spares.push(std::mem::take(&mut g.flows));
            }
            false
        });
    }

    pub(super) fn disordered(&self) -> bool {
        self.disordered
    }

    /// A tracker whose young table becomes a generation at `keys` 5-tuples already.
    #[cfg(test)]
    fn with_young_floor(keys: usize) -> ClientTracker {
        ClientTracker { young_floor: Some(keys), ..ClientTracker::default() }
    }

    /// Generations held (for tests).
    #[cfg(test)]
    fn generations(&self) -> usize {
        self.generations.len()
    }

    /// 5-tuples with flows still open (for tests and memory accounting).
    #[cfg(test)]
    pub(super) fn open_flows(&self) -> usize {
        self.young.len() + self.generations.iter().map(|g| g.flows.len()).sum::<usize>()
    }

    /// Closes every flow and returns the aggregates.
    pub(super) fn finish(mut self) -> ClientAgg {
        self.close_before(u64::MAX);
        close_all(&mut self.agg, &self.addresses, &mut self.more, &mut self.young);
        debug_assert!(self.more.is_empty(), "other open flows left behind by their 5-tuples");
        self.agg
    }
}

/// Hands every flow of `table` to the aggregates, emptying it.
fn close_all(agg: &mut ClientAgg, addresses: &[IpAddr], more: &mut MoreFlows, table: &mut OpenFlows) {
    for (k, first) in table.drain() {
        let key = client_key(addresses, &k);
        all_flows(more, &k, first).for_each(|f| agg.add(&key, &f));
    }
}

/// A client's role in `key`, as a bit: its destination named (2) or not (1).
fn role(key: &ClientKey) -> u8 {
    if key.host.is_some() { 2 } else { 1 }
}

/// The key with its addresses: built only for flows that close.
fn client_key(addresses: &[IpAddr], k: &OpenKey) -> ClientKey {
    let host = k.target >> 8;
    ClientKey {
        client: addresses[k.client as usize],
        client_port: k.client_port,
        host: (host != NO_HOST).then(|| addresses[host as usize]),
        host_port: k.host_port,
        proto: Protocol(k.target as u8),
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
        let mut s = seed;
        let mut rnd = move |m: u64| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) % m
        };
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
                out.push((arrival, k, ClientRec { start, end, bytes: 40 + rnd(1_000), request: rnd(3) > 0 }));
                start = end + [0, 5, 60, 300, 349, 351, 900][rnd(7) as usize];
            }
        }
        out.sort_by_key(|(arrival, _, _)| *arrival);
        out.into_iter().map(|(_, k, r)| (k, r)).collect()
    }

    type Minutes = Vec<(MinuteKey, (u64, u64))>;
    type Sources = Vec<((Destination, IpAddr), (u64, u64))>;

    fn summary_all(a: &ClientAgg) -> (Minutes, Sources) {
        let mut s: Vec<_> = a.sources.iter().map(|(k, v)| (*k, *v)).collect();
        s.sort_unstable();
        (summary(a), s)
    }

    #[test]
    fn flows_that_pass_through_generations_equal_the_flows_in_memory() {
        for (seed, floor, jitter) in [(1, 8, 0), (2, 8, 60), (3, 64, 100), (4, 1, 30), (5, 100, 60)] {
            let recs = busy_records(seed, 3_000, jitter);
            let mut t = ClientTracker::with_young_floor(floor);
            let mut most = 0;
            for (k, r) in &recs {
                t.add(*k, r);
                most = most.max(t.generations());
            }
            assert!(!t.disordered(), "seed {seed}");
            // The young table grows rather than the generations pile up: each one past the number
            // wanted doubles it.
            assert!(most > 1 && most <= GENERATIONS + 12, "seed {seed}: {most} generations");
            let want = ClientAgg::of_records(recs.iter().rev().copied().collect());
            assert_eq!(summary_all(&t.finish()), summary_all(&want), "seed {seed}");
        }
    }

    #[test]
    fn generations_close_as_time_passes() {
        // One new 5-tuple a second for 10,000 s: flows close after the idle timeout and the lateness.
        let mut t = ClientTracker::with_young_floor(16);
        let mut most = 0;
        for i in 0..10_000u64 {
            t.add(key(i as u16), &rec(1_000 + i, 1_001 + i, true));
            most = most.max(t.open_flows());
        }
        assert!(!t.disordered());
        // 350 s idle + 120 s lateness + a minute between closings + a generation's fill.
        assert!(most <= 350 + 120 + 60 + 2 * 16, "{most}");
        let agg = t.finish();
        assert_eq!(agg.minutes.values().map(|v| v.1).sum::<u64>(), 10_000);
        assert_eq!(agg.minutes.values().map(|v| v.0).sum::<u64>(), 10_000);
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

    /// A table's entry is a 5-tuple and its one flow, in 32 bytes: the tables hold hundreds of
    /// thousands.
    #[test]
    fn an_open_flow_takes_32_bytes() {
        assert_eq!(size_of::<(OpenKey, Flow)>(), 32);
    }

    #[test]
    fn bytes_add_up_and_flags_stay_apart() {
        let mut f = Flow::of(&ClientRec { start: 5, end: 9, bytes: 3 << 32, request: true });
        assert!(!f.answered() && !f.has_more());
        f = f.with_more(true);
        f.absorb(&Flow::of(&ClientRec { start: 1, end: 2, bytes: 7, request: false }));
        assert_eq!((f.bytes(), f.answered(), f.has_more(), f.first, f.last), ((3 << 32) + 7, true, true, 1, 9));
        f.absorb(&Flow::of(&ClientRec { start: 1, end: 2, bytes: u64::MAX, request: true }));
        assert_eq!((f.bytes(), f.answered(), f.with_more(false).has_more()), (BYTES, true, false));
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
        // 50 5-tuples in all; never more open than that, whatever the number of records.
        assert!(most <= 50, "{most}");
        t.add(key(1), &rec(1_000, 1_010, true));
        assert!(t.disordered());
    }
}
