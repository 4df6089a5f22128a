//! The flow-log line parser: zero-copy over byte buffers, any `LogFormat`, an optional S3 header line,
//! `-` values, NODATA/SKIPDATA, IPv4 and IPv6. Bad lines are collected, never fatal.

use memchr::memchr;

use super::format::{Field, LogFormat};
use super::record::{Action, FlowDirection, LogStatus, Record, TcpFlags};
use super::scan::Scan;
use crate::net::{Protocol, parse_ip};

/// Why one line was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("has {found} field{}, the log format has {expected}", if *found == 1 { "" } else { "s" })]
    FieldCount { expected: usize, found: usize },
    #[error("field {field} has invalid value {value:?}")]
    BadValue { field: String, value: String },
    #[error("is not text (binary data)")]
    NotText,
    /// A header line of another format in the middle of an input: files joined into one (`cat`).
    #[error("is the header line of another log format (files joined into one? give them as separate files)")]
    OtherHeader,
    /// Longer than any record (binary data, or text without line breaks).
    #[error("is longer than {} KiB: not a flow-log record", MAX_LINE >> 10)]
    TooLong,
}

/// The longest line a record can be, in bytes before its line end (`\n` or `\r\n`): a custom
/// format with every field and IPv6 addresses takes under 1 KiB. A longer line is bad ([`LineError::TooLong`]) and only its
/// length is kept, so that a file without line breaks (binary data) is not held in memory whole.
pub const MAX_LINE: usize = 64 << 10;

/// A skipped line: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number within its input.
    pub line: u64,
    pub error: LineError,
}

/// Parses lines of one log format.
#[derive(Debug, Clone)]
pub struct LineParser {
    format: LogFormat,
    /// Per position: whether the consumer reads this field (others are counted, not parsed).
    wanted: Vec<bool>,
    /// The one-pass scan of the format (the hot path).
    scan: Scan,
}

impl LineParser {
    /// A parser for `format` that parses every field natgw knows.
    pub fn new(format: LogFormat) -> LineParser {
        let wanted = format.fields().iter().map(|f| !matches!(f, Field::Other(_))).collect();
        LineParser::with_wanted(format, wanted)
    }

    /// A parser that parses only `fields` (the rest are left `None`): the fast path for a consumer
    /// that needs a few fields of a wide format.
    pub fn with_fields(format: LogFormat, fields: &[Field]) -> LineParser {
        let wanted = format.fields().iter().map(|f| fields.contains(f)).collect();
        LineParser::with_wanted(format, wanted)
    }

    fn with_wanted(format: LogFormat, wanted: Vec<bool>) -> LineParser {
        let scan = Scan::new(format.fields(), &wanted);
        LineParser { format, wanted, scan }
    }

    /// The format this parser reads.
    pub fn format(&self) -> &LogFormat {
        &self.format
    }

    /// Parses one line (without its line ending), in any shape: runs of spaces and tabs separate
    /// fields; errors say what is wrong. The general parser, which the one-pass scan is held equal to.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Result<Record<'a>, LineError> {
        let fields = self.format.fields();
        let mut rec = Record::default();
        let mut n = 0;
        let mut first_error = None;
        // Flow logs separate fields by single spaces: one vectorised scan finds them all (runs of
        // separators and tabs are accepted too, tabs on a slower path).
        let mut start = 0;
        let mut take = |end: usize, start: &mut usize| {
            if end > *start {
                let token = &line[*start..end];
                if n < fields.len() && self.wanted[n] && token != b"-" && first_error.is_none() {
                    first_error = set(&mut rec, &fields[n], token).err();
                }
                n += 1;
            }
            *start = end + 1;
        };
        if memchr(b'\t', line).is_none() {
            for i in memchr::memchr_iter(b' ', line) {
                take(i, &mut start);
            }
        } else {
            for (i, _) in line.iter().enumerate().filter(|(_, b)| **b == b' ' || **b == b'\t') {
                take(i, &mut start);
            }
        }
        take(line.len(), &mut start);
        // A wrong field count explains bad values better than the values do.
        if n != fields.len() {
            if first_error == Some(LineError::NotText) || std::str::from_utf8(line).is_err() {
                return Err(LineError::NotText);
            }
            return Err(LineError::FieldCount { expected: fields.len(), found: n });
        }
        first_error.map_or(Ok(rec), Err)
    }
}

