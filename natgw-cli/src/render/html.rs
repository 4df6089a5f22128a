//! The HTML output: one self-contained page (inline CSS, no script, nothing fetched) to attach to an
//! incident or open from a cron job's artifacts. Every text from the report is escaped.

use std::fmt::Write as _;
use std::io::{self, Write};

use natgw_core::analyze::thousands;
use natgw_core::metrics::{sparkline, sparkline_columns};
use natgw_core::report::{AttributionMethod, Report, Severity, Status};

use super::{bar, bytes};

/// `<`, `>`, `&`, `"` and `'` as entities.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1d1d1f}\
h1{font-size:1.4em}.exhausted{color:#b00020}.at-risk{color:#b36b00}.healthy{color:#1b7f3b}\
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border-bottom:1px solid #ddd;padding:.25em .7em;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}pre,code,.spark{font-family:ui-monospace,monospace}\
pre{background:#f4f4f6;padding:.5em .8em;overflow-x:auto;white-space:pre-wrap}.critical{color:#b00020}.warning{color:#b36b00}";

pub fn html(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let (class, word) = match r.verdict.status {
        Status::Healthy => ("healthy", "Healthy"),
        Status::AtRisk => ("at-risk", "At risk"),
        Status::Exhausted => ("exhausted", "Exhausted"),
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>NAT gateway port exhaustion: {word}</title>\
         <style>{STYLE}</style></head><body>\n<h1 class=\"{class}\">{word}</h1>\n<p><strong>{}</strong></p>\n",
        esc(&r.verdict.summary)
    );
    let nat: Vec<String> = r.input.nat_addresses.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        h,
        "<p>{} records from {}; NAT {}; limit {} per destination.</p>",
        thousands(r.input.records),
        esc(&r.input.sources.join(", ")),
        esc(&nat.join(", ")),
        thousands(r.input.limit_per_destination)
    );
    if let Some(l) = &r.live {
        let _ = writeln!(
            h,
            "<h2>CloudWatch metrics</h2>\n<p>{} → {} ({}-s periods{})</p>\n<table><tr><th>metric</th><th>over time</th><th>total / peak</th></tr>",
            l.metrics_start,
            l.metrics_end,
            l.period_secs,
            l.region.as_deref().map(|r| format!(", {}", esc(r))).unwrap_or_default()
        );
        let columns = sparkline_columns(l.metrics_start.0, l.metrics_end.0, l.period_secs);
        for m in &l.metrics {
            let value = if m.statistic == "Sum" { m.total } else { m.max };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"spark\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&m.metric),
                esc(&sparkline(&m.points, l.metrics_start.0, l.metrics_end.0, columns)),
                thousands(value.round() as u64)
            );
        }
        h.push_str("</table>\n");
        for w in &l.error_windows {
            let _ = writeln!(
                h,
                "<p>Error window {} – {}: {} port allocation errors.</p>",
                w.start,
                w.end,
                thousands(w.errors)
            );
        }
        let read = if l.engine == "insights" {
            format!(
                "Logs Insights: {} queries, {} scanned (about ${:.4})",
                l.queries.len(),
                bytes(l.bytes_scanned),
                l.estimated_cost_usd
            )
        } else {
            format!("FilterLogEvents: {} events pulled", thousands(l.events_pulled))
        };
        let _ = writeln!(
            h,
            "<p>Flow logs: {}; {}.</p>",
            esc(l.log_group.as_deref().unwrap_or("none readable")),
            esc(&read)
        );
    }
    h.push_str("<h2>Destinations</h2>\n<table><tr><th>destination</th><th>peak</th><th>range</th><th>limit</th><th>utilization</th><th>peak at</th><th>records</th><th>bytes</th></tr>\n");
    for d in &r.destinations {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code>{}</td><td class=\"n\">{}</td><td class=\"n\">{}–{}</td><td class=\"n\">{}</td>\
             <td><span class=\"spark\">{}</span> {}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&d.display_destination()),
            if d.saturated { " <strong class=\"critical\">saturated</strong>" } else { "" },
            thousands(d.peak_connections),
            thousands(d.peak_connections_range[0]),
            thousands(d.peak_connections_range[1]),
            thousands(d.limit),
            bar(d.utilization),
            d.percent(0),
            d.peak_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            thousands(d.records),
            bytes(d.bytes)
        );
    }
    h.push_str("</table>\n<h2>Sources</h2>\n");
    if r.attribution.method == AttributionMethod::Unavailable {
        let _ = writeln!(h, "<p>Unavailable: {}</p>", esc(r.attribution.note.as_deref().unwrap_or("")));
    } else {
        for d in r.destinations.iter().filter(|d| !d.sources.is_empty()).take(3) {
            let _ = writeln!(
                h,
                "<h3><code>{}</code></h3>\n<table><tr><th>client</th><th>connections</th><th>bytes</th></tr>",
                esc(&d.display_destination())
            );
            for s in &d.sources {
                let _ = writeln!(
                    h,
                    "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    s.address,
                    thousands(s.connections),
                    bytes(s.bytes)
                );
            }
            h.push_str("</table>\n");
        }
    }
    h.push_str("<h2>Findings and remedy plan</h2>\n<ol>\n");
    for f in &r.findings {
        let sev = match f.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        let _ = write!(h, "<li><span class=\"{sev}\">[{sev}]</span> {}<ul>", esc(&f.summary));
        for rem in &f.remedies {
            let _ = write!(h, "<li>{}", esc(&rem.summary));
            if let Some(c) = &rem.command {
                let _ = write!(h, "<pre>$ {}</pre>", esc(c));
            }
            h.push_str("</li>");
        }
        h.push_str("</ul></li>\n");
    }
    h.push_str("</ol>\n");
    if !r.notes.is_empty() {
        h.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in &r.notes {
            let _ = writeln!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body></html>\n");
    out.write_all(h.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_everything_html_cares_about() {
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
