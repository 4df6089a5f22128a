//! The one-pass line scanner: the parser's hot path. A [`LineParser`](super::LineParser) compiles its
//! format into one [`Op`] per field; [`Scan::line`] then reads a line straight out of the buffer, from
//! its start through its `\n`, field by field:
//!
//! - the line's head (its leading fields that are skipped or the interface ID) is compared with the
//!   last line's as bytes and, when equal, not read again: runs of lines share it;
//! - numbers are read eight digits at a time (SWAR on a `u64`), and their digit check finds their end;
//!   a start's or end's first eight digits, when the last line's, are not converted again;
//! - IPv4 addresses are read by a tight loop, separators of other fields found eight bytes at a time;
//! - fields the consumer does not want are skipped, not parsed;
//! - a line is read in a fixed-size window of the buffer, so that reads in it need no bounds checks;
//! - the default format's fields after the head, as the analysis reads them, take the same steps
//!   unrolled, with each field's op known when compiling: no dispatch per field.
//!
//! Anything unusual in a wanted field (`-`, IPv6, text) takes the general field setter on the same
//! token. A line in any shape other than the one AWS writes (runs of separators, tabs, `\r`, the wrong
//! number of fields, a value that does not fit its field, a bad value) makes the scan decline, and
//! the general parser reads that line: whenever the scan gives a record, it is the one
//! [`LineParser::parse`](super::LineParser::parse) gives for that line (a test holds them equal).

use std::net::IpAddr;

use super::format::Field;
use super::parse::set;
use super::record::{Action, LogStatus, Record, TcpFlags};
use crate::net::{Protocol, ipv4_prefix};

/// A numeric field the scan parses: the record slot of a [`Field`], small and `Copy` so that storing a
/// value is one jump (a match on `Field` itself, which owns strings, cost 2.6× as much per number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Num {
    Version,
    SrcPort,
    DstPort,
    Protocol,
    Packets,
    Bytes,
    Start,
    End,
    TcpFlags,
}

/// An address field the scan parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Addr {
    Src,
    Dst,
    PktSrc,
    PktDst,
}

/// What the scan does with one field of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// Not wanted: skipped to the next separator.
    Skip,
    /// A wanted decimal number.
    Number(Num),
    /// A wanted address: IPv4 here, anything else through the general setter.
    Address(Addr),
    /// `ACCEPT` or `REJECT`.
    Action,
    /// `OK`, `NODATA` or `SKIPDATA`.
    LogStatus,
    /// The interface ID: text that runs of lines share (see [`Last::interface_id`]).
    InterfaceId,
    /// Any other wanted field, through the general setter.
    Token,
}

impl Op {
    pub(super) fn of(field: &Field, wanted: bool) -> Op {
        match field {
            _ if !wanted => Op::Skip,
            Field::Version => Op::Number(Num::Version),
            Field::SrcPort => Op::Number(Num::SrcPort),
            Field::DstPort => Op::Number(Num::DstPort),
            Field::Protocol => Op::Number(Num::Protocol),
            Field::Packets => Op::Number(Num::Packets),
            Field::Bytes => Op::Number(Num::Bytes),
            Field::Start => Op::Number(Num::Start),
            Field::End => Op::Number(Num::End),
            Field::TcpFlags => Op::Number(Num::TcpFlags),
            Field::SrcAddr => Op::Address(Addr::Src),
            Field::DstAddr => Op::Address(Addr::Dst),
            Field::PktSrcAddr => Op::Address(Addr::PktSrc),
            Field::PktDstAddr => Op::Address(Addr::PktDst),
            Field::Action => Op::Action,
            Field::LogStatus => Op::LogStatus,
            Field::InterfaceId => Op::InterfaceId,
            _ => Op::Token,
        }
    }
}

