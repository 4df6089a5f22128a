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

/// The port-reuse model fitted to one destination's gaps (TCP without flags): the share of segment
/// ends that were abandoned, and the time-varying rate at which a free port is picked again
/// (piecewise constant per minute: it follows the destination's load).
#[derive(Debug, Clone, PartialEq)]
pub struct ReuseFit {
    /// Share of segment ends that were abandoned (held for the idle timeout).
    pub abandoned_share: f64,
    /// How many reuse gaps the fit saw.
    pub gaps: u64,
    /// Cumulative reuse hazard per second from `t0` (empty for a pooled prior-only fit).
    hazard: Vec<f64>,
    t0: u64,
    /// Reuses sooner than this after an end are not observable (they merge into one record), so every
    /// end is conditioned on none: a closed port's exposure starts this long after its end.
    min_gap: u64,
}

impl ReuseFit {
    /// A fit that knows only the abandoned share (a prior pooled from other destinations).
    pub fn prior(abandoned_share: f64) -> ReuseFit {
        ReuseFit { abandoned_share, gaps: 0, hazard: Vec::new(), t0: 0, min_gap: 0 }
    }

    /// Integrated reuse hazard over [a, b).
    fn integral(&self, a: u64, b: u64) -> f64 {
        if self.hazard.is_empty() || b <= a {
            return 0.0;
        }
        let at = |t: u64| {
            let i = t.saturating_sub(self.t0) as usize;
            self.hazard[i.min(self.hazard.len() - 1)]
        };
        at(b) - at(a)
    }

    /// Posterior probability that the end `o` was abandoned.
    pub fn posterior(&self, o: EndObs) -> f64 {
        let q = self.abandoned_share;
        if o.reused && o.gap < IDLE_TIMEOUT_SECS {
            return 0.0;
        }
        if q <= 0.0 || q >= 1.0 {
            return q.clamp(0.0, 1.0);
        }
        // Closed/abandoned likelihood ratio: a closed port could have been reused in the window an
        // abandoned one could not.
        let h = self.integral(o.end + self.min_gap.min(IDLE_TIMEOUT_SECS), o.end + o.gap.min(IDLE_TIMEOUT_SECS));
        q / (q + (1.0 - q) * (-h).exp())
    }
}

/// Seconds per step of the reuse hazard.
const HAZARD_BIN_SECS: u64 = 60;

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

/// Inputs shared by all destinations of one analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateContext {
    /// NAT addresses of the gateway (the limit is 55,000 × this).
    pub nat_addresses: u32,
    /// The last second the data covers: holds are not counted past it.
    pub data_end: u64,
    /// The abandoned share assumed for TCP without flags when the destination's own data has too few
    /// reuse gaps (fitted over all destinations).
    pub fallback_share: Option<f64>,
}

/// Gap (seconds) under which two records of one NAT 5-tuple without TCP flags are one connection
/// continuing across window boundaries.
pub const CONTINUATION_GAP_SECS: u64 = 10;

/// Fewer reuse gaps than this and a destination's own fit is not trusted.
pub const MIN_REUSE_GAPS: u64 = 30;

/// A segment of continuous use of one NAT port for the destination.
#[derive(Debug, Clone, Copy)]
struct Segment {
    addr: usize,
    start: u64,
    end: u64,
    /// Some(true): closed (freed at once); Some(false): held for the idle timeout; None: unknown.
    closed: Option<bool>,
    /// Start of the next segment on the same NAT port, if any.
    next_start: Option<u64>,
}

/// A segment end whose fate is unknown, for the reuse fit: when it ended, and the gap to the next
/// use of the same NAT port (`reused`) or to the end of the data (censored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndObs {
    pub end: u64,
    pub gap: u64,
    pub reused: bool,
}

/// Sorts NAT flows the way the estimator walks them: by NAT 5-tuple, then time (the flags complete the
/// key, so the order does not depend on how the records were gathered). The sort is stable and finds
/// sorted runs: flows sorted in parts (by several threads) and concatenated are merged in linear time.
pub fn sort_flows(obs: &mut [NatFlowObs]) {
    obs.sort_by_key(|o| (o.nat_address, o.nat_port, o.start, o.end, o.tcp_flags.map(|f| f.0)));
}

