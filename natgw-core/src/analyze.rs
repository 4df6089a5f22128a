//! The local analyzer: flow-log records in, the report model out. It tells the NAT gateway's legs
//! apart (client → NAT, NAT → destination and back), aggregates per unique destination, finds dropped
//! attempts, attributes connections to source clients, runs the estimator and the finding rules.
//!
//! Records are pushed one at a time (the caller owns IO and decompression) and kept in a compact
//! form; `finish` does the rest. The live AWS path reuses [`crate::estimate`] and
//! [`crate::findings`] on the results of Logs Insights queries, so no rule exists twice.

use std::net::IpAddr;

use rustc_hash::{FxHashMap as HashMap, FxHashSet};

use crate::estimate::stream::DestStream;
use crate::estimate::{self, AddressSpan, Estimate, EstimateContext, HoldModel, NatFlowObs, ReuseStats};
use crate::findings::{self, FindingContext, SameAddressElsewhere, UnusedAddress};
use crate::flowlog::{Action, Field, LogFormat, LogStatus, ParseStats, Record, TcpFlags};
use crate::limits::{IDLE_TIMEOUT_SECS, NAT_PORT_RANGE, Thresholds, destination_limit};
use crate::metrics::ErrorWindow;
use crate::net::{CidrSet, Destination, InterfaceId, Protocol};
use crate::prefixes::ServicePrefixes;
use crate::report::{
    AddressPeak, Attribution, AttributionMethod, BadLineReport, DestinationReport, Evidence, InputSummary, LeftOut,
    Report, SCHEMA_VERSION, SourceReport, Status, Verdict,
};
use crate::time::Timestamp;
use crate::topology::VpcEndpointInfo;

mod clients;
mod fast;
use clients::{ClientAgg, ClientKey, ClientRec, MinuteKey};
pub use fast::{FastShard, FlowStreams, LaneFlows, NatEvidence, NatFlows, StreamLane};

/// The fields the analysis reads; a parser can skip the rest ([`crate::flowlog::LineParser::with_fields`]).
pub const FIELDS: &[Field] = &[
    Field::InterfaceId,
    Field::SrcAddr,
    Field::DstAddr,
    Field::SrcPort,
    Field::DstPort,
    Field::Protocol,
    Field::Bytes,
    Field::Start,
    Field::End,
    Field::Action,
    Field::LogStatus,
    Field::TcpFlags,
    Field::PktSrcAddr,
    Field::PktDstAddr,
];

/// The fields a log format must have for the analysis.
pub const REQUIRED_FIELDS: &[Field] =
    &[Field::SrcAddr, Field::DstAddr, Field::SrcPort, Field::DstPort, Field::Protocol, Field::Start, Field::End];

/// What the analysis is told; everything else it infers from the records.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeConfig {
    /// The NAT gateway's private IPs, one per address (primary first). Empty: inferred.
    pub nat_addresses: Vec<IpAddr>,
    /// The NAT gateway's network interface. None: inferred.
    pub nat_interface: Option<InterfaceId>,
    /// The VPC's CIDR blocks (all of them). Empty: the private ranges are assumed.
    pub vpc_cidrs: CidrSet,
    /// How many destinations the report lists (0 means 10), nearest their limit first; every one
    /// at the warning level or above is listed whatever this.
    pub top: usize,
    /// How many source clients per destination (0 means 10).
    pub top_sources: usize,
    pub thresholds: Thresholds,
    /// S3/DynamoDB prefixes, for the gateway endpoint remedy.
    pub prefixes: ServicePrefixes,
    /// For commands in remedies, when known.
    pub nat_gateway_id: Option<String>,
    pub vpc_id: Option<String>,
    /// Evidence from the AWS APIs, on the live path.
    pub live: Option<LiveEvidence>,
    /// The VPC's endpoints and the route tables of the subnets routed through the gateway, when
    /// known: remedies then name the real route tables and reuse an existing gateway endpoint.
    pub endpoints: Vec<VpcEndpointInfo>,
    pub client_route_tables: Vec<String>,
}

/// What the live path knows besides the records: CloudWatch's port allocation errors, and sources
/// counted by Logs Insights rather than from pushed client legs.
#[derive(Debug, Clone, Default)]
pub struct LiveEvidence {
    /// `ErrorPortAllocation` windows in the analysed range.
    pub error_windows: Vec<ErrorWindow>,
    /// Sources counted outside the records (by Logs Insights); `None`: from the pushed records.
    pub sources: Option<CountedSources>,
}

/// Source clients per destination, counted elsewhere, and how.
#[derive(Debug, Clone)]
pub struct CountedSources {
    pub attribution: Attribution,
    pub by_destination: Vec<(Destination, Vec<SourceReport>)>,
}

/// Why an analysis could not produce a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyzeError {
    #[error("the log format lacks {missing}: natgw needs srcaddr, dstaddr, srcport, dstport, protocol, start and end")]
    MissingFields { missing: String },
    #[error("no usable flow-log records in the input{hint}")]
    NoRecords { hint: String },
    #[error(
        "could not find a NAT gateway in these records: no private address both receives traffic from \
         other private addresses and sends traffic to outside ones; pass --nat-ip (and --vpc-cidr if \
         the VPC uses non-private ranges)"
    )]
    NoNatGateway,
    #[error("no record involves NAT address(es) {list}: check --nat-ip and --nat-interface", list = addresses(addrs))]
    NatNotSeen { addrs: Vec<IpAddr> },
    /// Records involve the addresses, but none sends out of the VPC: a client's address given as the
    /// gateway's, say, or a `--vpc-cidr` that takes in the destinations.
    #[error(
        "no record{on} sends from NAT address(es) {list} to outside the VPC, as a gateway's address \
         does (some records involve them): check that --nat-ip names the gateway's addresses, not a client's, \
         and --vpc-cidr (the VPC's blocks only)",
        on = iface.as_ref().map(|i| format!(" on interface {i}")).unwrap_or_default(),
        list = addresses(addrs)
    )]
    NatNoEgress { addrs: Vec<IpAddr>, iface: Option<String> },
    /// A NAT address given outside the VPC's blocks: a gateway's private address is inside them.
    #[error(
        "{list} {verb} not inside the VPC's blocks ({blocks}), as a NAT gateway's private address is: check \
         --nat-ip (not a destination's address), and give every VPC block with --vpc-cidr",
        list = addresses(addrs),
        verb = if addrs.len() == 1 { "is" } else { "are" }
    )]
    NatOutsideVpc { addrs: Vec<IpAddr>, blocks: String },
    /// Records go between two of the addresses given as the gateway's: a client's among them.
    #[error(
        "{n} record{s} go between {a} and {b}, both given as the NAT gateway's: a gateway's addresses do \
         not talk to each other, but a client and its gateway do; give only the gateway's addresses with \
         --nat-ip, or leave it out to infer them", n = thousands(*records), s = if *records == 1 { "" } else { "s" }
    )]
    NatAddressesTalk { a: IpAddr, b: IpAddr, records: u64 },
    #[error("no record was logged on interface {0}: check --nat-interface")]
    NatInterfaceNotSeen(String),
    #[error(
        "the records of a NAT port came out of time order, so the streaming estimate is not exact; \
         analyse these records without streaming"
    )]
    StreamOrder,
}

/// Checks that a log format has what the analysis needs.
pub fn check_format(format: &LogFormat) -> Result<(), AnalyzeError> {
    let missing = format.missing(REQUIRED_FIELDS);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(AnalyzeError::MissingFields { missing: missing.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ") })
    }
}

const NO_FLAGS: u16 = u16::MAX;

/// A record kept for the analysis (ACCEPT, status OK, all required fields present).
#[derive(Debug, Clone, Copy)]
struct Obs {
    iface: u32,
    src: IpAddr,
    dst: IpAddr,
    pkt_src: Option<IpAddr>,
    pkt_dst: Option<IpAddr>,
    sport: u16,
    dport: u16,
    flags: u16,
    proto: Protocol,
    start: u64,
    end: u64,
    bytes: u64,
}

/// Record counts by what happened to each record.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    records: u64,
    no_data: u64,
    rejected: u64,
    incomplete: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.records += other.records;
        self.no_data += other.no_data;
        self.rejected += other.rejected;
        self.incomplete += other.incomplete;
    }
}

/// Counts one record and returns what the analysis keeps of it (`iface` still 0), if anything.
fn observe(r: &Record<'_>, counts: &mut Counts) -> Option<Obs> {
    counts.records += 1;
    if r.log_status != LogStatus::Ok {
        counts.no_data += 1;
        return None;
    }
    if r.action == Some(Action::Reject) {
        counts.rejected += 1;
        return None;
    }
    let (Some(src), Some(dst), Some(sport), Some(dport), Some(proto), Some(start), Some(end)) =
        (r.srcaddr, r.dstaddr, r.srcport, r.dstport, r.protocol, r.start, r.end)
    else {
        counts.incomplete += 1;
        return None;
    };
    Some(Obs {
        iface: 0,
        src,
        dst,
        pkt_src: r.pkt_srcaddr,
        pkt_dst: r.pkt_dstaddr,
        sport,
        dport,
        flags: r.tcp_flags.map_or(NO_FLAGS, |f| f.0),
        proto,
        start: start.min(end),
        end: end.max(start),
        bytes: r.bytes.unwrap_or(0),
    })
}

/// The number of an interface ID (1, 2, … in order of appearance; 0 when the format has none).
fn intern(ifaces: &mut HashMap<String, u32>, id: Option<&str>) -> u32 {
    match id {
        None => 0,
        Some(id) => match ifaces.get(id) {
            Some(&i) => i,
            None => {
                let i = ifaces.len() as u32 + 1;
                ifaces.insert(id.to_owned(), i);
                i
            }
        },
    }
}

/// Merges `other`'s interface numbering into `mine`: old number in `other` → number in `mine`.
fn remap_ifaces(mine: &mut HashMap<String, u32>, other: HashMap<String, u32>) -> HashMap<u32, u32> {
    let mut remap: HashMap<u32, u32> = HashMap::default();
    remap.insert(0, 0);
    for (name, id) in other {
        let next = mine.len() as u32 + 1;
        let m = *mine.entry(name).or_insert(next);
        remap.insert(id, m);
    }
    remap
}

/// Records collected by one thread; [`Analyzer::absorb`] merges it. Lets several threads parse at once.
#[derive(Debug, Default)]
pub struct Shard {
    obs: Vec<Obs>,
    ifaces: HashMap<String, u32>,
    counts: Counts,
}

impl Shard {
    /// Adds one record.
    pub fn push(&mut self, r: &Record<'_>) {
        if let Some(mut o) = observe(r, &mut self.counts) {
            o.iface = intern(&mut self.ifaces, r.interface_id);
            self.obs.push(o);
        }
    }

    /// Moves `other`'s records into this shard (interface numbers remapped).
    fn absorb(&mut self, other: Shard) {
        let remap = remap_ifaces(&mut self.ifaces, other.ifaces);
        self.obs.reserve(other.obs.len());
        self.obs.extend(other.obs.into_iter().map(|mut o| {
            o.iface = remap.get(&o.iface).copied().unwrap_or(0);
            o
        }));
        self.counts.add(other.counts);
    }
}

/// The local analyzer. Push records (or [`absorb`](Analyzer::absorb) shards filled by other threads),
/// then [`finish`](Analyzer::finish).
///
/// When the NAT addresses are configured, threads can fill [`FastShard`]s instead
/// ([`fast_shard`](Analyzer::fast_shard), [`absorb_fast`](Analyzer::absorb_fast)): they classify as
/// they parse and keep far less; the report is the same.
#[derive(Debug)]
pub struct Analyzer {
    config: AnalyzeConfig,
    main: Shard,
    fast: Option<FastShard>,
    /// The NAT gateway found by a first pass ([`Analyzer::infer_nat`]) or guessed from a sample
    /// ([`Analyzer::guess_nat`], then confirmed), when not configured.
    inferred: Option<fast::InferredNat>,
    /// The streaming estimates, when the fast shards' NAT flows were fed to them.
    streams: Option<FlowStreams>,
    inputs: Vec<(String, ParseStats)>,
    formats: Vec<String>,
    left_out: Vec<LeftOut>,
}

impl Analyzer {
    /// A new analysis.
    pub fn new(mut config: AnalyzeConfig) -> Analyzer {
        // An address given twice is one address: the limit counts addresses. `::ffff:10.0.0.7` is
        // 10.0.0.7, as the records' addresses are read.
        config.nat_addresses.iter_mut().for_each(|a| *a = a.to_canonical());
        let mut seen = Vec::with_capacity(config.nat_addresses.len());
        config.nat_addresses.retain(|a| {
            let new = !seen.contains(a);
            seen.push(*a);
            new
        });
        Analyzer {
            config,
            main: Shard::default(),
            fast: None,
            inferred: None,
            streams: None,
            inputs: Vec::new(),
            formats: Vec::new(),
            left_out: Vec::new(),
        }
    }

    /// Adds one record.
    pub fn push(&mut self, r: &Record<'_>) {
        self.main.push(r);
    }

    /// Merges the records another thread collected.
    pub fn absorb(&mut self, shard: Shard) {
        self.main.absorb(shard);
    }

    /// An empty shard of the fast path, when the NAT addresses are known: configured, inferred by a
    /// first pass ([`infer_nat`](Analyzer::infer_nat)), or guessed ([`guess_nat`](Analyzer::guess_nat)).
    /// The fast path classifies records as they come and needs them for that. `None` otherwise.
    pub fn fast_shard(&self) -> Option<FastShard> {
        let addrs = match &self.inferred {
            _ if !self.config.nat_addresses.is_empty() => &self.config.nat_addresses,
            Some(n) => &n.addrs,
            None => return None,
        };
        Some(FastShard::new(addrs, internal_ranges(&self.config).0))
    }

    /// An empty shard of evidence for a first pass that finds the NAT gateway, when the configuration
    /// does not name its addresses; `None` when it does.
    pub fn nat_evidence(&self) -> Option<NatEvidence> {
        self.config.nat_addresses.is_empty().then(|| NatEvidence::new(internal_ranges(&self.config).0))
    }

    /// Finds the NAT gateway from a first pass's evidence over *all* the records the analysis will
    /// get, as the reference path would from the records themselves, so that the second pass can take
    /// the fast path. Returns false when it cannot (no NAT gateway, an unknown `nat_interface`):
    /// then the reference path runs and says why.
    pub fn infer_nat(&mut self, evidence: NatEvidence) -> bool {
        self.inferred = evidence.infer(self.config.nat_interface.as_ref().map(|i| i.as_str()));
        self.inferred.is_some()
    }

    /// Guesses the NAT gateway from a sample of the records (the first lines of each input, say), so
    /// that one pass can take the fast path without a first pass over everything. The pass's shards
    /// must then collect the evidence ([`FastShard::collect_nat_evidence`]) and
    /// [`confirm_nat`](Analyzer::confirm_nat) must hold; else the pass is read again. Returns false
    /// when the sample shows no NAT gateway (nothing is guessed).
    pub fn guess_nat(&mut self, sample: NatEvidence) -> bool {
        self.infer_nat(sample)
    }

    /// Finds the NAT gateway from the evidence over all the records, as [`infer_nat`](Analyzer::infer_nat)
    /// does: true when it is the one [`guess_nat`](Analyzer::guess_nat) took, so that what the fast
    /// shards classified with the guess is what they would have with it. False: read the records
    /// again, into new shards ([`fast_shard`](Analyzer::fast_shard) now has the NAT gateway found).
    /// Records pushed the reference way ([`push`](Analyzer::push), [`absorb`](Analyzer::absorb)) count
    /// too.
    pub fn confirm_nat(&mut self, mut all: NatEvidence) -> bool {
        let guess = self.inferred.take();
        all.absorb_shard(&self.main);
        self.infer_nat(all);
        // The same gateway (the other NAT-like interfaces, which a sample sees only part of, are the
        // full evidence's now).
        guess.is_some_and(|g| self.inferred.as_ref().is_some_and(|n| (&n.iface, &n.addrs) == (&g.iface, &g.addrs)))
    }

