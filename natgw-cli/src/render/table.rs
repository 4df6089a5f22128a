//! The table output: verdict first, then destinations with a utilization bar, then sources, then
//! the remedy plan.

use std::io::{self, Write};

use natgw_core::analyze::thousands;
use natgw_core::metrics::{MetricSummary, sparkline, sparkline_columns};
use natgw_core::report::{AttributionMethod, Finding, LiveReport, Report, Severity, Status};

use super::{bar, bytes};

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w { s.to_owned() } else { format!("{s}{}", " ".repeat(w - n)) }
}

fn rpad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w { s.to_owned() } else { format!("{}{s}", " ".repeat(w - n)) }
}

pub fn table(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let status = match r.verdict.status {
        Status::Healthy => "HEALTHY",
        Status::AtRisk => "AT RISK",
        Status::Exhausted => "EXHAUSTED",
    };
    writeln!(out, "{status}  {}", r.verdict.summary)?;
    let i = &r.input;
    let window = match (i.start, i.end) {
        (Some(s), Some(e)) => format!("{} → {}", s, e),
        _ => "-".into(),
    };
    let nat: Vec<String> = i.nat_addresses.iter().map(ToString::to_string).collect();
    writeln!(
        out,
        "{} records, {window}; NAT {}{}; limit {} per destination",
        thousands(i.records),
        nat.join(", "),
        i.nat_interface.as_deref().map(|n| format!(" on {n}")).unwrap_or_default(),
        thousands(i.limit_per_destination)
    )?;
    writeln!(out)?;
    if let Some(l) = &r.live {
        live_section(l, out)?;
    }

    // Destinations.
    let names: Vec<String> = r.destinations.iter().map(|d| d.display_destination()).collect();
    let w = names.iter().map(|n| n.chars().count()).max().unwrap_or(11).max(11);
    writeln!(
        out,
        "{}  {}  {}  {}  {:<26}  {}  {}  {}",
        pad("DESTINATION", w),
        rpad("PEAK", 7),
        pad("RANGE", 15),
        rpad("LIMIT", 7),
        "UTILIZATION",
        pad("PEAK AT", 8),
        rpad("RECORDS", 9),
        rpad("BYTES", 10)
    )?;
    for (d, name) in r.destinations.iter().zip(&names) {
        let range = format!("{}–{}", thousands(d.peak_connections_range[0]), thousands(d.peak_connections_range[1]));
        let flag = if d.saturated { "  SATURATED" } else { "" };
        writeln!(
            out,
            "{}  {}  {}  {}  {} {}  {}  {}  {}{flag}",
            pad(name, w),
            rpad(&thousands(d.peak_connections), 7),
            pad(&range, 15),
            rpad(&thousands(d.limit), 7),
            bar(d.utilization),
            rpad(&d.percent(0), 4),
            pad(&d.peak_at.map(|t| t.hh_mm()).unwrap_or_else(|| "-".into()), 8),
            rpad(&thousands(d.records), 9),
            rpad(&bytes(d.bytes), 10)
        )?;
    }

    // Sources of the hot destinations (or the top one).
    writeln!(out)?;
    if r.attribution.method == AttributionMethod::Unavailable {
        writeln!(out, "SOURCES  unavailable: {}", r.attribution.note.as_deref().unwrap_or(""))?;
    } else {
        let hot: Vec<_> = r.destinations.iter().filter(|d| d.saturated || d.utilization >= 0.5).take(3).collect();
        let shown = if hot.is_empty() { r.destinations.iter().take(1).collect() } else { hot };
        for d in shown {
            writeln!(out, "TOP SOURCES of {}", d.display_destination())?;
            for s in &d.sources {
                writeln!(
                    out,
                    "  {}  {} connections  {}",
                    pad(&s.address.to_string(), 15),
                    rpad(&thousands(s.connections), 9),
                    rpad(&bytes(s.bytes), 10)
                )?;
            }
            if d.sources.is_empty() {
                writeln!(out, "  (no client legs seen for this destination)")?;
            }
        }
        if let Some(note) = &r.attribution.note {
            writeln!(out, "  {note}")?;
        }
    }

    // Remedy plan.
    writeln!(out)?;
    findings(&r.findings, out)?;
    if !r.notes.is_empty() {
        writeln!(out)?;
        writeln!(out, "NOTES")?;
        for n in &r.notes {
            writeln!(out, "  - {n}")?;
        }
    }
    Ok(())
}

