//! Network value types shared by every layer: protocols, unique destinations, interface IDs, CIDR
//! sets, and a fast ASCII IP parser for the flow-log hot path.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An IANA protocol number, shown by name for the common ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Protocol(pub u8);

impl Protocol {
    /// ICMP (1).
    pub const ICMP: Protocol = Protocol(1);
    /// TCP (6).
    pub const TCP: Protocol = Protocol(6);
    /// UDP (17).
    pub const UDP: Protocol = Protocol(17);
    /// ICMPv6 (58).
    pub const ICMPV6: Protocol = Protocol(58);

    /// The protocol's name (`tcp`, `udp`, `icmp`, `icmpv6`) or its number.
    pub fn name(self) -> String {
        match self {
            Protocol::TCP => "tcp".into(),
            Protocol::UDP => "udp".into(),
            Protocol::ICMP => "icmp".into(),
            Protocol::ICMPV6 => "icmpv6".into(),
            Protocol(n) => n.to_string(),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::TCP),
            "udp" => Ok(Protocol::UDP),
            "icmp" => Ok(Protocol::ICMP),
            "icmpv6" => Ok(Protocol::ICMPV6),
            n => n
                .parse::<u8>()
                .map(Protocol)
                .map_err(|_| format!("unknown protocol {s:?}: use tcp, udp, icmp or a number 0-255")),
        }
    }
}

impl schemars::JsonSchema for Protocol {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Protocol".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer", "minimum": 0, "maximum": 255,
            "description": "IANA protocol number (6 TCP, 17 UDP, 1 ICMP)"
        })
    }
}

/// A unique destination as the NAT gateway counts it: the limit applies to each one separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Destination {
    /// Destination IP address.
    pub address: IpAddr,
    /// Destination port (0 for ICMP).
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            IpAddr::V4(a) => write!(f, "{a}:{}/{}", self.port, self.protocol),
            IpAddr::V6(a) => write!(f, "[{a}]:{}/{}", self.port, self.protocol),
        }
    }
}

impl FromStr for Destination {
    type Err = String;
    /// `52.216.8.10:443/tcp`, `[2001:db8::1]:443/tcp`, `198.51.100.53:53/udp`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || format!("{s:?} is not a destination: expected ADDRESS:PORT/PROTOCOL, e.g. 52.216.8.10:443/tcp");
        let (hostport, proto) = s.rsplit_once('/').ok_or_else(err)?;
        let protocol: Protocol = proto.parse().map_err(|_| err())?;
        let (host, port) = hostport.rsplit_once(':').ok_or_else(err)?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        Ok(Destination { address: host.parse().map_err(|_| err())?, port: port.parse().map_err(|_| err())?, protocol })
    }
}

/// A network interface ID (`eni-` followed by hex digits), validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InterfaceId(String);

impl InterfaceId {
    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InterfaceId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let hex = s.strip_prefix("eni-").unwrap_or("");
        if !hex.is_empty() && hex.len() <= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(InterfaceId(s))
        } else {
            Err(format!("{s:?} is not a network interface ID (expected eni- followed by hex digits)"))
        }
    }
}

impl FromStr for InterfaceId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InterfaceId::try_from(s.to_owned())
    }
}

impl From<InterfaceId> for String {
    fn from(i: InterfaceId) -> String {
        i.0
    }
}

