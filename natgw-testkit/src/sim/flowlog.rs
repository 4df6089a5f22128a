//! VPC flow-log rendering: per-window aggregation of each flow, then the default v2 and custom v5 lines.
//!
//! Each interface has its own aggregation windows of `interval` seconds starting at a fixed random offset
//! (not on the epoch minute). A record covers one direction-specific flow in one window: `start`/`end`
//! are its first and last packet seconds there. Records whose packet-level 5-tuple is the same in one
//! window merge (a NAT port reused within a window gives one `NAT → host` record), exactly as AWS
//! aggregates. Every interface gets a `NODATA` record for each window without traffic (at least the
//! window before the simulated span), and one `SKIPDATA` record is added per file (no record is
//! actually dropped, so the logs stay consistent with the truth).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::engine::{Conn, Kind, Simulation, mix};
use super::scenario::DestSpec;

/// Header line of a default-format (version 2) flow-log file delivered to S3.
pub const V2_HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";

/// Header line of the clients' default-format file (the same fields as [`V2_HEADER`]).
pub const CLIENTS_V2_HEADER: &str = V2_HEADER;

/// `LogFormat` of the NAT interface's custom flow log.
pub const NAT_CUSTOM_FORMAT: &str = "${version} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${account-id} ${type} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${pkt-srcaddr} ${pkt-dstaddr} ${protocol} ${bytes} ${packets} ${start} ${end} ${action} ${tcp-flags} ${log-status} ${flow-direction} ${pkt-dst-aws-service} ${az-id}";

/// Header line of the custom-format file (the `LogFormat` field names).
pub const NAT_CUSTOM_HEADER: &str = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status flow-direction pkt-dst-aws-service az-id";

/// Legs of a connection as seen on the NAT interface (0–3) and on the client's interface (4–5).
const CLIENT_TO_NAT: u8 = 0;
const NAT_TO_HOST: u8 = 1;
const HOST_TO_NAT: u8 = 2;
const NAT_TO_CLIENT: u8 = 3;
const CLIENT_OUT: u8 = 4;
const CLIENT_IN: u8 = 5;

/// Log status of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    NoData,
    SkipData,
}

/// One flow-log record before formatting.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec {
    /// Window start (unix).
    pub(crate) ws: i64,
    /// First packet second (window start for NODATA/SKIPDATA).
    pub(crate) first: i64,
    /// Last packet second (window end for NODATA/SKIPDATA).
    pub(crate) last: i64,
    /// Stable tie-breaker: 0 NODATA, 1 SKIPDATA, else `(conn + 1) << 3 | leg`.
    pub(crate) stable: u64,
    pub(crate) bytes: u64,
    pub(crate) pkts: u32,
    /// Interface: 0 for the NAT interface, the client index for clients' interfaces.
    pub(crate) eni: u32,
    /// First connection merged into this record.
    pub(crate) conn: u32,
    pub(crate) leg: u8,
    pub(crate) flags: u8,
    pub(crate) status: Status,
}

/// Packets of one connection in one window, both directions.
#[derive(Clone, Copy, Debug)]
struct WinAgg {
    ws: i64,
    first: i64,
    last: i64,
    out_pk: u32,
    out_b: u64,
    in_pk: u32,
    in_b: u64,
    out_fl: u8,
    in_fl: u8,
}

/// A multiply-xorshift hasher for the packed `u64` merge keys (no iteration depends on it).
#[derive(Default, Debug, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = mix(self.0 ^ n);
    }
}

type KeyMap = HashMap<u64, u32, BuildHasherDefault<KeyHasher>>;

/// Start of the window (of an interface with offset `off`) that contains `t`.
pub(crate) fn window_start(t: i64, off: i64, interval: i64) -> i64 {
    t - (t - off).rem_euclid(interval)
}

/// Which interfaces to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Nat,
    Clients,
}