fn bad(field: &Field, token: &[u8]) -> LineError {
    if std::str::from_utf8(token).is_err() {
        return LineError::NotText;
    }
    LineError::BadValue {
        field: field.name().to_owned(),
        value: String::from_utf8_lossy(&token[..token.len().min(64)]).into_owned(),
    }
}

fn num<T: TryFrom<u64>>(slot: &Field, token: &[u8]) -> Result<T, LineError> {
    if token.is_empty() || token.len() > 20 || !token.iter().all(u8::is_ascii_digit) {
        return Err(bad(slot, token));
    }
    let mut v: u64 = 0;
    for &b in token {
        v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(b - b'0'))).ok_or_else(|| bad(slot, token))?;
    }
    T::try_from(v).map_err(|_| bad(slot, token))
}

fn text<'a>(slot: &Field, token: &'a [u8]) -> Result<&'a str, LineError> {
    std::str::from_utf8(token).map_err(|_| bad(slot, token))
}

pub(super) fn set<'a>(rec: &mut Record<'a>, slot: &Field, t: &'a [u8]) -> Result<(), LineError> {
    let ip = |t: &[u8]| parse_ip(t).ok_or_else(|| bad(slot, t));
    match slot {
        Field::Type | Field::Region | Field::TrafficPath | Field::Other(_) => {}
        Field::Version => rec.version = Some(num(slot, t)?),
        Field::AccountId => rec.account_id = Some(text(slot, t)?),
        Field::InterfaceId => rec.interface_id = Some(text(slot, t)?),
        Field::SrcAddr => rec.srcaddr = Some(ip(t)?),
        Field::DstAddr => rec.dstaddr = Some(ip(t)?),
        Field::SrcPort => rec.srcport = Some(num(slot, t)?),
        Field::DstPort => rec.dstport = Some(num(slot, t)?),
        Field::Protocol => rec.protocol = Some(Protocol(num(slot, t)?)),
        Field::Packets => rec.packets = Some(num(slot, t)?),
        Field::Bytes => rec.bytes = Some(num(slot, t)?),
        Field::Start => rec.start = Some(u64::from(num::<u32>(slot, t)?)),
        Field::End => rec.end = Some(u64::from(num::<u32>(slot, t)?)),
        Field::Action => {
            rec.action = Some(match t {
                b"ACCEPT" => Action::Accept,
                b"REJECT" => Action::Reject,
                _ => return Err(bad(slot, t)),
            })
        }
        Field::LogStatus => {
            rec.log_status = match t {
                b"OK" => LogStatus::Ok,
                b"NODATA" => LogStatus::NoData,
                b"SKIPDATA" => LogStatus::SkipData,
                _ => return Err(bad(slot, t)),
            }
        }
        Field::VpcId => rec.vpc_id = Some(text(slot, t)?),
        Field::SubnetId => rec.subnet_id = Some(text(slot, t)?),
        Field::InstanceId => rec.instance_id = Some(text(slot, t)?),
        Field::TcpFlags => rec.tcp_flags = Some(TcpFlags(num(slot, t)?)),
        Field::PktSrcAddr => rec.pkt_srcaddr = Some(ip(t)?),
        Field::PktDstAddr => rec.pkt_dstaddr = Some(ip(t)?),
        Field::AzId => rec.az_id = Some(text(slot, t)?),
        Field::PktSrcAwsService => rec.pkt_src_aws_service = Some(text(slot, t)?),
        Field::PktDstAwsService => rec.pkt_dst_aws_service = Some(text(slot, t)?),
        Field::FlowDirection => {
            rec.flow_direction = Some(match t {
                b"ingress" => FlowDirection::Ingress,
                b"egress" => FlowDirection::Egress,
                _ => return Err(bad(slot, t)),
            })
        }
    }
    Ok(())
}