impl fmt::Display for InterfaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of CIDR blocks (a VPC's blocks, a prefix list) with containment tests. Serialized as the
/// list of blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<IpNet>", into = "Vec<IpNet>")]
pub struct CidrSet {
    blocks: Vec<IpNet>,
    /// The IPv4 blocks as (mask, network): the analyzer asks about every record's addresses.
    v4: Vec<(u32, u32)>,
}

impl From<Vec<IpNet>> for CidrSet {
    fn from(blocks: Vec<IpNet>) -> CidrSet {
        CidrSet::new(blocks)
    }
}

impl From<CidrSet> for Vec<IpNet> {
    fn from(set: CidrSet) -> Vec<IpNet> {
        set.blocks
    }
}

impl CidrSet {
    /// A set from blocks; host bits are cleared (`10.0.1.5/16` → `10.0.0.0/16`), and an IPv4-mapped
    /// block is its IPv4 block (`::ffff:10.0.0.0/112` → `10.0.0.0/16`), as addresses are read.
    pub fn new(blocks: impl IntoIterator<Item = IpNet>) -> Self {
        let mut blocks: Vec<IpNet> = blocks.into_iter().map(|n| unmapped_net(n).unwrap_or(n).trunc()).collect();
        blocks.sort();
        blocks.dedup();
        let mut set = CidrSet { blocks, v4: Vec::new() };
        set.v4 = set.ipv4().map(|n| (u32::from(n.netmask()), u32::from(n.network()))).collect();
        set
    }

    /// The private ranges a VPC's blocks are usually drawn from (RFC 1918, RFC 6598 shared space),
    /// plus IPv6 unique-local: the assumption when no VPC CIDR is given.
    pub fn private_ranges() -> Self {
        let blocks = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"];
        CidrSet::new(blocks.iter().filter_map(|b| b.parse().ok()))
    }

    /// Whether `addr` lies in any block.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        match addr {
            // The analyzer's hot path: masks and compares on integers (blocks are truncated).
            IpAddr::V4(a) => {
                let a = u32::from(*a);
                self.v4.iter().any(|&(mask, net)| a & mask == net)
            }
            IpAddr::V6(_) => self.blocks.iter().any(|n| n.contains(addr)),
        }
    }

    /// The IPv4 blocks (Logs Insights' `isIpv4InSubnet` takes only those).
    pub fn ipv4(&self) -> impl Iterator<Item = ipnet::Ipv4Net> + '_ {
        self.blocks.iter().filter_map(|n| match n {
            IpNet::V4(v4) => Some(*v4),
            IpNet::V6(_) => None,
        })
    }

    /// All blocks.
    pub fn blocks(&self) -> &[IpNet] {
        &self.blocks
    }

    /// True when the set has no block.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// A block as the records' addresses are read: an IPv4-mapped block (`::ffff:10.0.0.0/112`) is its
/// IPv4 block (`10.0.0.0/16`), any other is itself. `None` for a mapped block with a prefix under 96,
/// which no IPv4 block is.
pub fn unmapped_net(n: IpNet) -> Option<IpNet> {
    match n {
        IpNet::V6(v6) if let Some(v4) = v6.addr().to_ipv4_mapped() => {
            let prefix = v6.prefix_len().checked_sub(96)?;
            ipnet::Ipv4Net::new(v4, prefix).ok().map(IpNet::V4)
        }
        n => Some(n),
    }
}

/// Parses an IP address from ASCII bytes without allocating: a hand-rolled IPv4 fast path (the flow-log
/// hot path) and the standard parser for IPv6.
pub fn parse_ip(b: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4(b) {
        return Some(IpAddr::V4(v4));
    }
    if b.len() > 45 || !b.contains(&b':') {
        return None;
    }
    // An IPv4-mapped IPv6 address (`::ffff:10.0.0.7`) is the IPv4 address: one host, one key.
    std::str::from_utf8(b).ok()?.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

/// Parses dotted-quad IPv4 from ASCII bytes (no leading zeros beyond a single `0`, each octet ≤ 255).
pub fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    match ipv4_prefix(b, 0) {
        Some((a, end)) if end == b.len() => Some(Ipv4Addr::from(a)),
        _ => None,
    }
}