    /// Merges a fast-path shard another thread filled.
    pub fn absorb_fast(&mut self, shard: FastShard) {
        match &mut self.fast {
            Some(f) => f.absorb(shard),
            None => self.fast = Some(shard),
        }
    }

    /// Empty streams for the fast shards' flows ([`FastShard::take_flows`]): they take the NAT
    /// interface as configured, inferred or guessed, else as the first NAT flows show it.
    pub fn flow_streams(&self) -> FlowStreams {
        self.flow_streams_in_lanes(1)
    }

    /// [`flow_streams`](Analyzer::flow_streams) with `client_lanes` client lanes, to feed on as many
    /// threads ([`FlowStreams::into_lanes`]).
    pub fn flow_streams_in_lanes(&self, client_lanes: usize) -> FlowStreams {
        let known = self.config.nat_interface.as_ref().map(|i| i.as_str().to_owned());
        let nat_interface = known.as_deref().or(self.inferred.as_ref().and_then(|n| n.iface.as_deref()));
        FlowStreams::new(nat_interface, client_lanes)
    }

    /// Takes the streaming estimates the fast shards' NAT flows were fed to ([`FastShard::take_flows`],
    /// [`FlowStreams::feed`]). Every NAT flow of the fast shards must have gone to them.
    pub fn absorb_streams(&mut self, streams: FlowStreams) {
        self.streams = Some(streams);
    }

    /// Records that one input (a file, stdin) was read, with its format and parse counts.
    pub fn add_input(&mut self, name: impl Into<String>, format: &LogFormat, stats: ParseStats) {
        let f = format.to_string();
        if !self.formats.contains(&f) {
            self.formats.push(f);
        }
        self.inputs.push((name.into(), stats));
    }

    /// Notes an input that was left out (found under a directory given, but not a flow-log file or
    /// not readable), and why: the report lists it.
    pub fn leave_out(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        self.left_out.push(LeftOut { source: source.into(), reason: reason.into() });
    }

    /// Runs the analysis.
    pub fn finish(mut self) -> Result<Report, AnalyzeError> {
        let left_out = std::mem::take(&mut self.left_out);
        let mut report = match self.fast.take() {
            None => Analysis::run(self),
            Some(mut fast) => {
                // Records pushed the reference way join the fast path's.
                fast.absorb_shard(std::mem::take(&mut self.main));
                let gathered = fast.gather(&self.config, self.inferred.as_ref(), self.streams.take())?;
                Analysis::report(&self.config, &self.inputs, &self.formats, gathered)
            }
        }?;
        if let Some(note) = left_out_note(&left_out) {
            report.notes.push(note);
        }
        report.input.left_out = left_out;
        Ok(report)
    }

    /// Runs the analysis on the fast path when the configuration allows it (the NAT addresses are
    /// known), on the reference path otherwise. Meant for tests comparing the two.
    pub fn finish_fast(mut self) -> Result<Report, AnalyzeError> {
        if self.fast.is_none()
            && let Some(f) = self.fast_shard()
        {
            self.fast = Some(f);
        }
        self.finish()
    }
}

#[derive(Debug, Clone, Default)]
struct DestAgg {
    /// The NAT → destination records (reference and in-memory fast path)…
    flows: Vec<NatFlowObs>,
    /// …or the streaming estimate fed with them in time order…
    stream: Option<Box<DestStream>>,
    /// …or, for a destination too quiet to stream, its records as the streams kept them.
    kept: Option<fast::Kept>,
    /// Room to make for `flows` when the next part's first comes ([`fast::next_part`]).
    room: usize,
    records: u64,
    bytes: u64,
}

/// The estimator's questions, answered from the records or from the stream.
impl DestAgg {
    fn estimate(&mut self, protocol: Protocol, ctx: &EstimateContext) -> Estimate {
        match &mut self.stream {
            Some(s) => {
                s.close(ctx.data_end);
                s.estimate(ctx)
            }
            None => self.with_flows(|flows| estimate::estimate(flows, protocol, ctx)),
        }
    }

    /// Reuse statistics for the pooled fit (TCP without flags only).
    fn reuse_stats(&mut self, protocol: Protocol, data_end: u64) -> ReuseStats {
        match &mut self.stream {
            Some(s) => {
                s.close(data_end);
                s.reuse_stats()
            }
            None => self.with_flows(|flows| estimate::reuse_observations(flows, protocol, data_end)),
        }
    }

    /// Every NAT port used (address, port) with the minute of its first record (Unix seconds / 60).
    fn ports(&mut self) -> Vec<(IpAddr, u16, u64)> {
        if let Some(s) = &self.stream {
            return s.ports().collect();
        }
        self.with_flows(|flows| {
            estimate::sort_flows(flows);
            let mut out: Vec<(IpAddr, u16, u64)> = Vec::new();
            for f in flows.iter() {
                if out.last().is_none_or(|l| (l.0, l.1) != (f.nat_address, f.nat_port)) {
                    out.push((f.nat_address, f.nat_port, f.start / 60));
                }
            }
            out
        })
    }

    /// The NAT addresses that carried a record to this destination, from their first record's start
    /// to their last record's end.
    fn spans(&mut self) -> Vec<AddressSpan> {
        match &self.stream {
            Some(s) => s.spans().map(|(address, from, to)| AddressSpan { address, from, to }).collect(),
            None => self.with_flows(|flows| {
                let mut out = Vec::new();
                flows
                    .iter()
                    .for_each(|f| widen(&mut out, AddressSpan { address: f.nat_address, from: f.start, to: f.end }));
                out
            }),
        }
    }

    fn max_ports_per_minute(&mut self) -> u64 {
        match &self.stream {
            Some(s) => s.max_ports_per_minute(),
            None => self.with_flows(max_ports_per_minute),
        }
    }

    /// Runs `f` on the records: as they came, or made again from the kept ones for as long as `f`
    /// runs (kept, a record takes 16 bytes; made, 40).
    fn with_flows<R>(&mut self, f: impl FnOnce(&mut [NatFlowObs]) -> R) -> R {
        match &mut self.kept {
            Some(kept) => {
                // In the estimators' order: they then find them sorted (sorting again is linear).
                kept.sort();
                let mut all = kept.records();
                all.extend_from_slice(&self.flows);
                f(&mut all)
            }
            None => f(&mut self.flows),
        }
    }
}

/// The NAT gateway's legs, classified and aggregated: NAT → destination flows per destination, the
/// destinations' answers, and the client-side flows. Order-independent and mergeable, so threads can
/// classify while they parse ([`fast`]) and the result is the same as classifying in one pass.
#[derive(Debug, Clone, Default)]
struct Legs {
    dests: HashMap<Destination, DestAgg>,
    /// Replies to a secondary NAT address are logged with the primary in dstaddr: the address used
    /// is in pkt-dstaddr when the format has it, else only the NAT port identifies the flow.
    replied: HashMap<Destination, Replied>,
    /// Client-side records, for the client flows ([`clients`]); drained as they come when streaming.
    clients: Vec<(ClientKey, ClientRec)>,
    /// Room to make for them when the next part's first comes ([`fast::next_part`]).
    clients_room: usize,
    /// Destinations whose `flows` were empty when a flow came (what streaming must drain next).
    fresh: Vec<Destination>,
    /// Records between two NAT addresses ([`Between`]).
    between: Between,
}

/// Records on the NAT gateway's interface between two of its addresses, which a gateway never sends
/// (a client and its gateway do: a client's address given as the gateway's), and the least such
/// pair of addresses (the same whatever the records' order).
#[derive(Debug, Clone, Copy, Default)]
struct Between {
    records: u64,
    pair: Option<(IpAddr, IpAddr)>,
}

impl Between {
    fn add(&mut self, a: IpAddr, b: IpAddr) {
        self.records += 1;
        let pair = (a.min(b), a.max(b));
        self.pair = Some(self.pair.map_or(pair, |p| p.min(pair)));
    }