fn segments(obs: &mut [NatFlowObs], protocol: Protocol, addrs: &[IpAddr]) -> Vec<Segment> {
    sort_flows(obs);
    let tcp = protocol == Protocol::TCP;
    let mut out: Vec<Segment> = Vec::new();
    let mut prev_key: Option<(IpAddr, u16)> = None;
    for o in obs.iter() {
        let key = (o.nat_address, o.nat_port);
        let addr = addrs.binary_search(&o.nat_address).unwrap_or(0);
        let flags = o.tcp_flags;
        let closes = flags.map(TcpFlags::closes);
        if prev_key == Some(key)
            && let Some(last) = out.last_mut()
        {
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
                    last.closed = closes;
                }
                continue;
            }
            // A port reused inside one window merges the old connection's FIN with the new one's
            // SYN in one record: the old connection closed there.
            if tcp && flags.is_some_and(|f| f.opens() && f.closes()) && gap <= MERGE_WINDOW_SECS {
                last.closed = Some(true);
            }
            last.next_start = Some(o.start);
        }
        prev_key = Some(key);
        let closed = if !tcp { Some(false) } else { closes };
        out.push(Segment { addr, start: o.start, end: o.end, closed, next_start: None });
    }
    out
}

/// The reuse observations of segment ends whose fate is unknown.
fn end_observations(segs: &[Segment], data_end: u64) -> impl Iterator<Item = EndObs> + '_ {
    segs.iter().filter(|s| s.closed.is_none()).map(move |s| end_obs(s, data_end))
}

fn end_obs(s: &Segment, data_end: u64) -> EndObs {
    match s.next_start {
        Some(n) => EndObs { end: s.end, gap: n.saturating_sub(s.end), reused: true },
        None => EndObs { end: s.end, gap: data_end.saturating_sub(s.end), reused: false },
    }
}

/// Fits the port-reuse model by expectation-maximisation: a closed port is picked again at the
/// (time-varying, per-minute) reuse hazard from its end, an abandoned one only from 350 s after it.
/// A reuse inside the same aggregation window merges two connections into one record and leaves no
/// gap to see, so ends are conditioned on no reuse within `MERGE_WINDOW_SECS` (left truncation; the
/// hazard is memoryless). Returns `None` when fewer than [`MIN_REUSE_GAPS`] gaps were seen.
pub fn fit_reuse(ends: &[EndObs]) -> Option<ReuseFit> {
    fit_reuse_with(ends, HAZARD_BIN_SECS, MERGE_WINDOW_SECS)
}

/// Reuses sooner than this after an end may have merged into one record (the 60-s aggregation window).
pub const MERGE_WINDOW_SECS: u64 = 60;

fn fit_reuse_with(ends: &[EndObs], bin_secs: u64, min_gap: u64) -> Option<ReuseFit> {
    // Ends reused within min_gap are closed for certain and outside the conditioned population.
    let ends: Vec<EndObs> = ends.iter().copied().filter(|e| !e.reused || e.gap >= min_gap).collect();
    let ends = ends.as_slice();
    let gaps = ends.iter().filter(|e| e.reused).count() as u64;
    if gaps < MIN_REUSE_GAPS {
        return None;
    }
    let hold = IDLE_TIMEOUT_SECS;
    let t0 = ends.iter().map(|e| e.end).min()?;
    let t1 = ends.iter().map(|e| e.end + e.gap).max()? + 1;
    let len = (t1 - t0) as usize;
    let bins = len.div_ceil(bin_secs as usize);
    // Reuse events per bin do not depend on the responsibilities.
    let mut events = vec![0.0f64; bins];
    for e in ends.iter().filter(|e| e.reused) {
        events[((e.end + e.gap - t0) / bin_secs) as usize] += 1.0;
    }
    let mut fit = ReuseFit { abandoned_share: 0.5, gaps, hazard: Vec::new(), t0, min_gap };
    // Start from a constant hazard.
    let total: f64 = ends.iter().map(|e| e.gap as f64).sum();
    let mut rate = vec![gaps as f64 / total.max(1.0); bins];
    let mut diff = vec![0.0f64; len + 1];
    for _ in 0..500 {
        fit.hazard = cumulative(&rate, len, bin_secs);
        // E-step and exposure (seconds at risk of reuse, weighted by component) per second.
        diff.iter_mut().for_each(|d| *d = 0.0);
        let mut rsum = 0.0;
        for &e in ends {
            let r = fit.posterior(e);
            rsum += r;
            let (a, b) = ((e.end - t0) as usize, (e.end + e.gap - t0) as usize);
            let a_closed = (a + min_gap as usize).min(b);
            diff[a_closed] += 1.0 - r;
            diff[b] -= 1.0 - r;
            if e.gap > hold {
                diff[a + hold as usize] += r;
                diff[b] -= r;
            }
        }
        let mut exposure = vec![0.0f64; bins];
        let mut cur = 0.0;
        for (t, d) in diff.iter().take(len).enumerate() {
            cur += d;
            exposure[t / bin_secs as usize] += cur;
        }
        rate = events.iter().zip(&exposure).map(|(n, x)| if *x > 1e-9 { n / x } else { 0.0 }).collect();
        // Conditional maximisation in q given the hazard: the likelihood is concave in q.
        fit.hazard = cumulative(&rate, len, bin_secs);
        let q = best_share(ends, &fit, rsum / ends.len() as f64);
        let done = (q - fit.abandoned_share).abs() < 1e-7;
        fit.abandoned_share = q;
        if done {
            break;
        }
    }
    fit.hazard = cumulative(&rate, len, bin_secs);
    Some(fit)
}

