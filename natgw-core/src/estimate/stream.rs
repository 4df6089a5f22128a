//! The streaming estimator: the same estimate as [`super::estimate`], from records seen once, in
//! time order, without keeping them.
//!
//! It keeps, per NAT port of the destination in use, the open segment (the segmentation rule is the
//! same function, `estimate::advance`); and per second, counts: live segments starting and ending,
//! holds starting and ending, the ends whose fate is unknown, and the reuse fit's statistics
//! ([`ReuseStats`]). A segment's posterior depends only on its end second, so the counts are all
//! the sweep needs once the fit is known.
//!
//! A port quiet for longer than the idle timeout plus a lateness allowance leaves the map: its open
//! segment is *settled*, counted as the records to come will find it (its next use, if any, comes
//! after the idle timeout ran out, so its fate no longer depends on when), and only two bits stay:
//! that the port was seen, and whether the reuse fit still waits for the port's next use (the gap's
//! second half). Memory is thus bounded by the most ports in use at once (the table keeps its
//! size), the seconds covered, and about 4 bytes per port ever used (for [`DestStream::ports`]),
//! not by the records.
//!
//! The one thing it cannot do is go back: the records of one NAT port must come in the order of
//! [`super::sort_flows`] (time order; flow logs are written that way), and a settled port's next
//! record no earlier than the lateness allowance (as the client flows' tracker allows, and for the
//! same reason: flow logs aggregate over at most 10 minutes). A record that breaks either rule marks
//! the stream [`disordered`](DestStream::disordered), and the caller must fall back to the
//! in-memory path.

use std::net::IpAddr;

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap as HashMap;

use super::{
    Estimate, EstimateContext, Fate, NatFlowObs, ONE, ReuseStats, Seconds, Segment, Step, Tally, advance, hold_model,
    maybe_held, sweep,
};
use crate::limits::IDLE_TIMEOUT_SECS;
use crate::net::Protocol;

/// Records whose ports [`DestStream::push_all`] looks up before it adds them: enough misses in flight
/// to hide most of the memory's latency, few enough for the CPU's reorder window.
const LOOK_AHEAD: usize = 16;

/// The most a record may come behind the latest start seen (flow logs aggregate over at most 600 s).
pub const LATENESS_SECS: u64 = 600;

/// The least lateness allowed for.
const MIN_LATENESS_SECS: u64 = 120;

/// The lateness allowed for when the longest record seen lasted `longest` seconds: twice that (the
/// log's aggregation interval), at least [`MIN_LATENESS_SECS`], at most [`LATENESS_SECS`]. A bet on
/// the input's order, never on the answer: a record later than the allowance in force at the last
/// settling (or closing) makes a stream refuse.
pub(crate) fn lateness(longest: u64) -> u64 {
    longest.saturating_mul(2).clamp(MIN_LATENESS_SECS, LATENESS_SECS)
}

/// Seconds of the stream between two settlings of its quiet ports.
const SETTLE_EVERY_SECS: u64 = 60;

/// Words of a bitmap of every port.
const PORT_WORDS: usize = 1 << 10;

/// Counts of one second for one NAT address.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    /// Ports taken minus ports freed at this second, certain ones only (live segments, known holds).
    certain: i32,
    /// Unknown ends in this second that may have been held for the full idle timeout.
    maybe: u32,
    /// Unknown ends in this second whose port was used again exactly at the idle timeout (a hold
    /// would end one second sooner).
    maybe_until_reuse: u32,
}

/// One NAT port's state, in 24 bytes (a hot destination has tens of thousands in use). Times are
/// Unix seconds in 32 bits: records past 2106 make the stream refuse.
#[derive(Debug, Clone, Copy)]
struct Port {
    /// The open segment: its first and last second, and whether it closed (0: no, 1: yes, 2: unknown).
    start: u32,
    end: u32,
    closed: u8,
    /// The sort key of the last record seen: (start, end, flags + 1 or 0).
    last: (u32, u32, u32),
}

impl Port {
    fn segment(&self) -> Segment {
        let closed = match self.closed {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        };
        Segment { start: u64::from(self.start), end: u64::from(self.end), closed }
    }

    /// Stores `s` as the open segment (its times fit: they come from records that did).
    fn set(&mut self, s: Segment) {
        self.start = s.start as u32;
        self.end = s.end as u32;
        self.closed = match s.closed {
            Some(false) => 0,
            Some(true) => 1,
            None => 2,
        };
    }

