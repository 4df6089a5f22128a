//! The flow-log line parser: zero-copy over byte buffers, any `LogFormat`, an optional S3 header line,
//! `-` values, NODATA/SKIPDATA, IPv4 and IPv6. Bad lines are collected, never fatal.

use memchr::memchr;

use super::format::{Field, LogFormat};
use super::record::{Action, FlowDirection, LogStatus, Record, TcpFlags};
use crate::net::{Protocol, parse_ip};

/// Why one line was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("has {found} fields, the log format has {expected}")]
    FieldCount { expected: usize, found: usize },
    #[error("field {field} has invalid value {value:?}")]
    BadValue { field: String, value: String },
    #[error("is not text (binary data)")]
    NotText,
}

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
    /// Per position: a wanted field holding a decimal number (parsed while it is scanned).
    numeric: Vec<bool>,
}

/// Fields whose values are decimal numbers.
fn is_numeric(f: &Field) -> bool {
    matches!(
        f,
        Field::Version
            | Field::SrcPort
            | Field::DstPort
            | Field::Protocol
            | Field::Packets
            | Field::Bytes
            | Field::Start
            | Field::End
            | Field::TcpFlags
    )
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
        let numeric = format.fields().iter().zip(&wanted).map(|(f, w)| *w && is_numeric(f)).collect();
        LineParser { format, wanted, numeric }
    }

    /// The format this parser reads.
    pub fn format(&self) -> &LogFormat {
        &self.format
    }

    /// Parses one line (without its line ending). Fields are separated by runs of spaces or tabs.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Result<Record<'a>, LineError> {
        match self.parse_plain(line) {
            Some(rec) => Ok(rec),
            None => self.parse_any(line),
        }
    }

    /// One pass over a line in the shape AWS writes (fields separated by single spaces, no tabs,
    /// numbers in decimal that fit their fields, no `-` in numeric fields): numbers are parsed as
    /// they are scanned. `None` for any other line, which [`parse_any`](LineParser::parse_any) then
    /// reads; whenever this returns a record, it is the one `parse_any` returns.
    fn parse_plain<'a>(&self, line: &'a [u8]) -> Option<Record<'a>> {
        let fields = self.format.fields();
        if memchr(b'\t', line).is_some() {
            return None;
        }
        let mut rec = Record::default();
        let n = line.len();
        let mut i = 0;
        for (k, field) in fields.iter().enumerate() {
            if k > 0 {
                if line.get(i) != Some(&b' ') {
                    return None;
                }
                i += 1;
            }
            let begin = i;
            if self.numeric[k] {
                let mut v: u64 = 0;
                while i < n && line[i].is_ascii_digit() {
                    v = v.wrapping_mul(10).wrapping_add(u64::from(line[i] - b'0'));
                    i += 1;
                }
                // At most 19 digits cannot overflow (longer ones wrapped: discarded); longer numbers
                // and `-` take the general path.
                if i == begin || i - begin > 19 || (i < n && line[i] != b' ') {
                    return None;
                }
                set_number(&mut rec, field, v)?;
            } else {
                i = next_space(line, i);
                let token = &line[begin..i];
                if token.is_empty() {
                    return None;
                }
                if self.wanted[k] && token != b"-" {
                    set(&mut rec, field, token).ok()?;
                }
            }
        }
        (i == n).then_some(rec)
    }

    /// Parses any line: runs of spaces and tabs separate fields; errors say what is wrong.
    fn parse_any<'a>(&self, line: &'a [u8]) -> Result<Record<'a>, LineError> {
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

/// The position of the first space in `line` from `i` (or its length), eight bytes at a time.
fn next_space(line: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    while let Some(bytes) = line.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        // A zero byte of `x` is a space; the lowest flagged byte is always a true one.
        let x = u64::from_le_bytes(word) ^ SPACES;
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < line.len() && line[i] != b' ' {
        i += 1;
    }
    i
}

/// Stores a numeric field's value; `None` when it does not fit the field.
fn set_number(rec: &mut Record<'_>, slot: &Field, v: u64) -> Option<()> {
    match slot {
        Field::Version => rec.version = Some(u8::try_from(v).ok()?),
        Field::SrcPort => rec.srcport = Some(u16::try_from(v).ok()?),
        Field::DstPort => rec.dstport = Some(u16::try_from(v).ok()?),
        Field::Protocol => rec.protocol = Some(Protocol(u8::try_from(v).ok()?)),
        Field::Packets => rec.packets = Some(v),
        Field::Bytes => rec.bytes = Some(v),
        // Unix seconds in 32 bits (to 2106): larger values are not times, and would overflow the
        // estimator's arithmetic.
        Field::Start => rec.start = Some(u64::from(u32::try_from(v).ok()?)),
        Field::End => rec.end = Some(u64::from(u32::try_from(v).ok()?)),
        Field::TcpFlags => rec.tcp_flags = Some(TcpFlags(u16::try_from(v).ok()?)),
        _ => return None,
    }
    Some(())
}