    fn merge(&mut self, other: Between) {
        self.records += other.records;
        self.pair = match (self.pair, other.pair) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

impl Legs {
    /// Classifies one record; `on_nat` when it was logged on the NAT gateway's interface.
    #[inline(always)]
    fn add(&mut self, o: &Obs, on_nat: bool, sides: Sides, nat: &NatSet, internal: &CidrSet) {
        let Sides { src_nat, dst_nat, src_in, dst_in } = sides;
        if on_nat && src_nat && !dst_in {
            // NAT → destination.
            let d = Destination { address: o.dst, port: o.dport, protocol: o.proto };
            let agg = self.dests.entry(d).or_default();
            agg.records += 1;
            agg.bytes += o.bytes;
            let tcp_flags = (o.flags != NO_FLAGS).then_some(TcpFlags(o.flags));
            if agg.flows.is_empty() {
                self.fresh.push(d);
                agg.flows.reserve(agg.room);
            }
            agg.flows.push(NatFlowObs { nat_address: o.src, nat_port: o.sport, start: o.start, end: o.end, tcp_flags });
        } else if on_nat && dst_nat && !src_in {
            // Destination → NAT.
            let d = Destination { address: o.src, port: o.sport, protocol: o.proto };
            let used = o.pkt_dst.filter(|a| nat.contains(a));
            let r = self.replied.entry(d).or_default();
            r.insert(used, o.dport);
            r.bytes += o.bytes;
        } else if on_nat && src_nat && dst_nat {
            if o.src != o.dst {
                self.between.add(o.src, o.dst);
            }
        } else if let Some((key, request)) = client_leg(o, on_nat, sides, internal) {
            if self.clients.is_empty() {
                self.clients.reserve(self.clients_room);
            }
            self.clients
                .push((key, ClientRec { start: o.start, end: o.end, bytes: o.bytes, request, nat_side: on_nat }));
        }
    }

    /// Adds `other`'s legs to these.
    fn merge(&mut self, mut other: Legs) {
        if self.clients.len() < other.clients.len() {
            std::mem::swap(&mut self.clients, &mut other.clients);
        }
        self.clients.append(&mut other.clients);
        for (d, agg) in other.dests {
            let mine = self.dests.entry(d).or_default();
            mine.records += agg.records;
            mine.bytes += agg.bytes;
            if mine.stream.is_none() {
                mine.stream = agg.stream;
            }
            // (Records are kept only once the legs are merged; should they be before, they join
            // the others.)
            if let Some(kept) = agg.kept {
                mine.flows.extend(kept.records());
            }
            if mine.flows.len() < agg.flows.len() {
                let theirs = std::mem::replace(&mut mine.flows, agg.flows);
                mine.flows.extend(theirs);
            } else {
                mine.flows.extend(agg.flows);
            }
        }
        for (d, r) in other.replied {
            self.replied.entry(d).or_default().merge(r);
        }
        self.between.merge(other.between);
    }
}

/// The NAT ports a destination answered (by NAT address when the format has pkt-dstaddr, by port
/// alone otherwise), and the bytes of its answers.
#[derive(Debug, Clone, Default)]
struct Replied {
    any_address: PortSet,
    by_address: Vec<(IpAddr, PortSet)>,
    bytes: u64,
}

impl Replied {
    fn insert(&mut self, address: Option<IpAddr>, port: u16) {
        match address {
            None => self.any_address.insert(port),
            Some(a) => match self.by_address.iter_mut().find(|(b, _)| *b == a) {
                Some((_, set)) => set.insert(port),
                None => {
                    let mut set = PortSet::default();
                    set.insert(port);
                    self.by_address.push((a, set));
                }
            },
        }
    }

    fn contains(&self, address: IpAddr, port: u16) -> bool {
        self.any_address.contains(port) || self.by_address.iter().any(|(a, s)| *a == address && s.contains(port))
    }

    fn merge(&mut self, other: Replied) {
        self.bytes += other.bytes;
        self.any_address.merge(&other.any_address);
        for (a, set) in other.by_address {
            match self.by_address.iter_mut().find(|(b, _)| *b == a) {
                Some((_, mine)) => mine.merge(&set),
                None => self.by_address.push((a, set)),
            }
        }
    }
}

/// A set of ports: a sorted list while there are few (most destinations), a 8-KiB bitmap beyond. Its
/// size is bounded by the port space, whatever the number of records.
#[derive(Debug, Clone)]
enum PortSet {
    /// Sorted.
    Few(Vec<u16>),
    Many(Box<[u64; 1024]>),
}

impl Default for PortSet {
    fn default() -> PortSet {
        PortSet::Few(Vec::new())
    }
}

impl PortSet {
    /// Ports listed before the bitmap: up to 2 KiB of them. Every destination has a set per thread
    /// (in each shard), and a quiet one over a long span answers on a port per connection: 1,000
    /// destinations with 1,000 ports each took 16 MB as bitmaps (64 ports at most listed).
    const FEW: usize = 1024;

    fn insert(&mut self, port: u16) {
        match self {
            PortSet::Few(v) => match v.binary_search(&port) {
                Ok(_) => {}
                Err(at) if v.len() < Self::FEW => v.insert(at, port),
                // A full list becomes a bitmap.
                Err(_) => *self = PortSet::Many(Self::bitmap(v.iter().copied().chain([port]))),
            },
            PortSet::Many(bits) => Self::set(bits, port),
        }
    }

    fn set(bits: &mut [u64; 1024], port: u16) {
        bits[usize::from(port >> 6)] |= 1 << (port & 63);
    }

    fn bitmap(ports: impl IntoIterator<Item = u16>) -> Box<[u64; 1024]> {
        let mut bits = Box::new([0u64; 1024]);
        ports.into_iter().for_each(|p| Self::set(&mut bits, p));
        bits
    }

    fn contains(&self, port: u16) -> bool {
        match self {
            PortSet::Few(v) => v.binary_search(&port).is_ok(),
            PortSet::Many(bits) => bits[usize::from(port >> 6)] & (1 << (port & 63)) != 0,
        }
    }

    fn merge(&mut self, other: &PortSet) {
        match (&mut *self, other) {
            (PortSet::Many(mine), PortSet::Many(theirs)) => {
                mine.iter_mut().zip(theirs.iter()).for_each(|(a, b)| *a |= b);
            }
            (PortSet::Many(_), PortSet::Few(v)) => v.iter().for_each(|p| self.insert(*p)),
            (PortSet::Few(mine), PortSet::Few(theirs)) => {
                // One sort of both lists, not an insertion (a move of the list) per port.
                let mut all: Vec<u16> = mine.iter().chain(theirs).copied().collect();
                all.sort_unstable();
                all.dedup();
                if all.len() > Self::FEW {
                    *self = PortSet::Many(Self::bitmap(all));
                } else {
                    *mine = all;
                }
            }
            (PortSet::Few(v), PortSet::Many(theirs)) => {
                let mut bits = theirs.clone();
                v.iter().for_each(|p| Self::set(&mut bits, *p));
                *self = PortSet::Many(bits);
            }
        }
    }
}

/// What the report is built from, however the records were gathered (all kept, or classified while
/// parsing).
#[derive(Debug)]
struct Gathered {
    counts: Counts,
    nat_iface: Option<u32>,
    nat_addrs: Vec<IpAddr>,
    iface_names: HashMap<u32, String>,
    internal: CidrSet,
    notes: Vec<String>,
    /// Other interfaces that look like a NAT gateway's, when it was inferred.
    other_nats: Vec<OtherNat>,
    legs: Legs,
    t_min: u64,
    t_max: u64,
    /// Some kept record has pkt-dstaddr.
    any_pkt_dst: bool,
    /// Some kept record was logged on an interface other than the NAT gateway's.
    from_client_ifaces: bool,
    /// The client flows, when streamed (else made from `legs.clients`).
    client_flows: Option<ClientAgg>,
    /// Records the NAT gateway's interface sends out of the VPC from a private address that is not
    /// among its NAT addresses, by that address ([`Unlisted`]).
    unlisted: Unlisted,
    /// The same, from records without an interface ID ([`unnamed_egress`]): clients among them
    /// are taken out in the report.
    unnamed: Unlisted,
    /// The client addresses of the streamed client flows, when `unnamed` is not empty.
    streamed_clients: Vec<IpAddr>,
    /// Records other interfaces send out of the VPC from a NAT address: (address, interface, records).
    egress_elsewhere: Vec<(IpAddr, u32, u64)>,
}

/// Records the NAT gateway's interface sends out of the VPC from a private address that is not
/// among its NAT addresses, by that address: only the gateway's own addresses send from its
/// interface, from a port it translates to, so that is an address of the gateway not given. They
/// are the NAT interface's client legs as classified for a client's own interface (records without
/// an interface ID could be anyone's), counted off the hot path: from those legs in memory, or as
/// the streams leave them out.
#[derive(Debug, Clone, Default)]
struct Unlisted(HashMap<IpAddr, u64>);

impl Unlisted {
    /// Counts a client leg of the NAT gateway's interface as classified for a client's own.
    fn add(&mut self, k: &ClientKey, request: bool) {
        if request && NAT_PORT_RANGE.contains(&k.client_port) {
            *self.0.entry(k.client).or_default() += 1;
        }
    }

    /// Counts a record sent out of the VPC from `a` ([`unnamed_egress`]).
    fn count(&mut self, a: IpAddr) {
        *self.0.entry(a).or_default() += 1;
    }

    fn merge(&mut self, other: Unlisted) {
        for (a, n) in other.0 {
            *self.0.entry(a).or_default() += n;
        }
    }

    fn into_iter(self) -> impl Iterator<Item = (IpAddr, u64)> {
        self.0.into_iter()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The private address a record without an interface ID sends out of the VPC from, when it is not
/// among the NAT addresses and sends from a port a NAT gateway translates to: [`Unlisted`]'s rule,
/// for records that cannot say which interface logged them. On a NAT gateway's interface only its
/// own addresses do so: its secondary addresses (its clients send to its primary), or its primary
/// when only a secondary is given. An instance that reaches outside another way (a public address)
/// does too, on its own interface, so the report takes out the addresses that are the gateway's
/// clients and words its warning for both.
fn unnamed_egress(o: &Obs, sides: Sides) -> Option<IpAddr> {
    (sides.src_in && !sides.src_nat && !sides.dst_in && NAT_PORT_RANGE.contains(&o.sport)).then_some(o.src)
}

fn no_records(c: Counts) -> AnalyzeError {
    let hint = match (c.records, c.no_data, c.rejected) {
        (0, ..) => String::new(),
        (_, n, r) => format!(" ({n} NODATA/SKIPDATA, {r} REJECT, {} incomplete records only)", c.incomplete),
    };
    AnalyzeError::NoRecords { hint }
}

/// Checks NAT addresses a user gave against the VPC's blocks (or the private ranges assumed without
/// them): a gateway's private address is inside. Call it before reading any record. (The analysis
/// itself takes any address: moto, for one, gives its NAT gateways addresses outside their VPC.)
pub fn check_config(cfg: &AnalyzeConfig) -> Result<(), AnalyzeError> {
    let (internal, _) = internal_ranges(cfg);
    let outside: Vec<IpAddr> =
        cfg.nat_addresses.iter().map(IpAddr::to_canonical).filter(|a| !internal.contains(a)).collect();
    if outside.is_empty() {
        return Ok(());
    }
    let blocks: Vec<String> = internal.blocks().iter().map(ToString::to_string).collect();
    Err(AnalyzeError::NatOutsideVpc { addrs: outside, blocks: blocks.join(", ") })
}

/// The ranges taken as inside the VPC, and whether they were assumed.
fn internal_ranges(cfg: &AnalyzeConfig) -> (CidrSet, bool) {
    let assumed = cfg.vpc_cidrs.is_empty();
    (if assumed { CidrSet::private_ranges() } else { cfg.vpc_cidrs.clone() }, assumed)
}

fn inferred_note(addrs: &[IpAddr], iface_name: Option<&str>, doubtful: bool) -> String {
    format!(
        "NAT address{} {} inferred from the records{}; pass --nat-ip to set {}{}",
        if addrs.len() > 1 { "es" } else { "" },
        addresses(addrs),
        iface_name.map(|n| format!(" (interface {n})")).unwrap_or_default(),
        if addrs.len() > 1 { "them" } else { "it" },
        if doubtful {
            ". Doubtful: it is also seen receiving on other interfaces, as a client's or a load balancer's \
             is; if these logs lack the NAT gateway's own interface, add them"
        } else {
            ""
        }
    )
}

const ASSUMED_CIDRS_NOTE: &str = "VPC CIDRs not given: addresses in 10/8, 172.16/12, 192.168/16, 100.64/10 and \
                                  fc00::/7 are taken as inside the VPC; pass --vpc-cidr for every VPC block";

fn nat_not_seen(addrs: &[IpAddr]) -> AnalyzeError {
    AnalyzeError::NatNotSeen { addrs: addrs.to_vec() }
}

/// Addresses for a message: `10.0.0.7, 10.0.0.8`.
pub(crate) fn addresses(addrs: &[IpAddr]) -> String {
    addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

struct Analysis;

impl Analysis {
    /// The reference path: every kept record in memory, classified in one pass at the end.
    fn run(a: Analyzer) -> Result<Report, AnalyzeError> {
        let cfg = &a.config;
        let (internal, assumed_cidrs) = internal_ranges(cfg);
        let mut notes = Vec::new();
        if a.main.obs.is_empty() {
            return Err(no_records(a.main.counts));
        }
        let iface_names: HashMap<u32, String> = a.main.ifaces.iter().map(|(k, v)| (*v, k.clone())).collect();

        // 1. The NAT gateway: its interface and addresses.
        let want_iface = match &cfg.nat_interface {
            Some(id) => Some(
                a.main
                    .ifaces
                    .get(id.as_str())
                    .copied()
                    .ok_or_else(|| AnalyzeError::NatInterfaceNotSeen(id.to_string()))?,
            ),
            None => None,
        };
        let mut other_nats = Vec::new();
        let (nat_iface, nat_addrs) = if cfg.nat_addresses.is_empty() {
            let names = IfaceNames::new(&a.main.ifaces);
            let Inferred { iface, addrs, others, doubtful } =
                infer_nat(&a.main.obs, &internal, want_iface, &names).ok_or(AnalyzeError::NoNatGateway)?;
            notes.push(inferred_note(&addrs, iface_names.get(&iface).map(String::as_str), doubtful));
            other_nats = others;
            (Some(iface), addrs)
        } else {
            let set: NatSet = cfg.nat_addresses.iter().copied().collect();
            let iface =
                want_iface.or_else(|| nat_iface_of(&a.main.obs, &set, &internal, &IfaceNames::new(&a.main.ifaces)));
            if !a.main.obs.iter().any(|o| set.contains(&o.src) || set.contains(&o.dst)) {
                return Err(nat_not_seen(&cfg.nat_addresses));
            }
            (iface, cfg.nat_addresses.clone())
        };
        if assumed_cidrs {
            notes.push(ASSUMED_CIDRS_NOTE.into());
        }
        let nat_set: NatSet = nat_addrs.iter().copied().collect();

        // 2. Classify legs and aggregate.
        let mut legs = Legs::default();
        let mut unlisted = Unlisted::default();
        let mut unnamed = Unlisted::default();
        let mut elsewhere: HashMap<(IpAddr, u32), u64> = HashMap::default();
        let (mut t_min, mut t_max) = (u64::MAX, 0u64);
        for o in &a.main.obs {
            t_min = t_min.min(o.start);
            t_max = t_max.max(o.end);
            let on_nat = nat_iface.is_none_or(|i| i == o.iface || o.iface == 0);
            let sides = Sides::of(o, &nat_set, &internal);
            legs.add(o, on_nat, sides, &nat_set, &internal);
            if !on_nat && sides.src_nat && !sides.dst_in {
                *elsewhere.entry((o.src, o.iface)).or_default() += 1;
            }
            if on_nat
                && o.iface != 0
                && let Some((k, request)) = client_leg(o, false, sides, &internal)
            {
                unlisted.add(&k, request);
            }
            if o.iface == 0
                && let Some(a) = unnamed_egress(o, sides)
            {
                unnamed.count(a);
            }
        }
        let gathered = Gathered {
            counts: a.main.counts,
            nat_iface,
            nat_addrs,
            iface_names,
            internal,
            notes,
            other_nats,
            legs,
            t_min,
            t_max,
            any_pkt_dst: a.main.obs.iter().any(|o| o.pkt_dst.is_some()),
            from_client_ifaces: a.main.obs.iter().any(|o| nat_iface.is_some_and(|i| i != o.iface && o.iface != 0)),
            client_flows: None,
            unlisted,
            unnamed,
            streamed_clients: Vec::new(),
            egress_elsewhere: elsewhere.into_iter().map(|((a, i), n)| (a, i, n)).collect(),
        };
        Analysis::report(cfg, &a.inputs, &a.formats, gathered)
    }

    /// Steps 3 to 6, shared by the reference and the fast path: estimates, dropped attempts,
    /// attribution, findings and the report.
    fn report(
        cfg: &AnalyzeConfig,
        inputs: &[(String, ParseStats)],
        formats: &[String],
        g: Gathered,
    ) -> Result<Report, AnalyzeError> {
        if let Between { records, pair: Some((a, b)) } = g.legs.between
            && !cfg.nat_addresses.is_empty()
        {
            return Err(AnalyzeError::NatAddressesTalk { a, b, records });
        }
        let Legs { mut dests, replied, clients, .. } = g.legs;
        // Addresses sending out of the VPC in records without an interface ID that are not the
        // gateway's clients: the busiest first.
        let mut unlisted_unnamed: Vec<(IpAddr, u64)> = Vec::new();
        if !g.unnamed.is_empty() {
            let seen: FxHashSet<IpAddr> =
                g.streamed_clients.iter().copied().chain(clients.iter().map(|(k, _)| k.client)).collect();
            unlisted_unnamed = g.unnamed.into_iter().filter(|(a, _)| !seen.contains(a)).collect();
            unlisted_unnamed.sort_unstable_by_key(|&(a, n)| (std::cmp::Reverse(n), a));
        }
        let clients = match g.client_flows {
            Some(streamed) => streamed,
            None => ClientAgg::of_records(clients),
        };
        let mut notes = g.notes;
        if clients.elsewhere > 0 {
            notes.push(format!(
                "Left out {} flow{} out of the VPC logged only on other interfaces than the NAT gateway's: {} not \
                 show on its interface, so {} did not go through it (another NAT gateway and its clients, instances \
                 with public addresses, load balancers), or at times its records do not cover",
                thousands(clients.elsewhere),
                if clients.elsewhere == 1 { "" } else { "s" },
                if clients.elsewhere == 1 { "it does" } else { "they do" },
                if clients.elsewhere == 1 { "it" } else { "they" },
            ));
        }
        if dests.is_empty() {
            let iface = g.nat_iface.and_then(|i| g.iface_names.get(&i)).cloned();
            return Err(AnalyzeError::NatNoEgress { addrs: g.nat_addrs, iface });
        }
        // The addresses the limit counts, and when. A gateway spreads its connections over its
        // addresses, so under load each carries some: an address is in use from its first record
        // to its last record's end and the idle timeout after (`EstimateContext::spans`), and the
        // limit at a moment counts those in use then. An address added during the data (the remedy
        // for an exhaustion) raises it from its first connection on, not before; one given that
        // carries none is not the gateway's, or was not in use, and raises it never. (Inferred
        // addresses were found by their connections out; the live path takes AWS's list, all the
        // time.)
        let mut spans: Vec<AddressSpan> = Vec::new();
        for s in dests.values_mut().flat_map(|a| a.spans()) {
            widen(&mut spans, AddressSpan { to: s.to.saturating_add(IDLE_TIMEOUT_SECS), ..s });
        }
        spans.retain(|s| g.nat_addrs.contains(&s.address));
        spans.sort_unstable_by_key(|s| s.address);
        // Those given that carried nothing, each with where it sends out of the VPC instead, if
        // anywhere: the interface with most such records (the first by name on a tie).
        let names = |i: u32| g.iface_names.get(&i).cloned();
        let given = !cfg.nat_addresses.is_empty() && cfg.live.is_none();
        let unused_nat_addresses: Vec<UnusedAddress> = g
            .nat_addrs
            .iter()
            .filter(|a| given && !spans.iter().any(|s| s.address == **a))
            .map(|&address| {
                let best = g
                    .egress_elsewhere
                    .iter()
                    .filter(|(a, ..)| *a == address)
                    .max_by_key(|&&(_, i, n)| (n, std::cmp::Reverse(names(i))));
                let elsewhere = best.and_then(|&(_, i, n)| names(i).map(|name| (name, n)));
                UnusedAddress { address, elsewhere }
            })
            .collect();
        // Other interfaces that send out from addresses in use here (the unused ones are named with
        // theirs above), unless already named as another gateway's: the same private address on two
        // gateways (two VPCs' logs in one place), whose connections this report leaves out.
        let mut same_address_elsewhere: Vec<SameAddressElsewhere> = Vec::new();
        for &(address, i, n) in &g.egress_elsewhere {
            let Some(interface) = names(i) else { continue };
            if !spans.iter().any(|s| s.address == address)
                || g.other_nats.iter().any(|o| o.interface.as_ref() == Some(&interface))
            {
                continue;
            }
            match same_address_elsewhere.iter_mut().find(|o| o.interface == interface) {
                Some(o) => {
                    o.records += n;
                    o.addresses.push(address);
                }
                None => same_address_elsewhere.push(SameAddressElsewhere {
                    interface,
                    addresses: vec![address],
                    records: n,
                }),
            }
        }
        same_address_elsewhere.iter_mut().for_each(|o| o.addresses.sort_unstable());
        same_address_elsewhere
            .sort_unstable_by(|a, b| b.records.cmp(&a.records).then_with(|| a.interface.cmp(&b.interface)));
        let counted_addresses = (g.nat_addrs.len() - unused_nat_addresses.len()) as u32;
        // The greatest limit, all the addresses counted.
        let limit = destination_limit(counted_addresses);

        // Which client legs to use: named destinations (pkt-dstaddr or client interfaces) when any.
        let known_host = clients.any_host;
        // No client sends through the interface analysed, whose NAT addresses the user gave (an
        // inferred gateway receives from private addresses, and the live path reads the gateway's
        // own interface): a NAT gateway's interface logs its clients' legs. Unless another private
        // address sends out from it: the gateway's, not given, which the clients send to
        // (`nat-address-not-given` says so).
        let no_nat_clients = !cfg.nat_addresses.is_empty()
            && cfg.live.is_none()
            && clients.minutes.is_empty()
            && g.unlisted.is_empty()
            && unlisted_unnamed.is_empty();
        let attribution = if !known_host {
            let note = if clients.elsewhere > 0 {
                // Clients' own records were read, but none of their connections shows on the NAT
                // interface (or the NAT's records name destinations, and none of their legs is to the
                // addresses analysed).
                "No client connection logged on other interfaces shows on the NAT gateway's interface, so \
                 connections cannot be attributed to clients: check that the addresses and interface analysed are \
                 the gateway's (every address of it), and that its logs and the clients' cover the same time."
            } else if g.any_pkt_dst {
                "No client leg on the NAT gateway's interface goes to the addresses analysed, so connections \
                 cannot be attributed to clients: check that they are the gateway's (every address of it)."
            } else {
                "The NAT interface's records in this format never show the real destination on the client legs, \
                 so connections cannot be attributed to clients. Add ${pkt-dstaddr} to the NAT interface's flow-log \
                 format, or analyse the clients' own interface logs too."
            };
            Attribution { method: AttributionMethod::Unavailable, note: Some(note.into()) }
        } else if g.any_pkt_dst {
            Attribution { method: AttributionMethod::PktDstaddr, note: None }
        } else {
            let note = g.from_client_ifaces.then(|| {
                "Attributed from the clients' own interface records: clients without flow logs are not counted."
                    .to_owned()
            });
            Attribution { method: AttributionMethod::ClientInterfaces, note }
        };

        // 3. Estimates, with a pooled port-reuse fit as the fallback for small destinations.
        let spans = if cfg.live.is_some() { Vec::new() } else { spans };
        let mut ctx =
            EstimateContext { nat_addresses: counted_addresses, spans, data_end: g.t_max, fallback_share: None };
        let mut estimates: HashMap<Destination, Estimate> = HashMap::default();
        let mut nat_unanswered: HashMap<(Destination, u64), u64> = HashMap::default();
        for (d, agg) in dests.iter_mut() {
            estimates.insert(*d, agg.estimate(d.protocol, &ctx));
            // NAT ports the destination never answered, by the minute of their first record.
            for (address, port, minute) in agg.ports() {
                if !replied.get(d).is_some_and(|r| r.contains(address, port)) {
                    *nat_unanswered.entry((*d, minute)).or_default() += 1;
                }
            }
        }
        // The pooled fit matters only to the TCP destinations without flags that had too few reuse gaps
        // of their own (their hold model came out unknown): fit it only when there are some, over all
        // destinations in order, and estimate those again with it.
        let mut short: Vec<Destination> =
            estimates.iter().filter(|(_, e)| e.hold_model == HoldModel::Unknown).map(|(d, _)| *d).collect();
        if !short.is_empty() {
            // Counts: the order destinations are pooled in does not matter.
            let mut pooled = ReuseStats::default();
            for (d, agg) in dests.iter_mut() {
                pooled.merge(&agg.reuse_stats(d.protocol, g.t_max));
            }
            ctx.fallback_share = estimate::fit_reuse(&pooled).map(|f| f.abandoned_share);
            if ctx.fallback_share.is_none() {
                short.clear();
            }
            for d in short {
                if let Some(agg) = dests.get_mut(&d) {
                    estimates.insert(d, agg.estimate(d.protocol, &ctx));
                }
            }
        }

        // 4. Dropped attempts: client legs with no answer, beyond those the destination itself left
        // unanswered, per minute.
        // (destination if named, port, protocol, minute) → (unanswered, all) client flows, from the
        // legs that name their destination when some do.
        // In key order: a destination's first minute of drops is the earliest.
        let mut unanswered: Vec<(&MinuteKey, &(u64, u64))> =
            clients.minutes.iter().filter(|(k, _)| k.0.is_some() == known_host).collect();
        unanswered.sort_unstable_by_key(|(k, _)| **k);
        let mut drops: HashMap<Destination, (u64, u64)> = HashMap::default(); // (count, first minute)
        let mut unexplained = 0u64;
        // For client legs that do not name their destination: the NAT side's unanswered flows of every
        // destination on that port and protocol, per minute; and the destinations near their limit.
        // Indexed once (not a scan of every destination per minute: thousands of each are common).
        let mut unanswered_by_port: HashMap<(u16, Protocol, u64), u64> = HashMap::default();
        for (&(d, minute), &n) in &nat_unanswered {
            *unanswered_by_port.entry((d.port, d.protocol, minute)).or_default() += n;
        }
        let near = |d: &Destination, min_share: f64| {
            estimates.get(d).is_some_and(|e| e.high as f64 >= min_share * e.limit as f64)
        };
        let mut near_by_port: HashMap<(u16, Protocol), Vec<Destination>> = HashMap::default();
        for d in dests.keys().filter(|d| near(d, 0.9)) {
            near_by_port.entry((d.port, d.protocol)).or_default().push(*d);
        }
        for (&(host, port, proto, minute), &(u, total)) in unanswered {
            let nat_side: u64 = match host {
                Some(h) => nat_unanswered
                    .get(&(Destination { address: h, port, protocol: proto }, minute))
                    .copied()
                    .unwrap_or(0),
                None => unanswered_by_port.get(&(port, proto, minute)).copied().unwrap_or(0),
            };
            let dropped = u.saturating_sub(nat_side);
            if dropped < 5 || dropped * 200 < total {
                continue;
            }
            // Candidates: the named destination, or those on this port and protocol near the limit.
            let candidates: Vec<Destination> = match host {
                Some(h) => {
                    let d = Destination { address: h, port, protocol: proto };
                    if near(&d, 0.5) { vec![d] } else { Vec::new() }
                }
                None => near_by_port.get(&(port, proto)).cloned().unwrap_or_default(),
            };
            if candidates.is_empty() {
                unexplained += dropped;
            }
            let share = dropped / candidates.len().max(1) as u64;
            for d in candidates {
                let e = drops.entry(d).or_insert((0, minute));
                e.0 += share.max(1);
                e.1 = e.1.min(minute);
            }
        }
        for (d, _) in drops.iter() {
            if let Some(e) = estimates.get_mut(d) {
                e.pin_to_limit();
            }
        }

        // 4b. Port allocation errors from CloudWatch (live path). The metric does not name the
        // destination: the ones near their limit take the errors (by the estimate's high bound, or by
        // distinct NAT ports in one minute, which over-counts short connections but cannot reach 90 %
        // of the limit without heavy use), else the busiest if it is at half of it; errors no
        // destination explains are reported as such.
        let mut metric_errors: HashMap<Destination, u64> = HashMap::default();
        let mut unexplained_errors = 0u64;
        let live_errors: u64 = cfg.live.iter().flat_map(|l| &l.error_windows).map(|w| w.errors).sum();
        if live_errors > 0 {
            let ppm: HashMap<Destination, u64> =
                dests.iter_mut().map(|(d, a)| (*d, a.max_ports_per_minute())).collect();
            let high_share = |d: &Destination| {
                let by_minute = ppm.get(d).copied().unwrap_or(0) as f64;
                estimates.get(d).map_or(0.0, |e| (e.high as f64).max(by_minute) / e.limit as f64)
            };
            let mut ranked: Vec<Destination> = dests.keys().copied().collect();
            ranked.sort_by(|a, b| high_share(b).total_cmp(&high_share(a)).then(a.cmp(b)));
            let near: Vec<Destination> = ranked.iter().copied().filter(|d| high_share(d) >= 0.9).collect();
            let chosen = if near.is_empty() {
                ranked.first().copied().filter(|d| high_share(d) >= 0.5).into_iter().collect()
            } else {
                near
            };
            if chosen.is_empty() {
                unexplained_errors = live_errors;
            }
            // The metric does not say which destination: the candidates share the count.
            let share = live_errors / chosen.len().max(1) as u64;
            for d in chosen {
                metric_errors.insert(d, share.max(1));
                if let Some(e) = estimates.get_mut(&d) {
                    e.pin_to_limit();
                }
            }
        }

        // 5. Sources per destination.
        let top_sources = if cfg.top_sources == 0 { 10 } else { cfg.top_sources };
        let mut sources: HashMap<Destination, HashMap<IpAddr, (u64, u64)>> = HashMap::default();
        let mut attribution = attribution;
        if let Some(counted) = cfg.live.as_ref().and_then(|l| l.sources.as_ref()) {
            attribution = counted.attribution.clone();
            for (d, list) in &counted.by_destination {
                let m = sources.entry(*d).or_default();
                for s in list {
                    m.insert(s.address, (s.connections, s.bytes));
                }
            }
        } else if known_host {
            for (&(d, client), &counts) in &clients.sources {
                sources.entry(d).or_default().insert(client, counts);
            }
        }

        // 6. The report.
        let top = if cfg.top == 0 { 10 } else { cfg.top };
        let mut rows: Vec<DestinationReport> = dests
            .iter_mut()
            .map(|(d, agg)| {
                let e = &estimates[d];
                let (dropped, first_drop) =
                    drops.get(d).copied().map_or((0, None), |(n, m)| (n, Some(Timestamp(m * 60))));
                let mut srcs: Vec<SourceReport> = sources
                    .get(d)
                    .map(|m| {
                        m.iter().map(|(ip, (c, b))| SourceReport { address: *ip, connections: *c, bytes: *b }).collect()
                    })
                    .unwrap_or_default();
                srcs.sort_by(|x, y| {
                    y.connections.cmp(&x.connections).then(y.bytes.cmp(&x.bytes)).then(x.address.cmp(&y.address))
                });
                srcs.truncate(top_sources);
                let utilization = e.peak as f64 / e.limit as f64;
                DestinationReport {
                    address: d.address,
                    port: d.port,
                    protocol: d.protocol,
                    service: cfg.prefixes.service_of(&d.address),
                    peak_connections: e.peak,
                    peak_connections_range: [e.low, e.high],
                    peak_at: (e.connections > 0).then_some(Timestamp(e.peak_at)),
                    limit: e.limit,
                    utilization: (utilization * 10_000.0).round() / 10_000.0,
                    level: cfg.thresholds.level(utilization, e.saturated),
                    saturated: e.saturated,
                    records: agg.records,
                    bytes: agg.bytes + replied.get(d).map_or(0, |r| r.bytes),
                    connections: e.connections,
                    sources: srcs,
                    per_address: e
                        .per_address
                        .iter()
                        .map(|&(address, peak_connections)| AddressPeak { address, peak_connections })
                        .collect(),
                    evidence: Evidence {
                        hold_model: e.hold_model,
                        abandoned_share: e.abandoned_share.map(|s| (s * 1000.0).round() / 1000.0),
                        dropped_attempts: dropped,
                        first_drop_at: first_drop,
                        error_port_allocation: metric_errors.get(d).copied(),
                        max_ports_per_minute: agg.max_ports_per_minute(),
                    },
                }
            })
            .collect();
        // Nearest their limit first (as the verdict ranks them), then the busiest: destinations' limits
        // differ with the addresses in use at their peaks, so the greatest peak may not be the
        // nearest its limit.
        rows.sort_by(|x, y| {
            nearer_limit(y, x)
                .then(y.peak_connections.cmp(&x.peak_connections))
                .then(y.records.cmp(&x.records))
                .then(x.address.cmp(&y.address))
                .then(x.port.cmp(&y.port))
                .then(x.protocol.cmp(&y.protocol))
        });
        // Busiest first.
        let mut unlisted_nat_addresses: Vec<(IpAddr, u64)> = g.unlisted.into_iter().collect();
        unlisted_nat_addresses.sort_unstable_by_key(|&(a, n)| (std::cmp::Reverse(n), a));
        // The top N, and every destination at its limit or near it whatever N: the verdict, the
        // findings and the exit code never depend on how many are listed.
        let hot = rows.iter().take_while(|d| d.at_risk()).count();
        rows.truncate(top.max(hot));

        let mut skipped_lines = 0;
        let mut bad_lines = Vec::new();
        // By input name: the same whatever order the inputs were given or read in.
        let mut by_name: Vec<&(String, ParseStats)> = inputs.iter().collect();
        by_name.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, stats) in by_name {
            skipped_lines += stats.skipped;
            for b in &stats.bad_lines {
                if bad_lines.len() < 20 {
                    bad_lines.push(BadLineReport { input: name.clone(), line: b.line, reason: b.error.to_string() });
                }
            }
        }

        let input = InputSummary {
            engine: if cfg.live.is_some() { "live" } else { "local" }.into(),
            sources: inputs.iter().map(|(n, _)| n.clone()).collect(),
            nat_gateway_id: cfg.nat_gateway_id.clone(),
            nat_interface: g.nat_iface.and_then(|i| g.iface_names.get(&i).cloned()),
            nat_addresses: g.nat_addrs.clone(),
            limit_per_destination: limit,
            vpc_cidrs: g.internal.blocks().iter().map(ToString::to_string).collect(),
            // In order, not in the inputs' (which the command line's order gives).
            log_formats: formats.iter().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect(),
            records: g.counts.records,
            start: (g.t_min != u64::MAX).then_some(Timestamp(g.t_min)),
            end: (g.t_max > 0).then_some(Timestamp(g.t_max)),
            left_out: Vec::new(),
        };
        let fctx = FindingContext {
            nat_gateway_id: cfg.nat_gateway_id.as_deref(),
            nat_interface: input.nat_interface.as_deref(),
            nat_addresses: &g.nat_addrs,
            counted_addresses,
            vpc_id: cfg.vpc_id.as_deref(),
            region: cfg.prefixes.region.as_deref(),
            thresholds: cfg.thresholds,
            attribution: &attribution,
            unexplained_drops: unexplained,
            unexplained_errors,
            skipped_lines,
            first_bad_line: bad_lines.first(),
            endpoints: &cfg.endpoints,
            client_route_tables: &cfg.client_route_tables,
            records: g.counts.records,
            other_nats: &g.other_nats,
            same_address_elsewhere: &same_address_elsewhere,
            unused_nat_addresses: &unused_nat_addresses,
            unlisted_nat_addresses: &unlisted_nat_addresses,
            unlisted_without_interface: &unlisted_unnamed,
            no_nat_clients,
            pkt_dstaddr_logged: g.any_pkt_dst,
        };
        let findings = findings::evaluate(&rows, &fctx);
        let mut verdict = verdict(&rows);
        if unexplained_errors > 0 && verdict.status != Status::Exhausted {
            verdict = Verdict {
                status: Status::Exhausted,
                summary: format!(
                    "Port exhaustion: CloudWatch counted {} port allocation errors; no destination in the flow logs \
                     explains them",
                    thousands(unexplained_errors)
                ),
            };
        }
        Ok(Report {
            schema_version: SCHEMA_VERSION,
            verdict,
            input,
            destinations: rows,
            findings,
            attribution,
            skipped_lines,
            bad_lines,
            notes,
            live: None,
        })
    }
}

/// Whether `a` is nearer its limit than `b`: saturated first, then by level, then by the exact share
/// of its own limit (the report's utilisation is rounded).
fn nearer_limit(a: &DestinationReport, b: &DestinationReport) -> std::cmp::Ordering {
    let share = |d: &DestinationReport, other: &DestinationReport| {
        u128::from(d.peak_connections) * u128::from(other.limit.max(1))
    };
    (a.saturated, a.level).cmp(&(b.saturated, b.level)).then_with(|| share(a, b).cmp(&share(b, a)))
}

/// The overall verdict from the destinations.
pub fn verdict(rows: &[DestinationReport]) -> Verdict {
    use crate::limits::Level;
    // The nearest its limit ([`nearer_limit`]); on a tie, the first in the rows' order.
    let worst = rows.iter().fold(None, |best: Option<&DestinationReport>, d| match best {
        Some(b) if nearer_limit(d, b).is_le() => Some(b),
        _ => Some(d),
    });
    match worst {
        Some(d) if d.saturated => Verdict {
            status: Status::Exhausted,
            summary: format!(
                "Port exhaustion: {} reached its limit of {} simultaneous connections{}",
                d.display_destination(),
                thousands(d.limit),
                d.peak_at.map(|t| format!(" at {t}")).unwrap_or_default()
            ),
        },
        Some(d) if d.level >= Level::Warning => Verdict {
            status: Status::AtRisk,
            summary: format!(
                "At risk: {} peaked at {} of {} simultaneous connections ({})",
                d.display_destination(),
                thousands(d.peak_connections),
                thousands(d.limit),
                d.percent(0)
            ),
        },
        Some(d) => Verdict {
            status: Status::Healthy,
            summary: format!(
                "Healthy: the busiest destination, {}, peaked at {} of {} simultaneous connections ({})",
                d.display_destination(),
                thousands(d.peak_connections),
                thousands(d.limit),
                d.percent(0)
            ),
        },
        None => Verdict { status: Status::Healthy, summary: "Healthy: no traffic through the NAT gateway".into() },
    }
}

impl DestinationReport {
    /// Saturated, or at the warning level or above: a finding names it, and every list shows it.
    pub fn at_risk(&self) -> bool {
        self.saturated || self.level >= crate::limits::Level::Warning
    }

    /// Its peak's share of its limit in percent, `decimals` decimals, rounded down: one short of a
    /// level's threshold never reads as at it (43,999 of 55,000 is 79%, 54,999 is 99%).
    pub fn percent(&self, decimals: u32) -> String {
        let scale = 10u128.pow(decimals);
        let v = u128::from(self.peak_connections) * 100 * scale / u128::from(self.limit.max(1));
        match decimals {
            0 => format!("{v}%"),
            d => format!("{}.{:0w$}%", v / scale, v % scale, w = d as usize),
        }
    }

    /// `ip:port/proto`, with the service when known.
    pub fn display_destination(&self) -> String {
        let d = Destination { address: self.address, port: self.port, protocol: self.protocol }.to_string();
        match self.service {
            Some(s) => format!("{d} ({})", s.name()),
            None => d,
        }
    }
}

/// `55000` → `55,000`.
/// The report's note on the inputs left out, if any: why for the first few (the JSON report's
/// `input.left_out` lists every one).
fn left_out_note(left_out: &[LeftOut]) -> Option<String> {
    const SAID: usize = 3;
    let first = left_out.first()?;
    if left_out.len() == 1 {
        return Some(format!("Left out, found under a directory given: {}", first.reason));
    }
    let said: Vec<&str> = left_out.iter().take(SAID).map(|l| l.reason.as_str()).collect();
    let more = match left_out.len() - said.len() {
        0 => String::new(),
        n => format!("; and {} more (the JSON report's input.left_out lists every one)", thousands(n as u64)),
    };
    Some(format!(
        "Left out {} inputs found under the directories given: {}{more}",
        thousands(left_out.len() as u64),
        said.join("; ")
    ))
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The NAT gateway's addresses (at most 8): a linear scan beats hashing.
#[derive(Debug, Clone, Default)]
struct NatSet {
    all: Vec<IpAddr>,
    /// The IPv4 ones as integers: every record's addresses are looked up.
    v4: Vec<u32>,
}

impl NatSet {
    fn contains(&self, a: &IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => {
                let a = u32::from(*a);
                #[expect(
                    clippy::manual_contains,
                    reason = "slice::contains cost 27 instructions per call on one address (callgrind), this loop 5"
                )]
                self.v4.iter().any(|&n| n == a)
            }
            IpAddr::V6(_) => self.all.contains(a),
        }
    }
}

impl FromIterator<IpAddr> for NatSet {
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> NatSet {
        let mut all: Vec<IpAddr> = iter.into_iter().collect();
        all.sort_unstable();
        all.dedup();
        let v4 = all
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(u32::from(*a)),
                IpAddr::V6(_) => None,
            })
            .collect();
        NatSet { all, v4 }
    }
}