    /// Whether the port is quiet for good by `horizon`: a record of it that starts then or later
    /// comes after the idle timeout ran out (and after its last record, in order).
    fn quiet_by(&self, horizon: u64) -> bool {
        u64::from(self.end.max(self.last.0)) + IDLE_TIMEOUT_SECS < horizon
    }
}

/// The ports of one NAT address that left the map ([`DestStream::settle`]): two bits each, in
/// bitmaps allocated at the first.
#[derive(Debug, Clone, Default)]
struct Settled {
    /// Per port, whether it left the map (`[..PORT_WORDS]`), and whether the reuse fit waits for its
    /// next use (`[PORT_WORDS..]`).
    bits: Option<Box<[u64; 2 * PORT_WORDS]>>,
    /// Ports waiting.
    pending: u32,
}

impl Settled {
    fn bit(port: u16) -> (usize, u64) {
        (usize::from(port) / 64, 1 << (port % 64))
    }

    /// Whether `port` left the map at some point.
    fn left(&self, port: u16) -> bool {
        let (w, b) = Settled::bit(port);
        self.bits.as_ref().is_some_and(|bits| bits[w] & b != 0)
    }

    /// `port` leaves the map; `pending` when the reuse fit waits for its next use.
    fn leave(&mut self, port: u16, pending: bool) {
        let (w, b) = Settled::bit(port);
        let bits = self.bits.get_or_insert_with(|| Box::new([0; 2 * PORT_WORDS]));
        bits[w] |= b;
        if pending && bits[PORT_WORDS + w] & b == 0 {
            bits[PORT_WORDS + w] |= b;
            self.pending += 1;
        }
    }

    /// Whether the reuse fit waited for `port`'s next use (it does no more).
    fn take_pending(&mut self, port: u16) -> bool {
        let (w, b) = Settled::bit(port);
        let Some(bits) = &mut self.bits else { return false };
        let waited = bits[PORT_WORDS + w] & b != 0;
        if waited {
            bits[PORT_WORDS + w] &= !b;
            self.pending -= 1;
        }
        waited
    }
}

/// The streaming estimate of one destination; see the module docs.
#[derive(Debug, Clone)]
pub struct DestStream {
    protocol: Protocol,
    /// NAT addresses in order of appearance.
    addrs: Vec<IpAddr>,
    /// Per NAT address (as `addrs`): its first record's start and its last record's end.
    spans: Vec<(u64, u64)>,
    /// The ports in use (a port quiet for longer than the idle timeout and the lateness leaves).
    ports: HashMap<(u8, u16), Port>,
    /// Per NAT address (as `addrs`): counts per second, and the ports that left the map.
    cells: Vec<Seconds<Cell>>,
    settled: Vec<Settled>,
    /// Every port, in the order of their first records: its address and port as `addr << 16 | port`.
    firsts: Vec<u32>,
    /// The minutes of those first records, run-length coded: (minute, where its ports start in
    /// `firsts`). Records come in time order (within the lateness), so about 4 bytes a port instead
    /// of 8 with their times.
    first_minutes: Vec<(u32, u32)>,
    /// The latest start seen, and the longest record (for the lateness allowed).
    latest: u64,
    longest: u64,
    /// When the quiet ports are settled next.
    next_settle: u64,
    /// Ports quiet for the idle timeout before this second have left the map: a record of one of
    /// them that starts earlier is out of order.
    settled_before: u64,
    reuse: ReuseStats,
    /// Distinct NAT ports starting a record, per minute.
    minutes: HashMap<u64, u32>,
    has_flags: bool,
    connections: u64,
    held: u64,
    disordered: bool,
    /// The end of the data, once [`close`](DestStream::close)d.
    data_end: Option<u64>,
}

impl DestStream {
    /// A stream for one destination of this protocol.
    pub fn new(protocol: Protocol) -> DestStream {
        DestStream {
            protocol,
            addrs: Vec::new(),
            spans: Vec::new(),
            ports: HashMap::default(),
            cells: Vec::new(),
            settled: Vec::new(),
            firsts: Vec::new(),
            first_minutes: Vec::new(),
            latest: 0,
            longest: 0,
            next_settle: 0,
            settled_before: 0,
            reuse: ReuseStats::default(),
            minutes: HashMap::default(),
            has_flags: false,
            connections: 0,
            held: 0,
            disordered: false,
            data_end: None,
        }
    }

