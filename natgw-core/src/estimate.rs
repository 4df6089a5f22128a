//! The simultaneous-connection estimator: from NAT-side flow records of one unique destination to its
//! peak number of NAT ports held, with a low/high range and the evidence behind it.
//!
//! What the NAT holds is one port per connection from its first packet until it closes, or until
//! [`IDLE_TIMEOUT_SECS`] after its last packet when it just goes quiet. Flow logs show packets per
//! window, so the estimator:
//! 1. stitches the records of one NAT 5-tuple (address, NAT port, destination) into *segments* of
//!    continuous use (TCP flags split them where a connection closes or opens; UDP mappings continue
//!    while gaps stay under the idle timeout);
//! 2. decides for each segment end whether the port was freed at once (closed) or held for the idle
//!    timeout (abandoned): from TCP flags when the format has them, always for UDP/ICMP, and otherwise
//!    from the gaps between successive uses of the same NAT port (a closed port can be reused at
//!    once, an abandoned one only after the idle timeout) with a small EM fit;
//! 3. sweeps over the segments' lives (and expected holds) second by second, per NAT address, capped at
//!    the per-address limit, and reports the peak of the sum: low (no uncertain hold), best (expected
//!    hold), high (every uncertain end held).
//!
//! Dropped attempts (port allocation errors) are evidence that the destination was at its limit: the
//! caller pins them with [`Estimate::pin_to_limit`] and the estimate becomes exactly the limit.

use std::net::IpAddr;

use crate::flowlog::TcpFlags;
use crate::limits::{CONNECTIONS_PER_ADDRESS, IDLE_TIMEOUT_SECS};
use crate::net::Protocol;

mod reuse;
pub mod stream;

pub(crate) use reuse::PAGE as PAGE_SECS;
pub(crate) use reuse::Seconds;
pub use reuse::{EndObs, MERGE_WINDOW_SECS, MIN_REUSE_GAPS, ReuseFit, ReuseStats, fit_reuse};

/// One NAT → destination record: the NAT address and port used, and the record's first/last packet
/// times within its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatFlowObs {
    pub nat_address: IpAddr,
    pub nat_port: u16,
    pub start: u64,
    pub end: u64,
    pub tcp_flags: Option<TcpFlags>,
}

/// How the estimator decided whether idle ports were held.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HoldModel {
    /// TCP flags (FIN/RST) tell closed connections from abandoned ones.
    TcpFlags,
    /// UDP/ICMP mappings never close: every flow holds its port for the idle timeout.
    IdleTimeout,
    /// The share of abandoned connections was fitted from the gaps between reuses of NAT ports.
    PortReuse,
    /// No evidence either way: the best estimate is the middle of the range.
    Unknown,
}

/// The estimate for one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Best estimate of the peak number of ports held (sum over NAT addresses).
    pub peak: u64,
    /// When the best estimate peaked (Unix seconds).
    pub peak_at: u64,
    /// Peak with no uncertain idle hold.
    pub low: u64,
    /// Peak with every uncertain end held for the idle timeout.
    pub high: u64,
    /// Best-estimate peak per NAT address, sorted by address.
    pub per_address: Vec<(IpAddr, u64)>,
    pub hold_model: HoldModel,
    /// Share of connections judged abandoned (held for the idle timeout after their last packet).
    pub abandoned_share: Option<f64>,
    /// Connections seen (segments of NAT port use).
    pub connections: u64,
    /// True when the estimate reached the limit or dropped attempts were pinned on the destination.
    pub saturated: bool,
    /// The destination's limit (55,000 × NAT addresses).
    pub limit: u64,
}

/// When a NAT address was in use: from its first record's start (to any destination) to its last
/// record's end and the idle timeout after, as long as its connections may hold their ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressSpan {
    pub address: IpAddr,
    pub from: u64,
    pub to: u64,
}

/// Inputs shared by all destinations of one analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateContext {
    /// NAT addresses of the gateway (the limit is 55,000 × this), when `spans` is empty.
    pub nat_addresses: u32,
    /// When each NAT address was in use, over every destination: the limit at a moment is 55,000 ×
    /// the addresses in use then (an address added during the data does not raise the limit before
    /// it, when the gateway had only the others). Empty: every address, all the time.
    pub spans: Vec<AddressSpan>,
    /// The last second the data covers: holds are not counted past it.
    pub data_end: u64,
    /// The abandoned share assumed for TCP without flags when the destination's own data has too few
    /// reuse gaps (fitted over all destinations).
    pub fallback_share: Option<f64>,
}

