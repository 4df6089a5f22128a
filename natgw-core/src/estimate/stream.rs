//! The streaming estimator: the same estimate as [`super::estimate`], from records seen once, in
//! time order, without keeping them.
//!
//! It keeps, per NAT port of the destination, the open segment (the segmentation rule is the same
//! function, [`super::advance`]); and per second, counts: live segments starting and ending, holds
//! starting and ending, the ends whose fate is unknown, and the reuse fit's statistics
//! ([`ReuseStats`]). A segment's posterior depends only on its end second, so the counts are all
//! the sweep needs once the fit is known. Memory is bounded by the ports in use and the seconds
//! covered, not by the number of records.
//!
//! The one thing it cannot do is go back: the records of one NAT port must come in the order of
//! [`super::sort_flows`] (time order; flow logs are written that way). A record that comes earlier
//! than one already seen on its port marks the stream [`disordered`](DestStream::disordered), and
//! the caller must fall back to the in-memory path.

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

/// One NAT port's state, in 28 bytes (a hot destination has tens of thousands). Times are Unix
/// seconds in 32 bits: records past 2106 make the stream refuse.
#[derive(Debug, Clone, Copy)]
struct Port {
    /// The open segment: its first and last second, and whether it closed (0: no, 1: yes, 2: unknown).
    start: u32,
    end: u32,
    closed: u8,
    first_start: u32,
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
}

/// The streaming estimate of one destination; see the module docs.
#[derive(Debug, Clone)]
pub struct DestStream {
    protocol: Protocol,
    /// NAT addresses in order of appearance.
    addrs: Vec<IpAddr>,
    ports: HashMap<(u8, u16), Port>,
    cells: Vec<Seconds<Cell>>,
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
            ports: HashMap::default(),
            cells: Vec::new(),
            reuse: ReuseStats::default(),
            minutes: HashMap::default(),
            has_flags: false,
            connections: 0,
            held: 0,
            disordered: false,
            data_end: None,
        }
    }

    /// True when a record came out of order on its NAT port (or after [`close`](DestStream::close)):
    /// the estimate is then not the reference's and must not be used.
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
                self.cells.push(Seconds::default());
                self.addrs.len() - 1
            }
        };
        let tcp = self.protocol == Protocol::TCP;
        self.has_flags |= tcp && o.tcp_flags.is_some();
        if o.end.max(o.start) >= u64::from(u32::MAX) {
            self.disordered = true;
            return;
        }
        let key = (o.start as u32, o.end as u32, o.tcp_flags.map_or(0, |f| u32::from(f.0) + 1));
        let port = match self.ports.entry((addr as u8, o.nat_port)) {
            Entry::Vacant(v) => {
                let mut port = Port { start: 0, end: 0, closed: 0, first_start: key.0, last: key };
                let mut open = None;
                advance(&mut open, o, tcp);
                port.set(open.unwrap_or(Segment { start: o.start, end: o.end, closed: None }));
                v.insert(port);
                *self.minutes.entry(o.start / 60).or_default() += 1;
                return;
            }
            Entry::Occupied(e) => e.into_mut(),
        };
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

    /// Ends every open segment at the end of the data. Call once, after the last record.
    pub fn close(&mut self, data_end: u64) {
        if self.data_end.is_some() {
            return;
        }
        let open: Vec<(usize, Segment)> = self.ports.iter().map(|(k, p)| (usize::from(k.0), p.segment())).collect();
        for (addr, seg) in open {
            self.end_segment(addr, seg, None, data_end);
        }
        self.data_end = Some(data_end);
    }

    fn end_segment(&mut self, addr: usize, s: Segment, next_start: Option<u64>, data_end: u64) {
        self.connections += 1;
        let cells = &mut self.cells[addr];
        cells.at(s.start).certain += 1;
        cells.at(s.end + 1).certain -= 1;
        match Fate::of(s.end, s.closed, next_start) {
            Fate::Closed => {}
            Fate::Held { until } => {
                self.held += 1;
                if until > s.end + 1 {
                    cells.at(s.end + 1).certain += 1;
                    cells.at(until).certain -= 1;
                }
            }
            Fate::Reused => self.reuse.add(Fate::end_obs(s.end, next_start, data_end)),
            Fate::Maybe { until } => {
                let cell = cells.at(s.end);
                if until == s.end + IDLE_TIMEOUT_SECS + 1 {
                    cell.maybe += 1;
                } else {
                    cell.maybe_until_reuse += 1;
                }
                self.reuse.add(Fate::end_obs(s.end, next_start, data_end));
            }
        }
    }

    /// The estimate; the stream must be [`close`](DestStream::close)d (else it is closed at
    /// `ctx.data_end` on a copy).
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
    /// otherwise). The stream must be closed.
    pub fn reuse_stats(&self) -> ReuseStats {
        if self.protocol == Protocol::TCP && !self.has_flags { self.reuse.clone() } else { ReuseStats::default() }
    }

    /// Every NAT port used, with its address and the start of its first record.
    pub fn ports(&self) -> impl Iterator<Item = (IpAddr, u16, u64)> + '_ {
        self.ports.iter().map(|(&(a, port), p)| (self.addrs[usize::from(a)], port, u64::from(p.first_start)))
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

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 8));

    /// A deterministic mix of ports, addresses, gaps, flags and overlapping records.
    fn records(seed: u64, n: usize, flags: bool) -> Vec<NatFlowObs> {
        let mut s = seed;
        let mut rnd = move |m: u64| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) % m
        };
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
                let ctx = EstimateContext { nat_addresses: 2, data_end: 6_100, fallback_share: None };
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
        // Out of order across ports only is fine.
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
        let ctx = EstimateContext { nat_addresses: 1, data_end: 1_780_086_400, fallback_share: None };
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
        assert_eq!(few.ports.len(), many.ports.len());
        let pages = |s: &DestStream| s.cells.iter().map(Seconds::pages).sum::<usize>();
        assert!(pages(&many) <= pages(&few) + 4, "{} vs {}", pages(&many), pages(&few));
    }
}
