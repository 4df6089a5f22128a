//! A NAT gateway's CloudWatch metrics as evidence: the minutes with port allocation errors grouped
//! into error windows, the flow-log ranges worth reading for them, and per-metric summaries for the
//! report. Pure: the series come from `natgw-aws` (or a test), the time from the caller.

use serde::Serialize;

use crate::limits::IDLE_TIMEOUT_SECS;
use crate::time::Timestamp;
use crate::topology::MetricSeries;

/// The metric whose any non-zero value is the problem.
pub const ERROR_PORT_ALLOCATION: &str = "ErrorPortAllocation";

/// Error minutes closer than this are one window.
pub const WINDOW_MERGE_GAP_SECS: u64 = 300;

/// Contiguous minutes (gaps under [`WINDOW_MERGE_GAP_SECS`]) with port allocation errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ErrorWindow {
    /// Start of the first error period.
    pub start: Timestamp,
    /// End of the last error period (exclusive).
    pub end: Timestamp,
    /// ErrorPortAllocation summed over the window.
    pub errors: u64,
}

/// One metric's series, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MetricSummary {
    pub metric: String,
    pub statistic: String,
    /// Sum of the points (meaningful for `Sum` statistics).
    pub total: f64,
    /// The largest point and when.
    pub max: f64,
    pub max_at: Option<Timestamp>,
    /// `[unix seconds, value]`, oldest first; periods without data have no point.
    pub points: Vec<(u64, f64)>,
}

impl MetricSummary {
    /// Summarises one series.
    pub fn of(s: &MetricSeries) -> MetricSummary {
        let mut max = 0.0f64;
        let mut max_at = None;
        for &(t, v) in &s.points {
            if max_at.is_none() || v > max {
                max = v;
                max_at = Some(Timestamp(t));
            }
        }
        MetricSummary {
            metric: s.metric.clone(),
            statistic: s.statistic.clone(),
            total: s.points.iter().map(|p| p.1).sum(),
            max,
            max_at,
            points: s.points.clone(),
        }
    }
}

/// The `ErrorPortAllocation` series among `series`, if fetched.
pub fn error_series(series: &[MetricSeries]) -> Option<&MetricSeries> {
    series.iter().find(|s| s.metric == ERROR_PORT_ALLOCATION)
}

/// Groups the periods with errors into windows: periods of `period` seconds starting at each point's
/// time, merged when less than [`WINDOW_MERGE_GAP_SECS`] apart. Points may come in any order.
pub fn error_windows(points: &[(u64, f64)], period: u64) -> Vec<ErrorWindow> {
    let mut hot: Vec<(u64, f64)> = points.iter().copied().filter(|p| p.1 > 0.0).collect();
    hot.sort_by_key(|p| p.0);
    let mut out: Vec<ErrorWindow> = Vec::new();
    for (t, v) in hot {
        let errors = v.round() as u64;
        match out.last_mut() {
            Some(w) if t < w.end.0 + WINDOW_MERGE_GAP_SECS => {
                w.end = Timestamp(w.end.0.max(t + period));
                w.errors += errors;
            }
            _ => out.push(ErrorWindow { start: Timestamp(t), end: Timestamp(t + period), errors }),
        }
    }
    out
}

/// The flow-log range `[start, end]` to read for one window: a connection holding a port during the
/// window may have sent its last packet up to the idle timeout before it, in a record that can start
/// one aggregation interval earlier still.
pub fn log_range(w: &ErrorWindow, aggregation_secs: u64) -> (u64, u64) {
    (w.start.0.saturating_sub(IDLE_TIMEOUT_SECS + aggregation_secs), w.end.0 + aggregation_secs)
}

/// The ranges to read for `windows`, overlapping ranges merged, oldest first.
pub fn log_ranges(windows: &[ErrorWindow], aggregation_secs: u64) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = windows.iter().map(|w| log_range(w, aggregation_secs)).collect();
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Sparkline columns for `[start, end)` at `period` seconds: one per period, at most 60.
pub fn sparkline_columns(start: u64, end: u64, period: u32) -> usize {
    (end.saturating_sub(start) / u64::from(period.max(1))).clamp(1, 60) as usize
}

/// `▁▂▃▅▇`-style sparkline of `points` over `[start, end)` in `width` columns (max per column), with
/// `·` for columns without data. Empty when the range is empty.
pub fn sparkline(points: &[(u64, f64)], start: u64, end: u64, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if end <= start || width == 0 {
        return String::new();
    }
    let span = end - start;
    let mut cols: Vec<Option<f64>> = vec![None; width];
    for &(t, v) in points.iter().filter(|p| p.0 >= start && p.0 < end) {
        let i = (((t - start) as u128 * width as u128) / span as u128) as usize;
        let c = &mut cols[i.min(width - 1)];
        *c = Some(c.map_or(v, |m: f64| m.max(v)));
    }
    let top = cols.iter().flatten().copied().fold(0.0f64, f64::max);
    cols.iter()
        .map(|c| match c {
            None => '·',
            Some(v) if *v <= 0.0 || top <= 0.0 => ' ',
            Some(v) => BARS[(((v / top) * (BARS.len() - 1) as f64).round() as usize).min(BARS.len() - 1)],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_merge_close_minutes_and_sum_errors() {
        let t0 = 1_800_000_000;
        let pts = [(t0, 0.0), (t0 + 60, 3.0), (t0 + 120, 2.0), (t0 + 360, 1.0), (t0 + 1200, 7.0), (t0 + 900, 0.0)];
        let w = error_windows(&pts, 60);
        assert_eq!(
            w,
            [
                ErrorWindow { start: Timestamp(t0 + 60), end: Timestamp(t0 + 420), errors: 6 },
                ErrorWindow { start: Timestamp(t0 + 1200), end: Timestamp(t0 + 1260), errors: 7 },
            ]
        );
        assert!(error_windows(&[(t0, 0.0)], 60).is_empty());
    }

    #[test]
    fn log_ranges_reach_back_over_the_idle_timeout_and_merge() {
        let w = |s, e| ErrorWindow { start: Timestamp(s), end: Timestamp(e), errors: 1 };
        assert_eq!(log_range(&w(10_000, 10_060), 60), (10_000 - 410, 10_120));
        assert_eq!(
            log_ranges(&[w(20_000, 20_060), w(10_000, 10_060), w(10_300, 10_400)], 60),
            [(9_590, 10_460), (19_590, 20_120)]
        );
    }

    #[test]
    fn sparkline_scales_to_the_maximum_and_marks_gaps() {
        let pts = [(0, 0.0), (60, 4.0), (120, 8.0)];
        assert_eq!(sparkline(&pts, 0, 240, 4), " ▅█·");
        assert_eq!(sparkline(&pts, 0, 0, 4), "");
    }

    #[test]
    fn summary_finds_the_maximum() {
        let s = MetricSeries {
            metric: "ActiveConnectionCount".into(),
            statistic: "Maximum".into(),
            points: vec![(60, 5.0), (120, 9.0), (180, 2.0)],
        };
        let m = MetricSummary::of(&s);
        assert_eq!((m.total, m.max, m.max_at), (16.0, 9.0, Some(Timestamp(120))));
    }
}