impl EstimateContext {
    /// The limit at second `at` of a destination whose records came from `seen` NAT addresses:
    /// 55,000 × the addresses in use then (whose spans cover their holds), or × every address
    /// without spans.
    fn limit_at(&self, at: u64, seen: usize) -> u64 {
        let n = if self.spans.is_empty() {
            (self.nat_addresses as usize).max(seen)
        } else {
            self.spans.iter().filter(|s| s.from <= at && at <= s.to).count()
        };
        CONNECTIONS_PER_ADDRESS * n.max(1) as u64
    }

    /// The greatest limit the destination can have ([`limit_at`](EstimateContext::limit_at)).
    fn limit_max(&self, seen: usize) -> u64 {
        let n = if self.spans.is_empty() { self.nat_addresses as usize } else { self.spans.len() };
        CONNECTIONS_PER_ADDRESS * n.max(seen).max(1) as u64
    }
}

/// Gap (seconds) under which two records of one NAT 5-tuple without TCP flags are one connection
/// continuing across window boundaries.
pub const CONTINUATION_GAP_SECS: u64 = 10;

/// A segment of continuous use of one NAT port for the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Some(true): closed (freed at once); Some(false): held for the idle timeout; None: unknown.
    pub(crate) closed: Option<bool>,
}

impl Segment {
    /// The segment a port's first record (or the first after a segment ended) opens.
    fn open(o: &NatFlowObs, tcp: bool) -> Segment {
        let closed = if !tcp { Some(false) } else { o.tcp_flags.map(TcpFlags::closes) };
        Segment { start: o.start, end: o.end, closed }
    }
}

/// The segmentation rule, one record at a time: feeds the next record of one NAT port (in the order
/// of [`sort_flows`]) to its open segment. Returns the segment the record ended, when it starts a new
/// one (the record's start is then that segment's next use).
pub(crate) fn advance(open: &mut Option<Segment>, o: &NatFlowObs, tcp: bool) -> Option<Segment> {
    let Some(last) = open else {
        *open = Some(Segment::open(o, tcp));
        return None;
    };
    let flags = o.tcp_flags;
    let gap = o.start.saturating_sub(last.end);
    let same = if !tcp {
        gap <= IDLE_TIMEOUT_SECS
    } else if let Some(f) = flags {
        last.closed != Some(true) && !f.opens() && gap <= IDLE_TIMEOUT_SECS
    } else {
        gap <= CONTINUATION_GAP_SECS
    };
    if same {
        last.end = last.end.max(o.end);
        if tcp && flags.is_some() {
            last.closed = flags.map(TcpFlags::closes);
        }
        return None;
    }
    // A port reused inside one window merges the old connection's FIN with the new one's SYN in one
    // record: the old connection closed there.
    if tcp && flags.is_some_and(|f| f.opens() && f.closes()) && gap <= MERGE_WINDOW_SECS {
        last.closed = Some(true);
    }
    open.replace(Segment::open(o, tcp))
}

/// Sorts NAT flows the way the estimator walks them: by NAT 5-tuple, then time (the flags complete the
/// key, so the order does not depend on how the records were gathered). The sort is stable and finds
/// sorted runs: flows sorted in parts (by several threads) and concatenated are merged in linear time.
pub fn sort_flows(obs: &mut [NatFlowObs]) {
    obs.sort_by_key(|o| (o.nat_address, o.nat_port, o.start, o.end, o.tcp_flags.map(|f| f.0)));
}

/// A segment with its NAT address (index) and the start of the next segment on the same port.
#[derive(Debug, Clone, Copy)]
struct Placed {
    addr: usize,
    seg: Segment,
    next_start: Option<u64>,
}

fn segments(obs: &mut [NatFlowObs], protocol: Protocol, addrs: &[IpAddr]) -> Vec<Placed> {
    sort_flows(obs);
    let tcp = protocol == Protocol::TCP;
    let mut out: Vec<Placed> = Vec::new();
    let mut open: Option<Segment> = None;
    let mut prev_key: Option<(IpAddr, u16)> = None;
    let mut addr = 0;
    for o in obs.iter() {
        let key = (o.nat_address, o.nat_port);
        if prev_key != Some(key) {
            if let Some(seg) = open.take() {
                out.push(Placed { addr, seg, next_start: None });
            }
            addr = addrs.binary_search(&o.nat_address).unwrap_or(0);
            prev_key = Some(key);
        }
        if let Some(seg) = advance(&mut open, o, tcp) {
            out.push(Placed { addr, seg, next_start: Some(o.start) });
        }
    }
    if let Some(seg) = open {
        out.push(Placed { addr, seg, next_start: None });
    }
    out
}

