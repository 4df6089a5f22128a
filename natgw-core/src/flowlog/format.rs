//! Flow-log formats: the `${field} …` `LogFormat` string AWS stores, the header line S3 writes, and
//! the default version-2 format.

use std::fmt;

/// A flow-log field natgw reads. Fields it does not need are kept as [`Field::Other`] and skipped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Version,
    AccountId,
    InterfaceId,
    SrcAddr,
    DstAddr,
    SrcPort,
    DstPort,
    Protocol,
    Packets,
    Bytes,
    Start,
    End,
    Action,
    LogStatus,
    VpcId,
    SubnetId,
    InstanceId,
    TcpFlags,
    Type,
    PktSrcAddr,
    PktDstAddr,
    Region,
    AzId,
    PktSrcAwsService,
    PktDstAwsService,
    FlowDirection,
    TrafficPath,
    /// Any other field (later versions add more); its values are skipped.
    Other(String),
}

const NAMES: &[(&str, Field)] = &[
    ("version", Field::Version),
    ("account-id", Field::AccountId),
    ("interface-id", Field::InterfaceId),
    ("srcaddr", Field::SrcAddr),
    ("dstaddr", Field::DstAddr),
    ("srcport", Field::SrcPort),
    ("dstport", Field::DstPort),
    ("protocol", Field::Protocol),
    ("packets", Field::Packets),
    ("bytes", Field::Bytes),
    ("start", Field::Start),
    ("end", Field::End),
    ("action", Field::Action),
    ("log-status", Field::LogStatus),
    ("vpc-id", Field::VpcId),
    ("subnet-id", Field::SubnetId),
    ("instance-id", Field::InstanceId),
    ("tcp-flags", Field::TcpFlags),
    ("type", Field::Type),
    ("pkt-srcaddr", Field::PktSrcAddr),
    ("pkt-dstaddr", Field::PktDstAddr),
    ("region", Field::Region),
    ("az-id", Field::AzId),
    ("pkt-src-aws-service", Field::PktSrcAwsService),
    ("pkt-dst-aws-service", Field::PktDstAwsService),
    ("flow-direction", Field::FlowDirection),
    ("traffic-path", Field::TrafficPath),
];

impl Field {
    /// The field for a name as AWS spells it (`srcaddr`, `pkt-dstaddr`); unknown names are kept.
    pub fn from_name(name: &str) -> Field {
        NAMES.iter().find(|(n, _)| *n == name).map_or_else(|| Field::Other(name.to_owned()), |(_, f)| f.clone())
    }

    /// The name as AWS spells it.
    pub fn name(&self) -> &str {
        match self {
            Field::Other(n) => n,
            f => NAMES.iter().find(|(_, g)| g == f).map_or("?", |(n, _)| n),
        }
    }

    /// The field's name in Logs Insights when AWS discovers it automatically for the default format
    /// (`srcAddr`, `logStatus`), or the name natgw gives it in a `parse` clause.
    pub fn insights_name(&self) -> String {
        let mut out = String::new();
        let mut upper = false;
        for c in self.name().chars() {
            if c == '-' {
                upper = true;
            } else if upper {
                out.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        match out.as_str() {
            "srcaddr" => "srcAddr".into(),
            "dstaddr" => "dstAddr".into(),
            "srcport" => "srcPort".into(),
            "dstport" => "dstPort".into(),
            "pktSrcaddr" => "pktSrcAddr".into(),
            "pktDstaddr" => "pktDstAddr".into(),
            _ => out,
        }
    }

    /// The field named `name` in Logs Insights ([`Field::insights_name`]); unknown names are kept.
    pub fn from_insights_name(name: &str) -> Field {
        NAMES
            .iter()
            .find(|(_, f)| f.insights_name() == name)
            .map_or_else(|| Field::Other(name.to_owned()), |(_, f)| f.clone())
    }

    fn is_name_char(b: u8) -> bool {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a `LogFormat` string or header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the log format is empty")]
    Empty,
    #[error("log format token {index} ({token:?}) is not of the form ${{field-name}}")]
    BadToken { index: usize, token: String },
    #[error("log format names field {0:?} twice")]
    Duplicate(String),
}

/// The fields of a flow log, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    fields: Vec<Field>,
}

/// The default format (version 2).
pub const DEFAULT_FORMAT: &str = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}";

impl Default for LogFormat {
    fn default() -> Self {
        LogFormat::parse(DEFAULT_FORMAT).unwrap_or_else(|_| LogFormat { fields: Vec::new() })
    }
}

impl LogFormat {
    /// Parses a `LogFormat` string as `describe-flow-logs` returns it: `${field}` tokens separated by
    /// spaces. Unknown field names are accepted (and skipped when parsing records).
    pub fn parse(s: &str) -> Result<LogFormat, FormatError> {
        let mut fields = Vec::new();
        for (index, token) in s.split_ascii_whitespace().enumerate() {
            let name = token
                .strip_prefix("${")
                .and_then(|t| t.strip_suffix('}'))
                .filter(|n| !n.is_empty() && n.bytes().all(Field::is_name_char))
                .ok_or_else(|| FormatError::BadToken { index: index + 1, token: token.to_owned() })?;
            Self::push_unique(&mut fields, Field::from_name(name))?;
        }
        if fields.is_empty() {
            return Err(FormatError::Empty);
        }
        Ok(LogFormat { fields })
    }