/// Where a record's addresses are: on the NAT gateway, inside the VPC.
#[derive(Debug, Clone, Copy)]
struct Sides {
    src_nat: bool,
    dst_nat: bool,
    src_in: bool,
    dst_in: bool,
}

impl Sides {
    #[inline(always)]
    fn of(o: &Obs, nat: &NatSet, internal: &CidrSet) -> Sides {
        Sides {
            src_nat: nat.contains(&o.src),
            dst_nat: nat.contains(&o.dst),
            src_in: internal.contains(&o.src),
            dst_in: internal.contains(&o.dst),
        }
    }
}

/// A client-side leg: the client flow it belongs to, and whether it is the request direction (else the
/// answer). On the NAT interface: client → NAT (pkt-dstaddr names the destination when the format
/// has it) and NAT → client (pkt-srcaddr); on a client's own interface: client → destination and back.
fn client_leg(o: &Obs, on_nat: bool, sides: Sides, internal: &CidrSet) -> Option<(ClientKey, bool)> {
    let Sides { src_nat, dst_nat, src_in, dst_in } = sides;
    let named = |pkt: Option<IpAddr>, seen: IpAddr| pkt.filter(|h| *h != seen && !internal.contains(h));
    let key = |client, client_port, host, host_port| ClientKey { client, client_port, host, host_port, proto: o.proto };
    if on_nat && dst_nat && src_in && !src_nat {
        Some((key(o.src, o.sport, named(o.pkt_dst, o.dst), o.dport), true))
    } else if on_nat && src_nat && dst_in && !dst_nat {
        Some((key(o.dst, o.dport, named(o.pkt_src, o.src), o.sport), false))
    } else if !on_nat && src_in && !src_nat && !dst_in {
        Some((key(o.src, o.sport, Some(o.dst), o.dport), true))
    } else if !on_nat && dst_in && !dst_nat && !src_in {
        Some((key(o.dst, o.dport, Some(o.src), o.sport), false))
    } else {
        None
    }
}