/// What happens to a segment's port after its last packet, for the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Freed at once.
    Closed,
    /// Held until this second (exclusive): the idle timeout, or the port's next use.
    Held { until: u64 },
    /// Unknown, and it may have been held to the idle timeout (or past the end of the data): the
    /// posterior of its end second says how likely; held until `until` (exclusive) if so.
    Maybe { until: u64 },
    /// Unknown, but its port was used again before the idle timeout: not held.
    Reused,
}

impl Fate {
    /// The fate of a segment ending at `end`, closed as `closed` says, whose port was next used at
    /// `next_start` (`None`: not before the end of the data).
    pub(crate) fn of(end: u64, closed: Option<bool>, next_start: Option<u64>) -> Fate {
        let until = (end + IDLE_TIMEOUT_SECS + 1).min(next_start.unwrap_or(u64::MAX));
        match closed {
            Some(true) => Fate::Closed,
            Some(false) => Fate::Held { until },
            None => match next_start {
                Some(n) if n.saturating_sub(end) < IDLE_TIMEOUT_SECS => Fate::Reused,
                _ => Fate::Maybe { until },
            },
        }
    }

    /// The end observation the reuse fit reads, for an unknown fate.
    pub(crate) fn end_obs(end: u64, next_start: Option<u64>, data_end: u64) -> EndObs {
        match next_start {
            Some(n) => EndObs { end, gap: n.saturating_sub(end), reused: true },
            None => EndObs { end, gap: data_end.saturating_sub(end), reused: false },
        }
    }
}

/// Fixed-point unit of the sweep: probabilities are rounded to multiples of 2⁻³² and every sum is
/// an integer, so it does not depend on the order of the events (two paths that see the same
/// segments in different orders reach the same peaks, bit for bit).
pub(crate) const ONE: i64 = 1 << 32;

pub(crate) fn fixed(p: f64) -> i64 {
    (p.clamp(0.0, 1.0) * ONE as f64).round() as i64
}

/// A change in the number of ports held by one NAT address at one second, in [`ONE`]s: with no
/// uncertain hold (low), with expected holds (best), with every uncertain hold (high).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) at: u64,
    pub(crate) addr: usize,
    pub(crate) low: i64,
    pub(crate) best: i64,
    pub(crate) high: i64,
}

/// What the sweep needs besides the steps.
pub(crate) struct Tally {
    pub(crate) addrs: Vec<IpAddr>,
    pub(crate) hold_model: HoldModel,
    pub(crate) connections: u64,
    /// Σ over connections of the probability they were abandoned, in [`ONE`]s.
    pub(crate) abandoned: i64,
}