    /// A format of these fields, in order; duplicates are refused.
    pub fn from_fields(list: impl IntoIterator<Item = Field>) -> Result<LogFormat, FormatError> {
        let mut fields = Vec::new();
        for f in list {
            Self::push_unique(&mut fields, f)?;
        }
        if fields.is_empty() {
            return Err(FormatError::Empty);
        }
        Ok(LogFormat { fields })
    }

    /// The field CloudWatch Logs' export to S3 puts before each event: its time.
    pub const EXPORT_TIME: &'static str = "export-timestamp";

    /// This format with the time CloudWatch Logs' export to S3 writes before each event
    /// (`2026-05-28T20:30:00.000Z 2 123456789012 eni-…`) as a first field (skipped, as any unknown
    /// field), when `line`, a file's first line, is such an event of this format. `None` otherwise.
    pub fn with_export_time(&self, line: &[u8]) -> Option<LogFormat> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        let (time, rest) = line.split_at(line.iter().position(|&b| b == b' ')?);
        // YYYY-MM-DDTHH:MM:SS, then fractions of a second, then Z.
        let shape = b"dddd-dd-ddTdd:dd:dd";
        let stamp = time.len() > shape.len()
            && time.iter().zip(shape).all(|(b, s)| if *s == b'd' { b.is_ascii_digit() } else { b == s })
            && time.ends_with(b"Z")
            && time[shape.len()..time.len() - 1].iter().all(|b| b.is_ascii_digit() || *b == b'.');
        let fields = rest.split(|&b| b == b' ').filter(|t| !t.is_empty()).count();
        (stamp && fields == self.fields.len() && !self.has(&Field::Other(Self::EXPORT_TIME.into())))
            .then(|| {
                LogFormat::from_fields(
                    std::iter::once(Field::Other(Self::EXPORT_TIME.into())).chain(self.fields.iter().cloned()),
                )
            })
            .and_then(Result::ok)
    }

    /// Reads a header line as S3 delivery writes it (`version account-id interface-id srcaddr …`).
    /// Returns `None` when the line is not a header (a record, or garbage).
    ///
    /// A UTF-8 byte-order mark before it is skipped, and a name spelled with underscores
    /// (`pkt_dstaddr`, as Athena's tables have them) is the field's when only the spelling differs.
    pub fn from_header(line: &[u8]) -> Option<LogFormat> {
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        let text = std::str::from_utf8(line).ok()?;
        let mut fields = Vec::new();
        let mut known = 0;
        for token in text.split_ascii_whitespace() {
            if !token.bytes().all(Field::is_name_char) || !token.as_bytes()[0].is_ascii_lowercase() {
                return None;
            }
            let field = match Field::from_name(token) {
                Field::Other(name) if token.contains('_') => match Field::from_name(&token.replace('_', "-")) {
                    Field::Other(_) => Field::Other(name),
                    known => known,
                },
                field => field,
            };
            if !matches!(field, Field::Other(_)) {
                known += 1;
            }
            Self::push_unique(&mut fields, field).ok()?;
        }
        let has = |f: Field| fields.contains(&f);
        (known * 2 >= fields.len() && has(Field::SrcAddr) && has(Field::DstAddr)).then_some(LogFormat { fields })
    }

    fn push_unique(fields: &mut Vec<Field>, field: Field) -> Result<(), FormatError> {
        if fields.contains(&field) {
            return Err(FormatError::Duplicate(field.name().to_owned()));
        }
        fields.push(field);
        Ok(())
    }

    /// The fields in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Whether the format has `field`.
    pub fn has(&self, field: &Field) -> bool {
        self.fields.contains(field)
    }

    /// The fields of `required` the format lacks.
    pub fn missing<'f>(&self, required: &'f [Field]) -> Vec<&'f Field> {
        required.iter().filter(|f| !self.has(f)).collect()
    }

    /// Whether this is exactly the default version-2 format (Logs Insights discovers its fields).
    pub fn is_default(&self) -> bool {
        *self == LogFormat::default()
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "${{{}}}", field.name())?;
        }
        Ok(())
    }
}

impl std::str::FromStr for LogFormat {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogFormat::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips() {
        let f = LogFormat::default();
        assert_eq!(f.fields().len(), 14);
        assert_eq!(f.to_string(), DEFAULT_FORMAT);
        assert!(f.is_default());
    }

