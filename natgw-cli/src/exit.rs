//! Documented exit codes (also in README.md and `aws-natgw --help`).

use std::process::ExitCode;

/// No destination at risk.
pub const HEALTHY: u8 = 0;
/// A runtime failure (IO on output, an internal error).
pub const ERROR: u8 = 1;
/// Bad usage: an unknown flag, a value that does not parse (CIDR, log format, IP).
pub const USAGE: u8 = 2;
/// Bad input data: a missing, empty, unreadable, truncated or non-flow-log file.
pub const INPUT: u8 = 3;
/// A destination is at or above the warning threshold (80 % by default); `doctor`: warnings.
pub const AT_RISK: u8 = 4;
/// Port exhaustion found: a destination saturated, or port allocation errors seen.
pub const EXHAUSTED: u8 = 5;

/// `doctor`: the flow logs cannot be queried (missing, S3 only, REJECT only, log group gone).
pub const NOT_READY: u8 = 6;
/// Interrupted (Ctrl-C); running Logs Insights queries were stopped.
pub const INTERRUPTED: u8 = 130;

/// The text shown under `--help`.
pub const HELP: &str = "Exit codes: 0 healthy, 1 error (AWS errors included), 2 usage, 3 bad input data, 4 at risk \
(≥ warning threshold; doctor: warnings), 5 port exhaustion found (scan: on any gateway), 6 doctor: flow logs cannot be \
queried, 130 interrupted.";

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