struct Builder {
    recs: Vec<Rec>,
    last: KeyMap,
    interval: i64,
    /// Per interface: first window start.
    first_ws: Vec<i64>,
    n_windows: usize,
    /// Per interface and window: whether it has a data record.
    used: Vec<bool>,
}

impl Builder {
    fn add(&mut self, key: u64, rec: Rec) {
        if let Some(&i) = self.last.get(&key) {
            let r = &mut self.recs[i as usize];
            if r.ws == rec.ws {
                r.first = r.first.min(rec.first);
                r.last = r.last.max(rec.last);
                r.pkts += rec.pkts;
                r.bytes += rec.bytes;
                r.flags |= rec.flags;
                return;
            }
        }
        let e = rec.eni as usize;
        let w = ((rec.ws - self.first_ws[e]) / self.interval) as usize;
        if w < self.n_windows {
            self.used[e * self.n_windows + w] = true;
        }
        self.last.insert(key, self.recs.len() as u32);
        self.recs.push(rec);
    }
}

impl Simulation {
    /// Records of one side, merged per window and sorted by (window start, start, interface, stable key).
    pub(crate) fn records(&self, side: Side) -> Vec<Rec> {
        let sc = &self.scenario;
        let interval = i64::from(sc.interval_secs);
        let start = sc.start as i64;
        let end = sc.end() as i64;
        let offsets: Vec<i64> = match side {
            Side::Nat => vec![i64::from(self.nat_offset)],
            Side::Clients => self.client_offsets.iter().map(|&o| i64::from(o)).collect(),
        };
        let first_ws: Vec<i64> = offsets.iter().map(|&o| window_start(start - interval, o, interval)).collect();
        // Every interface's windows run from the one before the span to the one holding its last second;
        // with per-interface offsets that is the same count, give or take one.
        let n_windows = offsets
            .iter()
            .zip(&first_ws)
            .map(|(&o, &f)| ((window_start(end - 1, o, interval) - f) / interval + 1) as usize)
            .max()
            .unwrap_or(0);
        let mut b = Builder {
            recs: Vec::with_capacity(self.conns.len() * if side == Side::Nat { 5 } else { 3 }),
            last: KeyMap::default(),
            interval,
            first_ws: first_ws.clone(),
            n_windows,
            used: vec![false; offsets.len() * n_windows],
        };
        for (ci, c) in self.conns.iter().enumerate() {
            let (eni, off) = match side {
                Side::Nat => (0u32, offsets[0]),
                Side::Clients => (u32::from(c.client), offsets[usize::from(c.client)]),
            };
            let mut cur: Option<WinAgg> = None;
            for p in self.packets(c) {
                let t = start + i64::from(p.t);
                let ws = window_start(t, off, interval);
                match &mut cur {
                    Some(a) if a.ws == ws => {
                        a.last = t;
                        a.out_pk += p.out_pk;
                        a.out_b += p.out_b;
                        a.in_pk += p.in_pk;
                        a.in_b += p.in_b;
                        a.out_fl |= p.out_fl;
                        a.in_fl |= p.in_fl;
                    }
                    _ => {
                        if let Some(a) = cur.take() {
                            flush(&mut b, side, ci as u32, c, eni, &a);
                        }
                        cur = Some(WinAgg {
                            ws,
                            first: t,
                            last: t,
                            out_pk: p.out_pk,
                            out_b: p.out_b,
                            in_pk: p.in_pk,
                            in_b: p.in_b,
                            out_fl: p.out_fl,
                            in_fl: p.in_fl,
                        });
                    }
                }
            }
            if let Some(a) = cur {
                flush(&mut b, side, ci as u32, c, eni, &a);
            }
        }
        let Builder { mut recs, used, .. } = b;
        let special = |eni: usize, w: usize, status: Status| {
            let ws = first_ws[eni] + w as i64 * interval;
            Rec {
                ws,
                first: ws,
                last: ws + interval - 1,
                stable: if status == Status::NoData { 0 } else { 1 },
                bytes: 0,
                pkts: 0,
                eni: eni as u32,
                conn: 0,
                leg: 0,
                flags: 0,
                status,
            }
        };
        for (eni, &o) in offsets.iter().enumerate() {
            let last_ws = window_start(end - 1, o, interval);
            for w in 0..n_windows {
                let ws = first_ws[eni] + w as i64 * interval;
                if ws <= last_ws && !used[eni * n_windows + w] {
                    recs.push(special(eni, w, Status::NoData));
                }
            }
        }
        // One SKIPDATA record, in a window with traffic in the middle of the span.
        let mut rng = SmallRng::seed_from_u64(self.skip_seed ^ side as u64);
        let busy: Vec<(usize, usize)> = (0..offsets.len())
            .flat_map(|e| (n_windows / 3..(2 * n_windows / 3).max(n_windows / 3 + 1)).map(move |w| (e, w)))
            .filter(|&(e, w)| w < n_windows && used[e * n_windows + w])
            .collect();
        if !busy.is_empty() {
            let (e, w) = busy[rng.random_range(0..busy.len())];
            recs.push(special(e, w, Status::SkipData));
        }
        recs.sort_unstable_by_key(|r| (r.ws, r.first, r.eni, r.stable));
        recs
    }