/// Counts of what a stream held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Lines read, header and blank lines included.
    pub lines: u64,
    /// Records parsed (NODATA/SKIPDATA included).
    pub records: u64,
    /// Lines skipped as bad.
    pub skipped: u64,
    /// The first bad lines (at most [`MAX_BAD_LINES_KEPT`]).
    pub bad_lines: Vec<BadLine>,
    /// Whether the stream opened with a header line.
    pub header: bool,
}

/// How many bad lines a stream keeps as examples; the rest are only counted.
pub const MAX_BAD_LINES_KEPT: usize = 20;

impl ParseStats {
    /// Adds another stream's counts.
    pub fn merge(&mut self, other: ParseStats) {
        self.lines += other.lines;
        self.records += other.records;
        self.skipped += other.skipped;
        self.header |= other.header;
        let room = MAX_BAD_LINES_KEPT.saturating_sub(self.bad_lines.len());
        self.bad_lines.extend(other.bad_lines.into_iter().take(room));
    }
}

/// A push parser for one input (one file or stream): feed it byte chunks of any size; it splits
/// lines across chunk boundaries, reads an optional header line first, and hands each record to a
/// callback. No allocation per record; a partial trailing line is carried in a small buffer.
#[derive(Debug)]
pub struct StreamParser {
    parser: LineParser,
    explicit: bool,
    fields: Option<Vec<Field>>,
    /// The stream starts at the top of an input, so its first line may be a header.
    header_allowed: bool,
    /// The start of a line the last chunk ended in (at most [`MAX_LINE`] bytes and a `\r`).
    carry: Vec<u8>,
    /// That line is longer than [`MAX_LINE`]: its bytes are dropped up to its end.
    overlong: bool,
    stats: ParseStats,
}

impl StreamParser {
    /// A stream in `format`. When `explicit` is false (the format is an assumption), a header line
    /// at the top of the stream replaces it; when true, a header is still recognised and skipped but
    /// the given format stays.
    pub fn new(format: LogFormat, explicit: bool) -> StreamParser {
        StreamParser {
            parser: LineParser::new(format),
            explicit,
            fields: None,
            header_allowed: true,
            carry: Vec::new(),
            overlong: false,
            stats: ParseStats::default(),
        }
    }

    /// Parses the rest of the stream in `format`, the same fields wanted.
    fn switch_to(&mut self, format: LogFormat) {
        self.parser = match &self.fields {
            Some(f) => LineParser::with_fields(format, f),
            None => LineParser::new(format),
        };
    }

    /// Parses only `fields` (see [`LineParser::with_fields`]), also after a header line.
    pub fn with_fields(mut self, fields: &[Field]) -> StreamParser {
        self.parser = LineParser::with_fields(self.parser.format().clone(), fields);
        self.fields = Some(fields.to_vec());
        self
    }

    /// A stream that starts in the middle of an input (a chunk after the first): no header is looked
    /// for. Line numbers in bad-line reports count from 1 within the chunk; the caller offsets them.
    pub fn without_header(mut self) -> StreamParser {
        self.header_allowed = false;
        self
    }

    /// The format records are read with (after any header).
    pub fn format(&self) -> &LogFormat {
        self.parser.format()
    }