/// The abandoned share that maximises the likelihood of `ends` under the fit's hazard: the root of
/// the (decreasing) score Σ (a − c) / (q·a + (1 − q)·c), where a and c are an end's likelihoods if
/// abandoned and if closed (ratio c/a = e^−h; a = 0 for an end reused before the idle timeout).
fn best_share(ends: &[EndObs], fit: &ReuseFit, start: f64) -> f64 {
    let terms: Vec<(f64, f64)> = ends
        .iter()
        .map(|&o| {
            if o.reused && o.gap < IDLE_TIMEOUT_SECS {
                (0.0, 1.0)
            } else {
                let h = fit.integral(o.end + fit.min_gap.min(IDLE_TIMEOUT_SECS), o.end + o.gap.min(IDLE_TIMEOUT_SECS));
                (1.0, (-h).exp())
            }
        })
        .collect();
    let score = |q: f64| -> (f64, f64) {
        let (mut d1, mut d2) = (0.0, 0.0);
        for &(a, c) in &terms {
            let den = q * a + (1.0 - q) * c;
            if den > 0.0 {
                let t = (a - c) / den;
                d1 += t;
                d2 -= t * t;
            }
        }
        (d1, d2)
    };
    let eps = 1e-9;
    if score(eps).0 <= 0.0 {
        return 0.0;
    }
    if score(1.0 - eps).0 >= 0.0 {
        return 1.0;
    }
    let (mut lo, mut hi, mut q) = (eps, 1.0 - eps, start.clamp(1e-6, 1.0 - 1e-6));
    for _ in 0..100 {
        let (d1, d2) = score(q);
        if d1 > 0.0 {
            lo = q
        } else {
            hi = q
        }
        let newton = if d2 < 0.0 { q - d1 / d2 } else { f64::NAN };
        let next = if newton.is_finite() && newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
        if (next - q).abs() < 1e-10 {
            return next;
        }
        q = next;
    }
    q
}

/// Cumulative hazard per second (index 0 = t0) from a per-bin rate.
fn cumulative(rate: &[f64], len: usize, bin_secs: u64) -> Vec<f64> {
    let mut h = Vec::with_capacity(len + 1);
    let mut acc = 0.0;
    h.push(0.0);
    for t in 0..len {
        acc += rate[t / bin_secs as usize];
        h.push(acc);
    }
    h
}

/// The reuse observations of one destination's records (for a pooled fallback fit across
/// destinations). TCP without flags only; empty otherwise.
pub fn reuse_observations(obs: &mut [NatFlowObs], protocol: Protocol, data_end: u64) -> Vec<EndObs> {
    if protocol != Protocol::TCP || obs.iter().any(|o| o.tcp_flags.is_some()) {
        return Vec::new();
    }
    let mut addrs: Vec<IpAddr> = obs.iter().map(|o| o.nat_address).collect();
    addrs.sort_unstable();
    addrs.dedup();
    let segs = segments(obs, protocol, &addrs);
    end_observations(&segs, data_end).collect()
}