    /// True when a record came out of order on its NAT port, a settled port's record came later than
    /// the lateness allowed (as of the last settling), or a record came after
    /// [`close`](DestStream::close): the estimate is then not the reference's and must not be used.
    pub fn disordered(&self) -> bool {
        self.disordered
    }

    /// Adds the next records, in order: the same as [`push`](DestStream::push) on each, faster.
    ///
    /// A hot destination's ports are tens of thousands, and a record's port is as good as random:
    /// its look-up is a miss to memory that a record at a time waits for in full (three quarters of
    /// the time `push` took on the benchmark's file). So the records go in windows whose ports are
    /// looked up first, all of them, with nothing depending on one another: the CPU overlaps those
    /// misses, and `push` then finds its port in the cache.
    pub fn push_all(&mut self, obs: &[NatFlowObs]) {
        for window in obs.chunks(LOOK_AHEAD) {
            let mut seen = 0u32;
            for o in window {
                if let Some(addr) = self.addrs.iter().position(|a| *a == o.nat_address) {
                    seen += self.ports.get(&(addr as u8, o.nat_port)).map_or(0, |p| u32::from(p.closed));
                }
            }
            std::hint::black_box(seen);
            window.iter().for_each(|o| self.push(o));
        }
    }

    /// Adds the next record.
    pub fn push(&mut self, o: &NatFlowObs) {
        if self.data_end.is_some() {
            self.disordered = true;
            return;
        }
        let addr = match self.addrs.iter().position(|a| *a == o.nat_address) {
            Some(i) => i,
            None => {
                if self.addrs.len() > usize::from(u8::MAX) {
                    self.disordered = true;
                    return;
                }
                self.addrs.push(o.nat_address);
                self.spans.push((u64::MAX, 0));
                self.cells.push(Seconds::default());
                self.settled.push(Settled::default());
                self.addrs.len() - 1
            }
        };
        let tcp = self.protocol == Protocol::TCP;
        self.has_flags |= tcp && o.tcp_flags.is_some();
        if o.end.max(o.start) >= u64::from(u32::MAX) {
            self.disordered = true;
            return;
        }
        self.latest = self.latest.max(o.start);
        self.longest = self.longest.max(o.end.saturating_sub(o.start));
        let span = &mut self.spans[addr];
        *span = (span.0.min(o.start), span.1.max(o.end));
        let key = (o.start as u32, o.end as u32, o.tcp_flags.map_or(0, |f| u32::from(f.0) + 1));
        match self.ports.entry((addr as u8, o.nat_port)) {
            Entry::Vacant(v) => {
                let settled = &mut self.settled[addr];
                if !settled.left(o.nat_port) {
                    let minute = key.0 / 60;
                    if self.first_minutes.last().is_none_or(|run| run.0 != minute) {
                        self.first_minutes.push((minute, self.firsts.len() as u32));
                    }
                    self.firsts.push((addr as u32) << 16 | u32::from(o.nat_port));
                } else if o.start < self.settled_before {
                    // Its segment was counted as quiet past the idle timeout: this record is too late.
                    self.disordered = true;
                    return;
                } else if settled.take_pending(o.nat_port) {
                    self.reuse.add_long_reuse(o.start);
                }
                let mut port = Port { start: 0, end: 0, closed: 0, last: key };
                let mut open = None;
                advance(&mut open, o, tcp);
                port.set(open.unwrap_or(Segment { start: o.start, end: o.end, closed: None }));
                v.insert(port);
                *self.minutes.entry(o.start / 60).or_default() += 1;
            }
            Entry::Occupied(e) => {
                let port = e.into_mut();
                if key < port.last {
                    self.disordered = true;
                }
                let previous = std::mem::replace(&mut port.last, key);
                if previous.0 / 60 != key.0 / 60 {
                    *self.minutes.entry(o.start / 60).or_default() += 1;
                }
                let mut open = Some(port.segment());
                let ended = advance(&mut open, o, tcp);
                if let Some(seg) = open {
                    port.set(seg);
                }
                if let Some(seg) = ended {
                    self.end_segment(addr, seg, Some(o.start), 0);
                }
            }
        }
        if self.latest >= self.next_settle {
            self.settle();
        }
    }