/// The compiled scan of one format: the fields and what to do with each.
#[derive(Debug, Clone)]
pub(super) struct Scan {
    fields: Vec<Field>,
    ops: Vec<Op>,
    /// How many leading fields form a line's head: fields skipped, and the interface ID. Runs of
    /// lines (a file, often) share their head, so it is compared with the last line's, not read.
    head_fields: usize,
    /// The last line's head, its trailing space included (empty: none yet).
    head: Vec<u8>,
    /// Whether that head holds an interface ID (not `-`), and which (in `last`).
    head_interface_id: bool,
    /// The ops after the head are [`DEFAULT_TAIL`].
    default_tail: bool,
    last: Last,
}

/// What the scan keeps of the lines it read.
#[derive(Debug, Clone)]
struct Last {
    /// The last interface ID ([`remember`]).
    interface_id: String,
    /// The last start's and end's first eight digits, and their value ([`number_memo`]).
    times: [(u64, u64); 2],
}

impl Default for Last {
    fn default() -> Last {
        // "00000000" is 0: a memo holds eight digits and their value from the start (a word of
        // zero bytes would match eight NULs).
        Last { interface_id: String::new(), times: [(ZEROS, 0); 2] }
    }
}

/// The default format's fields after its head (version, account ID, interface ID) as the analysis
/// reads them ([`crate::analyze::FIELDS`]: all but the packets).
const DEFAULT_TAIL: [Op; 11] = [
    Op::Address(Addr::Src),
    Op::Address(Addr::Dst),
    Op::Number(Num::SrcPort),
    Op::Number(Num::DstPort),
    Op::Number(Num::Protocol),
    Op::Skip,
    Op::Number(Num::Bytes),
    Op::Number(Num::Start),
    Op::Number(Num::End),
    Op::Action,
    Op::LogStatus,
];