/// Estimates the peak simultaneous connections of one destination from its NAT-side records.
pub fn estimate(obs: &mut [NatFlowObs], protocol: Protocol, ctx: &EstimateContext) -> Estimate {
    let mut addrs: Vec<IpAddr> = obs.iter().map(|o| o.nat_address).collect();
    addrs.sort_unstable();
    addrs.dedup();
    let limit_total = CONNECTIONS_PER_ADDRESS * u64::from(ctx.nat_addresses.max(addrs.len() as u32).max(1));
    let segs = segments(obs, protocol, &addrs);
    let has_flags = protocol == Protocol::TCP && obs.iter().any(|o| o.tcp_flags.is_some());

    let unknown: Vec<EndObs> = end_observations(&segs, ctx.data_end).collect();
    let (hold_model, fit) = if protocol != Protocol::TCP {
        (HoldModel::IdleTimeout, None)
    } else if has_flags {
        (HoldModel::TcpFlags, None)
    } else {
        match fit_reuse(&unknown).or_else(|| ctx.fallback_share.map(ReuseFit::prior)) {
            Some(f) => (HoldModel::PortReuse, Some(f)),
            None => (HoldModel::Unknown, None),
        }
    };

    // Events per address: (time, address, d_low, d_best, d_high).
    let mut events: Vec<(u64, usize, f64, f64, f64)> = Vec::with_capacity(segs.len() * 4);
    let mut abandoned = 0.0;
    for s in &segs {
        events.push((s.start, s.addr, 1.0, 1.0, 1.0));
        events.push((s.end + 1, s.addr, -1.0, -1.0, -1.0));
        let hold_end =
            (s.end + IDLE_TIMEOUT_SECS).min(s.next_start.map_or(u64::MAX, |n| n.saturating_sub(1))).min(ctx.data_end);
        let (low, best, high) = match s.closed {
            Some(true) => (0.0, 0.0, 0.0),
            Some(false) => (1.0, 1.0, 1.0),
            None => {
                let obs = end_obs(s, ctx.data_end);
                let possible = !(obs.reused && obs.gap < IDLE_TIMEOUT_SECS);
                let p = match &fit {
                    Some(f) => f.posterior(obs),
                    None if possible => 0.5,
                    None => 0.0,
                };
                (0.0, p, if possible { 1.0 } else { 0.0 })
            }
        };
        abandoned += if s.closed == Some(false) && protocol == Protocol::TCP { 1.0 } else { best };
        if hold_end > s.end && high > 0.0 {
            events.push((s.end + 1, s.addr, low, best, high));
            events.push((hold_end + 1, s.addr, -low, -best, -high));
        }
    }
    events.sort_unstable_by_key(|e| e.0);

    let cap = CONNECTIONS_PER_ADDRESS as f64;
    let n = addrs.len().max(1);
    let (mut cur_low, mut cur_best, mut cur_high) = (vec![0.0f64; n], vec![0.0f64; n], vec![0.0f64; n]);
    let (mut peak_low, mut peak_best, mut peak_high, mut peak_at) = (0.0f64, 0.0f64, 0.0f64, 0u64);
    let mut per_addr_peak = vec![0.0f64; n];
    let mut i = 0;
    while i < events.len() {
        let t = events[i].0;
        while i < events.len() && events[i].0 == t {
            let (_, a, dl, db, dh) = events[i];
            cur_low[a] += dl;
            cur_best[a] += db;
            cur_high[a] += dh;
            i += 1;
        }
        let sum = |v: &[f64]| v.iter().map(|x| x.clamp(0.0, cap)).sum::<f64>();
        let (l, b, h) = (sum(&cur_low), sum(&cur_best), sum(&cur_high));
        peak_low = peak_low.max(l);
        peak_high = peak_high.max(h);
        if b > peak_best + 1e-9 {
            peak_best = b;
            peak_at = t;
        }
        for (p, c) in per_addr_peak.iter_mut().zip(&cur_best) {
            *p = p.max(c.clamp(0.0, cap));
        }
    }

    let round = |x: f64| x.round().max(0.0) as u64;
    let saturated = round(peak_best) >= limit_total;
    let (low, high) = (round(peak_low), round(peak_high).min(limit_total));
    let peak = round(peak_best).clamp(low.min(limit_total), high.max(low)).min(limit_total);
    let connections = segs.len() as u64;
    let abandoned_share = match hold_model {
        HoldModel::Unknown | HoldModel::IdleTimeout => None,
        HoldModel::PortReuse => Some(if connections == 0 { 0.0 } else { abandoned / connections as f64 }),
        HoldModel::TcpFlags => Some(if connections == 0 { 0.0 } else { abandoned / connections as f64 }),
    };
    Estimate {
        peak,
        peak_at,
        low: low.min(limit_total),
        high: high.max(peak),
        per_address: addrs.iter().copied().zip(per_addr_peak.iter().map(|&p| round(p))).collect(),
        hold_model,
        abandoned_share,
        connections,
        saturated,
        limit: limit_total,
    }
}

impl Estimate {
    /// Dropped attempts (port allocation errors) were pinned on this destination: its true peak is
    /// exactly its limit.
    pub fn pin_to_limit(&mut self) {
        self.saturated = true;
        self.peak = self.limit;
        self.high = self.limit;
        self.low = self.low.min(self.limit);
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
        EstimateContext { nat_addresses: 1, data_end, fallback_share: None }
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
        let c = EstimateContext { nat_addresses: 2, data_end: 100, fallback_share: None };
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
            let ends = reuse_observations(&mut o, Protocol::TCP, 20_000);
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
