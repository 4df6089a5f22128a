//! The port-reuse fit (TCP without flags): from the ends of connections whose fate is unknown, the
//! share that was abandoned (held for the idle timeout) and the time-varying rate at which free NAT
//! ports are picked again.
//!
//! The fit reads only [`ReuseStats`]: integer counts per second. An end's posterior depends only on
//! the second it ended in and on its class (reused before the idle timeout, or not), so counts per
//! second carry everything the expectation-maximisation needs. Counts are sums: they do not depend on
//! the order the ends were seen in, a stream can build them without keeping any end, and two builds
//! of the same ends give the same fit, bit for bit.

use rustc_hash::FxHashMap as HashMap;

use crate::limits::IDLE_TIMEOUT_SECS;

/// Seconds per step of the reuse hazard.
const HAZARD_BIN_SECS: u64 = 60;

/// Reuses sooner than this after an end may have merged into one record (the 60-s aggregation window).
pub const MERGE_WINDOW_SECS: u64 = 60;

/// The longest span of ends the fit takes (31 days).
pub const MAX_FIT_SPAN_SECS: u64 = 31 * 86_400;

/// Fewer reuse gaps than this and a destination's own fit is not trusted.
pub const MIN_REUSE_GAPS: u64 = 30;

/// A segment end whose fate is unknown, for the reuse fit: when it ended, and the gap to the next
/// use of the same NAT port (`reused`) or to the end of the data (censored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndObs {
    pub end: u64,
    pub gap: u64,
    pub reused: bool,
}

/// Seconds per page of [`Seconds`].
pub(crate) const PAGE: u64 = 64;

/// Seconds a page keeps as a list before it becomes an array: a list of a few seconds costs a
/// tenth of the array, and a busy destination's pages fill up and turn to arrays soon.
const SPARSE_SECONDS: usize = 16;

/// Values per second over an open range of seconds, in pages of [`PAGE`] seconds allocated as they
/// are touched: a destination seen in a few seconds costs a few pages, whatever the time span.
///
/// A page lists the seconds touched in it until more than [`SPARSE_SECONDS`] are, then holds them
/// all. A quiet destination over a day of data touches most of the day's pages, a few seconds each:
/// with every page an array, 200 such destinations over 24 hours took 548 MB.
#[derive(Debug, Clone)]
pub(crate) struct Seconds<T> {
    pages: HashMap<u64, Page<T>>,
}

/// One page of [`Seconds`].
#[derive(Debug, Clone)]
enum Page<T> {
    /// The seconds touched (offset in the page, value), in offset order.
    Sparse(Vec<(u8, T)>),
    /// Every second of the page.
    Dense(Box<[T; PAGE as usize]>),
}

impl<T> Default for Seconds<T> {
    fn default() -> Self {
        Seconds { pages: HashMap::default() }
    }
}

impl<T: Copy + Default> Seconds<T> {
    #[inline]
    pub(crate) fn at(&mut self, t: u64) -> &mut T {
        let page = self.pages.entry(t / PAGE).or_insert_with(|| Page::Sparse(Vec::new()));
        let off = (t % PAGE) as u8;
        match *page {
            Page::Dense(ref mut all) => &mut all[usize::from(off)],
            Page::Sparse(_) => Self::listed(page, off),
        }
    }

    /// [`at`](Seconds::at) on a page that lists its seconds (out of line: a busy page is an array).
    #[inline(never)]
    fn listed(page: &mut Page<T>, off: u8) -> &mut T {
        // A full list that does not hold this second becomes an array.
        if let Page::Sparse(list) = page
            && list.len() >= SPARSE_SECONDS
            && list.binary_search_by_key(&off, |e| e.0).is_err()
        {
            let mut all = Box::new([T::default(); PAGE as usize]);
            for &(o, v) in list.iter() {
                all[usize::from(o)] = v;
            }
            *page = Page::Dense(all);
        }
        match page {
            Page::Dense(all) => &mut all[usize::from(off)],
            Page::Sparse(list) => {
                let i = list.binary_search_by_key(&off, |e| e.0).unwrap_or_else(|i| {
                    // Room for one more, then twice as much (a `Vec` starts at four): most pages of a
                    // quiet destination hold one or two seconds.
                    if list.len() == list.capacity() {
                        list.reserve_exact(list.len().max(1));
                    }
                    list.insert(i, (off, T::default()));
                    i
                });
                &mut list[i].1
            }
        }
    }