    /// Settles the ports quiet for longer than the idle timeout and the lateness allowed: their
    /// open segments are counted as [`end_segment`](DestStream::end_segment) would count them with
    /// a next use (or the end of the data) past the idle timeout, the only kind they can still get,
    /// and they leave the map. The reuse fit gets the ends' first halves; the ports' next uses (or
    /// [`close`](DestStream::close)) give the second.
    fn settle(&mut self) {
        self.next_settle = self.latest.saturating_add(SETTLE_EVERY_SECS);
        let horizon = self.latest.saturating_sub(lateness(self.longest));
        if horizon <= self.settled_before {
            return;
        }
        self.settled_before = horizon;
        let quiet: Vec<((u8, u16), Port)> = self.ports.extract_if(|_, p| p.quiet_by(horizon)).collect();
        for ((addr, port), p) in quiet {
            let addr = usize::from(addr);
            let s = p.segment();
            // Any next use is at `end + IDLE_TIMEOUT_SECS + 1` or later: all count as that one.
            let pending = self.count_segment(addr, s, Some(s.end + IDLE_TIMEOUT_SECS + 1));
            if pending {
                self.reuse.add_long_end(s.end);
            }
            self.settled[addr].leave(port, pending);
        }
        // The table keeps its size (the most ports in use at once): shrinking it when a busy spell
        // ends, and growing it again at the next, raised the peak RSS on the benchmark's 4× file
        // from 50–53 MiB to 62–64 MiB (freed tables the allocator did not reuse).
    }

    /// Ends every open segment at the end of the data, `data_end`: no earlier than any record's start
    /// (the latest end seen, say). Call once, after the last record.
    pub fn close(&mut self, data_end: u64) {
        if self.data_end.is_some() {
            return;
        }
        let open: Vec<(usize, Segment)> = self.ports.iter().map(|(k, p)| (usize::from(k.0), p.segment())).collect();
        for (addr, seg) in open {
            self.end_segment(addr, seg, None, data_end);
        }
        // Settled ends never used again: censored past the idle timeout (the data ends no sooner than
        // the latest start, which is past their idle timeouts).
        debug_assert!(data_end >= self.settled_before, "the data ends before its latest start");
        let pending = self.settled.iter().map(|s| s.pending).sum();
        self.reuse.add_long_censored(pending, data_end);
        self.data_end = Some(data_end);
    }

    fn end_segment(&mut self, addr: usize, s: Segment, next_start: Option<u64>, data_end: u64) {
        if self.count_segment(addr, s, next_start) {
            self.reuse.add(Fate::end_obs(s.end, next_start, data_end));
        }
    }

    /// Counts the segment `s` of NAT address `addr`, whose port was next used at `next_start`
    /// (`None`: not before the end of the data), in the per-second counts: true when its fate is
    /// unknown, and the reuse fit takes its end.
    fn count_segment(&mut self, addr: usize, s: Segment, next_start: Option<u64>) -> bool {
        self.connections += 1;
        let cells = &mut self.cells[addr];
        cells.at(s.start).certain += 1;
        cells.at(s.end + 1).certain -= 1;
        match Fate::of(s.end, s.closed, next_start) {
            Fate::Closed => false,
            Fate::Held { until } => {
                self.held += 1;
                if until > s.end + 1 {
                    cells.at(s.end + 1).certain += 1;
                    cells.at(until).certain -= 1;
                }
                false
            }
            Fate::Reused => true,
            Fate::Maybe { until } => {
                let cell = cells.at(s.end);
                if until == s.end + IDLE_TIMEOUT_SECS + 1 {
                    cell.maybe += 1;
                } else {
                    cell.maybe_until_reuse += 1;
                }
                true
            }
        }
    }