/// The findings as a numbered remedy plan.
pub fn findings(list: &[Finding], out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "FINDINGS AND REMEDY PLAN")?;
    for (n, f) in list.iter().enumerate() {
        let sev = match f.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        writeln!(out, "{:>2}. [{sev}] {}", n + 1, f.summary)?;
        for rem in &f.remedies {
            writeln!(out, "    - {}", rem.summary)?;
            if let Some(c) = &rem.command {
                writeln!(out, "      $ {c}")?;
            }
        }
    }
    Ok(())
}

/// One line per metric: a sparkline over the range (one column per period, at most 60) and its
/// total or peak.
pub fn metric_lines(
    metrics: &[MetricSummary],
    start: u64,
    end: u64,
    period: u32,
    out: &mut dyn Write,
) -> io::Result<()> {
    let w = metrics.iter().map(|m| m.metric.len()).max().unwrap_or(0);
    let columns = sparkline_columns(start, end, period);
    for m in metrics {
        let line = sparkline(&m.points, start, end, columns);
        let value = if m.statistic == "Sum" {
            format!("total {}", thousands(m.total.round() as u64))
        } else {
            format!("peak {}", thousands(m.max.round() as u64))
        };
        let at = m
            .max_at
            .filter(|_| m.max > 0.0)
            .map(|t| format!(", max {} at {}", thousands(m.max.round() as u64), t.hh_mm()));
        writeln!(
            out,
            "  {}  {line}  {value}{}",
            pad(&m.metric, w),
            if m.statistic == "Sum" { at.unwrap_or_default() } else { String::new() }
        )?;
    }
    Ok(())
}

/// The live path's evidence: metrics with sparklines, error windows, what was read and what it cost.
fn live_section(l: &LiveReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "METRICS  {} → {} ({}-s periods{})",
        l.metrics_start,
        l.metrics_end,
        l.period_secs,
        l.region.as_deref().map(|r| format!(", {r}")).unwrap_or_default()
    )?;
    metric_lines(&l.metrics, l.metrics_start.0, l.metrics_end.0, l.period_secs, out)?;
    if l.metrics.iter().any(|m| m.metric == "ActiveConnectionCount") {
        writeln!(out, "  (ActiveConnectionCount sums every destination; the limit is per destination)")?;
    }
    for w in &l.error_windows {
        writeln!(out, "  error window {}–{} UTC: {} errors", w.start.hh_mm(), w.end.hh_mm(), thousands(w.errors))?;
    }
    let ranges: Vec<String> = l.analysed_ranges.iter().map(|[s, e]| format!("{}–{}", s.hh_mm(), e.hh_mm())).collect();
    let read = match l.engine.as_str() {
        "insights" => format!(
            "Logs Insights, {} quer{}, {} scanned (~${:.4})",
            l.queries.len(),
            if l.queries.len() == 1 { "y" } else { "ies" },
            bytes(l.bytes_scanned),
            l.estimated_cost_usd
        ),
        _ => format!("FilterLogEvents, {} events pulled", thousands(l.events_pulled)),
    };
    writeln!(
        out,
        "FLOW LOGS  {} {}; {read}",
        l.log_group.as_deref().unwrap_or("(none readable)"),
        if ranges.is_empty() { String::new() } else { format!("at {} UTC", ranges.join(", ")) }
    )?;
    writeln!(out)
}