/// A dotted-quad IPv4 address at `i` in `buf` (octets of at most three digits, no leading zeros,
/// each ≤ 255) as an integer, and where it ends; what follows is not looked at (the flow-log scan
/// reads addresses in place this way).
#[inline(always)]
pub(crate) fn ipv4_prefix(buf: &[u8], mut i: usize) -> Option<(u32, usize)> {
    let digit = |i: usize| buf.get(i).map(|b| b.wrapping_sub(b'0')).filter(|d| *d <= 9);
    let mut addr: u32 = 0;
    for n in 0..4 {
        let first = digit(i)?;
        let mut v = u32::from(first);
        i += 1;
        if let Some(d) = digit(i) {
            if first == 0 {
                return None;
            }
            v = v * 10 + u32::from(d);
            i += 1;
            if let Some(d) = digit(i) {
                v = v * 10 + u32::from(d);
                i += 1;
            }
        }
        if v > 255 {
            return None;
        }
        addr = addr << 8 | v;
        if n < 3 {
            if buf.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    Some((addr, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_containment_agrees_with_ipnet() {
        let set = CidrSet::new(
            ["10.0.0.0/16", "100.64.0.0/10", "192.168.1.7/32", "0.0.0.0/0", "fc00::/7"]
                .iter()
                .filter_map(|b| b.parse().ok()),
        );
        let narrow = CidrSet::new(["10.1.0.0/16", "172.16.0.0/12", "fd00::/8"].iter().filter_map(|b| b.parse().ok()));
        for a in [
            "10.0.0.1",
            "10.1.255.255",
            "10.2.0.0",
            "100.127.255.255",
            "100.128.0.0",
            "192.168.1.7",
            "192.168.1.8",
            "172.31.0.1",
            "8.8.8.8",
            "fd00::1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = a.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            for s in [&set, &narrow, &CidrSet::default()] {
                assert_eq!(s.contains(&ip), s.blocks().iter().any(|n| n.contains(&ip)), "{a} in {s:?}");
            }
        }
    }

    #[test]
    fn ipv4_fast_path_agrees_with_std_on_random_strings() {
        let mut rng = crate::testing::rng(11);
        let mut rnd = move |n: usize| rng(n as u64) as usize;
        let alphabet = b"0123456789012345.....25a: ";
        let mut valid = 0;
        for _ in 0..200_000 {
            let len = rnd(17);
            let s: Vec<u8> = (0..len).map(|_| alphabet[rnd(alphabet.len())]).collect();
            let want = std::str::from_utf8(&s).ok().and_then(|t| t.parse::<Ipv4Addr>().ok());
            assert_eq!(parse_ipv4(&s), want, "{:?}", String::from_utf8_lossy(&s));
            valid += usize::from(want.is_some());
        }
        assert!(valid > 100, "only {valid} valid addresses drawn");
    }

    /// An address followed by anything reads as the address alone, and where it ends.
    #[test]
    fn an_ipv4_prefix_ignores_what_follows() {
        for s in ["0.0.0.0", "10.0.1.5", "255.255.255.255", "100.64.12.7"] {
            let want: Ipv4Addr = s.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
            for tail in [" x", "\n", "x", ".", ":80", ""] {
                let b = format!("7 {s}{tail}");
                assert_eq!(ipv4_prefix(b.as_bytes(), 2), Some((u32::from(want), 2 + s.len())), "{b:?}");
            }
        }
        for s in ["01.2.3.4", "1.2.3", "256.1.1.1", "1..2.3", "::1", "1.2.3.04", "1234.1.1.1", ""] {
            assert_eq!(ipv4_prefix(s.as_bytes(), 0), None, "{s}");
        }
    }

    #[test]
    fn ipv4_fast_path_agrees_with_std() {
        for s in ["0.0.0.0", "10.0.1.5", "255.255.255.255", "52.216.8.10"] {
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse().ok(), "{s}");
        }
        for s in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "1.2.3.4 ", "a.b.c.d", "1234.1.1.1"] {
            assert_eq!(parse_ipv4(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn ipv6_and_garbage() {
        assert_eq!(parse_ip(b"2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip(b"-"), None);
        let mapped = CidrSet::new(["::ffff:10.0.0.0/112".parse().unwrap()]);
        assert_eq!(mapped.blocks(), &["10.0.0.0/16".parse::<IpNet>().unwrap()]);
        assert!(mapped.contains(&IpAddr::from([10, 0, 200, 1])));
        // IPv4-mapped: the IPv4 address, not a second key for the same host.
        assert_eq!(parse_ip(b"::ffff:10.0.0.7"), Some(IpAddr::from([10, 0, 0, 7])));
        assert_eq!(parse_ip(b"::ffff:a00:7"), Some(IpAddr::from([10, 0, 0, 7])));
        assert_eq!(parse_ip(b"\xff\xfe:"), None);
    }

    #[test]
    fn interface_ids_are_validated() {
        assert!("eni-0a1b2c3d4e5f60718".parse::<InterfaceId>().is_ok());
        for bad in ["eni-", "eni-xyz", "i-0123", "eni-0123 "] {
            assert!(bad.parse::<InterfaceId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_set_contains_and_truncates() {
        let set = CidrSet::new(["10.0.1.5/16".parse().unwrap()]);
        assert_eq!(set.blocks()[0].to_string(), "10.0.0.0/16");
        assert!(set.contains(&"10.0.200.1".parse().unwrap()));
        assert!(!set.contains(&"52.10.0.5".parse().unwrap()));
    }

    #[test]
    fn protocols_parse_and_display() {
        assert_eq!("TCP".parse::<Protocol>(), Ok(Protocol::TCP));
        assert_eq!("47".parse::<Protocol>(), Ok(Protocol(47)));
        assert!("tcpx".parse::<Protocol>().is_err());
        let d = Destination { address: "52.216.8.10".parse().unwrap(), port: 443, protocol: Protocol::TCP };
        assert_eq!(d.to_string(), "52.216.8.10:443/tcp");
        assert_eq!("52.216.8.10:443/tcp".parse::<Destination>(), Ok(d));
        let v6: Destination = "[2001:db8::1]:53/udp".parse().unwrap();
        assert_eq!(v6.to_string(), "[2001:db8::1]:53/udp");
        for bad in ["52.216.8.10:443", "52.216.8.10/tcp", "x:1/tcp", "1.2.3.4:70000/tcp", "1.2.3.4:1/foo"] {
            assert!(bad.parse::<Destination>().is_err(), "{bad}");
        }
    }
}
