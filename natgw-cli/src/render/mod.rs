//! Rendering the report model: a table a person reads at a glance, JSON (the stable model), Markdown,
//! and a self-contained HTML page.

mod html;
mod markdown;
mod table;

use std::io::{self, Write};

use natgw_core::report::Report;

pub use html::html;
pub use markdown::markdown;
pub use table::{findings, metric_lines, table};

use crate::args::Output;

/// The report in the chosen output.
pub fn report(r: &Report, output: Output, out: &mut dyn Write) -> io::Result<()> {
    match output {
        Output::Table => table(r, out),
        Output::Json => json(r, out),
        Output::Markdown => markdown(r, out),
        Output::Html => html(r, out),
    }
}

/// Any serialisable value as pretty JSON, fields in declaration order (see [`json`]).
pub fn json_value<T: serde::Serialize + ?Sized>(v: &T, out: &mut dyn Write) -> io::Result<()> {
    let mut text = serde_json::to_vec_pretty(v).map_err(io::Error::other)?;
    text.push(b'\n');
    out.write_all(&text)
}

/// The report as pretty JSON, newline-terminated. Serialised first, then written, so that a write
/// error (a closed pipe) reaches the caller as the `io::Error` it is, not wrapped in a serde error.
pub fn json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    json_value(report, out)
}

/// `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// A 20-cell utilization bar.
pub fn bar(utilization: f64) -> String {
    let cells = 20;
    let full = ((utilization.clamp(0.0, 1.0) * cells as f64).round() as usize).min(cells);
    format!("{}{}", "█".repeat(full), "░".repeat(cells - full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bars() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(bar(0.0), "░".repeat(20));
        assert_eq!(bar(0.5), format!("{}{}", "█".repeat(10), "░".repeat(10)));
        assert_eq!(bar(1.7), "█".repeat(20));
    }
}