    /// Feeds a chunk; complete lines are parsed and passed to `on_record`.
    pub fn feed(&mut self, mut chunk: &[u8], on_record: &mut dyn FnMut(&Record<'_>)) {
        if self.overlong || !self.carry.is_empty() {
            match memchr(b'\n', chunk) {
                None => {
                    self.carry_on(chunk);
                    return;
                }
                Some(i) if self.overlong || line_len(&self.carry, &chunk[..i]) > MAX_LINE => {
                    self.overlong = false;
                    self.carry.clear();
                    self.too_long();
                    chunk = &chunk[i + 1..];
                }
                Some(i) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&chunk[..i]);
                    self.line(&line, on_record);
                    line.clear();
                    self.carry = line;
                    chunk = &chunk[i + 1..];
                }
            }
        }
        let mut at = 0;
        while at < chunk.len() {
            // The scan reads a line in the shape AWS writes in one pass, through its line end; any
            // other line (and a stream's first, which may be a header) goes the general way.
            if !self.header_next()
                && let Some(next) = self.parser.scan.line(chunk, at, on_record)
            {
                self.stats.lines += 1;
                self.stats.records += 1;
                at = next;
                continue;
            }
            let Some(i) = memchr(b'\n', &chunk[at..]) else { break };
            self.line(&chunk[at..at + i], on_record);
            at += i + 1;
        }
        self.carry_on(&chunk[at..]);
    }

    /// Keeps the start of a line that goes on in the next chunk, unless it is too long already.
    fn carry_on(&mut self, bytes: &[u8]) {
        if self.overlong {
            return;
        }
        // One byte more than a line may hold: it may be the `\r` of its end.
        if self.carry.len() + bytes.len() > MAX_LINE + 1 {
            self.overlong = true;
            self.carry = Vec::new();
            return;
        }
        self.carry.extend_from_slice(bytes);
    }

    /// Counts a line longer than [`MAX_LINE`] as bad.
    fn too_long(&mut self) {
        self.stats.lines += 1;
        self.skip(LineError::TooLong);
    }

    fn skip(&mut self, error: LineError) {
        self.stats.skipped += 1;
        if self.stats.bad_lines.len() < MAX_BAD_LINES_KEPT {
            self.stats.bad_lines.push(BadLine { line: self.stats.lines, error });
        }
    }

    /// Ends the stream (parsing a last line without a newline) and returns its counts.
    pub fn finish(mut self, on_record: &mut dyn FnMut(&Record<'_>)) -> ParseStats {
        if self.overlong {
            self.too_long();
        } else if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line, on_record);
        }
        self.stats
    }

    /// Counts so far.
    pub fn stats(&self) -> &ParseStats {
        &self.stats
    }

    /// Whether the next line may be a header: the stream's first, at the top of an input.
    fn header_next(&self) -> bool {
        self.header_allowed && self.stats.lines == 0
    }

    fn line(&mut self, mut line: &[u8], on_record: &mut dyn FnMut(&Record<'_>)) {
        if line_len(&[], line) > MAX_LINE {
            self.too_long();
            return;
        }
        let may_be_header = self.header_next();
        self.stats.lines += 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        if may_be_header && let Some(header) = LogFormat::from_header(line) {
            self.stats.header = true;
            if !self.explicit {
                self.switch_to(header);
            }
            return;
        }
        if may_be_header && let Some(exported) = self.parser.format().with_export_time(line) {
            // CloudWatch Logs' export to S3: each event's time, then the record.
            self.switch_to(exported);
        }
        match self.parser.parse(line) {
            Ok(rec) => {
                self.stats.records += 1;
                on_record(&rec);
            }
            Err(error) => {
                // A header line further down: files joined into one (`cat a.log b.log`, gzip members).
                // Its own format's is no record and no error; another format's is said so.
                let error = match LogFormat::from_header(line) {
                    Some(h) if h == *self.parser.format() => return,
                    Some(_) => LineError::OtherHeader,
                    None => error,
                };
                self.skip(error);
            }
        }
    }
}

/// The length of the line whose bytes before its `\n` are `head` then `tail`, a `\r` before the
/// `\n` aside.
fn line_len(head: &[u8], tail: &[u8]) -> usize {
    let cr = tail.last().or(head.last()) == Some(&b'\r');
    head.len() + tail.len() - usize::from(cr)
}