    /// The seconds touched (every second of a page that holds them all), in time order: seconds it
    /// does not give hold the default.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, T)> + '_ {
        let mut keys: Vec<u64> = self.pages.keys().copied().collect();
        keys.sort_unstable();
        keys.into_iter().flat_map(move |k| {
            let base = k * PAGE;
            let (list, all) = match &self.pages[&k] {
                Page::Sparse(list) => (Some(list), None),
                Page::Dense(all) => (None, Some(all)),
            };
            let listed = list.into_iter().flatten().map(move |&(o, v)| (base + u64::from(o), v));
            let every =
                all.into_iter().flat_map(move |a| a.iter().enumerate().map(move |(i, v)| (base + i as u64, *v)));
            listed.chain(every)
        })
    }

    /// Pages in use (for memory accounting and tests).
    #[cfg(test)]
    pub(crate) fn pages(&self) -> usize {
        self.pages.len()
    }

    /// Pages that hold every second (the others list theirs).
    #[cfg(test)]
    pub(crate) fn dense_pages(&self) -> usize {
        self.pages.values().filter(|p| matches!(p, Page::Dense(_))).count()
    }
}

/// Counts of one second.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    /// Reuses (in the conditioned population) that happened in this second.
    reuses: u32,
    /// The part of the exposure that does not depend on the responsibilities, as a difference array:
    /// +1 from 60 s after an end reused before the idle timeout, −1 at its reuse; −1 at the reuse or
    /// censoring of every end that lasted the idle timeout.
    exposure: i32,
    /// Ends in this second that lasted the idle timeout unused (reused later, or censored).
    long: u32,
    /// Ends in this second censored before the idle timeout ran out.
    censored_short: u32,
}

/// The sufficient statistics of the reuse fit: per-second counts of segment ends and reuses.
/// Mergeable (sums), order-independent, and bounded by the time span, not by the number of ends.
///
/// Every censored end of one statistics must be censored at the same second (the end of the data).
#[derive(Debug, Clone)]
pub struct ReuseStats {
    cells: Seconds<Cell>,
    /// Ends in the conditioned population (reused after [`MERGE_WINDOW_SECS`] or later, or censored).
    ends: u64,
    /// Of those, reused ones (all of them), and reused before the idle timeout.
    reused: u64,
    reused_short: u64,
    /// Sum of the gaps (to reuse or to the end of the data).
    gap_sum: u64,
    first_end: u64,
    /// The latest reuse or censoring second.
    last: u64,
    /// The second censored ends were censored at (0: none yet).
    data_end: u64,
}

impl Default for ReuseStats {
    fn default() -> Self {
        ReuseStats {
            cells: Seconds::default(),
            ends: 0,
            reused: 0,
            reused_short: 0,
            gap_sum: 0,
            first_end: u64::MAX,
            last: 0,
            data_end: 0,
        }
    }
}

impl ReuseStats {
    /// Reuse gaps counted (the fit needs [`MIN_REUSE_GAPS`]).
    pub fn gaps(&self) -> u64 {
        self.reused
    }

    /// Adds one end.
    pub fn add(&mut self, o: EndObs) {
        if o.reused {
            self.add_reused(o.end, o.gap);
        } else {
            self.add_censored(o.end, o.end + o.gap);
        }
    }

    /// An end whose port was used again `gap` seconds later.
    pub fn add_reused(&mut self, end: u64, gap: u64) {
        // Sooner reuses merge into one record: those ends are outside the conditioned population.
        if gap < MERGE_WINDOW_SECS {
            return;
        }
        self.count(end, gap);
        self.reused += 1;
        let at = end + gap;
        self.cells.at(at).reuses += 1;
        if gap < IDLE_TIMEOUT_SECS {
            self.reused_short += 1;
            self.cells.at(end + MERGE_WINDOW_SECS).exposure += 1;
            self.cells.at(at).exposure -= 1;
        } else {
            self.cells.at(end).long += 1;
            self.cells.at(at).exposure -= 1;
        }
    }