/// Sweeps the steps second by second (per NAT address, capped at its limit; holds stop at the end of
/// the data) and builds the estimate. Shared by the reference and the streaming estimator.
pub(crate) fn sweep(mut steps: Vec<Step>, t: Tally, ctx: &EstimateContext) -> Estimate {
    let addrs = t.addrs;
    // The limit changes where an address's span starts or ends: a moment to look at as much as a
    // step (the streaming estimator leaves out steps that change nothing, which the reference has).
    for s in &ctx.spans {
        for at in [s.from, s.to.saturating_add(1)] {
            steps.push(Step { at, addr: 0, low: 0, best: 0, high: 0 });
        }
    }
    steps.sort_unstable_by_key(|s| s.at);
    let cap = CONNECTIONS_PER_ADDRESS as i64 * ONE;
    let n = addrs.len().max(1);
    let (mut cur_low, mut cur_best, mut cur_high) = (vec![0i64; n], vec![0i64; n], vec![0i64; n]);
    // Each bound's peak is its greatest share of the limit at the time (with one limit throughout,
    // its greatest count), with that limit.
    let start = Peak { value: 0, limit: ctx.limit_max(addrs.len()) };
    let (mut peak_low, mut peak_best, mut peak_high, mut peak_at) = (start, start, start, 0u64);
    let mut per_addr_peak = vec![0i64; n];
    let mut i = 0;
    while i < steps.len() {
        let at = steps[i].at;
        if at > ctx.data_end {
            // Only ends of holds and of live segments remain: no new peak.
            break;
        }
        while i < steps.len() && steps[i].at == at {
            let s = steps[i];
            cur_low[s.addr] += s.low;
            cur_best[s.addr] += s.best;
            cur_high[s.addr] += s.high;
            i += 1;
        }
        let sum = |v: &[i64]| v.iter().map(|x| (*x).clamp(0, cap)).sum::<i64>();
        let (l, b, h) = (sum(&cur_low), sum(&cur_best), sum(&cur_high));
        let limit = ctx.limit_at(at, addrs.len());
        peak_low.raise(l, limit);
        peak_high.raise(h, limit);
        if peak_best.raise(b, limit) {
            peak_at = at;
        }
        for (p, c) in per_addr_peak.iter_mut().zip(&cur_best) {
            *p = (*p).max((*c).clamp(0, cap));
        }
    }

    let round = |x: i64| ((x.max(0) + ONE / 2) / ONE) as u64;
    let limit = peak_best.limit;
    let saturated = round(peak_best.value) >= limit;
    let (low, high) = (round(peak_low.value), round(peak_high.value).min(peak_high.limit));
    let peak = round(peak_best.value).clamp(low.min(limit), high.max(low)).min(limit);
    let connections = t.connections;
    let abandoned_share = match t.hold_model {
        HoldModel::Unknown | HoldModel::IdleTimeout => None,
        HoldModel::PortReuse | HoldModel::TcpFlags if connections == 0 => Some(0.0),
        HoldModel::PortReuse | HoldModel::TcpFlags => Some(t.abandoned as f64 / ONE as f64 / connections as f64),
    };
    Estimate {
        peak,
        peak_at,
        low: low.min(limit),
        high: high.max(peak),
        per_address: addrs.iter().copied().zip(per_addr_peak.iter().map(|&p| round(p))).collect(),
        hold_model: t.hold_model,
        abandoned_share,
        connections,
        saturated,
        limit,
    }
}

/// A bound's peak so far: its count (in [`ONE`]s) and the limit at that time.
#[derive(Debug, Clone, Copy)]
struct Peak {
    value: i64,
    limit: u64,
}

impl Peak {
    /// Takes `value` under `limit` when it is a greater share of its limit than the peak's (or the
    /// same share, and more): whether it did.
    fn raise(&mut self, value: i64, limit: u64) -> bool {
        let (new, old) = (i128::from(value) * i128::from(self.limit), i128::from(self.value) * i128::from(limit));
        let higher = new > old || (new == old && value > self.value);
        if higher {
            *self = Peak { value, limit };
        }
        higher
    }
}

/// The hold model of a destination and its reuse fit, from what its records showed.
pub(crate) fn hold_model(
    protocol: Protocol,
    has_flags: bool,
    stats: impl FnOnce() -> ReuseStats,
    ctx: &EstimateContext,
) -> (HoldModel, Option<ReuseFit>) {
    if protocol != Protocol::TCP {
        (HoldModel::IdleTimeout, None)
    } else if has_flags {
        (HoldModel::TcpFlags, None)
    } else {
        match fit_reuse(&stats()).or_else(|| ctx.fallback_share.map(ReuseFit::prior)) {
            Some(f) => (HoldModel::PortReuse, Some(f)),
            None => (HoldModel::Unknown, None),
        }
    }
}

/// The probability (in [`ONE`]s) that an unknown end in second `end` that may have been held was.
pub(crate) fn maybe_held(fit: Option<&ReuseFit>, end: u64, data_end: u64) -> i64 {
    match fit {
        Some(f) => fixed(f.posterior_at(end, data_end)),
        None => ONE / 2,
    }
}

/// The reuse statistics of one destination's records (for a pooled fallback fit across
/// destinations). TCP without flags only; empty otherwise.
pub fn reuse_observations(obs: &mut [NatFlowObs], protocol: Protocol, data_end: u64) -> ReuseStats {
    if protocol != Protocol::TCP || obs.iter().any(|o| o.tcp_flags.is_some()) {
        return ReuseStats::default();
    }
    let addrs = addresses(obs);
    unknown_ends(&segments(obs, protocol, &addrs), data_end)
}

