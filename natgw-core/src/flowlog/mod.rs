//! VPC flow logs: formats, records and the parser.

pub mod format;
pub mod parse;
pub mod record;
mod scan;

pub use format::{DEFAULT_FORMAT, Field, FormatError, LogFormat};
pub use parse::{BadLine, LineError, LineParser, MAX_BAD_LINES_KEPT, MAX_LINE, ParseStats, StreamParser, parse_all};
pub use record::{Action, FlowDirection, LogStatus, Record, TcpFlags};
