//! The Markdown output, for tickets and incident documents.

use std::io::{self, Write};

use natgw_core::analyze::thousands;
use natgw_core::report::{AttributionMethod, Report, Status};

use super::bytes;

pub fn markdown(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let status = match r.verdict.status {
        Status::Healthy => "Healthy",
        Status::AtRisk => "At risk",
        Status::Exhausted => "Exhausted",
    };
    writeln!(out, "# NAT gateway port exhaustion: {status}\n")?;
    writeln!(out, "**{}**\n", r.verdict.summary)?;
    let nat: Vec<String> = r.input.nat_addresses.iter().map(ToString::to_string).collect();
    writeln!(
        out,
        "{} records from {}; NAT {}; limit {} per destination.\n",
        thousands(r.input.records),
        r.input.sources.join(", "),
        nat.join(", "),
        thousands(r.input.limit_per_destination)
    )?;
    if let Some(l) = &r.live {
        writeln!(out, "## Evidence from CloudWatch\n")?;
        writeln!(out, "{} → {} ({}-s periods).\n", l.metrics_start, l.metrics_end, l.period_secs)?;
        writeln!(out, "| metric | statistic | total | max | max at |\n|---|---|--:|--:|---|")?;
        for m in &l.metrics {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                m.metric,
                m.statistic,
                thousands(m.total.round() as u64),
                thousands(m.max.round() as u64),
                m.max_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
            )?;
        }
        writeln!(out)?;
        for w in &l.error_windows {
            writeln!(out, "- Error window {} – {}: {} port allocation errors", w.start, w.end, thousands(w.errors))?;
        }
        match l.engine.as_str() {
            "insights" => writeln!(
                out,
                "- Logs Insights on `{}`: {} queries, {} scanned (about ${:.4})\n",
                l.log_group.as_deref().unwrap_or("-"),
                l.queries.len(),
                bytes(l.bytes_scanned),
                l.estimated_cost_usd
            )?,
            _ => writeln!(
                out,
                "- FilterLogEvents on `{}`: {} events pulled\n",
                l.log_group.as_deref().unwrap_or("-"),
                thousands(l.events_pulled)
            )?,
        }
    }
    writeln!(out, "## Destinations\n")?;
    writeln!(out, "| destination | peak | range | limit | utilization | peak at | records | bytes | saturated |")?;
    writeln!(out, "|---|--:|--:|--:|--:|---|--:|--:|---|")?;
    for d in &r.destinations {
        writeln!(
            out,
            "| `{}` | {} | {}–{} | {} | {} | {} | {} | {} | {} |",
            d.display_destination(),
            thousands(d.peak_connections),
            thousands(d.peak_connections_range[0]),
            thousands(d.peak_connections_range[1]),
            thousands(d.limit),
            d.percent(1),
            d.peak_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            thousands(d.records),
            bytes(d.bytes),
            if d.saturated { "**yes**" } else { "no" }
        )?;
    }
    writeln!(out, "\n## Sources\n")?;
    if r.attribution.method == AttributionMethod::Unavailable {
        writeln!(out, "Unavailable: {}", r.attribution.note.as_deref().unwrap_or(""))?;
    } else {
        for d in r.destinations.iter().filter(|d| !d.sources.is_empty()).take(3) {
            writeln!(out, "### `{}`\n", d.display_destination())?;
            writeln!(out, "| client | connections | bytes |\n|---|--:|--:|")?;
            for s in &d.sources {
                writeln!(out, "| `{}` | {} | {} |", s.address, thousands(s.connections), bytes(s.bytes))?;
            }
            writeln!(out)?;
        }
    }
    writeln!(out, "\n## Findings and remedy plan\n")?;
    for f in &r.findings {
        writeln!(out, "- **{:?}**: {}", f.severity, f.summary)?;
        for rem in &f.remedies {
            writeln!(out, "  - {}", rem.summary)?;
            if let Some(c) = &rem.command {
                writeln!(out, "    ```sh\n    {c}\n    ```")?;
            }
        }
    }
    if !r.notes.is_empty() {
        writeln!(out, "\n## Notes\n")?;
        for n in &r.notes {
            writeln!(out, "- {n}")?;
        }
    }
    Ok(())
}
