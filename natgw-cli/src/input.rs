//! Reading flow-log inputs: files or standard input, plain or gzip (by magic bytes, multi-member
//! streams included), streamed in chunks into the core parser. Every failure names the input.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;
use natgw_core::analyze::{Analyzer, check_format};
use natgw_core::flowlog::{LogFormat, StreamParser};

/// A problem with one input, shown as one line and exit code 3.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

const CHUNK: usize = 1 << 20;

/// Reads one input into the analyzer. `name` is how messages refer to it.
pub fn read_into(path: &Path, format: &LogFormat, analyzer: &mut Analyzer) -> Result<(), InputError> {
    let name = if path.as_os_str() == "-" { "<stdin>".to_owned() } else { path.display().to_string() };
    let source: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        match File::open(path) {
            Ok(f) if f.metadata().is_ok_and(|m| m.is_dir()) => {
                return Err(InputError(format!("{name}: is a directory, not a flow-log file")));
            }
            Ok(f) => Box::new(f),
            Err(e) => return Err(InputError(format!("cannot open {name}: {}", io_reason(&e)))),
        }
    };
    let mut reader = BufReader::with_capacity(CHUNK, source);
    let head = reader.fill_buf().map_err(|e| InputError(format!("cannot read {name}: {}", io_reason(&e))))?;
    if head.is_empty() {
        return Err(InputError(format!("{name} is empty")));
    }
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let mut text: Box<dyn Read> = if gzip { Box::new(MultiGzDecoder::new(reader)) } else { Box::new(reader) };

    let mut parser = StreamParser::new(format.clone(), false);
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    loop {
        let n = match text.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let what = if gzip { "gzip data is truncated or corrupt" } else { "read failed" };
                return Err(InputError(format!("{name}: {what} after {total} bytes of text: {}", io_reason(&e))));
            }
        };
        total += n as u64;
        parser.feed(&buf[..n], &mut |r| analyzer.push(r));
        if parser.stats().lines == 0 && total > 4 * CHUNK as u64 {
            return Err(InputError(format!(
                "{name}: no line break in the first {} MiB: not a flow-log file",
                total >> 20
            )));
        }
    }
    let effective = parser.format().clone();
    let stats = parser.finish(&mut |r| analyzer.push(r));
    if total == 0 {
        return Err(InputError(format!("{name}: the gzip stream holds no data")));
    }
    check_format(&effective).map_err(|e| InputError(format!("{name}: {e}")))?;
    if stats.records == 0 {
        let reason = match stats.bad_lines.first() {
            Some(b) => format!(": line {} {}", b.line, b.error),
            None if stats.header => ": only a header line".into(),
            None => String::new(),
        };
        let hint = match stats.bad_lines.first().map(|b| &b.error) {
            Some(natgw_core::flowlog::LineError::FieldCount { .. }) => {
                " (if this flow log uses a custom format, pass it with --log-format)"
            }
            _ => "",
        };
        return Err(InputError(format!("{name}: no flow-log records{reason}{hint}")));
    }
    analyzer.add_input(name, &effective, stats);
    Ok(())
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::UnexpectedEof => "unexpected end of data".into(),
        _ => e.to_string(),
    }
}