    /// An end with no later use of its port up to `data_end`.
    pub fn add_censored(&mut self, end: u64, data_end: u64) {
        debug_assert!(self.data_end == 0 || self.data_end == data_end, "one censoring second per statistics");
        self.data_end = self.data_end.max(data_end);
        let gap = data_end.saturating_sub(end);
        self.count(end, gap);
        if gap < IDLE_TIMEOUT_SECS {
            self.cells.at(end).censored_short += 1;
        } else {
            self.cells.at(end).long += 1;
            self.cells.at(data_end).exposure -= 1;
        }
    }

    /// The first half of an end known to last the idle timeout unused (its port's next use, or the
    /// end of the data, comes at least [`IDLE_TIMEOUT_SECS`] later): what [`add_reused`] or
    /// [`add_censored`] would count at `end`. The other half, [`add_long_reuse`] or
    /// [`add_long_censored`], must follow before the statistics are read (until then the sum of the
    /// gaps is short of the missing halves, modulo 2⁶⁴).
    ///
    /// [`add_reused`]: ReuseStats::add_reused
    /// [`add_censored`]: ReuseStats::add_censored
    /// [`add_long_reuse`]: ReuseStats::add_long_reuse
    /// [`add_long_censored`]: ReuseStats::add_long_censored
    pub(crate) fn add_long_end(&mut self, end: u64) {
        self.ends += 1;
        self.gap_sum = self.gap_sum.wrapping_sub(end);
        self.first_end = self.first_end.min(end);
        self.cells.at(end).long += 1;
    }

    /// The second half of an end of [`add_long_end`](ReuseStats::add_long_end): its port was used
    /// again at `at`.
    pub(crate) fn add_long_reuse(&mut self, at: u64) {
        self.gap_sum = self.gap_sum.wrapping_add(at);
        self.reused += 1;
        self.last = self.last.max(at);
        let cell = self.cells.at(at);
        cell.reuses += 1;
        cell.exposure -= 1;
    }

    /// The second half of `n` ends of [`add_long_end`](ReuseStats::add_long_end) whose ports were
    /// not used again up to `data_end`.
    pub(crate) fn add_long_censored(&mut self, n: u32, data_end: u64) {
        if n == 0 {
            return;
        }
        debug_assert!(self.data_end == 0 || self.data_end == data_end, "one censoring second per statistics");
        self.data_end = self.data_end.max(data_end);
        self.gap_sum = self.gap_sum.wrapping_add(u64::from(n).wrapping_mul(data_end));
        self.last = self.last.max(data_end);
        let cell = self.cells.at(data_end);
        cell.exposure = cell.exposure.wrapping_sub_unsigned(n);
    }

    fn count(&mut self, end: u64, gap: u64) {
        self.ends += 1;
        // Wrapping: a stream may hold ends of `add_long_end` whose second halves are yet to come.
        self.gap_sum = self.gap_sum.wrapping_add(gap);
        self.first_end = self.first_end.min(end);
        self.last = self.last.max(end + gap);
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &ReuseStats) {
        for (t, c) in other.cells.iter() {
            if c.reuses | c.long | c.censored_short != 0 || c.exposure != 0 {
                let mine = self.cells.at(t);
                mine.reuses += c.reuses;
                mine.exposure += c.exposure;
                mine.long += c.long;
                mine.censored_short += c.censored_short;
            }
        }
        self.ends += other.ends;
        self.reused += other.reused;
        self.reused_short += other.reused_short;
        self.gap_sum = self.gap_sum.wrapping_add(other.gap_sum);
        self.first_end = self.first_end.min(other.first_end);
        self.last = self.last.max(other.last);
        self.data_end = self.data_end.max(other.data_end);
    }
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

    /// The closed-port reuse hazard over the window an abandoned port could not be reused in.
    fn window_hazard(&self, o: EndObs) -> f64 {
        self.integral(o.end + self.min_gap.min(IDLE_TIMEOUT_SECS), o.end + o.gap.min(IDLE_TIMEOUT_SECS))
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
        q / (q + (1.0 - q) * (-self.window_hazard(o)).exp())
    }

    /// Posterior of an end in second `end` that lasted the idle timeout unused (or was censored at
    /// `data_end`): the same for every such end of that second.
    pub fn posterior_at(&self, end: u64, data_end: u64) -> f64 {
        self.posterior(EndObs { end, gap: data_end.saturating_sub(end), reused: false })
    }
}