/// The reuse statistics of the segments whose fate is unknown.
fn unknown_ends(segs: &[Placed], data_end: u64) -> ReuseStats {
    let mut stats = ReuseStats::default();
    for p in segs.iter().filter(|p| p.seg.closed.is_none()) {
        stats.add(Fate::end_obs(p.seg.end, p.next_start, data_end));
    }
    stats
}

fn addresses(obs: &[NatFlowObs]) -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = obs.iter().map(|o| o.nat_address).collect();
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

/// Estimates the peak simultaneous connections of one destination from its NAT-side records (the
/// reference: every record in memory). [`stream::DestStream`] computes the same from records seen
/// once, in time order.
pub fn estimate(obs: &mut [NatFlowObs], protocol: Protocol, ctx: &EstimateContext) -> Estimate {
    let addrs = addresses(obs);
    let segs = segments(obs, protocol, &addrs);
    let has_flags = protocol == Protocol::TCP && obs.iter().any(|o| o.tcp_flags.is_some());
    let (hold_model, fit) = hold_model(protocol, has_flags, || unknown_ends(&segs, ctx.data_end), ctx);

    let mut steps: Vec<Step> = Vec::with_capacity(segs.len() * 4);
    let mut abandoned = 0i64;
    for &Placed { addr, seg: s, next_start } in &segs {
        steps.push(Step { at: s.start, addr, low: ONE, best: ONE, high: ONE });
        steps.push(Step { at: s.end + 1, addr, low: -ONE, best: -ONE, high: -ONE });
        let (from, low, best, high, until) = match Fate::of(s.end, s.closed, next_start) {
            Fate::Closed | Fate::Reused => continue,
            Fate::Held { until } => {
                abandoned += ONE;
                (s.end + 1, ONE, ONE, ONE, until)
            }
            Fate::Maybe { until } => {
                let p = maybe_held(fit.as_ref(), s.end, ctx.data_end);
                abandoned += p;
                (s.end + 1, 0, p, ONE, until)
            }
        };
        if until > from {
            steps.push(Step { at: from, addr, low, best, high });
            steps.push(Step { at: until, addr, low: -low, best: -best, high: -high });
        }
    }
    let tally = Tally { addrs, hold_model, connections: segs.len() as u64, abandoned };
    sweep(steps, tally, ctx)
}

impl Estimate {
    /// Dropped attempts (port allocation errors) were pinned on this destination: its true peak is
    /// exactly its limit, and so is each NAT address's in use then (the gateway found no free port on
    /// any): the busiest, as many as the limit counts.
    pub fn pin_to_limit(&mut self) {
        self.saturated = true;
        self.peak = self.limit;
        self.high = self.limit;
        self.low = self.low.min(self.limit);
        let mut busiest: Vec<usize> = (0..self.per_address.len()).collect();
        busiest.sort_by_key(|&i| (std::cmp::Reverse(self.per_address[i].1), self.per_address[i].0));
        for i in busiest.into_iter().take((self.limit / CONNECTIONS_PER_ADDRESS) as usize) {
            self.per_address[i].1 = CONNECTIONS_PER_ADDRESS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 8));

    fn obs(addr: IpAddr, port: u16, start: u64, end: u64, flags: Option<u16>) -> NatFlowObs {
        NatFlowObs { nat_address: addr, nat_port: port, start, end, tcp_flags: flags.map(TcpFlags) }
    }

    fn ctx(data_end: u64) -> EstimateContext {
        EstimateContext { nat_addresses: 1, spans: Vec::new(), data_end, fallback_share: None }
    }

    #[test]
    fn closed_tcp_connections_are_counted_while_live_only() {
        // Three connections with FIN, overlapping in [20, 30].
        let mut o = vec![
            obs(A, 2000, 0, 30, Some(3)),
            obs(A, 2001, 10, 40, Some(3)),
            obs(A, 2002, 20, 50, Some(3)),
            obs(A, 2003, 100, 110, Some(3)),
        ];
        let e = estimate(&mut o, Protocol::TCP, &ctx(1000));
        assert_eq!((e.low, e.peak, e.high, e.peak_at), (3, 3, 3, 20));
        assert_eq!(e.hold_model, HoldModel::TcpFlags);
        assert_eq!(e.abandoned_share, Some(0.0));
        assert!(!e.saturated);
    }