    #[test]
    fn custom_with_unknown_fields() {
        let f = LogFormat::parse("${srcaddr} ${ecs-cluster-name} ${dstaddr} ${pkt-dstaddr} ${reject-reason}").unwrap();
        assert_eq!(f.fields()[1], Field::Other("ecs-cluster-name".into()));
        assert!(f.has(&Field::PktDstAddr));
        assert!(!f.is_default());
        assert_eq!(f.missing(&[Field::SrcPort, Field::DstAddr]), vec![&Field::SrcPort]);
    }

    #[test]
    fn bad_formats_name_the_problem() {
        assert_eq!(LogFormat::parse("  "), Err(FormatError::Empty));
        assert_eq!(
            LogFormat::parse("${srcaddr} dstaddr"),
            Err(FormatError::BadToken { index: 2, token: "dstaddr".into() })
        );
        assert_eq!(
            LogFormat::parse("${srcaddr} ${SrcAddr}").map(|_| ()),
            Err(FormatError::BadToken { index: 2, token: "${SrcAddr}".into() })
        );
        assert_eq!(LogFormat::parse("${srcaddr} ${srcaddr}"), Err(FormatError::Duplicate("srcaddr".into())));
        assert!(matches!(LogFormat::parse("${srcaddr"), Err(FormatError::BadToken { .. })));
    }

    #[test]
    fn headers() {
        let h = b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";
        assert_eq!(LogFormat::from_header(h), Some(LogFormat::default()));
        assert_eq!(LogFormat::from_header(b"2 123456789012 eni-0a 10.0.0.1 10.0.0.2 1 2 6 1 1 1 1 ACCEPT OK"), None);
        assert_eq!(LogFormat::from_header(b"\x00\xff garbage"), None);
        assert_eq!(LogFormat::from_header(b"vpc-0abc subnet-0abc eni-0abc srcaddr dstaddr"), None);
        // A byte-order mark before it (a file saved by an editor), and Athena's spelling.
        assert_eq!(LogFormat::from_header(&[&b"\xEF\xBB\xBF"[..], h].concat()), Some(LogFormat::default()));
        let athena =
            b"version account_id interface_id srcaddr dstaddr srcport dstport protocol packets bytes start end \
                       action log_status";
        assert_eq!(LogFormat::from_header(athena), Some(LogFormat::default()));
        // An unknown name keeps its spelling.
        let other = LogFormat::from_header(b"srcaddr dstaddr my_field").map(|f| f.fields().to_vec());
        assert_eq!(other, Some(vec![Field::SrcAddr, Field::DstAddr, Field::Other("my_field".into())]));
    }

    /// CloudWatch Logs' export to S3 puts each event's time first: taken as a field to skip.
    #[test]
    fn an_export_time_before_each_line() {
        let v2 = LogFormat::default();
        let line = b"2026-05-28T20:30:00.000Z 2 123456789012 eni-0a 10.0.1.9 10.0.0.142 34107 443 6 3 957 1780000000 1780000020 ACCEPT OK";
        let with = v2.with_export_time(line).map(|f| f.fields().to_vec());
        let want: Vec<Field> =
            std::iter::once(Field::Other(LogFormat::EXPORT_TIME.into())).chain(v2.fields().iter().cloned()).collect();
        assert_eq!(with, Some(want));
        assert_eq!(v2.with_export_time(&[&line[..], b"\r"].concat()).map(|f| f.fields().len()), Some(15));
        assert_eq!(v2.with_export_time(&[&b"\xEF\xBB\xBF"[..], line].concat()).map(|f| f.fields().len()), Some(15));
        // The line as S3 delivers it, a time of another shape, a field too many or too few: no.
        assert_eq!(v2.with_export_time(&line[25..]), None);
        assert_eq!(v2.with_export_time(&[&b"2026-05-28 20:30:00Z "[..], &line[25..]].concat()), None);
        assert_eq!(v2.with_export_time(&[&line[..], b" extra"].concat()), None);
        assert_eq!(v2.with_export_time(&line[..line.len() - 3]), None);
        // Once is enough.
        let once = v2.with_export_time(line).unwrap_or_default();
        assert_eq!(once.with_export_time(&[&b"2026-05-28T20:30:00Z "[..], line].concat()), None);
    }

    #[test]
    fn insights_names() {
        assert_eq!(Field::SrcAddr.insights_name(), "srcAddr");
        assert_eq!(Field::LogStatus.insights_name(), "logStatus");
        assert_eq!(Field::PktDstAddr.insights_name(), "pktDstAddr");
        assert_eq!(Field::TcpFlags.insights_name(), "tcpFlags");
        assert_eq!(Field::FlowDirection.insights_name(), "flowDirection");
    }
}