/// Parses a whole buffer (convenience over [`StreamParser`]).
pub fn parse_all(buf: &[u8], format: LogFormat, explicit: bool, on_record: &mut dyn FnMut(&Record<'_>)) -> ParseStats {
    let mut p = StreamParser::new(format, explicit);
    p.feed(buf, on_record);
    p.finish(on_record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(buf: &[u8], format: LogFormat) -> (Vec<String>, ParseStats) {
        let mut out = Vec::new();
        let stats = parse_all(buf, format, false, &mut |r| {
            out.push(format!(
                "{:?} {:?}:{:?} -> {:?}:{:?} proto={:?} {:?}-{:?} {:?} {:?} pkt-dst={:?} flags={:?}",
                r.interface_id,
                r.srcaddr,
                r.srcport,
                r.dstaddr,
                r.dstport,
                r.protocol.map(|p| p.0),
                r.start,
                r.end,
                r.action,
                r.log_status,
                r.pkt_dstaddr,
                r.tcp_flags.map(|f| f.0)
            ))
        });
        (out, stats)
    }

    #[test]
    fn default_format_with_header_nodata_and_ipv6() {
        let buf = b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
2 123456789012 eni-0a1b 10.0.1.5 10.0.0.7 40000 443 6 3 180 1700000000 1700000010 ACCEPT OK\n\
2 123456789012 eni-0a1b - - - - - - - 1700000000 1700000060 - NODATA\r\n\
2 123456789012 eni-0a1b 2001:db8::1 2600:1f18::5 50000 443 6 1 60 1700000001 1700000001 REJECT OK";
        let (recs, stats) = collect(buf, LogFormat::default());
        assert!(stats.header);
        assert_eq!((stats.lines, stats.records, stats.skipped), (4, 3, 0));
        insta::assert_snapshot!(recs.join("\n"), @r#"
        Some("eni-0a1b") Some(10.0.1.5):Some(40000) -> Some(10.0.0.7):Some(443) proto=Some(6) Some(1700000000)-Some(1700000010) Some(Accept) Ok pkt-dst=None flags=None
        Some("eni-0a1b") None:None -> None:None proto=None Some(1700000000)-Some(1700000060) None NoData pkt-dst=None flags=None
        Some("eni-0a1b") Some(2001:db8::1):Some(50000) -> Some(2600:1f18::5):Some(443) proto=Some(6) Some(1700000001)-Some(1700000001) Some(Reject) Ok pkt-dst=None flags=None
        "#);
    }

    #[test]
    fn custom_format_from_header_skips_unknown_fields() {
        let buf = b"srcaddr dstaddr ecs-cluster-name srcport dstport protocol start end pkt-dstaddr tcp-flags\n\
10.0.1.5 10.0.0.7 my-cluster 40000 443 6 100 160 52.216.8.10 3\n";
        let (recs, stats) = collect(buf, LogFormat::default());
        assert_eq!(stats.records, 1);
        assert!(recs[0].contains("pkt-dst=Some(52.216.8.10) flags=Some(3)"), "{}", recs[0]);
    }

    /// Files joined into one (`cat`, gzip members): a header further down is no record and no error
    /// when it is the input's own format's; another format's is said to be one.
    #[test]
    fn headers_further_down_are_skipped_or_named() {
        let v2 = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
        let line = "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 5 6 ACCEPT OK\n";
        let (recs, stats) = collect(format!("{v2}{line}{v2}{line}").as_bytes(), LogFormat::default());
        assert_eq!((recs.len(), stats.skipped), (2, 0));
        let (recs, stats) = collect(format!("{line}{v2}{line}").as_bytes(), LogFormat::default());
        assert_eq!((recs.len(), stats.skipped), (2, 0), "no header at the top");
        let custom = "srcaddr dstaddr srcport dstport protocol start end pkt-dstaddr\n";
        let (recs, stats) = collect(
            format!("{v2}{line}{custom}10.0.1.5 10.0.0.7 40000 443 6 100 160 52.216.8.10\n").as_bytes(),
            LogFormat::default(),
        );
        assert_eq!((recs.len(), stats.skipped), (1, 2));
        assert_eq!(stats.bad_lines[0], BadLine { line: 3, error: LineError::OtherHeader });
    }

    /// A stream of CloudWatch Logs' export (each event's time first) is read as its records.
    #[test]
    fn an_exported_stream_is_read_as_its_records() {
        let line = "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 5 6 ACCEPT OK\n";
        let plain = collect(line.repeat(3).as_bytes(), LogFormat::default());
        let exported = format!("2026-05-28T20:30:00.000Z {line}").repeat(3);
        let (recs, stats) = collect(exported.as_bytes(), LogFormat::default());
        assert_eq!((recs, stats.records, stats.skipped), (plain.0, 3, 0));
    }

    /// A line longer than [`MAX_LINE`] is one bad line however the stream is cut into chunks, and
    /// the parser does not keep it: a file without line breaks is not held in memory.
    #[test]
    fn overlong_lines_are_bad_lines_whatever_the_chunks() {
        let record = b"2 123456789012 eni-0a1b 10.0.1.5 10.0.0.7 40000 443 6 3 180 1700000000 1700000010 ACCEPT OK";
        let mut text = Vec::new();
        for (fill, end) in [(MAX_LINE, &b"\n"[..]), (MAX_LINE + 1, b"\n"), (MAX_LINE, b"\r\n"), (3 * MAX_LINE, b"\n")] {
            text.extend_from_slice(record);
            text.extend_from_slice(b"\n");
            text.extend(std::iter::repeat_n(b'x', fill));
            text.extend_from_slice(end);
        }
        text.extend_from_slice(record);
        text.extend_from_slice(b"\n");
        text.extend(std::iter::repeat_n(0u8, 2 * MAX_LINE));
        let whole = {
            let mut n = 0;
            let stats = parse_all(&text, LogFormat::default(), false, &mut |_| n += 1);
            (n, stats)
        };
        let lines: Vec<(u64, String)> = whole.1.bad_lines.iter().map(|b| (b.line, b.error.to_string())).collect();
        let long = "is longer than 64 KiB: not a flow-log record".to_owned();
        let count = "has 1 field, the log format has 14".to_owned();
        // A fill of exactly MAX_LINE bytes is a line (of one field), whether it ends in `\n` or `\r\n`.
        assert_eq!(lines, [(2, count.clone()), (4, long.clone()), (6, count), (8, long.clone()), (10, long)]);
        assert_eq!((whole.0, whole.1.lines, whole.1.records, whole.1.skipped), (5, 10, 5, 5));
        for size in [1, 7, 4096, MAX_LINE - 1, MAX_LINE, MAX_LINE + 1, MAX_LINE + 90] {
            let mut p = StreamParser::new(LogFormat::default(), false);
            let mut n = 0;
            for chunk in text.chunks(size) {
                p.feed(chunk, &mut |_| n += 1);
                assert!(p.carry.capacity() <= 2 * MAX_LINE + size, "chunks of {size}: {}", p.carry.capacity());
            }
            assert_eq!((n, p.finish(&mut |_| n += 1)), whole, "chunks of {size}");
        }
    }

    #[test]
    fn bad_lines_are_counted_with_reasons_and_never_fatal() {
        let buf = b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 5 6 ACCEPT OK\n\
2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 5\n\
2 1 eni-1 10.0.0.1 10.0.0.2 1 99999 6 1 1 5 6 ACCEPT OK\n\
2 1 eni-1 10.0.0.999 10.0.0.2 1 2 6 1 1 5 6 ACCEPT OK\n\
\xff\xfe\x00\x01 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 5 6 ACCEPT OK\n\
2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 5 6 MAYBE OK\n\
garbage line\n\
2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 5 4294967296 ACCEPT OK\n";
        let (_, stats) = collect(buf, LogFormat::default());
        assert_eq!((stats.records, stats.skipped), (1, 7));
        let reasons: Vec<String> = stats.bad_lines.iter().map(|b| format!("line {}: {}", b.line, b.error)).collect();
        insta::assert_snapshot!(reasons.join("\n"), @r#"
        line 2: has 11 fields, the log format has 14
        line 3: field dstport has invalid value "99999"
        line 4: field srcaddr has invalid value "10.0.0.999"
        line 5: is not text (binary data)
        line 6: field action has invalid value "MAYBE"
        line 7: has 2 fields, the log format has 14
        line 8: field end has invalid value "4294967296"
        "#);
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        // A header, then lines the scan reads and lines it leaves to the general parser, with heads
        // that repeat and change, bad lines, a blank one, CRLF and no final line end.
        let buf: &[u8] = b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 5 6 ACCEPT OK\n\
2 1 eni-1 10.0.0.3 10.0.0.4 1 2 17 1 1 5 6 ACCEPT OK\n\
2 1 eni-22 10.0.0.3 10.0.0.4 65535 2 17 1 1 1700000000 1700000060 REJECT OK\n\
2 1 eni-22 - - - - - - - 1700000000 1700000060 - NODATA\r\n\
\n\
2 1 eni-22 2001:db8::1 10.0.0.4 1 2 6 1 1 5 6 ACCEPT OK\n\
2 1 eni-22  10.0.0.1 10.0.0.2 1 2 6 1 1 5 6 ACCEPT OK\n\
2 1 eni-22 10.0.0.1 10.0.0.2 1 2 6 1 1 5 6 ACCEPT\n\
2\t1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 5 6 ACCEPT OK\n\
2 1 eni-1 10.0.0.1 10.0.0.2 1 99999 6 1 1 5 6 ACCEPT OK\n\
2 1 eni-1 10.0.0.5 10.0.0.6 1 2 6 12345678901234567 1 5 6 ACCEPT OK";
        let (whole, whole_stats) = collect(buf, LogFormat::default());
        // The general parser, line by line, is the reference.
        let mut want = Vec::new();
        let p = LineParser::new(LogFormat::default());
        for line in buf.split(|b| *b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Ok(r) = p.parse(line) {
                want.push(format!("{r:?}"));
            }
        }
        assert_eq!((whole_stats.records, whole_stats.skipped), (8, 2));
        assert_eq!(whole.len(), want.len());
        for size in (1..buf.len()).chain([4 << 10]) {
            let mut out = Vec::new();
            let mut p = StreamParser::new(LogFormat::default(), false);
            let mut cb = |r: &Record<'_>| out.push(format!("{r:?}"));
            for chunk in buf.chunks(size) {
                p.feed(chunk, &mut cb);
            }
            let stats = p.finish(&mut cb);
            assert_eq!(stats, whole_stats, "chunk size {size}");
            assert_eq!(out, want, "chunk size {size}");
        }
    }

    #[test]
    fn explicit_format_keeps_priority_over_header() {
        let fmt = LogFormat::parse("${srcaddr} ${dstaddr}").unwrap();
        let buf = b"version srcaddr dstaddr\n10.0.0.1 10.0.0.2\n";
        let mut n = 0;
        let stats = parse_all(buf, fmt, true, &mut |_| n += 1);
        assert!(stats.header);
        assert_eq!(n, 1);
    }
    /// The one-pass path agrees with the general one on every line it accepts, and accepts the
    /// lines AWS writes.
    #[test]
    fn the_one_pass_path_agrees_with_the_general_parser() {
        let v2 = LineParser::new(LogFormat::default());
        let custom = LogFormat::parse(
            "${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${bytes} ${start} ${end} ${action} ${log-status} ${tcp-flags} ${pkt-dstaddr} ${az-id}",
        )
        .unwrap();
        let parsers = [
            v2.clone(),
            LineParser::new(custom.clone()),
            LineParser::with_fields(custom, &[Field::SrcAddr, Field::Start]),
            // A head of skipped fields and the interface ID, compared with the last line's.
            LineParser::with_fields(
                LogFormat::default(),
                &[Field::InterfaceId, Field::SrcAddr, Field::DstPort, Field::Start, Field::Action, Field::LogStatus],
            ),
            // The analysis' fields of the default format: its tail is read with the ops unrolled.
            LineParser::with_fields(LogFormat::default(), crate::analyze::FIELDS),
        ];
        assert!(parsers[4].scan.has_default_tail());
        let good_v2 = "2 123456789012 eni-0a1b 10.0.1.5 52.216.8.10 40000 443 6 3 180 1700000000 1700000010 ACCEPT OK";
        let plain = |p: &LineParser, l: &str| {
            let mut got = None;
            p.clone().scan.line(format!("{l}\n").as_bytes(), 0, &mut |r| got = Some(format!("{r:?}")));
            got
        };
        assert_eq!(plain(&v2, good_v2), Some(format!("{:?}", v2.parse(good_v2.as_bytes()).unwrap())));
        let good_custom =
            "5 eni-0a1b 10.0.1.5 52.216.8.10 40000 443 6 180 1700000000 1700000010 ACCEPT OK 19 52.216.8.10 use1-az1";
        assert!(plain(&parsers[1], good_custom).is_some());
        // Without its line end in the buffer, a line is left for later.
        assert!(v2.clone().scan.line(good_v2.as_bytes(), 0, &mut |_| panic!("no line end")).is_none());
        // Mutations of good lines: every byte replaced by each of a few troublemakers, and random ones.
        let odd: &[u8] = b" \t-0919:xA.\xff\0";
        let mut rng = crate::testing::rng(7);
        let mut rnd = move |n: usize| rng(n as u64) as usize;
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for good in [good_v2, good_custom] {
            let good = good.as_bytes();
            lines.push(good.to_vec());
            for at in 0..good.len() {
                for &b in odd {
                    let mut l = good.to_vec();
                    l[at] = b;
                    lines.push(l.clone());
                    l.insert(at, b);
                    lines.push(l);
                }
                let mut l = good.to_vec();
                l.remove(at);
                lines.push(l);
            }
            for _ in 0..2000 {
                let mut l = good.to_vec();
                for _ in 0..1 + rnd(3) {
                    let at = rnd(l.len());
                    match rnd(3) {
                        0 => l[at] = odd[rnd(odd.len())],
                        1 => l.insert(at, b"0123456789 -"[rnd(12)]),
                        _ => {
                            l.remove(at);
                        }
                    }
                }
                lines.push(l);
            }
        }
        lines.push(b"2 1 eni-1 ::1 2001:db8::5 70000 443 6 3 180 1700000000 1700000010 ACCEPT OK".to_vec());
        lines.push(b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 99999999999999999999 1 2 ACCEPT OK".to_vec());
        lines.push(b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 9999999999999999999 1 2 ACCEPT OK".to_vec());
        lines.push(b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 18446744073709551615 1 2 ACCEPT OK".to_vec());
        lines.push(b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 180 1700000000 1700000010 ACCEPT OK\r".to_vec());
        // First, while the scan's memo of times is as it starts: eight NULs are no start.
        lines.insert(0, b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 180 \0\0\0\0\0\0\0\0 1700000010 ACCEPT OK".to_vec());
        let mut accepted = 0;
        let next_line = &b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 180 1 2 ACCEPT OK\n"[..];
        // Enough lines after for the scan to read the line in its fixed window.
        let many = next_line.repeat(12);
        for p in &parsers {
            let mut scan = p.scan.clone();
            for l in &lines {
                // The scan reads words past the line's end: the line followed by another, many, or
                // alone.
                for after in [next_line, &many, b""] {
                    let buf = [&b"7\n"[..], l, b"\n", after].concat();
                    let want = p.parse(l);
                    let mut got = None;
                    // One scan state across lines, as in a stream (the interface ID it remembers).
                    let next = scan.line(&buf, 2, &mut |r| {
                        assert_eq!(Ok(r), want.as_ref(), "{:?}", String::from_utf8_lossy(l));
                        got = Some(());
                    });
                    assert_eq!(next.is_some(), got.is_some());
                    if let Some(next) = next {
                        accepted += 1;
                        assert_eq!(next, l.len() + 3);
                    }
                }
            }
        }
        assert!(accepted > 1000, "only {accepted} lines took the one-pass path");
    }
}