    #[test]
    fn abandoned_tcp_connections_hold_their_port_for_the_idle_timeout() {
        // SYN only, never FIN: held until end + 350.
        let mut o = vec![obs(A, 2000, 0, 2, Some(2)), obs(A, 2001, 300, 302, Some(2)), obs(A, 2002, 400, 401, Some(2))];
        let e = estimate(&mut o, Protocol::TCP, &ctx(2000));
        // At t=300..352 the first is still held: 2 at once; at 400 the first has gone (freed at 353).
        assert_eq!((e.low, e.peak, e.high), (2, 2, 2));
        assert_eq!(e.abandoned_share, Some(1.0));
    }

    #[test]
    fn records_of_one_connection_across_windows_are_one_segment() {
        // SYN in the first window, nothing in the middle, FIN in the last: one connection.
        let mut o = vec![obs(A, 2000, 5, 59, Some(2)), obs(A, 2000, 60, 119, Some(0)), obs(A, 2000, 120, 130, Some(1))];
        let e = estimate(&mut o, Protocol::TCP, &ctx(1000));
        assert_eq!(e.connections, 1);
        assert_eq!(e.peak, 1);
        // A new SYN on the same NAT port after a FIN is a new connection.
        let mut o = vec![obs(A, 2000, 5, 10, Some(3)), obs(A, 2000, 12, 20, Some(3))];
        assert_eq!(estimate(&mut o, Protocol::TCP, &ctx(1000)).connections, 2);
    }

    #[test]
    fn a_merged_record_closes_the_connection_before_it() {
        // Window 1: SYN, window 2 continues, window 3 holds the old FIN and the new SYN (port reused).
        let mut o = vec![
            obs(A, 2000, 5, 59, Some(2)),
            obs(A, 2000, 60, 119, Some(0)),
            obs(A, 2000, 120, 170, Some(3)),
            obs(A, 2001, 500, 510, Some(3)),
        ];
        let e = estimate(&mut o, Protocol::TCP, &ctx(2000));
        assert_eq!(e.connections, 3);
        assert_eq!(e.abandoned_share, Some(0.0));
    }

    #[test]
    fn udp_mappings_hold_for_the_idle_timeout_and_continue_across_gaps() {
        let mut o = vec![
            obs(A, 3000, 0, 0, None),
            obs(A, 3000, 200, 200, None), // same mapping (gap < 350)
            obs(A, 3001, 500, 500, None),
        ];
        let e = estimate(&mut o, Protocol::UDP, &ctx(5000));
        assert_eq!(e.connections, 2);
        // Mapping 1 is held 0..=550, mapping 2 from 500: two at once.
        assert_eq!((e.low, e.peak, e.high), (2, 2, 2));
        assert_eq!(e.hold_model, HoldModel::IdleTimeout);
    }

    #[test]
    fn holds_are_cut_at_the_end_of_the_data_and_at_the_next_use() {
        let mut o = vec![obs(A, 3000, 0, 0, None), obs(A, 3001, 10, 10, None)];
        let e = estimate(&mut o, Protocol::UDP, &ctx(5));
        assert_eq!(e.peak, 1);
    }

    #[test]
    fn per_address_counts_are_capped_at_the_address_limit() {
        let mut o: Vec<NatFlowObs> =
            (0..60_000u32).map(|i| obs(A, 1024 + (i % 64_000) as u16, 0, 10, Some(3))).collect();
        o.extend((0..100u16).map(|i| obs(B, 1024 + i, 0, 10, Some(3))));
        let c = EstimateContext { nat_addresses: 2, spans: Vec::new(), data_end: 100, fallback_share: None };
        let e = estimate(&mut o, Protocol::TCP, &c);
        assert_eq!(e.per_address, vec![(A, 55_000), (B, 100)]);
        assert_eq!(e.peak, 55_100);
    }

    #[test]
    fn dropped_attempts_pin_the_peak_at_the_limit() {
        let mut o = vec![obs(A, 2000, 0, 10, None)];
        let mut e = estimate(&mut o, Protocol::TCP, &ctx(100));
        assert!(!e.saturated);
        e.pin_to_limit();
        assert!(e.saturated);
        assert_eq!((e.peak, e.high), (55_000, 55_000));
        assert_eq!(e.low, 1);
        assert_eq!(e.per_address, vec![(A, 55_000)]);
    }