    /// Default-format lines (with header) of the NAT interface or of the clients' interfaces.
    pub(crate) fn format_v2(&self, side: Side, recs: &[Rec]) -> Vec<u8> {
        let t = Texts::new(self);
        let mut out = Vec::with_capacity(recs.len() * 112 + 256);
        out.extend_from_slice(V2_HEADER.as_bytes());
        out.push(b'\n');
        for r in recs {
            out.extend_from_slice(b"2 ");
            out.extend_from_slice(&t.account);
            out.push(b' ');
            let eni = match side {
                Side::Nat => &t.nat_eni,
                Side::Clients => &t.client_enis[r.eni as usize],
            };
            out.extend_from_slice(eni);
            if r.status != Status::Ok {
                out.extend_from_slice(b" - - - - - - - ");
                put_i64(&mut out, r.first);
                out.push(b' ');
                put_i64(&mut out, r.last);
                out.extend_from_slice(status_tail_v2(r.status));
                continue;
            }
            let c = &self.conns[r.conn as usize];
            let f = t.fields(self, c, r.leg);
            out.push(b' ');
            out.extend_from_slice(f.src);
            out.push(b' ');
            out.extend_from_slice(f.dst);
            out.push(b' ');
            put_u64(&mut out, u64::from(f.sport));
            out.push(b' ');
            put_u64(&mut out, u64::from(f.dport));
            out.push(b' ');
            put_u64(&mut out, u64::from(f.protocol));
            out.push(b' ');
            put_u64(&mut out, u64::from(r.pkts));
            out.push(b' ');
            put_u64(&mut out, r.bytes);
            out.push(b' ');
            put_i64(&mut out, r.first);
            out.push(b' ');
            put_i64(&mut out, r.last);
            out.extend_from_slice(b" ACCEPT OK\n");
        }
        out
    }