/// The bytes of buffer a line is read in when it has them ([`Scan::line`]): lines of the default
/// format take about 110, of a custom format with every field about 330.
const WINDOW: usize = 512;
/// How far from the window's end a field may start: more than any field the scan reads without a
/// loop (addresses, numbers, words) takes, with the word read past its end.
const SLACK: usize = 64;

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const LOWS: u64 = u64::from_ne_bytes([0x7F; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
const ZEROS: u64 = u64::from_ne_bytes([b'0'; 8]);

/// The eight bytes at `i` as a little-endian word (first byte lowest), if the buffer has them.
#[inline(always)]
fn word(buf: &[u8], i: usize) -> Option<u64> {
    buf.get(i..)?.first_chunk().map(|b| u64::from_le_bytes(*b))
}

/// The high bit of each byte of `x` below `!` (space, tab, line end, control bytes), exactly.
#[inline(always)]
fn separator_bytes(x: u64) -> u64 {
    !(((x & LOWS) + ONES * (0x80 - 0x21)) | x) & HIGHS
}

/// How many ASCII digits `x` starts with (0–8).
///
/// Flagging every non-digit byte exactly takes a mask against carries between bytes; the first one
/// needs none: the bytes below it are digits (0–9 after the XOR), which carry nothing.
#[inline(always)]
fn leading_digits(x: u64) -> usize {
    let d = x ^ ZEROS;
    ((d.wrapping_add(ONES * (0x80 - 10)) | d) & HIGHS).trailing_zeros() as usize / 8
}

/// `ACCEPT` and `OK` as the low bytes of a word.
const ACCEPT: u64 = u64::from_le_bytes(*b"ACCEPT\0\0");
const OK: u64 = u64::from_le_bytes(*b"OK\0\0\0\0\0\0");

/// Whether the word `x` starts with the `len` bytes of `word` and a separator (a byte below `!`).
#[inline(always)]
fn ends_word(x: u64, word: u64, len: u32) -> bool {
    x & ((1 << (8 * len)) - 1) == word && (x >> (8 * len)) as u8 <= b' '
}

/// Powers of ten by digit count.
const POW10: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// The value of eight digit values (0–9, one per byte, first digit in the lowest byte).
#[inline(always)]
fn eight_digits(v: u64) -> u64 {
    let v = (v & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561) >> 8;
    let v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601) >> 16;
    (v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001) >> 32
}

/// A decimal number of 1–19 digits at `begin` (which cannot overflow): its value and where its
/// digits end. More digits, or none: `None`.
#[inline(always)]
pub(super) fn number(buf: &[u8], begin: usize) -> Option<(u64, usize)> {
    let Some(x) = word(buf, begin) else { return digits_on(buf, begin, begin, 0) };
    // The first eight bytes on their own: most numbers end in them, and need no multiply-add.
    let (v, len) = first_digits(x)?;
    if len < 8 {
        return Some((v, begin + len));
    }
    digits_on(buf, begin, begin + 8, v)
}

/// [`number`] for a field whose first eight digits are often the last line's (times: Unix seconds
/// share them for 100 s): `memo` holds the last eight digits read as a word, and their value.
#[inline(always)]
fn number_memo(buf: &[u8], begin: usize, memo: &mut (u64, u64)) -> Option<(u64, usize)> {
    let Some(x) = word(buf, begin) else { return digits_on(buf, begin, begin, 0) };
    if x == memo.0 {
        // Eight digits: the memo holds nothing else (it starts as "00000000" and 0).
        return digits_on(buf, begin, begin + 8, memo.1);
    }
    let (v, len) = first_digits(x)?;
    if len < 8 {
        return Some((v, begin + len));
    }
    *memo = (x, v);
    digits_on(buf, begin, begin + 8, v)
}

/// The value and count of the digits `x` starts with (up to eight); `None` when it starts with none.
#[inline(always)]
fn first_digits(x: u64) -> Option<(u64, usize)> {
    let len = leading_digits(x);
    // The digits shifted to the top; the zero bytes below them read as leading zeros.
    (len > 0).then(|| (eight_digits((x ^ ZEROS) << (64 - 8 * len)), len))
}

/// The rest of a number at `begin` whose digits up to `i` have the value `v`.
#[inline(always)]
fn digits_on(buf: &[u8], begin: usize, mut i: usize, mut v: u64) -> Option<(u64, usize)> {
    while let Some(x) = word(buf, i) {
        let Some((w, len)) = first_digits(x) else { break };
        v = v * POW10[len] + w;
        i += len;
        if len < 8 {
            return Some((v, i));
        }
        if i - begin == 16 {
            // Eight more digits could overflow: the last three of 19 go one at a time.
            break;
        }
    }
    // Near the buffer's end (or after 16 digits): one digit at a time.
    while let Some(&b) = buf.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if i - begin >= 19 {
            return None;
        }
        v = v * 10 + u64::from(d);
        i += 1;
    }
    (i > begin).then_some((v, i))
}