/// Peak distinct NAT ports in one 60-second bin (by record start). Sorts `flows`
/// ([`estimate::sort_flows`]: linear when they are sorted already), then counts each NAT port once
/// per minute it starts a record in, without sorting again.
fn max_ports_per_minute(flows: &mut [NatFlowObs]) -> u64 {
    estimate::sort_flows(flows);
    let Some(first) = flows.iter().map(|f| f.start / 60).min() else { return 0 };
    let last = flows.iter().map(|f| f.start / 60).max().unwrap_or(first);
    // Within one NAT port the flows are in start order, so its minutes come in order too.
    let mut prev: Option<(IpAddr, u16, u64)> = None;
    let port_minutes = flows.iter().filter_map(|f| {
        let key = (f.nat_address, f.nat_port, f.start / 60);
        (prev != Some(key)).then(|| {
            prev = Some(key);
            key.2
        })
    });
    let span = last - first + 1;
    if span <= flows.len() as u64 + 1440 {
        let mut per_minute = vec![0u64; span as usize];
        port_minutes.for_each(|m| per_minute[(m - first) as usize] += 1);
        per_minute.into_iter().max().unwrap_or(0)
    } else {
        // Sparse records over a long span: count only the minutes that occur.
        let mut per_minute: HashMap<u64, u64> = HashMap::default();
        port_minutes.for_each(|m| *per_minute.entry(m).or_default() += 1);
        per_minute.into_values().max().unwrap_or(0)
    }
}

/// Widens the span of `s.address` in `spans` to take in `s` (adds it when the address has none).
fn widen(spans: &mut Vec<AddressSpan>, s: AddressSpan) {
    match spans.iter_mut().find(|t| t.address == s.address) {
        Some(t) => *t = AddressSpan { address: s.address, from: t.from.min(s.from), to: t.to.max(s.to) },
        None => spans.push(s),
    }
}

/// The NAT gateway's interface, its addresses given: the one they send out of the VPC from most, as
/// only the gateway's own interface logs them doing; then the one with most records that involve
/// them; then the first by name. (Counted by records involving them alone, a client's address given
/// as the gateway's ties between its own interface and the gateway's, which log the same connections.)
fn nat_iface_of(obs: &[Obs], nat: &NatSet, internal: &CidrSet, names: &IfaceNames<'_>) -> Option<u32> {
    let mut counts: HashMap<u32, IfaceCount> = HashMap::default();
    for o in obs {
        let (src_nat, dst_nat) = (nat.contains(&o.src), nat.contains(&o.dst));
        if src_nat || dst_nat {
            counts.entry(o.iface).or_default().add(src_nat && !internal.contains(&o.dst));
        }
    }
    counts.into_iter().max_by_key(|&(i, c)| c.rank(names.of(i))).map(|(i, _)| i)
}

/// An interface's records that involve the NAT addresses, and those of them that send out of the VPC
/// from one ([`nat_iface_of`]).
#[derive(Debug, Clone, Copy, Default)]
struct IfaceCount {
    egress: u64,
    touch: u64,
}

impl IfaceCount {
    #[inline(always)]
    fn add(&mut self, egress: bool) {
        self.touch += 1;
        self.egress += u64::from(egress);
    }

    /// The greatest is the NAT gateway's, given the interface's name.
    fn rank(self, name: Option<&str>) -> (u64, u64, std::cmp::Reverse<Option<&str>>) {
        (self.egress, self.touch, std::cmp::Reverse(name))
    }
}

/// Finds the NAT interface and addresses (see [`NatScores::infer`]).
fn infer_nat(obs: &[Obs], internal: &CidrSet, only_iface: Option<u32>, names: &IfaceNames<'_>) -> Option<Inferred> {
    let mut scores = NatScores::default();
    for o in obs {
        scores.add(o, internal);
    }
    scores.infer(only_iface, names)
}

/// Interface names by number, to break ties between interfaces by name: the numbers follow the
/// order in which the threads happened to meet the interfaces, so a tie broken by number could
/// differ from one run to the next.
struct IfaceNames<'a>(Vec<Option<&'a str>>);

impl<'a> IfaceNames<'a> {
    fn new(ifaces: &'a HashMap<String, u32>) -> IfaceNames<'a> {
        let mut names = vec![None; ifaces.values().max().map_or(1, |&m| m as usize + 1)];
        for (name, &n) in ifaces {
            names[n as usize] = Some(name.as_str());
        }
        IfaceNames(names)
    }

    /// Interface `n`'s name (`None`, which sorts first, for records without an interface ID).
    fn of(&self, n: u32) -> Option<&'a str> {
        self.0.get(n as usize).copied().flatten()
    }
}

/// Per interface and private address: records it received from other private addresses (not ICMP), and records
/// it sent to outside ones from a port a NAT gateway translates to (1024–65535: a load balancer or a
/// server answers the internet from its service's port, 443 say, which no NAT gateway sends from).
/// Order-independent and mergeable.
#[derive(Debug, Clone, Default)]
struct NatScores(HashMap<(u32, IpAddr), (u64, u64)>);

impl NatScores {
    fn add(&mut self, o: &Obs, internal: &CidrSet) {
        self.add_sides(o, internal.contains(&o.src), internal.contains(&o.dst));
    }

    /// Adds `other`'s scores, its interface numbers mapped by `remap` ([`remap_ifaces`]).
    fn absorb(&mut self, other: NatScores, remap: &HashMap<u32, u32>) {
        for ((i, addr), (inside, outside)) in other.0 {
            let e = self.0.entry((remap.get(&i).copied().unwrap_or(0), addr)).or_default();
            e.0 += inside;
            e.1 += outside;
        }
    }

    /// [`add`](NatScores::add) with the sides' places known.
    fn add_sides(&mut self, o: &Obs, src_in: bool, dst_in: bool) {
        // (Not ICMP: a client's own interface logs its pings to the gateway's address, which would
        // make the gateway's address look like one that receives on other interfaces.)
        if src_in && dst_in && o.src != o.dst && !matches!(o.proto, Protocol::ICMP | Protocol::ICMPV6) {
            self.0.entry((o.iface, o.dst)).or_default().0 += 1;
        } else if src_in && !dst_in && NAT_PORT_RANGE.contains(&o.sport) {
            self.0.entry((o.iface, o.src)).or_default().1 += 1;
        }
    }

    /// Finds the NAT interface and addresses: the primary address receives from many private
    /// addresses and sends to outside ones on the same interface; every private address that sends to
    /// outside addresses on that interface is a NAT address (secondary addresses appear only as
    /// sources there).
    /// Ties go to the interface first by name, then to the lowest address.
    ///
    /// An address that also receives from private ones on another interface than its own is not a
    /// NAT gateway's while another candidate is: it is a client (the NAT gateway's interface logs its
    /// replies to it) or a load balancer (its targets' interfaces log it), which a busy client's
    /// own interface, given with the NAT's, can look like. A NAT gateway's address is seen on its own
    /// interface only.
    ///
    /// Also gives the other interfaces that look like a NAT gateway's, as much as a tenth of the chosen
    /// one or more (their best address each, most NAT-like first): another gateway's logs among these,
    /// or another interface of a regional gateway's.
    fn infer(&self, only_iface: Option<u32>, names: &IfaceNames<'_>) -> Option<Inferred> {
        let score = &self.0;
        let rank = |&(iface, addr): &(u32, IpAddr), &(i, o): &(u64, u64)| {
            (i.min(o), std::cmp::Reverse((names.of(iface), addr)))
        };
        // Per address, the interfaces it receives from private addresses on.
        let mut receiving: HashMap<IpAddr, u32> = HashMap::default();
        for (&(_, a), _) in score.iter().filter(|(_, v)| v.0 > 0) {
            *receiving.entry(a).or_default() += 1;
        }
        let seen_elsewhere = |k: (u32, IpAddr)| {
            let here = score.get(&k).is_some_and(|v| v.0 > 0);
            receiving.get(&k.1).copied().unwrap_or(0) > u32::from(here)
        };
        let candidates = || score.iter().filter(|(k, (i, o))| *i > 0 && *o > 0 && only_iface.is_none_or(|w| w == k.0));
        let (&(iface, primary), &(i, o)) = candidates()
            .filter(|(k, _)| !seen_elsewhere(**k))
            .max_by_key(|&(k, v)| rank(k, v))
            .or_else(|| candidates().max_by_key(|&(k, v)| rank(k, v)))?;
        let doubtful = seen_elsewhere((iface, primary));
        // Each other interface's best address, most NAT-like first.
        let mut others: Vec<_> = score
            .iter()
            .filter(|(k, (i2, o2))| k.0 != iface && k.0 != 0 && i2.min(o2).saturating_mul(OTHER_NAT_SHARE) >= i.min(o))
            .filter(|(k, _)| !seen_elsewhere(**k))
            .collect();
        others.sort_by_key(|&(k, v)| std::cmp::Reverse(rank(k, v)));
        let mut listed = Vec::new();
        others.retain(|(k, _)| {
            let first = !listed.contains(&k.0);
            listed.push(k.0);
            first
        });
        let others = others
            .into_iter()
            .map(|(&(other, address), &(inbound, outbound))| OtherNat {
                interface: names.of(other).map(str::to_owned),
                address,
                inbound,
                outbound,
            })
            .collect();
        let mut addrs: Vec<IpAddr> = if iface == 0 {
            Vec::new()
        } else {
            score.iter().filter(|(k, v)| k.0 == iface && k.1 != primary && v.1 > 0).map(|(k, _)| k.1).collect()
        };
        addrs.sort_unstable();
        addrs.truncate(7);
        addrs.insert(0, primary);
        Some(Inferred { iface, addrs, others, doubtful })
    }
}

/// What [`NatScores::infer`] finds.
#[derive(Debug)]
struct Inferred {
    iface: u32,
    addrs: Vec<IpAddr>,
    others: Vec<OtherNat>,
    /// Every candidate's address is also seen receiving on other interfaces, as a client's or a load
    /// balancer's is: the logs may lack the NAT gateway's own interface.
    doubtful: bool,
}