    /// An address added after the destination saturated the first (the remedy, taken during the
    /// data) raises the limit from its first connection on, not before: the destination is saturated
    /// at 55,000. With every address counted all the time, it would read half full.
    #[test]
    fn an_address_added_later_raises_the_limit_from_then_on() {
        let mut o: Vec<NatFlowObs> = (0..55_000u32).map(|i| obs(A, 1024 + i as u16, 100, 200, Some(3))).collect();
        o.extend((0..3u16).map(|i| obs(B, 2000 + i, 1_000, 1_010, Some(3))));
        let spans =
            vec![AddressSpan { address: A, from: 100, to: 550 }, AddressSpan { address: B, from: 1_000, to: 1_360 }];
        let c = EstimateContext { nat_addresses: 2, spans, data_end: 2_000, fallback_share: None };
        let e = estimate(&mut o, Protocol::TCP, &c);
        assert_eq!((e.peak, e.peak_at, e.limit, e.saturated), (55_000, 100, 55_000, true));
        assert_eq!(e.per_address, vec![(A, 55_000), (B, 3)]);
        // B in use all along: 110,000 throughout.
        let all_along =
            vec![AddressSpan { address: A, from: 100, to: 550 }, AddressSpan { address: B, from: 0, to: 2_000 }];
        let e = estimate(&mut o, Protocol::TCP, &EstimateContext { spans: all_along, ..c.clone() });
        assert_eq!((e.peak, e.limit, e.saturated), (55_000, 110_000, false));
        // Without spans, every address counts all the time.
        let e = estimate(&mut o, Protocol::TCP, &EstimateContext { spans: Vec::new(), ..c });
        assert_eq!((e.peak, e.limit, e.saturated), (55_000, 110_000, false));
    }

    /// Pinned at a limit of one address, the destination's busiest address takes it, not the others.
    #[test]
    fn a_pinned_limit_goes_to_the_addresses_it_counts() {
        let mut o = vec![obs(A, 2000, 0, 10, Some(3)), obs(A, 2001, 0, 10, Some(3)), obs(B, 2000, 500, 510, Some(3))];
        let spans = vec![AddressSpan { address: A, from: 0, to: 360 }, AddressSpan { address: B, from: 500, to: 860 }];
        let c = EstimateContext { nat_addresses: 2, spans, data_end: 1_000, fallback_share: None };
        let mut e = estimate(&mut o, Protocol::TCP, &c);
        assert_eq!((e.peak, e.limit), (2, 55_000));
        e.pin_to_limit();
        assert_eq!((e.peak, e.per_address.clone()), (55_000, vec![(A, 55_000), (B, 1)]));
    }

    /// Synthetic reuse: ports picked at random from a small pool; a share `q` of connections is
    /// abandoned. The fit must recover q.
    fn synthetic(q: f64, seed: u64) -> Vec<NatFlowObs> {
        // A tiny deterministic LCG keeps natgw-core free of rand.
        let mut s = seed;
        let mut rnd = move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let pool = 400u16;
        let mut free_at = vec![0u64; pool as usize];
        let mut out = Vec::new();
        for t in 0..20_000u64 {
            if rnd() < 0.5 {
                let free: Vec<usize> = (0..pool as usize).filter(|&p| free_at[p] <= t).collect();
                if free.is_empty() {
                    continue;
                }
                let p = free[(rnd() * free.len() as f64) as usize % free.len()];
                let end = t + (rnd() * 20.0) as u64;
                let ab = rnd() < q;
                free_at[p] = if ab { end + 351 } else { end + 1 };
                out.push(obs(A, 1024 + p as u16, t, end, None));
            }
        }
        out
    }

    #[test]
    fn reuse_fit_recovers_the_abandoned_share() {
        for (q, seed) in [(0.0, 1), (0.3, 2), (0.9, 3)] {
            let mut o = synthetic(q, seed);
            let ends = reuse_observations(&mut o, Protocol::TCP, 20_100);
            let fit = fit_reuse(&ends).unwrap();
            assert!((fit.abandoned_share - q).abs() < 0.05, "q={q}: fitted {fit:?}");
        }
    }

    #[test]
    fn without_any_evidence_the_best_is_the_middle_of_the_range() {
        let mut o = vec![obs(A, 2000, 0, 10, None), obs(A, 2001, 100, 110, None)];
        let e = estimate(&mut o, Protocol::TCP, &ctx(10_000));
        assert_eq!(e.hold_model, HoldModel::Unknown);
        assert_eq!((e.low, e.high), (1, 2));
        assert_eq!(e.peak, 2); // 1 live + 0.5 held from the first = 1.5, rounded half away from zero
    }
}