    /// Custom-format lines (with header) of the NAT interface, fields as in [`NAT_CUSTOM_FORMAT`].
    pub(crate) fn format_nat_custom(&self, recs: &[Rec]) -> Vec<u8> {
        let t = Texts::new(self);
        let mut prefix = Vec::new();
        prefix.extend_from_slice(b"5 ");
        prefix.extend_from_slice(&t.vpc);
        prefix.push(b' ');
        prefix.extend_from_slice(&t.subnet);
        prefix.extend_from_slice(b" - ");
        prefix.extend_from_slice(&t.nat_eni);
        prefix.push(b' ');
        prefix.extend_from_slice(&t.account);
        let mut out = Vec::with_capacity(recs.len() * 190 + 512);
        out.extend_from_slice(NAT_CUSTOM_HEADER.as_bytes());
        out.push(b'\n');
        for r in recs {
            out.extend_from_slice(&prefix);
            if r.status != Status::Ok {
                out.extend_from_slice(b" - - - - - - - - - - ");
                put_i64(&mut out, r.first);
                out.push(b' ');
                put_i64(&mut out, r.last);
                out.extend_from_slice(if r.status == Status::NoData {
                    b" - - NODATA - - "
                } else {
                    b" - - SKIPDATA - - "
                });
                out.extend_from_slice(&t.az_id);
                out.push(b'\n');
                continue;
            }
            let c = &self.conns[r.conn as usize];
            let f = t.fields(self, c, r.leg);
            out.extend_from_slice(b" IPv4 ");
            out.extend_from_slice(f.src);
            out.push(b' ');
            out.extend_from_slice(f.dst);
            out.push(b' ');
            put_u64(&mut out, u64::from(f.sport));
            out.push(b' ');
            put_u64(&mut out, u64::from(f.dport));
            out.push(b' ');
            out.extend_from_slice(f.pkt_src);
            out.push(b' ');
            out.extend_from_slice(f.pkt_dst);
            out.push(b' ');
            put_u64(&mut out, u64::from(f.protocol));
            out.push(b' ');
            put_u64(&mut out, r.bytes);
            out.push(b' ');
            put_u64(&mut out, u64::from(r.pkts));
            out.push(b' ');
            put_i64(&mut out, r.first);
            out.push(b' ');
            put_i64(&mut out, r.last);
            out.extend_from_slice(b" ACCEPT ");
            put_u64(&mut out, u64::from(r.flags));
            out.extend_from_slice(b" OK ");
            out.extend_from_slice(f.direction);
            out.push(b' ');
            out.extend_from_slice(f.service);
            out.push(b' ');
            out.extend_from_slice(&t.az_id);
            out.push(b'\n');
        }
        out
    }
}

fn status_tail_v2(s: Status) -> &'static [u8] {
    match s {
        Status::NoData => b" - NODATA\n",
        Status::SkipData => b" - SKIPDATA\n",
        Status::Ok => b" ACCEPT OK\n",
    }
}

/// Emits the legs of one connection's window aggregate, merging with the same flow's record of the
/// same window.
fn flush(b: &mut Builder, side: Side, ci: u32, c: &Conn, eni: u32, a: &WinAgg) {
    let legs: &[u8] = match (side, c.kind) {
        (Side::Nat, Kind::Failed) => &[CLIENT_TO_NAT],
        (Side::Nat, Kind::Unanswered) => &[CLIENT_TO_NAT, NAT_TO_HOST],
        (Side::Nat, _) => &[CLIENT_TO_NAT, NAT_TO_HOST, HOST_TO_NAT, NAT_TO_CLIENT],
        (Side::Clients, Kind::Failed | Kind::Unanswered) => &[CLIENT_OUT],
        (Side::Clients, _) => &[CLIENT_OUT, CLIENT_IN],
    };
    for &leg in legs {
        let outbound = matches!(leg, CLIENT_TO_NAT | NAT_TO_HOST | CLIENT_OUT);
        let (pkts, bytes, flags) = if outbound { (a.out_pk, a.out_b, a.out_fl) } else { (a.in_pk, a.in_b, a.in_fl) };
        if pkts == 0 {
            continue;
        }
        // The packet-level flow: client side (client, client port) or NAT side (address, NAT port),
        // per destination and leg.
        let (id, port) = if matches!(leg, NAT_TO_HOST | HOST_TO_NAT) {
            (u64::from(c.addr), c.nport)
        } else {
            (u64::from(c.client), c.cport)
        };
        let key = u64::from(leg) | u64::from(c.dest) << 3 | id << 16 | u64::from(port) << 32;
        b.add(
            key,
            Rec {
                ws: a.ws,
                first: a.first,
                last: a.last,
                stable: (u64::from(ci) + 1) << 3 | u64::from(leg),
                bytes,
                pkts,
                eni,
                conn: ci,
                leg,
                flags,
                status: Status::Ok,
            },
        );
    }
}