/// The position of the first byte below `!` (a space, tab, line end or control byte) in `buf` from
/// `i`, or the buffer's length.
#[inline(always)]
fn next_separator(buf: &[u8], mut i: usize) -> usize {
    while let Some(x) = word(buf, i) {
        let found = separator_bytes(x);
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < buf.len() && buf[i] > b' ' {
        i += 1;
    }
    i
}

impl Scan {
    pub(super) fn new(fields: &[Field], wanted: &[bool]) -> Scan {
        let ops: Vec<Op> = fields.iter().zip(wanted).map(|(f, w)| Op::of(f, *w)).collect();
        let head_fields = ops.iter().take_while(|op| matches!(op, Op::Skip | Op::InterfaceId)).count();
        let default_tail = ops[head_fields..] == DEFAULT_TAIL[..];
        Scan {
            fields: fields.to_vec(),
            ops,
            head_fields,
            head: Vec::new(),
            head_interface_id: false,
            default_tail,
            last: Last::default(),
        }
    }

    /// Reads the line's head (its leading fields that are skipped or the interface ID) from `start`:
    /// where the next field starts. A head identical to the last line's is compared, not read.
    #[inline(always)]
    fn head(&mut self, buf: &[u8], start: usize) -> Option<usize> {
        if self.head_fields == 0 {
            return Some(start);
        }
        let line = &buf[start..];
        if !self.head.is_empty() && line.starts_with(&self.head) {
            return Some(start + self.head.len());
        }
        let mut i = start;
        self.head_interface_id = false;
        for k in 0..self.head_fields {
            let begin = i;
            i = next_separator(buf, i);
            if i == begin || buf.get(i) != Some(&b' ') {
                // A line of only head fields, or an odd one: the general parser reads it.
                self.head.clear();
                return None;
            }
            if self.ops[k] == Op::InterfaceId {
                let Some(named) = remember(&mut self.last.interface_id, &buf[begin..i]) else {
                    self.head.clear();
                    return None;
                };
                self.head_interface_id = named;
            }
            i += 1;
        }
        self.head.clear();
        self.head.extend_from_slice(&buf[start..i]);
        Some(i)
    }

    #[cfg(test)]
    pub(super) fn has_default_tail(&self) -> bool {
        self.default_tail
    }

    /// Reads the line that starts at `start` in `buf`, through its `\n`, and hands its record to
    /// `on_record`; returns where the next line starts. `None` (and no record) when the line is not in
    /// the shape AWS writes, or has no `\n` in `buf`.
    ///
    /// A line with [`WINDOW`] bytes of buffer from its start is read in that fixed-size slice, each
    /// field at least [`SLACK`] bytes from its end: the compiler then knows the reads of words in a
    /// field are in bounds and checks none (2 % fewer instructions, 2–4 % less time on the
    /// benchmark). A line that does not fit (at a buffer's end, or a long one) is read as it is.
    #[inline]
    pub(super) fn line(&mut self, buf: &[u8], start: usize, on_record: &mut dyn FnMut(&Record<'_>)) -> Option<usize> {
        if let Some(window) = buf.get(start..start + WINDOW)
            && let Some(end) = self.line_in::<true>(window, 0, on_record)
        {
            return Some(start + end);
        }
        self.line_in::<false>(buf, start, on_record)
    }

    /// [`line`](Scan::line), `WINDOWED` when `buf` is a window of [`WINDOW`] bytes: a field nearer
    /// than [`SLACK`] bytes to its end then makes the scan decline.
    #[inline(always)]
    fn line_in<'a, const WINDOWED: bool>(
        &mut self,
        buf: &'a [u8],
        start: usize,
        on_record: &mut dyn FnMut(&Record<'_>),
    ) -> Option<usize> {
        let mut i = self.head(buf, start)?;
        let mut rec = Record::default();
        let mut named = self.head_interface_id;
        let last = &mut self.last;
        // The fields after the head: all but the last end in a space, the last in the line end.
        let (ops, fields) = (&self.ops[self.head_fields..], &self.fields[self.head_fields..]);
        if self.default_tail {
            // The same steps with the ops known at compile time: no dispatch per field.
            let fields: &[Field; DEFAULT_TAIL.len()] = fields.try_into().ok()?;
            macro_rules! tail {
                ($($k:literal)*) => {$(
                    i = read::<WINDOWED>(buf, i, DEFAULT_TAIL[$k], &fields[$k], &mut rec, last, &mut named)?;
                    if buf.get(i) != Some(if $k + 1 < DEFAULT_TAIL.len() { &b' ' } else { &b'\n' }) {
                        return None;
                    }
                    i += 1;
                )*};
            }
            tail!(0 1 2 3 4 5 6 7 8 9 10);
            i -= 1;
        } else {
            let (last_op, ops) = ops.split_last()?;
            let (last_field, fields) = fields.split_last()?;
            for (op, field) in ops.iter().zip(fields) {
                i = read::<WINDOWED>(buf, i, *op, field, &mut rec, last, &mut named)?;
                if buf.get(i) != Some(&b' ') {
                    return None;
                }
                i += 1;
            }
            i = read::<WINDOWED>(buf, i, *last_op, last_field, &mut rec, last, &mut named)?;
            if buf.get(i) != Some(&b'\n') {
                return None;
            }
        }
        if named {
            rec.interface_id = Some(self.last.interface_id.as_str());
        }
        on_record(&rec);
        Some(i + 1)
    }
}

/// Remembers an interface ID token as text (checked once per change): whether it names one (not
/// `-`); `None` when it is not text.
#[inline(always)]
fn remember(cache: &mut String, t: &[u8]) -> Option<bool> {
    if t == b"-" {
        return Some(false);
    }
    if t != cache.as_bytes() {
        cache.clear();
        cache.push_str(std::str::from_utf8(t).ok()?);
    }
    Some(true)
}

/// Reads one field at `i` into `rec` (the interface ID into `last`, `named` saying whether it names
/// one): where the field ends. `None` for an empty field or a value the general parser must judge.
#[inline(always)]
fn read<'a, const WINDOWED: bool>(
    buf: &'a [u8],
    mut i: usize,
    op: Op,
    field: &Field,
    rec: &mut Record<'a>,
    last: &mut Last,
    named: &mut bool,
) -> Option<usize> {
    // In a window: a field this far from its end is in bounds for every word read below.
    if WINDOWED && i + SLACK > buf.len() {
        return None;
    }
    let begin = i;
    match op {
        Op::Skip => i = next_separator(buf, i),
        Op::InterfaceId => {
            i = next_separator(buf, i);
            *named = remember(&mut last.interface_id, &buf[begin..i])?;
        }
        Op::Number(slot) => match match slot {
            Num::Start => number_memo(buf, i, &mut last.times[0]),
            Num::End => number_memo(buf, i, &mut last.times[1]),
            _ => number(buf, i),
        } {
            Some((v, end)) => {
                set_number(rec, slot, v)?;
                return Some(end);
            }
            None => {
                i = next_separator(buf, i);
                token(rec, field, &buf[begin..i])?;
            }
        },
        Op::Address(slot) => match ipv4_prefix(buf, i) {
            Some((a, end)) => {
                let a = Some(IpAddr::V4(a.into()));
                match slot {
                    Addr::Src => rec.srcaddr = a,
                    Addr::Dst => rec.dstaddr = a,
                    Addr::PktSrc => rec.pkt_srcaddr = a,
                    Addr::PktDst => rec.pkt_dstaddr = a,
                }
                return Some(end);
            }
            None => {
                i = next_separator(buf, i);
                token(rec, field, &buf[begin..i])?;
            }
        },
        // The common words in one compare each, with the separator after them: what the
        // general steps below make of them, without finding the separator first.
        Op::Action if word(buf, i).is_some_and(|w| ends_word(w, ACCEPT, 6)) => {
            rec.action = Some(Action::Accept);
            return Some(i + 6);
        }
        Op::LogStatus if word(buf, i).is_some_and(|w| ends_word(w, OK, 2)) => {
            rec.log_status = LogStatus::Ok;
            return Some(i + 2);
        }
        Op::Action => {
            i = next_separator(buf, i);
            rec.action = match &buf[begin..i] {
                b"ACCEPT" => Some(Action::Accept),
                b"REJECT" => Some(Action::Reject),
                b"-" => None,
                _ => return None,
            };
        }
        Op::LogStatus => {
            i = next_separator(buf, i);
            rec.log_status = match &buf[begin..i] {
                b"OK" => LogStatus::Ok,
                b"NODATA" => LogStatus::NoData,
                b"SKIPDATA" => LogStatus::SkipData,
                _ => return None,
            };
        }
        Op::Token => {
            i = next_separator(buf, i);
            token(rec, field, &buf[begin..i])?;
        }
    }
    (i > begin).then_some(i)
}

/// Stores a numeric field's value; `None` when it does not fit the field (the general parser then
/// says why).
#[inline(always)]
fn set_number(rec: &mut Record<'_>, slot: Num, v: u64) -> Option<()> {
    match slot {
        Num::Version => rec.version = Some(u8::try_from(v).ok()?),
        Num::SrcPort => rec.srcport = Some(u16::try_from(v).ok()?),
        Num::DstPort => rec.dstport = Some(u16::try_from(v).ok()?),
        Num::Protocol => rec.protocol = Some(Protocol(u8::try_from(v).ok()?)),
        Num::Packets => rec.packets = Some(v),
        Num::Bytes => rec.bytes = Some(v),
        // Unix seconds in 32 bits (to 2106), as the general parser reads them.
        Num::Start => rec.start = Some(u64::from(u32::try_from(v).ok()?)),
        Num::End => rec.end = Some(u64::from(u32::try_from(v).ok()?)),
        Num::TcpFlags => rec.tcp_flags = Some(TcpFlags(u16::try_from(v).ok()?)),
    }
    Some(())
}

/// A wanted field's token through the general setter (`-` leaves it unset); `None` for a bad value.
#[inline]
fn token<'a>(rec: &mut Record<'a>, field: &Field, t: &'a [u8]) -> Option<()> {
    if t != b"-" {
        set(rec, field, t).ok()?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_agree_with_a_digit_loop() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for n in 0..=26 {
            for tail in [&b" x"[..], b"", b"\n", b"-", b"a1234567890", b"/", b":"] {
                let digits: Vec<u8> = (0..n).map(|k| b"9081726354"[k % 10]).collect();
                cases.push([&digits[..], tail].concat());
                cases.push([&b"0"[..], &digits, tail].concat());
                cases.push([&digits[..], tail, b"          "].concat());
            }
        }
        cases.push(b"9999999999999999999 ".to_vec());
        cases.push(b"18446744073709551615".to_vec());
        // Eight NULs (a word of zero bytes), and eight zeros.
        cases.push(vec![0; 12]);
        cases.push(b"00000000000 ".to_vec());
        // One memo across all, as a scan starts it: it holds the last eight digits read wherever
        // they were.
        let mut memo = Last::default().times[0];
        for c in &cases {
            for at in 0..c.len() {
                let digits = c[at..].iter().take_while(|b| b.is_ascii_digit()).count();
                let want = (1..=19).contains(&digits).then(|| {
                    let v = c[at..at + digits].iter().fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
                    (v, at + digits)
                });
                assert_eq!(number(c, at), want, "{:?} at {at}", String::from_utf8_lossy(c));
                for _ in 0..2 {
                    assert_eq!(number_memo(c, at, &mut memo), want, "{:?} at {at}", String::from_utf8_lossy(c));
                }
                let fresh = &mut Last::default().times[0];
                assert_eq!(number_memo(c, at, fresh), want, "{:?} at {at}, fresh", String::from_utf8_lossy(c));
            }
        }
    }

    /// The byte classes are exact for every byte value in every position, whatever its neighbours.
    #[test]
    fn byte_classes_are_exact() {
        for b in 0..=255u8 {
            for at in 0..8 {
                for fill in [0u8, b' ', b'0', b'9', 0x80, 0xff, b'\n'] {
                    let mut bytes = [fill; 8];
                    bytes[at] = b;
                    let x = u64::from_le_bytes(bytes);
                    let flag = |pred: &dyn Fn(u8) -> bool| {
                        bytes.iter().enumerate().filter(|(_, v)| pred(**v)).fold(0u64, |m, (i, _)| m | 0x80 << (8 * i))
                    };
                    assert_eq!(separator_bytes(x), flag(&|v| v <= b' '), "{b:#x} at {at} in {fill:#x}");
                    let digits = bytes.iter().take_while(|v| v.is_ascii_digit()).count();
                    assert_eq!(leading_digits(x), digits, "{b:#x} at {at} in {fill:#x}");
                }
            }
        }
    }
}