fn text<'a>(slot: &Field, token: &'a [u8]) -> Result<&'a str, LineError> {
    std::str::from_utf8(token).map_err(|_| bad(slot, token))
}

fn set<'a>(rec: &mut Record<'a>, slot: &Field, t: &'a [u8]) -> Result<(), LineError> {
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
    carry: Vec<u8>,
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
            stats: ParseStats::default(),
        }
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
        if !self.carry.is_empty() {
            match memchr(b'\n', chunk) {
                None => {
                    self.carry.extend_from_slice(chunk);
                    return;
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
        while let Some(i) = memchr(b'\n', chunk) {
            self.line(&chunk[..i], on_record);
            chunk = &chunk[i + 1..];
        }
        self.carry.extend_from_slice(chunk);
    }

    /// Ends the stream (parsing a last line without a newline) and returns its counts.
    pub fn finish(mut self, on_record: &mut dyn FnMut(&Record<'_>)) -> ParseStats {
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line, on_record);
        }
        self.stats
    }

    /// Counts so far.
    pub fn stats(&self) -> &ParseStats {
        &self.stats
    }

    fn line(&mut self, mut line: &[u8], on_record: &mut dyn FnMut(&Record<'_>)) {
        self.stats.lines += 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        if self.stats.lines == 1
            && self.header_allowed
            && let Some(header) = LogFormat::from_header(line)
        {
            self.stats.header = true;
            if !self.explicit {
                self.parser = match &self.fields {
                    Some(f) => LineParser::with_fields(header, f),
                    None => LineParser::new(header),
                };
            }
            return;
        }
        // The one-pass path's record is handed on where it was built (no move through a Result).
        if let Some(rec) = self.parser.parse_plain(line) {
            self.stats.records += 1;
            on_record(&rec);
            return;
        }
        match self.parser.parse_any(line) {
            Ok(rec) => {
                self.stats.records += 1;
                on_record(&rec);
            }
            Err(error) => {
                self.stats.skipped += 1;
                if self.stats.bad_lines.len() < MAX_BAD_LINES_KEPT {
                    self.stats.bad_lines.push(BadLine { line: self.stats.lines, error });
                }
            }
        }
    }
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
        let buf = b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 5 6 ACCEPT OK\n2 1 eni-1 10.0.0.3 10.0.0.4 1 2 17 1 1 5 6 ACCEPT OK\n2 1 eni-1 10.0.0.5 10.0.0.6 1 2 6 1 1 5 6 ACCEPT OK";
        let (whole, _) = collect(buf, LogFormat::default());
        for size in 1..buf.len() {
            let mut out = Vec::new();
            let mut p = StreamParser::new(LogFormat::default(), false);
            let mut cb = |r: &Record<'_>| out.push(r.srcaddr);
            for chunk in buf.chunks(size) {
                p.feed(chunk, &mut cb);
            }
            let stats = p.finish(&mut cb);
            assert_eq!(stats.records, 3, "chunk size {size}");
            assert_eq!(out.len(), whole.len());
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
        ];
        let good_v2 = "2 123456789012 eni-0a1b 10.0.1.5 52.216.8.10 40000 443 6 3 180 1700000000 1700000010 ACCEPT OK";
        assert_eq!(v2.parse_plain(good_v2.as_bytes()), Some(v2.parse_any(good_v2.as_bytes()).unwrap()));
        let good_custom =
            "5 eni-0a1b 10.0.1.5 52.216.8.10 40000 443 6 180 1700000000 1700000010 ACCEPT OK 19 52.216.8.10 use1-az1";
        assert!(parsers[1].parse_plain(good_custom.as_bytes()).is_some());
        // Mutations of good lines: every byte replaced by each of a few troublemakers, and random ones.
        let odd: &[u8] = b" \t-0919:xA.\xff";
        let mut seed = 7u64;
        let mut rnd = move |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
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
        let mut accepted = 0;
        for p in &parsers {
            for l in &lines {
                if let Some(rec) = p.parse_plain(l) {
                    accepted += 1;
                    assert_eq!(Ok(rec), p.parse_any(l), "{:?}", String::from_utf8_lossy(l));
                }
            }
        }
        assert!(accepted > 1000, "only {accepted} lines took the one-pass path");
    }
    #[test]
    fn next_space_finds_the_first_space() {
        let line = b"eni-0123456789abcdef0 10.0.0.1  x\x80\xa0 ";
        for from in 0..=line.len() {
            let want = line[from..].iter().position(|&b| b == b' ').map_or(line.len(), |p| from + p);
            assert_eq!(next_space(line, from), want, "from {from}");
        }
    }
}