/// Fits the port-reuse model by expectation-maximisation: a closed port is picked again at the
/// (time-varying, per-minute) reuse hazard from its end, an abandoned one only from 350 s after it.
/// A reuse inside the same aggregation window merges two connections into one record and leaves no
/// gap to see, so ends are conditioned on no reuse within [`MERGE_WINDOW_SECS`] (left truncation;
/// the hazard is memoryless). Returns `None` when fewer than [`MIN_REUSE_GAPS`] gaps were seen.
pub fn fit_reuse(stats: &ReuseStats) -> Option<ReuseFit> {
    if stats.reused < MIN_REUSE_GAPS || stats.ends == 0 {
        return None;
    }
    let (hold, min_gap, bin) = (IDLE_TIMEOUT_SECS, MERGE_WINDOW_SECS, HAZARD_BIN_SECS);
    let t0 = stats.first_end;
    let t1 = stats.last + 1;
    // Per-second arrays over the span: a span of more than a few weeks is not one incident's data but
    // a stray timestamp; no fit then (the estimate says the hold model is unknown).
    if t1 - t0 > MAX_FIT_SPAN_SECS {
        return None;
    }
    let len = (t1 - t0) as usize;
    let bins = len.div_ceil(bin as usize);
    // Dense views of the counts: reuse events per bin and the fixed exposure never change; the ends
    // that lasted the idle timeout (or were censored) get their responsibilities each round.
    let mut events = vec![0.0f64; bins];
    let mut base = vec![0.0f64; len + 1];
    // (second, long ends, censored-short ends)
    let mut ends: Vec<(u64, f64, f64)> = Vec::new();
    for (t, c) in stats.cells.iter() {
        if t < t0 || t >= t1 {
            continue;
        }
        let i = (t - t0) as usize;
        events[i / bin as usize] += f64::from(c.reuses);
        base[i] += f64::from(c.exposure);
        if c.long | c.censored_short != 0 {
            ends.push((t, f64::from(c.long), f64::from(c.censored_short)));
        }
    }
    let data_end = stats.last;
    let mut fit = ReuseFit { abandoned_share: 0.5, gaps: stats.reused, hazard: Vec::new(), t0, min_gap };
    // Start from a constant hazard.
    let mut rate = vec![stats.reused as f64 / (stats.gap_sum as f64).max(1.0); bins];
    let mut diff = vec![0.0f64; len + 1];
    let mut exposure = vec![0.0f64; bins];
    let idx = |t: u64| (t - t0) as usize;
    // The hazard always follows `rate`: made again (in place: a day of seconds is 0.7 MB) each time
    // the rate changes.
    cumulative(&mut fit.hazard, &rate, len, bin);
    for _ in 0..500 {
        // E-step and exposure (seconds at risk of reuse, weighted by component) per second.
        diff.copy_from_slice(&base);
        let mut rsum = 0.0;
        for &(t, long, short) in &ends {
            let r = fit.posterior_at(t, data_end);
            rsum += r * (long + short);
            if long > 0.0 {
                // Closed from 60 s after the end, abandoned from the idle timeout, to the reuse (whose
                // −1 is in `base`).
                diff[idx(t + min_gap)] += long * (1.0 - r);
                diff[idx(t + hold)] += long * r;
            }
            if short > 0.0 && data_end >= t + min_gap {
                diff[idx(t + min_gap)] += short * (1.0 - r);
                diff[idx(data_end)] -= short * (1.0 - r);
            }
        }
        exposure.iter_mut().for_each(|x| *x = 0.0);
        let mut cur = 0.0;
        for (t, d) in diff.iter().take(len).enumerate() {
            cur += d;
            exposure[t / bin as usize] += cur;
        }
        for ((r, n), x) in rate.iter_mut().zip(&events).zip(&exposure) {
            *r = if *x > 1e-9 { n / x } else { 0.0 };
        }
        // Conditional maximisation in q given the hazard: the likelihood is concave in q.
        cumulative(&mut fit.hazard, &rate, len, bin);
        let q = best_share(stats, &ends, &fit, rsum / stats.ends as f64);
        let done = (q - fit.abandoned_share).abs() < 1e-7;
        fit.abandoned_share = q;
        if done {
            break;
        }
    }
    Some(fit)
}