    /// The estimate; the stream must be [`close`](DestStream::close)d (else it is closed at
    /// `ctx.data_end` on a copy, which must then be no earlier than any record's start).
    pub fn estimate(&self, ctx: &EstimateContext) -> Estimate {
        if self.data_end.is_none() {
            let mut closed = self.clone();
            closed.close(ctx.data_end);
            return closed.estimate(ctx);
        }
        let (hold_model, fit) = hold_model(self.protocol, self.has_flags, || self.reuse.clone(), ctx);
        // Addresses sorted, as the reference numbers them.
        let mut order: Vec<usize> = (0..self.addrs.len()).collect();
        order.sort_unstable_by_key(|&i| self.addrs[i]);
        let mut steps = Vec::new();
        let mut abandoned = ONE * self.held as i64;
        for (addr, &i) in order.iter().enumerate() {
            for (t, c) in self.cells[i].iter() {
                if c.certain != 0 {
                    let d = i64::from(c.certain) * ONE;
                    steps.push(Step { at: t, addr, low: d, best: d, high: d });
                }
                let maybe = i64::from(c.maybe) + i64::from(c.maybe_until_reuse);
                if maybe > 0 {
                    let p = maybe_held(fit.as_ref(), t, ctx.data_end);
                    abandoned += maybe * p;
                    steps.push(Step { at: t + 1, addr, low: 0, best: maybe * p, high: maybe * ONE });
                    for (n, until) in
                        [(c.maybe, t + IDLE_TIMEOUT_SECS + 1), (c.maybe_until_reuse, t + IDLE_TIMEOUT_SECS)]
                    {
                        if n > 0 {
                            let n = i64::from(n);
                            steps.push(Step { at: until, addr, low: 0, best: -n * p, high: -n * ONE });
                        }
                    }
                }
            }
        }
        let addrs = order.iter().map(|&i| self.addrs[i]).collect();
        sweep(steps, Tally { addrs, hold_model, connections: self.connections, abandoned }, ctx)
    }

    /// The reuse statistics for a pooled fit across destinations: TCP without flags only (empty
    /// otherwise). The stream must be closed (settled ends miss their second halves until then).
    pub fn reuse_stats(&self) -> ReuseStats {
        debug_assert!(self.data_end.is_some(), "reuse statistics of a stream not closed");
        if self.protocol == Protocol::TCP && !self.has_flags { self.reuse.clone() } else { ReuseStats::default() }
    }