/// Pre-rendered text of every identifier and address.
struct Texts {
    account: Vec<u8>,
    nat_eni: Vec<u8>,
    vpc: Vec<u8>,
    subnet: Vec<u8>,
    az_id: Vec<u8>,
    client_enis: Vec<Vec<u8>>,
    client_ips: Vec<Vec<u8>>,
    dest_ips: Vec<Vec<u8>>,
    addr_ips: Vec<Vec<u8>>,
    services: Vec<&'static [u8]>,
}

/// The address, port and direction fields of one leg.
struct Fields<'a> {
    src: &'a [u8],
    dst: &'a [u8],
    sport: u16,
    dport: u16,
    pkt_src: &'a [u8],
    pkt_dst: &'a [u8],
    protocol: u8,
    direction: &'static [u8],
    service: &'static [u8],
}

fn ip_text(ip: Ipv4Addr) -> Vec<u8> {
    ip.to_string().into_bytes()
}

impl Texts {
    fn new(sim: &Simulation) -> Self {
        let sc = &sim.scenario;
        Texts {
            account: sc.account_id.as_bytes().to_vec(),
            nat_eni: sc.nat.interface_id.as_bytes().to_vec(),
            vpc: sc.nat.vpc_id.as_bytes().to_vec(),
            subnet: sc.nat.subnet_id.as_bytes().to_vec(),
            az_id: sc.nat.az_id.as_bytes().to_vec(),
            client_enis: sc.clients.iter().map(|c| c.interface_id.as_bytes().to_vec()).collect(),
            client_ips: sc.clients.iter().map(|c| ip_text(c.ip)).collect(),
            dest_ips: sc.destinations.iter().map(|d| ip_text(d.ip)).collect(),
            addr_ips: sc.nat.addresses.iter().map(|&a| ip_text(a)).collect(),
            services: sc
                .destinations
                .iter()
                .map(|d: &DestSpec| d.aws_service().map_or(&b"-"[..], str::as_bytes))
                .collect(),
        }
    }

    fn fields<'a>(&'a self, sim: &Simulation, c: &Conn, leg: u8) -> Fields<'a> {
        let d = usize::from(c.dest);
        let spec = &sim.scenario.destinations[d];
        let client = &self.client_ips[usize::from(c.client)];
        let host = &self.dest_ips[d];
        let primary = &self.addr_ips[0];
        let addr = &self.addr_ips[usize::from(c.addr)];
        let (hp, cp, np) = (spec.port, c.cport, c.nport);
        let f = |src, dst, sport, dport, pkt_src, pkt_dst, direction, service| Fields {
            src,
            dst,
            sport,
            dport,
            pkt_src,
            pkt_dst,
            protocol: spec.protocol,
            direction,
            service,
        };
        let svc = self.services[d];
        match leg {
            CLIENT_TO_NAT => f(client, primary, cp, hp, client, host, b"ingress", svc),
            NAT_TO_HOST => f(addr, host, np, hp, addr, host, b"egress", svc),
            // Traffic to a secondary address is logged with the primary in dstaddr.
            HOST_TO_NAT => f(host, primary, hp, np, host, addr, b"ingress", b"-"),
            NAT_TO_CLIENT => f(primary, client, hp, cp, host, client, b"egress", b"-"),
            CLIENT_OUT => f(client, host, cp, hp, client, host, b"egress", b"-"),
            _ => f(host, client, hp, cp, host, client, b"ingress", b"-"),
        }
    }
}

/// Appends the decimal digits of `v`.
pub(crate) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    put_u64(out, v.unsigned_abs());
}