/// The abandoned share that maximises the likelihood of the ends under the fit's hazard: the root of
/// the (decreasing) score Σ (a − c) / (q·a + (1 − q)·c), where a and c are an end's likelihoods if
/// abandoned and if closed (ratio c/a = e^−h; a = 0 for an end reused before the idle timeout).
fn best_share(stats: &ReuseStats, ends: &[(u64, f64, f64)], fit: &ReuseFit, start: f64) -> f64 {
    // (weight, a, c): the ends reused early all share (0, 1).
    let mut terms: Vec<(f64, f64, f64)> = Vec::with_capacity(ends.len() + 1);
    terms.push((stats.reused_short as f64, 0.0, 1.0));
    for &(t, long, short) in ends {
        let h = fit.window_hazard(EndObs { end: t, gap: stats.last.saturating_sub(t), reused: false });
        terms.push((long + short, 1.0, (-h).exp()));
    }
    let score = |q: f64| -> (f64, f64) {
        let (mut d1, mut d2) = (0.0, 0.0);
        for &(w, a, c) in &terms {
            let den = q * a + (1.0 - q) * c;
            if den > 0.0 && w > 0.0 {
                let t = (a - c) / den;
                d1 += w * t;
                d2 -= w * t * t;
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

/// Cumulative hazard per second (index 0 = t0) from a per-bin rate, into `h`.
fn cumulative(h: &mut Vec<f64>, rate: &[f64], len: usize, bin_secs: u64) {
    h.clear();
    h.reserve(len + 1);
    let mut acc = 0.0;
    h.push(0.0);
    for t in 0..len {
        acc += rate[t / bin_secs as usize];
        h.push(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_do_not_depend_on_order_or_grouping() {
        let ends: Vec<EndObs> = (0..200u64)
            .map(|i| EndObs { end: 1000 + i * 7 % 900, gap: 30 + (i * 37) % 700, reused: i % 5 != 0 })
            .map(|o| if o.reused { o } else { EndObs { gap: 2000 - o.end, ..o } })
            .collect();
        let mut a = ReuseStats::default();
        ends.iter().for_each(|o| a.add(*o));
        let (mut b1, mut b2) = (ReuseStats::default(), ReuseStats::default());
        for (i, o) in ends.iter().rev().enumerate() {
            if i % 3 == 0 { b1.add(*o) } else { b2.add(*o) }
        }
        b1.merge(&b2);
        let (fa, fb) = (fit_reuse(&a).unwrap(), fit_reuse(&b1).unwrap());
        assert_eq!(fa, fb);
        assert!(a.cells.pages() >= 10);
    }

    /// Seconds touched in any order read back as a map of them does, lists turning to arrays past
    /// [`SPARSE_SECONDS`]; a few seconds per page stay lists.
    #[test]
    fn seconds_read_back_what_was_written_in_time_order() {
        let mut rnd = crate::testing::rng(3);
        for spread in [64, 640, 64 * 200, 86_400] {
            let mut s: Seconds<i64> = Seconds::default();
            let mut want = std::collections::BTreeMap::new();
            for _ in 0..3000 {
                let (t, d) = (1_780_000_000 + rnd(spread), rnd(100) as i64 - 50);
                *s.at(t) += d;
                *want.entry(t).or_insert(0) += d;
            }
            let got: Vec<(u64, i64)> = s.iter().filter(|(t, v)| *v != 0 || want.contains_key(t)).collect();
            let want: Vec<(u64, i64)> = want.into_iter().collect();
            assert_eq!(got, want, "spread {spread}");
            assert!(s.iter().all(|(t, v)| v == 0 || got.binary_search(&(t, v)).is_ok()));
            let times: Vec<u64> = s.iter().map(|(t, _)| t).collect();
            assert!(times.windows(2).all(|w| w[0] < w[1]), "spread {spread}: not in time order");
            // 3,000 seconds fill one page or ten; over 200 pages, some are full; over a day, pages
            // have a few each.
            let dense = s.dense_pages();
            match spread {
                64 | 640 => assert_eq!(dense, s.pages(), "spread {spread}"),
                86_400 => assert_eq!(dense, 0, "spread {spread}"),
                _ => assert!(dense > 0 && dense < s.pages(), "spread {spread}: {dense} of {}", s.pages()),
            }
        }
    }

    #[test]
    fn ends_reused_inside_the_merge_window_are_outside_the_population() {
        let mut s = ReuseStats::default();
        s.add_reused(100, 59);
        assert_eq!((s.ends, s.gaps()), (0, 0));
        s.add_reused(100, 60);
        assert_eq!((s.ends, s.gaps()), (1, 1));
    }
}