    /// Every NAT port used, with its address and the minute of its first record (Unix seconds / 60).
    pub fn ports(&self) -> impl Iterator<Item = (IpAddr, u16, u64)> + '_ {
        self.first_minutes.iter().enumerate().flat_map(move |(i, &(minute, from))| {
            let to = self.first_minutes.get(i + 1).map_or(self.firsts.len(), |next| next.1 as usize);
            self.firsts[from as usize..to]
                .iter()
                .map(move |&p| (self.addrs[(p >> 16) as usize], p as u16, u64::from(minute)))
        })
    }

    /// The NAT addresses that carried a record, in order of appearance, with their first record's
    /// start and their last record's end.
    pub fn spans(&self) -> impl Iterator<Item = (IpAddr, u64, u64)> + '_ {
        self.addrs.iter().zip(&self.spans).map(|(a, s)| (*a, s.0, s.1))
    }

    /// Peak distinct NAT ports starting a record in one minute.
    pub fn max_ports_per_minute(&self) -> u64 {
        self.minutes.values().copied().max().map_or(0, u64::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::{estimate, sort_flows};
    use crate::flowlog::TcpFlags;
    use crate::testing::rng;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 8));

    /// A deterministic mix of ports, addresses, gaps, flags and overlapping records.
    fn records(seed: u64, n: usize, flags: bool) -> Vec<NatFlowObs> {
        let mut rnd = rng(seed);
        (0..n)
            .map(|_| {
                let start = 1_000 + rnd(5_000);
                NatFlowObs {
                    nat_address: if rnd(4) == 0 { B } else { A },
                    nat_port: 1024 + rnd(40) as u16,
                    start,
                    end: start + rnd(90),
                    tcp_flags: (flags && rnd(3) > 0).then(|| TcpFlags([2, 1, 3, 0, 18, 19][rnd(6) as usize])),
                }
            })
            .collect()
    }

    fn stream_of(obs: &[NatFlowObs], protocol: Protocol) -> DestStream {
        // Time order across ports, as a flow log is written; sort_flows order within each port.
        let mut sorted = obs.to_vec();
        sorted.sort_by_key(|o| (o.start, o.end, o.tcp_flags.map(|f| f.0), o.nat_address, o.nat_port));
        let mut s = DestStream::new(protocol);
        sorted.iter().for_each(|o| s.push(o));
        s
    }

    #[test]
    fn the_stream_equals_the_reference_exactly() {
        for seed in 0..40u64 {
            for (protocol, flags) in [(Protocol::TCP, false), (Protocol::TCP, true), (Protocol::UDP, false)] {
                let mut obs = records(seed, 50 + seed as usize * 40, flags);
                let ctx =
                    EstimateContext { nat_addresses: 2, spans: Vec::new(), data_end: 6_100, fallback_share: None };
                let mut stream = stream_of(&obs, protocol);
                assert!(!stream.disordered());
                stream.close(ctx.data_end);
                let want = estimate(&mut obs, protocol, &ctx);
                assert_eq!(stream.estimate(&ctx), want, "seed {seed} {protocol:?} flags {flags}");
                let with_prior = EstimateContext { fallback_share: Some(0.37), ..ctx.clone() };
                assert_eq!(stream.estimate(&with_prior), estimate(&mut obs, protocol, &with_prior));
                // The pooled fit's statistics and the per-minute ports too.
                let pooled = crate::estimate::reuse_observations(&mut obs, protocol, ctx.data_end);
                assert_eq!(
                    crate::estimate::fit_reuse(&stream.reuse_stats()),
                    crate::estimate::fit_reuse(&pooled),
                    "seed {seed}"
                );
            }
        }
    }

    #[test]
    fn a_record_out_of_order_on_its_port_marks_the_stream() {
        let mut obs = records(7, 200, false);
        sort_flows(&mut obs);
        let mut s = DestStream::new(Protocol::TCP);
        obs.iter().rev().for_each(|o| s.push(o));
        assert!(s.disordered());
        // Out of order across ports only is fine (within the lateness, as here: 5,000 s of records
        // sorted by port, time order within each).
        assert!(!stream_of(&obs, Protocol::TCP).disordered());
    }

    /// A quiet destination over a day (a connection every 90 s, each on a port of its own) touches
    /// most of the day's pages, a second or two each: they stay lists, and the estimate is still
    /// the reference's.
    #[test]
    fn a_quiet_destination_over_a_day_keeps_lists_of_seconds() {
        let mut obs: Vec<NatFlowObs> = (0..960u64)
            .map(|i| {
                let start = 1_780_000_000 + i * 90;
                NatFlowObs { nat_address: A, nat_port: 1024 + i as u16, start, end: start + 20, tcp_flags: None }
            })
            .collect();
        let ctx =
            EstimateContext { nat_addresses: 1, spans: Vec::new(), data_end: 1_780_086_400, fallback_share: None };
        let mut stream = stream_of(&obs, Protocol::TCP);
        stream.close(ctx.data_end);
        assert_eq!(stream.estimate(&ctx), estimate(&mut obs, Protocol::TCP, &ctx));
        let (pages, dense) = (stream.cells[0].pages(), stream.cells[0].dense_pages());
        assert!(pages > 1_000, "{pages} pages");
        assert_eq!(dense, 0, "{dense} of {pages} pages are arrays");
    }

    #[test]
    fn memory_follows_ports_and_seconds_not_records() {
        // The same 40 ports over the same hour, 10× the records: the same number of pages.
        let few = stream_of(&records(1, 2_000, false), Protocol::TCP);
        let many = stream_of(&records(1, 20_000, false), Protocol::TCP);
        assert_eq!(few.firsts.len(), many.firsts.len());
        let pages = |s: &DestStream| s.cells.iter().map(Seconds::pages).sum::<usize>();
        assert!(pages(&many) <= pages(&few) + 4, "{} vs {}", pages(&many), pages(&few));
    }

    /// 300 ports over 12 hours, each used every 10 to 90 minutes (and now and then again soon): most
    /// records find their port settled, so the reuse fit's gaps come in halves.
    fn sparse_records(seed: u64, flags: bool) -> Vec<NatFlowObs> {
        let mut rnd = rng(seed);
        let mut obs = Vec::new();
        for port in 0..300u16 {
            let mut t = 1_780_000_000 + rnd(3_600);
            while t < 1_780_043_200 {
                let start = t;
                let end = start + rnd(120);
                let tcp_flags = (flags && rnd(3) > 0).then(|| TcpFlags([2, 1, 3, 0, 18, 19][rnd(6) as usize]));
                let nat_address = if port % 3 == 0 { B } else { A };
                obs.push(NatFlowObs { nat_address, nat_port: 2_000 + port, start, end, tcp_flags });
                t = end + if rnd(4) == 0 { 5 + rnd(400) } else { 600 + rnd(4_800) };
            }
        }
        obs
    }

    #[test]
    fn quiet_ports_leave_the_map_and_the_estimate_stays_the_reference() {
        for seed in 0..6u64 {
            for (protocol, flags) in [(Protocol::TCP, false), (Protocol::TCP, true), (Protocol::UDP, false)] {
                let mut obs = sparse_records(seed, flags);
                let ctx = EstimateContext {
                    nat_addresses: 2,
                    spans: Vec::new(),
                    data_end: 1_780_043_400,
                    fallback_share: None,
                };
                let mut sorted = obs.clone();
                sorted.sort_by_key(|o| (o.start, o.end, o.tcp_flags.map(|f| f.0), o.nat_address, o.nat_port));
                let mut stream = DestStream::new(protocol);
                let mut most_in_use = 0;
                for o in &sorted {
                    stream.push(o);
                    most_in_use = most_in_use.max(stream.ports.len());
                }
                assert!(!stream.disordered());
                // A port is in the map from its use to its idle timeout and the lateness after:
                // a fraction of the 300 at any time.
                assert!(most_in_use < 150, "{most_in_use} ports in use at once");
                let waiting: u32 = stream.settled.iter().map(|s| s.pending).sum();
                // Unknown fates (TCP records without flags) wait for their ports' next uses; UDP ports are held.
                assert_eq!(waiting > 0, protocol == Protocol::TCP, "{waiting} ends wait");
                stream.close(ctx.data_end);
                let context = format!("seed {seed} {protocol:?} flags {flags}");
                assert_eq!(stream.estimate(&ctx), estimate(&mut obs, protocol, &ctx), "{context}");
                let pooled = crate::estimate::reuse_observations(&mut obs, protocol, ctx.data_end);
                assert_eq!(
                    crate::estimate::fit_reuse(&stream.reuse_stats()),
                    crate::estimate::fit_reuse(&pooled),
                    "{context}"
                );
                // Every port once, with its first record's minute.
                let mut ports: Vec<(IpAddr, u16, u64)> = stream.ports().collect();
                ports.sort_unstable();
                let mut want: Vec<(IpAddr, u16, u64)> = Vec::new();
                sort_flows(&mut obs);
                for o in &obs {
                    if want.last().is_none_or(|w| (w.0, w.1) != (o.nat_address, o.nat_port)) {
                        want.push((o.nat_address, o.nat_port, o.start / 60));
                    }
                }
                want.sort_unstable();
                assert_eq!(ports, want, "{context}");
                let mut per_minute: HashMap<u64, rustc_hash::FxHashSet<(IpAddr, u16)>> = HashMap::default();
                obs.iter()
                    .for_each(|o| _ = per_minute.entry(o.start / 60).or_default().insert((o.nat_address, o.nat_port)));
                let peak = per_minute.values().map(|p| p.len() as u64).max();
                assert_eq!(Some(stream.max_ports_per_minute()), peak, "{context}");
            }
        }
    }

    #[test]
    fn a_settled_port_used_again_too_late_marks_the_stream() {
        let at =
            |port: u16, start: u64| NatFlowObs { nat_address: A, nat_port: port, start, end: start, tcp_flags: None };
        // Port 1 goes quiet at 1,000; port 2 moves time on to 3,000, when port 1 has left the map.
        let mut obs = vec![at(1, 1_000)];
        obs.extend((0..=40).map(|i| at(2, 1_000 + 50 * i)));
        let mut late = DestStream::new(Protocol::TCP);
        obs.iter().for_each(|o| late.push(o));
        assert!(late.settled[0].left(1));
        // In order on its own port, but before the lateness allowed: it could have been a reuse.
        late.push(&at(1, 1_300));
        assert!(late.disordered());
        // Within the lateness (120 s here), it is the reference's.
        let mut on_time = DestStream::new(Protocol::TCP);
        obs.push(at(1, 2_950));
        obs.iter().for_each(|o| on_time.push(o));
        assert!(!on_time.disordered());
        let ctx = EstimateContext { nat_addresses: 1, spans: Vec::new(), data_end: 3_100, fallback_share: None };
        on_time.close(ctx.data_end);
        assert_eq!(on_time.estimate(&ctx), estimate(&mut obs, Protocol::TCP, &ctx));
    }
}