/// Another interface that looks like a NAT gateway's: it receives from private addresses and sends to
/// outside ones, a tenth as much as the chosen one or more ([`OTHER_NAT_SHARE`]), and its address is
/// seen on no other interface (a client's is: the NAT gateway's interface logs its replies to it).
/// Another gateway's, or another interface of a regional gateway's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherNat {
    pub interface: Option<String>,
    /// Its most NAT-like address.
    pub address: IpAddr,
    /// Records it received from other private addresses, and records it sent to outside ones.
    pub inbound: u64,
    pub outbound: u64,
}

/// An interface scoring a tenth of the chosen NAT interface or more counts as another gateway's.
const OTHER_NAT_SHARE: u64 = 10;

#[cfg(test)]
mod port_set_tests {
    use super::PortSet;

    #[test]
    fn a_port_set_is_a_set_on_both_sides_of_the_switch() {
        let (mut a, mut b) = (PortSet::default(), PortSet::default());
        for p in (0..2000u16).map(|i| i.wrapping_mul(331)) {
            a.insert(p);
            a.insert(p);
            assert!(a.contains(p));
        }
        assert!(matches!(a, PortSet::Many(_)));
        b.insert(65_535);
        b.insert(7);
        assert!(matches!(b, PortSet::Few(_)));
        for p in [0u16, 331, 662, 1999u16.wrapping_mul(331)] {
            assert!(a.contains(p));
        }
        assert!(!a.contains(1) && !b.contains(8) && b.contains(65_535));
        let mut few = b.clone();
        few.merge(&a);
        a.merge(&b);
        for p in [7u16, 65_535, 331] {
            assert!(a.contains(p) && few.contains(p));
        }
        assert!(!a.contains(3) && !few.contains(3));
    }

    #[test]
    fn two_lists_merge_into_a_list_or_a_bitmap() {
        let set = |ports: &mut dyn Iterator<Item = u16>| {
            let mut s = PortSet::default();
            ports.for_each(|p| s.insert(p));
            s
        };
        let evens = set(&mut (0..600u16).map(|i| i * 2));
        let mut some = evens.clone();
        some.merge(&set(&mut (0..300u16).map(|i| i * 4 + 1)));
        assert!(matches!(&some, PortSet::Few(v) if v.len() == 900 && v.is_sorted()));
        assert!((0..1300u16).all(|p| some.contains(p) == (p < 1200 && (p % 2 == 0 || p % 4 == 1))));
        let mut all = evens.clone();
        all.merge(&set(&mut (0..600u16).map(|i| i * 2 + 1)));
        assert!(matches!(all, PortSet::Many(_)));
        assert!((0..1300u16).all(|p| all.contains(p) == (p < 1200)));
    }

