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
/// A destination is at or above the warning threshold (80 % by default).
pub const AT_RISK: u8 = 4;
/// Port exhaustion found: a destination saturated, or port allocation errors seen.
pub const EXHAUSTED: u8 = 5;

/// The text shown under `--help`.
pub const HELP: &str = "Exit codes: 0 healthy, 1 error, 2 usage, 3 bad input data, 4 at risk (≥ warning threshold), 5 port exhaustion found.";

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