    #[test]
    fn a_list_of_ports_in_any_order_is_a_set() {
        let mut listed = PortSet::default();
        for p in (0..1000u16).rev().chain(0..1000).map(|i| i * 7) {
            listed.insert(p);
        }
        assert!(matches!(&listed, PortSet::Few(v) if v.len() == 1000));
        assert!((0..7100u16).all(|p| listed.contains(p) == (p % 7 == 0 && p < 7000)));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::flowlog::{LogFormat, parse_all};
    use crate::report::{Finding, Severity};

    /// In records without an interface ID, a private address that sends out of the VPC from NAT
    /// ports and is neither a NAT address analysed nor a client of one is named in one warning: a
    /// secondary address not given, the primary when only a secondary is given (no false
    /// `nat-without-clients` then), or an instance's own way out. Both paths alike.
    #[test]
    fn addresses_sending_out_without_an_interface_id_are_named() {
        let text =
            "version account-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status
2 1 10.0.1.9 10.0.0.7 40000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 10.0.0.7 52.216.1.2 2000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 52.216.1.2 10.0.0.7 443 2000 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 10.0.0.7 10.0.1.9 443 40000 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 10.0.0.8 52.216.1.3 2001 443 6 1 100 1780000002 1780000003 ACCEPT OK
2 1 10.0.0.8 52.216.1.3 2002 443 6 1 100 1780000002 1780000003 ACCEPT OK
2 1 52.216.1.3 10.0.0.8 443 2001 6 1 100 1780000002 1780000003 ACCEPT OK
2 1 10.0.1.9 52.216.1.4 40001 443 6 1 100 1780000004 1780000005 ACCEPT OK
";
        let run = |nat: &[&str]| {
            let config = AnalyzeConfig {
                nat_addresses: nat.iter().map(|a| a.parse().unwrap_or_else(|_| unreachable!())).collect(),
                ..vpc_config()
            };
            let [reference, fast] = both_paths(text, &config);
            let json = |r: &Report| serde_json::to_string(r).unwrap_or_default();
            assert_eq!(json(&reference), json(&fast), "{nat:?}");
            let ids: Vec<String> = reference.findings.iter().map(|f| f.id.clone()).collect();
            assert!(!ids.contains(&"nat-without-clients".to_owned()), "{nat:?}: {ids:?}");
            let warned: Vec<Finding> =
                reference.findings.into_iter().filter(|f| f.id == "nat-address-not-given").collect();
            (reference.input.nat_addresses, warned)
        };
        let tail = "to outside the VPC from ports a NAT gateway translates to";
        // The primary given: the secondary named; the client's own way out is not (it is a client).
        let (_, warned) = run(&["10.0.0.7"]);
        assert_eq!(warned.len(), 1);
        assert!(warned[0].summary.starts_with(&format!("Address 10.0.0.8 sends 2 records {tail}, and is neither")));
        assert!(warned[0].summary.contains("limit is 55,000 per destination for 1 address"), "{}", warned[0].summary);
        let command = warned[0].remedies[0].command.as_deref();
        assert_eq!(command, Some("aws-natgw analyze <files> --nat-ip 10.0.0.7 --nat-ip 10.0.0.8"));
        // Inferred: the primary (which its clients send to), and the same warning.
        let (inferred, warned) = run(&[]);
        assert_eq!(inferred, ["10.0.0.7".parse::<IpAddr>().unwrap_or_else(|_| unreachable!())]);
        assert!(warned[0].summary.starts_with("Address 10.0.0.8 sends 2 records"), "{}", warned[0].summary);
        // The secondary alone: the primary, and the client (not a client of the secondary).
        let (_, warned) = run(&["10.0.0.8"]);
        assert_eq!(warned.len(), 1);
        let want = format!("Addresses 10.0.0.7 (1 record), 10.0.1.9 (1 record) send records {tail}, and are neither");
        assert!(warned[0].summary.starts_with(&want), "{}", warned[0].summary);
        // Both given: nothing to say.
        assert!(run(&["10.0.0.7", "10.0.0.8"]).1.is_empty());
    }

    /// The same NAT address sending out of the VPC on another interface too (two VPCs' logs in one
    /// place) is named once, with the command that analyses that interface; its connections are not
    /// counted here. Both paths alike, the address given or inferred.
    #[test]
    fn the_same_nat_address_on_another_interface_is_named() {
        let text = "2 1 eni-0b 10.0.1.9 10.0.0.7 40000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0b 10.0.0.7 52.216.1.2 2000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0b 10.0.0.7 52.216.1.2 2001 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0b 10.0.0.7 52.216.1.2 2002 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0b 52.216.1.2 10.0.0.7 443 2000 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0b 10.0.1.10 10.0.0.7 40001 80 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0b 10.0.0.7 52.216.1.4 2003 80 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0a 10.0.2.9 10.0.0.7 40000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0a 10.0.0.7 52.216.1.3 3000 443 6 1 100 1780000000 1780000001 ACCEPT OK
";
        for nat in [vec!["10.0.0.7".parse().unwrap_or_else(|_| unreachable!())], Vec::new()] {
            let config = AnalyzeConfig { nat_addresses: nat.clone(), ..vpc_config() };
            let [reference, fast] = both_paths(text, &config);
            let json = |r: &Report| serde_json::to_string(r).unwrap_or_default();
            assert_eq!(json(&reference), json(&fast), "{nat:?}");
            assert_eq!(reference.input.nat_interface.as_deref(), Some("eni-0b"), "{nat:?} {:?}", reference.notes);
            assert_eq!(reference.destinations.iter().map(|d| d.records).sum::<u64>(), 4, "{nat:?}");
            let named: Vec<&Finding> = reference.findings.iter().filter(|f| f.summary.contains("eni-0a")).collect();
            assert_eq!(named.len(), 1, "{nat:?}: {:?}", reference.findings);
            assert_eq!(named[0].id, "other-nat-gateway");
            if !nat.is_empty() {
                assert!(
                    named[0].summary.starts_with("Interface eni-0a also sends 1 record out of the VPC from 10.0.0.7, the NAT address this report analyses on interface eni-0b"),
                    "{}",
                    named[0].summary
                );
                let command = named[0].remedies[0].command.as_deref();
                assert_eq!(command, Some("aws-natgw analyze <files> --nat-interface eni-0a --nat-ip 10.0.0.7"));
            }
        }
    }

    /// Destinations are listed nearest their limit first, and `top` never hides one at risk: a
    /// destination with a smaller peak but a smaller limit (one address in use at its peak, two at
    /// the other's) comes first, and the verdict does not depend on how many are listed.
    #[test]
    fn top_lists_the_nearest_their_limit_and_never_hides_one_at_risk() {
        let mut text = String::new();
        let line = |text: &mut String, src: &str, dst: &str, port: u16, t: u64| {
            text.push_str(&format!("2 1 eni-0a {src} {dst} {port} 443 6 1 100 {t} {} ACCEPT OK\n", t + 5));
        };
        let t0 = 1_780_000_000;
        for port in 2000..2003 {
            line(&mut text, "10.0.0.7", "52.216.1.2", port, t0);
        }
        for port in 3000..3002 {
            line(&mut text, "10.0.0.7", "52.216.1.3", port, t0 + 1000);
            line(&mut text, "10.0.0.8", "52.216.1.3", port, t0 + 1000);
        }
        line(&mut text, "10.0.1.9", "10.0.0.7", 40000, t0);
        let run = |top: usize, warning: f64| {
            let config = AnalyzeConfig {
                nat_addresses: vec![
                    "10.0.0.7".parse().unwrap_or_else(|_| unreachable!()),
                    "10.0.0.8".parse().unwrap_or_else(|_| unreachable!()),
                ],
                top,
                thresholds: Thresholds { warning, critical: 1.0 },
                ..vpc_config()
            };
            let [reference, fast] = both_paths(&text, &config);
            let json = |r: &Report| serde_json::to_string(r).unwrap_or_default();
            assert_eq!(json(&reference), json(&fast));
            reference
        };
        let all = run(10, 1.0);
        let [a, b] = &all.destinations[..] else { panic!("{:?}", all.destinations) };
        assert_eq!((a.address.to_string().as_str(), b.address.to_string().as_str()), ("52.216.1.2", "52.216.1.3"));
        // The precondition: the first has the smaller peak, and the smaller limit.
        assert!(a.peak_connections < b.peak_connections && a.limit < b.limit, "{a:?} {b:?}");
        // Only the first at risk: listed alone with --top 1, and the verdict is at risk either way.
        let warning = (a.utilization + b.utilization) / 2.0;
        let (one, ten) = (run(1, warning), run(10, warning));
        assert_eq!(one.destinations.len(), 1);
        assert_eq!(one.destinations[0].address, a.address);
        assert_eq!((one.verdict.status, &one.verdict.summary), (ten.verdict.status, &ten.verdict.summary));
        assert_eq!(one.verdict.status, Status::AtRisk);
        // Both at risk: both listed with --top 1.
        let both = run(1, b.utilization / 2.0);
        assert_eq!(both.destinations.len(), 2);
        assert_eq!(both.findings.iter().filter(|f| f.id == "near-limit").count(), 2);
    }

    /// Shares of a limit print rounded down: one short of a threshold never reads as at it.
    #[test]
    fn percents_of_the_limit_round_down() {
        let row = |peak: u64, limit: u64| DestinationReport { limit, ..destination_row(443, peak) };
        let cases = [
            (43_999, 55_000, "79%", "79.9%"),
            (44_000, 55_000, "80%", "80.0%"),
            (54_999, 55_000, "99%", "99.9%"),
            (55_000, 55_000, "100%", "100.0%"),
            (1_417, 55_000, "2%", "2.5%"),
            (60_000, 110_000, "54%", "54.5%"),
            (0, 0, "0%", "0.0%"),
        ];
        for (peak, limit, whole, tenths) in cases {
            assert_eq!((row(peak, limit).percent(0), row(peak, limit).percent(1)), (whole.into(), tenths.into()));
        }
    }

    /// The inputs left out are listed in the report, in the order noted, and a note gives why for
    /// the first three.
    #[test]
    fn inputs_left_out_are_listed_and_noted() {
        let text = b"2 1 eni-0a 10.0.1.9 10.0.0.7 40000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0a 10.0.0.7 52.216.1.2 2000 443 6 1 100 1780000000 1780000001 ACCEPT OK
";
        let report = |left_out: usize| {
            let mut a = Analyzer::new(vpc_config());
            let stats = parse_all(text, LogFormat::default(), false, &mut |r| a.push(r));
            a.add_input("nat.log", &LogFormat::default(), stats);
            for k in 0..left_out {
                a.leave_out(format!("d/{k}.log"), format!("d/{k}.log is empty"));
            }
            a.finish().unwrap()
        };
        let none = report(0);
        assert!(none.input.left_out.is_empty());
        assert!(none.notes.iter().all(|n| !n.contains("Left out")), "{:?}", none.notes);
        let one = report(1);
        assert_eq!(one.input.left_out, [LeftOut { source: "d/0.log".into(), reason: "d/0.log is empty".into() }]);
        assert_eq!(one.notes.last().unwrap(), "Left out, found under a directory given: d/0.log is empty");
        assert_eq!(
            report(3).notes.last().unwrap(),
            "Left out 3 inputs found under the directories given: d/0.log is empty; d/1.log is empty; d/2.log is empty"
        );
        let many = report(1200);
        assert_eq!(many.input.left_out.len(), 1200);
        assert_eq!(many.input.left_out[1199].source, "d/1199.log");
        assert_eq!(
            many.notes.last().unwrap(),
            "Left out 1,200 inputs found under the directories given: d/0.log is empty; d/1.log is empty; d/2.log is \
             empty; and 1,197 more (the JSON report's input.left_out lists every one)"
        );
        assert_eq!(none.notes, many.notes[..many.notes.len() - 1]);
    }

    /// A guess from the first records is confirmed only by evidence over every record: the fast
    /// shards' (which must have collected it over all theirs) and the records pushed the reference way.
    #[test]
    fn a_guess_is_confirmed_by_the_evidence_of_every_record() {
        let text = b"2 1 eni-0a 10.0.1.9 10.0.0.7 40000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0a 10.0.0.7 52.216.1.2 2000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0a 10.0.1.9 10.0.0.7 40001 443 6 1 100 1780000002 1780000003 ACCEPT OK
2 1 eni-0a 10.0.0.8 52.216.1.3 2001 443 6 1 100 1780000002 1780000003 ACCEPT OK
";
        let config = vpc_config();
        let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
        let evidence = |a: &Analyzer, lines: &[&[u8]]| {
            let mut e = a.nat_evidence().unwrap_or_else(|| unreachable!());
            parse_all(&lines.concat(), LogFormat::default(), false, &mut |r| e.push(r));
            e
        };
        let shard = |a: &Analyzer| {
            let mut s = a.fast_shard().unwrap_or_else(|| unreachable!()).collect_nat_evidence();
            parse_all(text, LogFormat::default(), false, &mut |r| s.push(r));
            s
        };
        let primary: IpAddr = [10, 0, 0, 7].into();
        let both: Vec<IpAddr> = vec![primary, [10, 0, 0, 8].into()];
        for (first, confirmed) in [(2, false), (4, true)] {
            // Through a fast shard.
            let mut a = Analyzer::new(config.clone());
            assert!(a.guess_nat(evidence(&a, &lines[..first])));
            let guess = a.inferred.as_ref().map(|n| n.addrs.clone());
            assert_eq!(guess, Some(if confirmed { both.clone() } else { vec![primary] }));
            let mut s = shard(&a);
            let all = s.take_nat_evidence().unwrap_or_else(|| unreachable!());
            assert_eq!(a.confirm_nat(all), confirmed, "{first} records");
            assert_eq!(a.inferred.as_ref().map(|n| n.addrs.clone()), Some(both.clone()));
            // Pushed the reference way: their evidence counts too.
            let mut a = Analyzer::new(config.clone());
            assert!(a.guess_nat(evidence(&a, &lines[..first])));
            parse_all(text, LogFormat::default(), false, &mut |r| a.push(r));
            let none = evidence(&a, &[]);
            assert_eq!(a.confirm_nat(none), confirmed, "{first} records pushed");
            assert_eq!(a.inferred.as_ref().map(|n| n.addrs.clone()), Some(both.clone()));
        }
        // A shard that absorbs one without evidence has none (not evidence over some records).
        let mut a = Analyzer::new(config.clone());
        assert!(a.guess_nat(evidence(&a, &lines)));
        let mut with = shard(&a);
        with.absorb(a.fast_shard().unwrap_or_else(|| unreachable!()));
        assert!(with.take_nat_evidence().is_none());
    }

    /// Two interfaces whose records look alike: the NAT gateway is the one first by name, whichever
    /// the records (or the threads, merged in either order) showed first, on every path.
    #[test]
    fn a_tie_between_interfaces_goes_to_the_first_by_name() {
        let a: &[u8] = b"2 1 eni-0a 10.0.1.9 10.0.0.7 40000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0a 10.0.0.7 52.216.1.2 2000 443 6 1 100 1780000000 1780000001 ACCEPT OK
";
        let b: &[u8] = b"2 1 eni-0b 10.0.2.9 10.0.0.9 40000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0b 10.0.0.9 52.216.1.3 2000 443 6 1 100 1780000000 1780000001 ACCEPT OK
";
        let config = vpc_config();
        let want = Some(fast::InferredNat {
            iface: Some("eni-0a".into()),
            addrs: vec![[10, 0, 0, 7].into()],
            // The interface that lost the tie looks as much like a NAT gateway's.
            others: vec![OtherNat {
                interface: Some("eni-0b".into()),
                address: [10, 0, 0, 9].into(),
                inbound: 1,
                outbound: 1,
            }],
            doubtful: false,
        });
        for order in [[a, b], [b, a]] {
            let an = Analyzer::new(config.clone());
            let evidence = |texts: &[&[u8]]| {
                let mut e = an.nat_evidence().unwrap_or_else(|| unreachable!());
                for t in texts {
                    parse_all(t, LogFormat::default(), false, &mut |r| e.push(r));
                }
                e
            };
            assert_eq!(evidence(&order).infer(None), want, "one thread");
            let mut first = evidence(&order[..1]);
            first.absorb(evidence(&order[1..]));
            assert_eq!(first.infer(None), want, "two threads");
            // The reference path, and both with the NAT addresses given (the most common interface).
            for nat_addresses in [vec![], vec![[10, 0, 0, 7].into(), [10, 0, 0, 9].into()]] {
                let mut an = Analyzer::new(AnalyzeConfig { nat_addresses, ..config.clone() });
                for t in order {
                    parse_all(t, LogFormat::default(), false, &mut |r| an.push(r));
                }
                let reference = an.finish().unwrap_or_else(|e| panic!("{e}"));
                let mut an = Analyzer::new(reference_config(&reference, &config));
                for t in order {
                    let mut s = an.fast_shard().unwrap_or_else(|| unreachable!());
                    parse_all(t, LogFormat::default(), false, &mut |r| s.push(r));
                    an.absorb_fast(s);
                }
                let fast = an.finish().unwrap_or_else(|e| panic!("{e}"));
                for report in [&reference, &fast] {
                    assert_eq!(report.input.nat_interface.as_deref(), Some("eni-0a"), "{order:?}");
                }
            }
        }
    }

    /// Which gateway and which addresses, the same on both paths: another interface that looks like
    /// a NAT gateway's is named (and left out), an address given twice is one, and one given that
    /// carries no connection is said to.
    #[test]
    fn findings_say_which_gateway_and_which_addresses() {
        // eni-0a: a NAT gateway at 10.0.0.7 for three clients; eni-0b: another at 10.0.0.9 for two.
        let mut text = String::new();
        for (eni, nat, clients) in [("eni-0a", "10.0.0.7", 3), ("eni-0b", "10.0.0.9", 2)] {
            for c in 0..clients {
                for k in 0..5 {
                    let port = 40_000 + 10 * c + k;
                    let (t, client) = ("1780000000 1780000030", format!("10.0.1.{c}"));
                    text += &format!("2 1 {eni} {client} {nat} {port} 443 6 1 100 {t} ACCEPT OK\n");
                    text += &format!("2 1 {eni} {nat} 52.216.1.2 {port} 443 6 1 100 {t} ACCEPT OK\n");
                    text += &format!("2 1 {eni} 52.216.1.2 {nat} 443 {port} 6 1 100 {t} ACCEPT OK\n");
                    text += &format!("2 1 {eni} {nat} {client} 443 {port} 6 1 100 {t} ACCEPT OK\n");
                }
            }
        }
        // eni-0c: client 10.0.1.0's own interface, as NAT-like as a NAT gateway's (a database answers
        // it, it calls outside): its address is seen on eni-0a, so it is not named.
        for k in 0..30 {
            let t = "1780000000 1780000030";
            text += &format!("2 1 eni-0c 10.0.2.5 10.0.1.0 5432 {} 6 1 100 {t} ACCEPT OK\n", 50_000 + k);
            text += &format!("2 1 eni-0c 10.0.1.0 52.216.1.2 {} 443 6 1 100 {t} ACCEPT OK\n", 41_000 + k);
        }
        let base = vpc_config();
        let ids = |r: &Report| r.findings.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        let nat = |n: u8| IpAddr::from([10, 0, 0, n]);
        for r in both_paths(&text, &base) {
            assert_eq!(r.input.nat_interface.as_deref(), Some("eni-0a"));
            let others: Vec<&Finding> = r.findings.iter().filter(|f| f.id == "other-nat-gateway").collect();
            assert_eq!(others.len(), 1, "{:?}", ids(&r));
            assert!(others[0].summary.starts_with("Interface eni-0b (address 10.0.0.9)"), "{}", others[0].summary);
            assert_eq!(others[0].severity, Severity::Warning);
        }
        // Given, the gateway's addresses raise no such finding; twice is once.
        for r in both_paths(&text, &AnalyzeConfig { nat_addresses: vec![nat(7), nat(7)], ..base.clone() }) {
            assert_eq!((r.input.nat_addresses.clone(), r.input.limit_per_destination), (vec![nat(7)], 55_000));
            assert!(!ids(&r).iter().any(|id| id == "other-nat-gateway" || id == "nat-address-unused"), "{:?}", ids(&r));
        }
        // An address with no connection is not the gateway's (or was idle): the limit leaves it out.
        for r in both_paths(&text, &AnalyzeConfig { nat_addresses: vec![nat(7), nat(99)], ..base.clone() }) {
            assert_eq!(r.input.nat_addresses, vec![nat(7), nat(99)]);
            assert_eq!(r.input.limit_per_destination, 55_000);
            assert!(r.destinations.iter().all(|d| d.limit == 55_000));
            let unused: Vec<&Finding> = r.findings.iter().filter(|f| f.id == "nat-address-unused").collect();
            assert_eq!(unused.len(), 1, "{:?}", ids(&r));
            let want =
                "NAT address 10.0.0.99 was given but carries no connection to any destination on interface eni-0a";
            assert!(unused[0].summary.starts_with(want), "{}", unused[0].summary);
            let tail = "the limit leaves it out, 55,000 per destination with 1 address";
            assert!(unused[0].summary.ends_with(tail), "{}", unused[0].summary);
        }
    }

    /// An IPv4-mapped address (`::ffff:…`) in the records or in `--nat-ip` is the IPv4 address: one
    /// host, inside the VPC's blocks.
    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_addresses() {
        let mut text = String::new();
        for k in 0..10 {
            let (t, port) = ("1780000000 1780000030", 40_000 + k);
            let nat = if k % 2 == 0 { "10.0.0.7" } else { "::ffff:10.0.0.7" };
            text += &format!("2 1 eni-0a 10.0.1.5 {nat} {port} 443 6 1 100 {t} ACCEPT OK\n");
            text += &format!("2 1 eni-0a {nat} 52.216.1.2 {port} 443 6 1 100 {t} ACCEPT OK\n");
        }
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        let config = AnalyzeConfig { nat_addresses: vec![mapped], ..vpc_config() };
        assert!(check_config(&config).is_ok());
        for r in both_paths(&text, &config) {
            assert_eq!(r.input.nat_addresses, vec![IpAddr::from([10, 0, 0, 7])]);
            assert_eq!((r.destinations.len(), r.destinations[0].records), (1, 10));
            assert_eq!(r.destinations[0].per_address.len(), 1);
        }
    }

    /// An address given that sends out of the VPC from another interface than the one analysed (another
    /// gateway's, or another interface of a regional one) is named with that interface and the command
    /// that analyses it, on both paths.
    #[test]
    fn an_address_given_that_sends_from_another_interface_is_named_with_it() {
        let mut text = String::new();
        let t = "1780000000 1780000030";
        for k in 0..20 {
            text += &format!("2 1 eni-0a 10.0.1.5 10.0.0.7 {} 443 6 1 100 {t} ACCEPT OK\n", 40_000 + k);
            text += &format!("2 1 eni-0a 10.0.0.7 52.216.1.2 {} 443 6 1 100 {t} ACCEPT OK\n", 2_000 + k);
        }
        for k in 0..7 {
            text += &format!("2 1 eni-0b 10.0.2.5 10.0.0.200 {} 443 6 1 100 {t} ACCEPT OK\n", 40_000 + k);
            text += &format!("2 1 eni-0b 10.0.0.200 52.216.1.2 {} 443 6 1 100 {t} ACCEPT OK\n", 2_000 + k);
        }
        let config =
            AnalyzeConfig { nat_addresses: vec![[10, 0, 0, 7].into(), [10, 0, 0, 200].into()], ..vpc_config() };
        for r in both_paths(&text, &config) {
            assert_eq!((r.input.nat_interface.as_deref(), r.input.limit_per_destination), (Some("eni-0a"), 55_000));
            let unused: Vec<&Finding> = r.findings.iter().filter(|f| f.id == "nat-address-unused").collect();
            assert_eq!(unused.len(), 1, "{:?}", r.findings);
            let want = "NAT address 10.0.0.200 was given but carries no connection on interface eni-0a: it sends 7 \
                        records out of the VPC from interface eni-0b";
            assert!(unused[0].summary.starts_with(want), "{}", unused[0].summary);
            assert_eq!(
                unused[0].remedies[0].command.as_deref(),
                Some("aws-natgw analyze <files> --nat-interface eni-0b --nat-ip 10.0.0.200")
            );
        }
    }

    /// A secondary address of the gateway left out of `--nat-ip` is named, with its records and the
    /// command that adds it; given, or inferred, it is not.
    #[test]
    fn an_address_of_the_gateway_not_given_is_named() {
        let mut text = String::new();
        for (nat, n) in [("10.0.0.7", 20), ("10.0.0.8", 12)] {
            for k in 0..n {
                let (t, port) = ("1780000000 1780000030", 40_000 + k);
                text += &format!("2 1 eni-0a 10.0.1.5 10.0.0.7 {port} 443 6 1 100 {t} ACCEPT OK\n");
                text += &format!("2 1 eni-0a {nat} 52.216.1.2 {port} 443 6 1 100 {t} ACCEPT OK\n");
            }
        }
        // A client's own interface sends out too: that is not the gateway's.
        text += "2 1 eni-0c 10.0.1.5 52.216.1.2 40000 443 6 1 100 1780000000 1780000030 ACCEPT OK\n";
        let nat = |n: u8| IpAddr::from([10, 0, 0, n]);
        let named = |r: &Report| -> Vec<String> {
            r.findings.iter().filter(|f| f.id == "nat-address-not-given").map(|f| f.summary.clone()).collect()
        };
        let only_one = AnalyzeConfig { nat_addresses: vec![nat(7)], ..vpc_config() };
        for r in both_paths(&text, &only_one) {
            assert_eq!(
                named(&r),
                ["Address 10.0.0.8 sends 12 records from interface eni-0a to outside the VPC, as only the gateway's \
                  own addresses do, but it is not among the NAT addresses analysed: its connections are not counted, \
                  and the limit is 55,000 per destination for 1 address"]
            );
            let f = r.findings.iter().find(|f| f.id == "nat-address-not-given").unwrap_or_else(|| unreachable!());
            assert_eq!(
                f.remedies[0].command.as_deref(),
                Some("aws-natgw analyze <files> --nat-ip 10.0.0.7 --nat-ip 10.0.0.8")
            );
        }
        for config in [AnalyzeConfig { nat_addresses: vec![nat(7), nat(8)], ..vpc_config() }, vpc_config()] {
            for r in both_paths(&text, &config) {
                assert_eq!(r.input.nat_addresses, [nat(7), nat(8)]);
                assert!(named(&r).is_empty(), "{:?}", named(&r));
            }
        }
    }

    /// Addresses given as the gateway's that are not: each mistake gets its own error, which says
    /// what is wrong (not that no record involves an address the records show), on both paths.
    #[test]
    fn addresses_given_as_the_gateways_that_are_not_are_told_apart() {
        let mut text = String::new();
        for k in 0..10 {
            let (t, port) = ("1780000000 1780000030", 40_000 + k);
            text += &format!("2 1 eni-0a 10.0.1.5 10.0.0.7 {port} 443 6 1 100 {t} ACCEPT OK\n");
            text += &format!("2 1 eni-0a 10.0.0.7 52.216.1.2 {port} 443 6 1 100 {t} ACCEPT OK\n");
            text += &format!("2 1 eni-0a 52.216.1.2 10.0.0.7 443 {port} 6 1 100 {t} ACCEPT OK\n");
            text += &format!("2 1 eni-0a 10.0.0.7 10.0.1.5 443 {port} 6 1 100 {t} ACCEPT OK\n");
        }
        let run = |nat: &[[u8; 4]], fast: bool| {
            let config =
                AnalyzeConfig { nat_addresses: nat.iter().map(|a| IpAddr::from(*a)).collect(), ..vpc_config() };
            let mut an = Analyzer::new(config);
            if fast {
                let mut s = an.fast_shard().unwrap_or_else(|| unreachable!());
                parse_all(text.as_bytes(), LogFormat::default(), false, &mut |r| s.push(r));
                an.absorb_fast(s);
            } else {
                parse_all(text.as_bytes(), LogFormat::default(), false, &mut |r| an.push(r));
            }
            an.finish().err().map(|e| e.to_string()).unwrap_or_default()
        };
        for fast in [false, true] {
            // A client's address: records involve it, none sends from it out of the VPC.
            assert_eq!(
                run(&[[10, 0, 1, 5]], fast),
                "no record on interface eni-0a sends from NAT address(es) 10.0.1.5 to outside the VPC, as a \
                 gateway's address does (some records involve them): check that --nat-ip names the gateway's \
                 addresses, not a client's, and --vpc-cidr (the VPC's blocks only)"
            );
            assert_eq!(
                run(&[[10, 0, 9, 9]], fast),
                "no record involves NAT address(es) 10.0.9.9: check --nat-ip and --nat-interface"
            );
            // The gateway's and a client's: the 20 records between them give the client away.
            assert_eq!(
                run(&[[10, 0, 0, 7], [10, 0, 1, 5]], fast),
                "20 records go between 10.0.0.7 and 10.0.1.5, both given as the NAT gateway's: a gateway's \
                 addresses do not talk to each other, but a client and its gateway do; give only the gateway's \
                 addresses with --nat-ip, or leave it out to infer them"
            );
            // The destination's address: outside the VPC.
            let outside = AnalyzeConfig {
                nat_addresses: vec![IpAddr::from([10, 0, 0, 7]), IpAddr::from([52, 216, 1, 2])],
                ..vpc_config()
            };
            assert_eq!(
                check_config(&outside).err().map(|e| e.to_string()).unwrap_or_default(),
                "52.216.1.2 is not inside the VPC's blocks (10.0.0.0/16), as a NAT gateway's private address is: \
                 check --nat-ip (not a destination's address), and give every VPC block with --vpc-cidr"
            );
            assert_eq!(run(&[[10, 0, 0, 7]], fast), "");
        }
        // A client's own interface logs its connections out of the VPC: given as the gateway's, its
        // address passes the checks above, and the report warns that no client sends through it.
        let mut own = String::new();
        for k in 0..10 {
            let (t, port) = ("1780000000 1780000030", 40_000 + k);
            own += &format!("2 1 eni-0c 10.0.1.5 52.216.1.2 {port} 443 6 1 100 {t} ACCEPT OK\n");
            own += &format!("2 1 eni-0c 52.216.1.2 10.0.1.5 443 {port} 6 1 100 {t} ACCEPT OK\n");
        }
        let warned = |r: &Report| r.findings.iter().any(|f| f.id == "nat-without-clients");
        let client = AnalyzeConfig { nat_addresses: vec![IpAddr::from([10, 0, 1, 5])], ..vpc_config() };
        for r in both_paths(&own, &client) {
            assert!(warned(&r), "{:?}", r.findings);
        }
        let gateway = AnalyzeConfig { nat_addresses: vec![IpAddr::from([10, 0, 0, 7])], ..vpc_config() };
        for r in both_paths(&(text.clone() + &own), &gateway) {
            assert!(!warned(&r), "{:?}", r.findings);
        }
        // With the gateway's interface too, whose records of the client's connections are as many as
        // its own interface's: the interface it sends out from is analysed, whichever sorts first.
        for own_iface in ["eni-0c", "eni-00"] {
            let both = text.clone() + &own.replace("eni-0c", own_iface);
            for r in both_paths(&both, &client) {
                assert_eq!(r.input.nat_interface.as_deref(), Some(own_iface));
                assert!(warned(&r), "{:?}", r.findings);
            }
        }
        // A secondary address given alone: the clients send to the primary, not given, which
        // `nat-address-not-given` names; no client sending through the secondary is no sign of a
        // client's address.
        let mut two = text.clone();
        for k in 0..5 {
            let (t, port) = ("1780000000 1780000030", 41_000 + k);
            two += &format!("2 1 eni-0a 10.0.1.6 10.0.0.7 {port} 443 6 1 100 {t} ACCEPT OK\n");
            two += &format!("2 1 eni-0a 10.0.0.8 52.216.1.2 {port} 443 6 1 100 {t} ACCEPT OK\n");
        }
        let secondary = AnalyzeConfig { nat_addresses: vec![IpAddr::from([10, 0, 0, 8])], ..vpc_config() };
        for r in both_paths(&two, &secondary) {
            assert!(!warned(&r), "{:?}", r.findings);
            assert!(r.findings.iter().any(|f| f.id == "nat-address-not-given"), "{:?}", r.findings);
        }
    }

    /// With pkt-dstaddr, client legs that go to an address not analysed cannot be attributed, and the
    /// note says to check the addresses, not to add the field the format has.
    #[test]
    fn attribution_unavailable_with_pkt_dstaddr_names_the_addresses() {
        let mut text =
            "version interface-id srcaddr dstaddr srcport dstport protocol bytes start end action log-status \
                        pkt-srcaddr pkt-dstaddr\n"
                .to_owned();
        for k in 0..10 {
            let (t, port) = ("1780000000 1780000030", 40_000 + k);
            text += &format!("5 eni-0a 10.0.1.5 10.0.0.7 {port} 443 6 100 {t} ACCEPT OK 10.0.1.5 52.216.1.2\n");
            text += &format!("5 eni-0a 10.0.0.8 52.216.1.2 {port} 443 6 100 {t} ACCEPT OK 10.0.0.8 52.216.1.2\n");
        }
        let config = AnalyzeConfig { nat_addresses: vec![IpAddr::from([10, 0, 0, 8])], ..vpc_config() };
        for r in both_paths(&text, &config) {
            assert_eq!(r.attribution.method, AttributionMethod::Unavailable);
            let note = r.attribution.note.unwrap_or_default();
            assert!(
                note.starts_with("No client leg on the NAT gateway's interface goes to the addresses analysed"),
                "{note}"
            );
            // So does the finding, which does not ask for the field the format has.
            let f = r.findings.iter().find(|f| f.id == "attribution-unavailable").expect("attribution-unavailable");
            let want = "Source clients cannot be named from these logs: no client leg on interface eni-0a goes to the \
                        NAT addresses analysed (10.0.0.8)";
            assert!(f.summary.starts_with(want), "{}", f.summary);
            assert!(f.remedies.iter().all(|r| r.command.is_none()), "{:?}", f.remedies);
        }
    }

    /// The bad lines a report shows are the same whatever order its inputs came in.
    #[test]
    fn bad_lines_shown_do_not_depend_on_the_inputs_order() {
        let text = b"2 1 eni-0a 10.0.1.9 10.0.0.7 40000 443 6 1 100 1780000000 1780000001 ACCEPT OK
2 1 eni-0a 10.0.0.7 52.216.1.2 2000 443 6 1 100 1780000000 1780000001 ACCEPT OK
";
        let stats = |from: u64| {
            let mut stats = parse_all(text, LogFormat::default(), false, &mut |_| {});
            stats.skipped = 15;
            stats.bad_lines = (from..from + 15)
                .map(|line| crate::flowlog::BadLine { line, error: crate::flowlog::LineError::NotText })
                .collect();
            stats
        };
        let report = |names: [&str; 2]| {
            let mut an =
                Analyzer::new(AnalyzeConfig { nat_addresses: vec![[10, 0, 0, 7].into()], ..Default::default() });
            parse_all(text, LogFormat::default(), false, &mut |r| an.push(r));
            for name in names {
                an.add_input(name, &LogFormat::default(), stats(if name == "a.log" { 100 } else { 200 }));
            }
            an.finish().unwrap_or_else(|e| panic!("{e}"))
        };
        let (ab, ba) = (report(["a.log", "b.log"]), report(["b.log", "a.log"]));
        let shown = |r: &Report| r.bad_lines.iter().map(|b| (b.input.clone(), b.line)).collect::<Vec<_>>();
        assert_eq!(shown(&ab), shown(&ba));
        assert_eq!((ab.bad_lines.len(), ab.bad_lines[0].input.as_str(), ab.bad_lines[19].line), (20, "a.log", 204));
    }

    /// Logs without the NAT gateway's interface: the most NAT-like address is taken, and the note
    /// says it is doubtful (it is also seen receiving on another interface), on both paths.
    #[test]
    fn a_nat_gateway_seen_elsewhere_is_doubtful() {
        let mut text = String::new();
        for k in 0..30 {
            let t = "1780000000 1780000030";
            text += &format!("2 1 eni-0c 10.0.2.5 10.0.1.0 5432 {} 6 1 100 {t} ACCEPT OK\n", 50_000 + k);
            text += &format!("2 1 eni-0c 10.0.1.0 52.216.1.2 {} 443 6 1 100 {t} ACCEPT OK\n", 41_000 + k);
            text += &format!("2 1 eni-0d 10.0.3.3 10.0.1.0 {} 8080 6 1 100 {t} ACCEPT OK\n", 42_000 + k);
        }
        for r in both_paths(&text, &vpc_config()) {
            assert_eq!(r.input.nat_interface.as_deref(), Some("eni-0c"));
            assert!(r.notes.iter().any(|n| n.contains("Doubtful: it is also seen receiving")), "{:?}", r.notes);
        }
    }

    /// A client that pings the NAT gateway's address has its own interface log the ping to it: that
    /// is no sign that the gateway's address is a client's, and the inferred gateway is not doubtful.
    #[test]
    fn a_ping_to_the_nat_gateway_does_not_make_it_doubtful() {
        let mut text = String::new();
        let t = "1780000000 1780000030";
        for k in 0..30 {
            text += &format!("2 1 eni-0a 10.0.1.9 10.0.0.7 {} 443 6 1 100 {t} ACCEPT OK\n", 40_000 + k);
            text += &format!("2 1 eni-0a 10.0.0.7 52.216.1.2 {} 443 6 1 100 {t} ACCEPT OK\n", 2_000 + k);
        }
        text += &format!("2 1 eni-0b 10.0.1.9 10.0.0.7 0 8 1 1 84 {t} ACCEPT OK\n");
        text += &format!("2 1 eni-0b 10.0.0.7 10.0.1.9 0 0 1 1 84 {t} ACCEPT OK\n");
        for r in both_paths(&text, &vpc_config()) {
            assert_eq!(r.input.nat_interface.as_deref(), Some("eni-0a"));
            assert!(!r.notes.iter().any(|n| n.contains("Doubtful")), "{:?}", r.notes);
        }
    }

    /// An internet-facing load balancer receives from private addresses (its targets) and sends to
    /// outside ones, more than the NAT gateway here, but from its listener's port: it is not taken for
    /// the NAT gateway, nor named as another, even without its targets' interfaces.
    #[test]
    fn a_load_balancer_is_not_taken_for_the_nat_gateway() {
        let mut text = String::new();
        let t = "1780000000 1780000030";
        for k in 0..5 {
            text += &format!("2 1 eni-0a 10.0.1.9 10.0.0.7 {} 443 6 1 100 {t} ACCEPT OK\n", 40_000 + k);
            text += &format!("2 1 eni-0a 10.0.0.7 52.216.1.2 {} 443 6 1 100 {t} ACCEPT OK\n", 2_000 + k);
        }
        for k in 0..50 {
            text += &format!("2 1 eni-0e 10.0.5.3 10.0.0.200 8080 {} 6 1 100 {t} ACCEPT OK\n", 30_000 + k);
            text += &format!("2 1 eni-0e 10.0.0.200 81.8.115.40 443 {} 6 1 100 {t} ACCEPT OK\n", 50_000 + k);
        }
        for r in both_paths(&text, &vpc_config()) {
            assert_eq!(r.input.nat_interface.as_deref(), Some("eni-0a"));
            assert!(!r.findings.iter().any(|f| f.id == "other-nat-gateway"));
        }
    }

    /// The verdict names the busiest destination by exact utilisation (the rows' is rounded to four
    /// places), the first in the rows' order on a tie.
    #[test]
    fn the_verdict_names_the_busiest_destination() {
        let row = destination_row;
        // 11 and 12 of 55,000 both round to 0.0002.
        let rows = [row(1, 11), row(2, 12), row(3, 12)];
        assert_eq!(rows[0].utilization, rows[1].utilization);
        assert!(verdict(&rows).summary.starts_with("Healthy: the busiest destination, 192.0.2.99:2/tcp, peaked at 12"));
    }

    /// A row of the report for 192.0.2.99:`port`/tcp that peaked at `peak` of 55,000.
    fn destination_row(port: u16, peak: u64) -> DestinationReport {
        DestinationReport {
            address: [192, 0, 2, 99].into(),
            port,
            protocol: Protocol::TCP,
            service: None,
            peak_connections: peak,
            peak_connections_range: [peak, peak],
            peak_at: None,
            limit: 55_000,
            utilization: (peak as f64 / 55_000.0 * 10_000.0).round() / 10_000.0,
            level: crate::limits::Level::Ok,
            saturated: false,
            records: 1,
            bytes: 1,
            connections: 1,
            sources: Vec::new(),
            per_address: Vec::new(),
            evidence: Evidence {
                hold_model: HoldModel::Unknown,
                abandoned_share: None,
                dropped_attempts: 0,
                first_drop_at: None,
                error_port_allocation: None,
                max_ports_per_minute: 0,
            },
        }
    }

    /// A config with the VPC block the tests' records use.
    fn vpc_config() -> AnalyzeConfig {
        AnalyzeConfig {
            vpc_cidrs: CidrSet::new(["10.0.0.0/16".parse().unwrap_or_else(|_| unreachable!())]),
            ..AnalyzeConfig::default()
        }
    }

    /// The reports of `text` by the reference path and by the fast path (its NAT gateway inferred by
    /// a first pass when `config` does not give it).
    fn both_paths(text: &str, config: &AnalyzeConfig) -> [Report; 2] {
        let mut an = Analyzer::new(config.clone());
        parse_all(text.as_bytes(), LogFormat::default(), false, &mut |r| an.push(r));
        let reference = an.finish().unwrap_or_else(|e| panic!("{e}"));
        let mut an = Analyzer::new(config.clone());
        if let Some(mut e) = an.nat_evidence() {
            parse_all(text.as_bytes(), LogFormat::default(), false, &mut |r| e.push(r));
            assert!(an.infer_nat(e));
        }
        let mut s = an.fast_shard().unwrap_or_else(|| unreachable!());
        parse_all(text.as_bytes(), LogFormat::default(), false, &mut |r| s.push(r));
        an.absorb_fast(s);
        [reference, an.finish().unwrap_or_else(|e| panic!("{e}"))]
    }

    /// The config of a fast-path run equal to the reference `report`'s: its NAT addresses given.
    fn reference_config(report: &Report, config: &AnalyzeConfig) -> AnalyzeConfig {
        AnalyzeConfig { nat_addresses: report.input.nat_addresses.clone(), ..config.clone() }
    }

    /// The count the old sort-and-dedup implementation made.
    fn by_sorting(flows: &[NatFlowObs]) -> u64 {
        let mut keys: Vec<(u64, IpAddr, u16)> =
            flows.iter().map(|f| (f.start / 60, f.nat_address, f.nat_port)).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut per: BTreeMap<u64, u64> = BTreeMap::new();
        for k in keys {
            *per.entry(k.0).or_default() += 1;
        }
        per.into_values().max().unwrap_or(0)
    }

    #[test]
    fn ports_per_minute_over_dense_and_sparse_spans() {
        let a: IpAddr = "10.0.0.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "10.0.0.8".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let mut rnd = crate::testing::rng(3);
        for (len, span) in [(0u64, 1u64), (1, 1), (50, 600), (500, 3600), (300, 10_000_000)] {
            let mut flows: Vec<NatFlowObs> = (0..len)
                .map(|_| {
                    let start = 1_700_000_000 + rnd(span);
                    NatFlowObs {
                        nat_address: if rnd(4) == 0 { b } else { a },
                        nat_port: 1024 + rnd(20) as u16,
                        start,
                        end: start + rnd(30),
                        tcp_flags: None,
                    }
                })
                .collect();
            let want = by_sorting(&flows);
            assert_eq!(max_ports_per_minute(&mut flows), want, "{len} flows over {span} s");
        }
    }
}
