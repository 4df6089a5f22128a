//! The fast path of the local analysis: when the NAT gateway's addresses are known up front, each
//! parsing thread classifies its records into aggregated legs at once ([`FastShard`]) instead of
//! keeping every record for a serial pass at the end. Only what the estimator needs per record (the
//! NAT → destination flows) is kept; answers and client flows are folded into maps.
//!
//! Which interface is the NAT gateway's is decided only at the end (the one its addresses send out of
//! the VPC from most, unless given), so each interface's records are classified both
//! ways — as the NAT gateway's and as a client's — and the right half is kept then. A record only
//! ever lands in one half in practice (legs on the NAT interface involve a NAT address, client legs do
//! not), so this costs no memory.
//!
//! The result is the reference path's report, exactly: the same classification code ([`Legs::add`]),
//! order-independent merges, and the same steps 3–6 (`Analysis::report`). The differential tests
//! in natgw-testkit (`tests/fast_path.rs`) hold the two paths equal.

use std::net::IpAddr;

use rustc_hash::{FxHashMap as HashMap, FxHashSet};

use super::clients::{ClientAgg, ClientKey, ClientRec, ClientTracker};
use super::{
    ASSUMED_CIDRS_NOTE, AnalyzeConfig, AnalyzeError, Counts, Gathered, IfaceCount, IfaceNames, Legs, NatScores, NatSet,
    Obs, OtherNat, Shard, Sides, Unlisted, inferred_note, intern, internal_ranges, nat_not_seen, no_records, observe,
    remap_ifaces, unnamed_egress,
};
use crate::estimate::stream::DestStream;
use crate::estimate::{self, NatFlowObs, PAGE_SECS};
use crate::flowlog::{Record, TcpFlags};
use crate::net::{CidrSet, Destination};

/// The NAT gateway as a first pass found it: its interface (by ID; `None` for records without one)
/// and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InferredNat {
    pub(super) iface: Option<String>,
    pub(super) addrs: Vec<IpAddr>,
    pub(super) others: Vec<OtherNat>,
    pub(super) doubtful: bool,
}

/// What a first pass over the records collects to find the NAT gateway when its addresses are not
/// configured ([`super::Analyzer::nat_evidence`], [`super::Analyzer::infer_nat`]): the reference
/// path's scores, per interface and private address. Small (bounded by the addresses seen), one per
/// thread, mergeable.
#[derive(Debug, Clone)]
pub struct NatEvidence {
    internal: CidrSet,
    ifaces: HashMap<String, u32>,
    scores: NatScores,
}

impl NatEvidence {
    pub(super) fn new(internal: CidrSet) -> NatEvidence {
        NatEvidence { internal, ifaces: HashMap::default(), scores: NatScores::default() }
    }

    /// Adds one record.
    pub fn push(&mut self, r: &Record<'_>) {
        if let Some(mut o) = observe(r, &mut Counts::default()) {
            o.iface = intern(&mut self.ifaces, r.interface_id);
            self.scores.add(&o, &self.internal);
        }
    }

    /// Adds the evidence of the records a reference [`Shard`] kept.
    pub(super) fn absorb_shard(&mut self, shard: &Shard) {
        if shard.obs.is_empty() {
            return;
        }
        let mut scores = NatScores::default();
        shard.obs.iter().for_each(|o| scores.add(o, &self.internal));
        let remap = remap_ifaces(&mut self.ifaces, shard.ifaces.clone());
        self.scores.absorb(scores, &remap);
    }

    /// Moves `other`'s evidence into this one (interface numbers remapped).
    pub fn absorb(&mut self, other: NatEvidence) {
        let remap = remap_ifaces(&mut self.ifaces, other.ifaces);
        self.scores.absorb(other.scores, &remap);
    }

    pub(super) fn infer(&self, only_iface: Option<&str>) -> Option<InferredNat> {
        let only = match only_iface {
            Some(name) => Some(*self.ifaces.get(name)?),
            None => None,
        };
        let names = IfaceNames::new(&self.ifaces);
        let found = self.scores.infer(only, &names)?;
        Some(InferredNat {
            iface: names.of(found.iface).map(str::to_owned),
            addrs: found.addrs,
            others: found.others,
            doubtful: found.doubtful,
        })
    }
}

/// One interface's records, classified both ways.
#[derive(Debug, Clone, Default)]
struct IfaceLegs {
    /// As if this interface is the NAT gateway's.
    on_nat: Legs,
    /// As if it is a client's.
    off_nat: Legs,
    /// Records kept.
    kept: u64,
    /// Records kept that involve a NAT address.
    touch_nat: u64,
    /// Records that send out of the VPC, by the NAT address they send from.
    egress_from: Vec<(IpAddr, u64)>,
    /// Records without an interface ID (interface 0) that send out of the VPC from another private
    /// address ([`super::unnamed_egress`]).
    unnamed: Unlisted,
}

impl IfaceLegs {
    fn merge(&mut self, other: IfaceLegs) {
        self.on_nat.merge(other.on_nat);
        self.off_nat.merge(other.off_nat);
        self.kept += other.kept;
        self.touch_nat += other.touch_nat;
        for (a, n) in other.egress_from {
            count_egress(&mut self.egress_from, a, n);
        }
        self.unnamed.merge(other.unnamed);
    }
}

/// Records classified by one thread as it parses; [`super::Analyzer::absorb_fast`] merges it. Made by
/// [`super::Analyzer::fast_shard`] when the NAT addresses are known.
#[derive(Debug, Clone)]
pub struct FastShard {
    nat: NatSet,
    internal: CidrSet,
    ifaces: HashMap<String, u32>,
    /// The last interface ID seen and its number.
    last_iface: Option<(String, u32)>,
    /// By interface number (0: records without an interface ID).
    per_iface: Vec<IfaceLegs>,
    counts: Counts,
    t_min: u64,
    t_max: u64,
    any_pkt_dst: bool,
    /// Records counted when [`take_flows`](FastShard::take_flows) last ran.
    taken_at: u64,
    /// The latest start among the records kept since then.
    latest_since_take: Option<u64>,
    /// The evidence for the NAT gateway, when collected ([`collect_nat_evidence`](FastShard::collect_nat_evidence)).
    evidence: Option<NatScores>,
}

impl FastShard {
    pub(super) fn new(nat_addresses: &[IpAddr], internal: CidrSet) -> FastShard {
        FastShard {
            nat: nat_addresses.iter().copied().collect(),
            internal,
            ifaces: HashMap::default(),
            last_iface: None,
            per_iface: Vec::new(),
            counts: Counts::default(),
            t_min: u64::MAX,
            t_max: 0,
            any_pkt_dst: false,
            taken_at: 0,
            latest_since_take: None,
            evidence: None,
        }
    }

    /// Collects, besides, the evidence a first pass would for the NAT gateway ([`NatEvidence`]), for
    /// [`super::Analyzer::confirm_nat`] (the records were classified with a guess).
    pub fn collect_nat_evidence(mut self) -> FastShard {
        self.evidence = Some(NatScores::default());
        self
    }

    /// The evidence collected since [`collect_nat_evidence`](FastShard::collect_nat_evidence), if it was.
    pub fn take_nat_evidence(&mut self) -> Option<NatEvidence> {
        let scores = self.evidence.take()?;
        Some(NatEvidence { internal: self.internal.clone(), ifaces: self.ifaces.clone(), scores })
    }

    /// Adds one record.
    pub fn push(&mut self, r: &Record<'_>) {
        if let Some(mut o) = observe(r, &mut self.counts) {
            // Runs of records share their interface: compare with the last one before hashing.
            o.iface = match r.interface_id {
                Some(id) if self.last_iface.as_ref().is_some_and(|(name, _)| name == id) => {
                    self.last_iface.as_ref().map_or(0, |(_, n)| *n)
                }
                id => {
                    let n = intern(&mut self.ifaces, id);
                    if let Some(id) = id {
                        let (name, last) = self.last_iface.get_or_insert_with(|| (String::new(), 0));
                        name.clear();
                        name.push_str(id);
                        *last = n;
                    }
                    n
                }
            };
            self.add(&o);
        }
    }

    fn add(&mut self, o: &Obs) {
        self.t_min = self.t_min.min(o.start);
        self.t_max = self.t_max.max(o.end);
        self.latest_since_take = self.latest_since_take.max(Some(o.start));
        self.any_pkt_dst |= o.pkt_dst.is_some();
        let i = o.iface as usize;
        if self.per_iface.len() <= i {
            self.per_iface.resize_with(i + 1, IfaceLegs::default);
        }
        let sides = Sides::of(o, &self.nat, &self.internal);
        if let Some(e) = &mut self.evidence {
            e.add_sides(o, sides.src_in, sides.dst_in);
        }
        let legs = &mut self.per_iface[i];
        legs.kept += 1;
        if sides.src_nat || sides.dst_nat {
            legs.touch_nat += 1;
            if sides.src_nat && !sides.dst_in {
                count_egress(&mut legs.egress_from, o.src, 1);
            }
        }
        legs.on_nat.add(o, true, sides, &self.nat, &self.internal);
        // Records without an interface ID count as the NAT gateway's whatever it turns out to be.
        if i != 0 {
            legs.off_nat.add(o, false, sides, &self.nat, &self.internal);
        } else if let Some(a) = unnamed_egress(o, sides) {
            legs.unnamed.count(a);
        }
    }

    /// Sorts the NAT flows this shard holds ([`estimate::sort_flows`]), so that the serial end of the
    /// analysis only merges sorted runs. Call it on the shard's own thread when it is full.
    pub fn sort(&mut self) {
        for legs in &mut self.per_iface {
            for agg in legs.on_nat.dests.values_mut().chain(legs.off_nat.dests.values_mut()) {
                estimate::sort_flows(&mut agg.flows);
            }
        }
    }

    /// Takes the NAT → destination records pushed since the last call, in the order they came, for
    /// the streaming estimate ([`FlowStreams::feed`]); the shard keeps every other aggregate.
    pub fn take_flows(&mut self) -> NatFlows {
        self.taken_at = self.counts.records;
        self.latest_since_take = None;
        let mut out = NatFlows::default();
        for (i, legs) in self.per_iface.iter_mut().enumerate() {
            let name =
                (i != 0).then(|| self.ifaces.iter().find(|(_, n)| **n as usize == i).map(|(k, _)| k.clone())).flatten();
            // Only the destinations that got flows since the last take (not every one seen).
            for l in [&mut legs.on_nat, &mut legs.off_nat] {
                for d in std::mem::take(&mut l.fresh) {
                    if let Some(agg) = l.dests.get_mut(&d)
                        && !agg.flows.is_empty()
                    {
                        agg.room = next_part(agg.flows.len());
                        out.nat.push((name.clone(), d, std::mem::take(&mut agg.flows)));
                    }
                }
            }
            for (on_nat, l) in [(true, &mut legs.on_nat), (false, &mut legs.off_nat)] {
                if !l.clients.is_empty() {
                    l.clients_room = next_part(l.clients.len());
                    out.clients.push((name.clone(), on_nat, std::mem::take(&mut l.clients)));
                }
            }
        }
        out
    }

    /// Records pushed since the last [`take_flows`](FastShard::take_flows).
    pub fn records_since_take(&self) -> u64 {
        self.counts.records - self.taken_at
    }

    /// The latest start among the records kept since the last [`take_flows`](FastShard::take_flows):
    /// where the data's time stands, for readers that interleave inputs in time order.
    pub fn latest_start_since_take(&self) -> Option<u64> {
        self.latest_since_take
    }

    /// Moves `other`'s legs into this shard (interface numbers remapped).
    pub fn absorb(&mut self, other: FastShard) {
        let remap = remap_ifaces(&mut self.ifaces, other.ifaces);
        // Evidence over both shards' records, or none (not evidence over some of them).
        self.evidence = match (self.evidence.take(), other.evidence) {
            (Some(mut mine), Some(theirs)) => {
                mine.absorb(theirs, &remap);
                Some(mine)
            }
            _ => None,
        };
        for (i, legs) in other.per_iface.into_iter().enumerate() {
            let mine = remap.get(&(i as u32)).copied().unwrap_or(0) as usize;
            if self.per_iface.len() <= mine {
                self.per_iface.resize_with(mine + 1, IfaceLegs::default);
            }
            self.per_iface[mine].merge(legs);
        }
        self.counts.add(other.counts);
        self.t_min = self.t_min.min(other.t_min);
        self.t_max = self.t_max.max(other.t_max);
        self.any_pkt_dst |= other.any_pkt_dst;
    }

    /// Classifies the records a reference [`Shard`] kept.
    pub(super) fn absorb_shard(&mut self, shard: Shard) {
        let remap = remap_ifaces(&mut self.ifaces, shard.ifaces);
        for mut o in shard.obs {
            o.iface = remap.get(&o.iface).copied().unwrap_or(0);
            self.add(&o);
        }
        self.counts.add(shard.counts);
    }

    /// Steps 1–2 of the analysis from the classified legs: the NAT interface, then the legs as
    /// classified for it.
    pub(super) fn gather(
        self,
        cfg: &AnalyzeConfig,
        inferred: Option<&InferredNat>,
        streams: Option<FlowStreams>,
    ) -> Result<Gathered, AnalyzeError> {
        let (internal, assumed_cidrs) = internal_ranges(cfg);
        if self.per_iface.iter().all(|l| l.kept == 0) {
            return Err(no_records(self.counts));
        }
        let iface_names: HashMap<u32, String> = self.ifaces.iter().map(|(k, v)| (*v, k.clone())).collect();
        let want_iface = match &cfg.nat_interface {
            Some(id) => Some(
                self.ifaces
                    .get(id.as_str())
                    .copied()
                    .ok_or_else(|| AnalyzeError::NatInterfaceNotSeen(id.to_string()))?,
            ),
            None => None,
        };
        // The interface the NAT addresses send out from most, as the reference chooses it
        // ([`super::nat_iface_of`]).
        let names = IfaceNames::new(&self.ifaces);
        let sends_most = self
            .per_iface
            .iter()
            .enumerate()
            .filter(|(_, l)| l.touch_nat > 0)
            .max_by_key(|&(i, l)| {
                let egress = l.egress_from.iter().map(|(_, n)| n).sum();
                IfaceCount { egress, touch: l.touch_nat }.rank(names.of(i as u32))
            })
            .map(|(i, _)| i as u32);
        let mut notes = Vec::new();
        let mut other_nats = Vec::new();
        let (nat_iface, nat_addrs) = match inferred {
            Some(n) if cfg.nat_addresses.is_empty() => {
                let iface = match &n.iface {
                    None => 0,
                    Some(name) => *self.ifaces.get(name.as_str()).ok_or(AnalyzeError::NoNatGateway)?,
                };
                notes.push(inferred_note(&n.addrs, n.iface.as_deref(), n.doubtful));
                other_nats.clone_from(&n.others);
                (Some(iface), n.addrs.clone())
            }
            _ => {
                if sends_most.is_none() {
                    return Err(nat_not_seen(&cfg.nat_addresses));
                }
                (want_iface.or(sends_most), cfg.nat_addresses.clone())
            }
        };
        if assumed_cidrs {
            notes.push(ASSUMED_CIDRS_NOTE.into());
        }
        let mut legs = Legs::default();
        let mut from_client_ifaces = false;
        let mut unlisted = Unlisted::default();
        let mut unnamed = Unlisted::default();
        let mut egress_elsewhere = Vec::new();
        for (i, l) in self.per_iface.into_iter().enumerate() {
            let i = i as u32;
            let on_nat = nat_iface.is_none_or(|n| n == i || i == 0);
            if !on_nat {
                egress_elsewhere.extend(l.egress_from.iter().map(|&(a, n)| (a, i, n)));
            }
            from_client_ifaces |= l.kept > 0 && nat_iface.is_some_and(|n| n != i && i != 0);
            if on_nat && i != 0 {
                l.off_nat.clients.iter().for_each(|(k, r)| unlisted.add(k, r.request));
            }
            unnamed.merge(l.unnamed);
            legs.merge(if on_nat { l.on_nat } else { l.off_nat });
        }
        let mut client_flows = None;
        let mut streamed_clients = Vec::new();
        if let Some(mut streams) = streams {
            // The client legs were classified for the interface the first NAT flows came on; it must be
            // the one chosen now (else read again without streaming).
            let chosen = nat_iface.filter(|i| *i != 0).and_then(|i| iface_names.get(&i).cloned());
            match streams.nat_iface() {
                Some(provisional) if *provisional != chosen => return Err(AnalyzeError::StreamOrder),
                Some(_) => {}
                None => streams.decide(chosen),
            }
            if !streams.usable() || !legs.clients.is_empty() {
                return Err(AnalyzeError::StreamOrder);
            }
            let mut flows = ClientAgg::default();
            for lane in streams.clients {
                unlisted.merge(lane.unlisted);
                if !unnamed.is_empty() {
                    streamed_clients.extend(lane.owners.keys().copied());
                }
                lane.trackers.into_iter().for_each(|t| flows.merge(t.finish()));
            }
            client_flows = Some(flows);
            for ((name, d), stream) in streams.dests.streams {
                let i = match &name {
                    None => 0,
                    Some(n) => self.ifaces.get(n.as_str()).copied().unwrap_or(u32::MAX),
                };
                if !nat_iface.is_none_or(|n| n == i || i == 0) {
                    continue;
                }
                let agg = legs.dests.entry(d).or_default();
                if !agg.flows.is_empty() || agg.stream.is_some() || agg.kept.is_some() {
                    return Err(AnalyzeError::StreamOrder);
                }
                match stream {
                    // A destination seen a few times keeps its records: the reference path reads them.
                    Feed::Few(kept) => agg.kept = Some(kept),
                    Feed::Stream(stream) => agg.stream = Some(stream),
                }
            }
        }
        Ok(Gathered {
            counts: self.counts,
            nat_iface,
            nat_addrs,
            iface_names,
            internal,
            notes,
            other_nats,
            legs,
            t_min: self.t_min,
            t_max: self.t_max,
            any_pkt_dst: self.any_pkt_dst,
            from_client_ifaces,
            client_flows,
            unlisted,
            unnamed,
            streamed_clients,
            egress_elsewhere,
        })
    }
}

/// Adds `n` records sent out of the VPC from NAT address `a` to an interface's counts.
#[inline(always)]
fn count_egress(counts: &mut Vec<(IpAddr, u64)>, a: IpAddr, n: u64) {
    match counts.iter_mut().find(|(b, _)| *b == a) {
        Some((_, m)) => *m += n,
        None => counts.push((a, n)),
    }
}

/// The room to make for the next part's records of a kind (a destination's flows, an interface's
/// client records) when the last part took `len`: a little more, when they were many, else none.
/// Parts are alike in size; grown from nothing by doubling, each part's buffers were copied at every
/// doubling and a third empty on average. The room is made when the next part's first record
/// comes, so that a destination or an interface no longer seen holds nothing.
pub(super) fn next_part(len: usize) -> usize {
    if len < 1024 { 0 } else { len + len / 8 }
}

/// Client-side records of one interface (`None`: no interface IDs), classified as if it is the NAT
/// gateway's (`true`) or not.
type ClientGroup = (Option<String>, bool, Vec<(ClientKey, ClientRec)>);

/// NAT → destination records of one interface and destination, in the order they came.
type DestGroup = (Option<String>, Destination, Vec<NatFlowObs>);

/// The records of one part of the input (a chunk of a file, a gzip file) that stream, in the order
/// they came, by interface (`None`: the format has no interface ID): NAT → destination records by
/// destination, and client-side records as classified for the interface being the NAT gateway's or
/// not.
#[derive(Debug, Default)]
pub struct NatFlows {
    nat: Vec<DestGroup>,
    clients: Vec<ClientGroup>,
}

impl NatFlows {
    /// Splits the part into one share per lane of streams that have `client_lanes` client lanes
    /// ([`FlowStreams::into_lanes`], same order): the destinations' share, then each client lane's.
    /// Run it on the thread that parsed the part: it is a pass over the part's client records.
    pub fn into_lanes(self, client_lanes: usize) -> Vec<LaneFlows> {
        let n = client_lanes.max(1);
        let busiest = busiest(&self.nat);
        let mut shares: Vec<Vec<ClientGroup>> = (0..n).map(|_| Vec::new()).collect();
        for (iface, on_nat, recs) in self.clients {
            if n == 1 {
                shares[0].push((iface, on_nat, recs));
                continue;
            }
            let mut split: Vec<Vec<(ClientKey, ClientRec)>> = (0..n).map(|_| Vec::new()).collect();
            for kr in recs {
                split[lane_of(&kr.0, n)].push(kr);
            }
            for (share, recs) in shares.iter_mut().zip(split) {
                if !recs.is_empty() {
                    share.push((iface.clone(), on_nat, recs));
                }
            }
        }
        let mut out = vec![LaneFlows(Share::Dests(self.nat))];
        out.extend(shares.into_iter().map(|groups| LaneFlows(Share::Clients { busiest: busiest.clone(), groups })));
        out
    }
}

/// The interface with the most NAT → destination records of a part (ties: the least ID), if any:
/// the NAT gateway's, as streams not told it take it.
fn busiest(nat: &[DestGroup]) -> Option<Option<String>> {
    let mut counts: HashMap<&Option<String>, usize> = HashMap::default();
    for (iface, _, obs) in nat {
        *counts.entry(iface).or_default() += obs.len();
    }
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0))).map(|(k, _)| k.clone())
}

/// The client lane of a 5-tuple, by its client address and port: spreads the records evenly even
/// when one client makes most of them.
fn lane_of(k: &ClientKey, lanes: usize) -> usize {
    let address = match k.client {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ (v >> 64) as u64
        }
    };
    // Fibonacci hashing: the product's top bits depend on every bit of the key.
    let h = ((address << 16) ^ u64::from(k.client_port)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (((h >> 32) * lanes as u64) >> 32) as usize
}

/// One lane's share of a part of the input ([`NatFlows::into_lanes`]).
#[derive(Debug)]
pub struct LaneFlows(Share);

#[derive(Debug)]
enum Share {
    Dests(Vec<DestGroup>),
    /// With the part's busiest interface, for lanes that must decide the NAT gateway's.
    Clients {
        busiest: Option<Option<String>>,
        groups: Vec<ClientGroup>,
    },
}

/// The streaming estimates of every (interface, destination), fed with [`NatFlows`] in input order:
/// the parts of the input must come in time order, and the records of each NAT port within them
/// (flow logs are written that way; a part that breaks it makes the streams
/// [`usable`](FlowStreams::usable) no more, and the records must then be analysed in memory).
///
/// Client-side records stream too (module `clients`), classified for the interface the first NAT →
/// destination records came on (or the configured one; until then they wait), one tracker per
/// interface, so that files of interfaces with no client in common may cover the same time one after
/// the other. The reference joins a client's records across interfaces, and matches a connection's flows on the
/// clients' own interfaces with those on the NAT interface, so a client address whose flows show on
/// two interfaces has all of them in the tracker of the first: they must then come in time order
/// together (the CLI interleaves files of one period by time; within a part, the interfaces'
/// records are merged by time), or the streams refuse. AWS gives an address to one interface, so
/// that happens when the clients' own interfaces are read with the NAT gateway's.
///
/// The streams are lanes that share no state: the destinations', and one or more client lanes, each
/// with the client flows of a share of the 5-tuples. Split into [`StreamLane`]s, they can be fed on
/// different threads, each lane in input order ([`NatFlows::into_lanes`], [`StreamLane::feed`]), and
/// joined again; [`feed`](FlowStreams::feed) feeds every lane on the caller's thread.
#[derive(Debug)]
pub struct FlowStreams {
    dests: DestLane,
    clients: Vec<ClientLane>,
}

/// The destinations' streams.
#[derive(Debug, Default)]
struct DestLane {
    streams: HashMap<(Option<String>, Destination), Feed>,
    /// Records a destination keeps before it streams, when set
    /// ([`keeping_records`](FlowStreams::keeping_records)); else [`Kept::limit`].
    fixed: Option<usize>,
}

/// The client flows of a share of the 5-tuples.
#[derive(Debug, Default)]
struct ClientLane {
    /// One tracker per interface, in order of appearance.
    trackers: Vec<ClientTracker>,
    ifaces: HashMap<Option<String>, usize>,
    /// The tracker of each client address: the first whose interface showed it. Its records on
    /// other interfaces go there too, since the reference joins them into the same flows, and
    /// matches a connection's flows on the NAT interface with those on the client's own.
    owners: HashMap<IpAddr, usize>,
    /// The NAT gateway's interface as the streams take it, once known (`Some(None)`: no interface IDs).
    nat_iface: Option<Option<String>>,
    /// Client records that came before it was known.
    waiting: Vec<ClientGroup>,
    waiting_records: usize,
    /// How many records may wait.
    max_waiting: usize,
    /// Too many records waited: the streams give up.
    overflow: bool,
    /// Counted from the NAT interface's records as classified for a client's own, which it leaves
    /// out.
    unlisted: Unlisted,
}

/// One lane of [`FlowStreams`] ([`FlowStreams::into_lanes`]).
#[derive(Debug)]
pub struct StreamLane(Lane);

#[derive(Debug)]
enum Lane {
    Dests(DestLane),
    Clients(ClientLane),
}

/// One destination's NAT flows as they stream in: its records while they are few (a destination seen a
/// few times then costs those records, not the pages of per-second counts the seconds they touch would
/// take; the reference path reads them at the end, in any order), its streaming estimate after.
#[derive(Debug)]
enum Feed {
    Few(Kept),
    Stream(Box<DestStream>),
}

/// A quiet destination's NAT → destination records, as kept until it streams or the data ends: 16
/// bytes each instead of the 40 of a [`NatFlowObs`] (a thousand destinations may keep thousands
/// each).
#[derive(Debug, Clone, Default)]
pub(super) struct Kept {
    /// The NAT addresses, in order of appearance (256 at most).
    addrs: Vec<IpAddr>,
    records: Vec<KeptObs>,
    /// Records that do not fit a [`KeptObs`] (a time past 2106, a 257th NAT address), as they are.
    others: Vec<NatFlowObs>,
    /// The pages of [`PAGE_SECS`] seconds its records started in, counted as time moves on (the
    /// latest page, and how many): about those a stream would touch. Late records do not count, so
    /// a destination out of order streams sooner, and a stray timestamp counts as one page.
    latest_page: Option<u64>,
    pages: usize,
}

/// One kept record: times in 32 bits (until 2106), the NAT address by its place in [`Kept::addrs`].
#[derive(Debug, Clone, Copy)]
struct KeptObs {
    start: u32,
    end: u32,
    nat_port: u16,
    flags: u16,
    addr: u8,
    has_flags: bool,
}

impl Kept {
    /// Adds a record.
    fn push(&mut self, o: &NatFlowObs) {
        let page = o.start / PAGE_SECS;
        if self.latest_page.is_none_or(|p| page > p) {
            self.latest_page = Some(page);
            self.pages += 1;
        }
        if !self.fit(o) {
            self.others.push(*o);
        }
    }

    /// Adds a record that fits a [`KeptObs`]; false (and nothing added) when it does not.
    fn fit(&mut self, o: &NatFlowObs) -> bool {
        let (Ok(start), Ok(end)) = (u32::try_from(o.start), u32::try_from(o.end)) else { return false };
        let addr = match self.addrs.iter().position(|a| *a == o.nat_address) {
            Some(i) => i,
            None if self.addrs.len() <= usize::from(u8::MAX) => {
                self.addrs.push(o.nat_address);
                self.addrs.len() - 1
            }
            None => return false,
        };
        let (flags, has_flags) = o.tcp_flags.map_or((0, false), |f| (f.0, true));
        self.records.push(KeptObs { start, end, nat_port: o.nat_port, flags, addr: addr as u8, has_flags });
        true
    }

    fn len(&self) -> usize {
        self.records.len() + self.others.len()
    }

    /// The records a destination keeps before it streams: [`FEW`], or more when they are sparse in
    /// time ([`KEPT_PER_PAGE`] per page seen, [`KEPT_MAX`] at most).
    fn limit(&self) -> usize {
        FEW.max(self.pages.saturating_mul(KEPT_PER_PAGE).min(KEPT_MAX))
    }

    /// Sorts the records that fit as [`estimate::sort_flows`] sorts them.
    pub(super) fn sort(&mut self) {
        let addrs = &self.addrs;
        self.records
            .sort_by_key(|k| (addrs[usize::from(k.addr)], k.nat_port, k.start, k.end, k.has_flags.then_some(k.flags)));
    }

    /// The records, as the estimators take them (those that did not fit last).
    pub(super) fn records(&self) -> Vec<NatFlowObs> {
        let obs = |k: &KeptObs| NatFlowObs {
            nat_address: self.addrs[usize::from(k.addr)],
            nat_port: k.nat_port,
            start: u64::from(k.start),
            end: u64::from(k.end),
            tcp_flags: k.has_flags.then_some(TcpFlags(k.flags)),
        };
        self.records.iter().map(obs).chain(self.others.iter().copied()).collect()
    }
}

/// Records a destination keeps ([`Kept`], 64 KiB of them) before it streams. A quiet destination
/// seen over a long span touches a page of per-second counts or two per connection (twice: the
/// estimate's and the reuse fit's), so it takes several times more as a stream than as its records:
/// measured on synthetic NAT-interface logs of 1,000 destinations over 24 hours (1,000 connections
/// each), 418 MiB peak streaming after 64 records, 78 MiB after 4,096 records of 40 bytes, 53 MiB
/// after 4,096 of 16 bytes, and faster. A busy destination passes 4,096 records soon (and
/// [`KEPT_PER_PAGE`] per 64 s it is seen in, at most [`KEPT_MAX`]), and streams from then on:
/// memory is bounded per destination, not by records.
const FEW: usize = 4096;

/// Records per page of [`PAGE_SECS`] (64) seconds it is seen in a destination keeps before it
/// streams, past [`FEW`]: a stream's per-second counts take about 350 bytes per 64 seconds of a
/// sparse destination (the seconds its connections start and end in, for the estimate and the reuse
/// fit, in lists), a kept record 16. Measured on synthetic NAT-interface logs of 100 destinations ×
/// 10,000 connections (one NAT record each) over 72 hours: 163 MiB peak streaming after 4,096
/// records, 43–46 MiB keeping them; over 24 hours, 53–61 and 39–40 MiB.
const KEPT_PER_PAGE: usize = 24;

/// The most records a destination keeps (1 MiB of them): past that it streams, however sparse.
const KEPT_MAX: usize = 1 << 16;

/// Client records that may wait for the NAT gateway's interface to show (a part or two of the input),
/// over all client lanes.
const MAX_WAITING: usize = 1 << 20;

impl FlowStreams {
    /// Streams for an analysis whose NAT interface is configured as `nat_interface` (`None`: the
    /// interface of the first NAT → destination records), with `client_lanes` client lanes (at
    /// least one).
    pub fn new(nat_interface: Option<&str>, client_lanes: usize) -> FlowStreams {
        let n = client_lanes.max(1);
        let lane = || ClientLane {
            nat_iface: nat_interface.map(|i| Some(i.to_owned())),
            max_waiting: MAX_WAITING / n,
            ..ClientLane::default()
        };
        FlowStreams { dests: DestLane::default(), clients: (0..n).map(|_| lane()).collect() }
    }

    /// The streams, with destinations that keep at most `records` records before they stream (unless
    /// set: 4,096, or 24 per 64 s of data a destination is seen in, up to 65,536): tests set few, or
    /// none, to stream small inputs.
    pub fn keeping_records(mut self, records: usize) -> FlowStreams {
        self.dests.fixed = Some(records);
        self
    }

    /// Its client lanes, for [`NatFlows::into_lanes`].
    pub fn client_lanes(&self) -> usize {
        self.clients.len()
    }

    /// Adds the next part's records, to every lane.
    pub fn feed(&mut self, flows: NatFlows) {
        let mut shares = flows.into_lanes(self.clients.len()).into_iter();
        if let Some(LaneFlows(Share::Dests(nat))) = shares.next() {
            self.dests.feed(nat);
        }
        for (lane, share) in self.clients.iter_mut().zip(shares) {
            if let LaneFlows(Share::Clients { busiest, groups }) = share {
                lane.feed(busiest, groups);
            }
        }
    }

    /// The lanes, to feed apart: the destinations' first, then the client lanes.
    pub fn into_lanes(self) -> Vec<StreamLane> {
        let mut lanes = vec![StreamLane(Lane::Dests(self.dests))];
        lanes.extend(self.clients.into_iter().map(|c| StreamLane(Lane::Clients(c))));
        lanes
    }

    /// The streams again, from all the lanes of one [`into_lanes`](FlowStreams::into_lanes), in any
    /// order.
    pub fn from_lanes(lanes: Vec<StreamLane>) -> FlowStreams {
        let mut dests = DestLane::default();
        let mut clients = Vec::new();
        for lane in lanes {
            match lane.0 {
                Lane::Dests(d) => {
                    dests.fixed = d.fixed;
                    dests.streams.extend(d.streams);
                }
                Lane::Clients(c) => clients.push(c),
            }
        }
        FlowStreams { dests, clients }
    }

    /// The NAT gateway's interface as the client lanes took it (they all decide alike).
    fn nat_iface(&self) -> Option<&Option<String>> {
        self.clients.first().and_then(|c| c.nat_iface.as_ref())
    }

    /// Takes `iface` as the NAT gateway's in every client lane.
    fn decide(&mut self, iface: Option<String>) {
        for lane in &mut self.clients {
            lane.decide(iface.clone());
        }
    }

    /// False when the streams cannot give the reference's report: records came out of order on a
    /// NAT port, too late for a settled NAT port or for their interface's client flows, one
    /// destination's records came both with and without interface IDs, or a client address on two
    /// interfaces.
    pub fn usable(&self) -> bool {
        let named: FxHashSet<&Destination> =
            self.dests.streams.keys().filter(|(name, _)| name.is_some()).map(|(_, d)| d).collect();
        let mixed = self.dests.streams.keys().any(|(name, d)| name.is_none() && named.contains(d));
        !mixed
            && self.clients.iter().all(|c| !c.overflow && !c.trackers.iter().any(ClientTracker::disordered))
            && !self.dests.streams.values().any(|f| matches!(f, Feed::Stream(s) if s.disordered()))
    }
}

impl StreamLane {
    /// Adds this lane's share of the next part ([`NatFlows::into_lanes`]); a share of another lane
    /// is ignored.
    pub fn feed(&mut self, share: LaneFlows) {
        match (&mut self.0, share.0) {
            (Lane::Dests(d), Share::Dests(nat)) => d.feed(nat),
            (Lane::Clients(c), Share::Clients { busiest, groups }) => c.feed(busiest, groups),
            _ => {}
        }
    }
}

impl DestLane {
    fn feed(&mut self, nat: Vec<DestGroup>) {
        for (iface, d, obs) in nat {
            let feed = self.streams.entry((iface, d)).or_insert_with(|| Feed::Few(Kept::default()));
            if let Feed::Few(kept) = feed {
                obs.iter().for_each(|o| kept.push(o));
                if kept.len() <= self.fixed.unwrap_or_else(|| kept.limit()) {
                    continue;
                }
                // (With records that did not fit, out of their place: the stream refuses those anyway.)
                let mut stream = DestStream::new(d.protocol);
                stream.push_all(&kept.records());
                *feed = Feed::Stream(Box::new(stream));
            } else if let Feed::Stream(stream) = feed {
                stream.push_all(&obs);
            }
        }
    }
}

impl ClientLane {
    /// Adds this lane's client records of the next part, whose busiest interface is `busiest`.
    fn feed(&mut self, busiest: Option<Option<String>>, groups: Vec<ClientGroup>) {
        if self.nat_iface.is_none()
            && let Some(iface) = busiest
        {
            self.decide(iface);
        }
        if self.nat_iface.is_some() {
            self.feed_clients(groups);
        } else {
            self.waiting_records += groups.iter().map(|c| c.2.len()).sum::<usize>();
            self.overflow |= self.waiting_records > self.max_waiting;
            if !self.overflow {
                self.waiting.extend(groups);
            }
        }
    }

    /// Takes `iface` as the NAT gateway's and streams the client records that waited for it.
    fn decide(&mut self, iface: Option<String>) {
        self.nat_iface = Some(iface);
        let waiting = std::mem::take(&mut self.waiting);
        self.feed_clients(waiting);
    }

    fn feed_clients(&mut self, groups: Vec<ClientGroup>) {
        let Some(nat) = &self.nat_iface else { return };
        // Each interface's records this lane takes, with the tracker of the interface.
        let mut taken: Vec<(usize, Vec<(ClientKey, ClientRec)>)> = Vec::new();
        for (iface, on_nat, recs) in groups {
            // Records without an interface ID count as the NAT gateway's, as in the reference.
            if on_nat != (iface.is_none() || iface == *nat) {
                if iface.is_some() && iface == *nat {
                    recs.iter().for_each(|(k, r)| self.unlisted.add(k, r.request));
                }
                continue;
            }
            let here = match self.ifaces.get(&iface) {
                Some(&t) => t,
                None => {
                    self.trackers.push(ClientTracker::default());
                    self.ifaces.insert(iface, self.trackers.len() - 1);
                    self.trackers.len() - 1
                }
            };
            taken.push((here, recs));
        }
        // A part holds each interface's records apart, each in the order they came; a client's
        // records on several interfaces go to one tracker, in time order: merged by start.
        if let [(here, recs)] = &taken[..] {
            recs.iter().for_each(|(k, r)| self.push(*here, k, r));
            return;
        }
        let mut next: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize, usize)>> = taken
            .iter()
            .enumerate()
            .filter_map(|(g, (_, recs))| Some(std::cmp::Reverse((recs.first()?.1.start, g, 0))))
            .collect();
        while let Some(std::cmp::Reverse((_, g, at))) = next.pop() {
            let (here, recs) = &taken[g];
            let (k, r) = &recs[at];
            self.push(*here, k, r);
            if let Some((_, r)) = recs.get(at + 1) {
                next.push(std::cmp::Reverse((r.start, g, at + 1)));
            }
        }
    }

    /// Adds a client record logged on the interface of tracker `here`.
    #[inline]
    fn push(&mut self, here: usize, k: &ClientKey, r: &ClientRec) {
        let (client, taken) = self.trackers[here].client(k);
        if taken {
            self.trackers[here].push(client, *k, r);
            return;
        }
        // A client new to this interface's tracker: its flows belong to the tracker that saw it
        // first, if another did (AWS gives an address to one interface, but the NAT gateway's
        // shows its clients' connections too, and the flows of one connection on both must meet to
        // match).
        let owner = *self.owners.entry(k.client).or_insert(here);
        let tracker = &mut self.trackers[owner];
        let client = if owner == here { client } else { tracker.client(k).0 };
        tracker.own(client);
        tracker.push(client, *k, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Protocol;

    fn client_record(client: &str, port: u16, host: &str) -> (ClientKey, ClientRec) {
        let key = ClientKey {
            client: client.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            client_port: port,
            host: host.parse().ok(),
            host_port: 443,
            proto: Protocol::TCP,
        };
        (key, ClientRec { start: 1_780_000_000, end: 1_780_000_030, bytes: 100, request: true, nat_side: true })
    }

    /// A quiet destination's records are kept in 16 bytes each and given back as they came; those
    /// that do not fit are kept as they are.
    #[test]
    fn kept_records_come_back_as_they_came() {
        assert_eq!(size_of::<KeptObs>(), 16);
        let obs = |a: u8, start: u64, flags: Option<u16>| NatFlowObs {
            nat_address: IpAddr::from([10, 0, 0, a]),
            nat_port: 1024 + u16::from(a),
            start,
            end: start + 59,
            tcp_flags: flags.map(TcpFlags),
        };
        let records =
            vec![obs(7, 1_780_000_000, Some(0x1ff)), obs(8, 1_780_000_060, None), obs(7, 1_780_000_001, Some(0))];
        let mut kept = Kept::default();
        records.iter().for_each(|o| kept.push(o));
        assert_eq!(kept.records(), records);
        let mut sorted = records.clone();
        estimate::sort_flows(&mut sorted);
        kept.sort();
        assert_eq!(kept.records(), sorted);
        let late = obs(7, u64::from(u32::MAX) + 1, None);
        assert!(!kept.fit(&late));
        kept.push(&late);
        (0..=255).for_each(|a| assert!(kept.fit(&obs(a, 1_780_000_000, None))));
        let other = NatFlowObs { nat_address: IpAddr::from([10, 0, 1, 0]), ..records[0] };
        assert!(!kept.fit(&other));
        kept.push(&other);
        assert_eq!(kept.len(), 3 + 256 + 2);
        assert_eq!(kept.records()[3 + 256..], [late, other]);
    }

    /// Room for a part's records is made when its first record comes, as much as the last part took
    /// (a little more) when that was many: a destination or an interface the next part does not
    /// show holds nothing, and one seen a few times makes no room.
    #[test]
    fn room_for_a_part_is_made_when_its_first_record_comes() {
        let line = |src: &str, dst: &str, sport: u32, dport: u32| {
            format!("2 1 eni-0a {src} {dst} {sport} {dport} 6 1 100 1780000000 1780000001 ACCEPT OK\n")
        };
        let part = |n: u32, first: u32| -> String {
            (first..first + n)
                .flat_map(|p| [line("10.0.0.7", "52.216.1.2", p, 443), line("10.0.1.9", "10.0.0.7", p, 443)])
                .chain([line("10.0.0.7", "52.216.9.9", first, 443)])
                .collect()
        };
        let config = AnalyzeConfig {
            nat_addresses: vec![[10, 0, 0, 7].into()],
            vpc_cidrs: CidrSet::new(["10.0.0.0/16".parse().unwrap_or_else(|_| unreachable!())]),
            ..AnalyzeConfig::default()
        };
        let analyzer = crate::analyze::Analyzer::new(config);
        let mut shard = analyzer.fast_shard().unwrap_or_else(|| unreachable!());
        let push = |shard: &mut FastShard, text: &str| {
            crate::flowlog::parse_all(text.as_bytes(), crate::flowlog::LogFormat::default(), false, &mut |r| {
                shard.push(r)
            });
        };
        let busy = Destination { address: [52, 216, 1, 2].into(), port: 443, protocol: Protocol::TCP };
        let quiet = Destination { address: [52, 216, 9, 9].into(), port: 443, protocol: Protocol::TCP };
        push(&mut shard, &part(2000, 10_000));
        let taken = shard.take_flows();
        assert_eq!(taken.nat.iter().map(|g| g.2.len()).sum::<usize>(), 2001);
        assert_eq!(taken.clients.iter().map(|g| g.2.len()).sum::<usize>(), 2000);
        let legs = &shard.per_iface[1].on_nat;
        assert_eq!((legs.dests[&busy].flows.capacity(), legs.dests[&busy].room), (0, 2250));
        assert_eq!((legs.dests[&quiet].flows.capacity(), legs.dests[&quiet].room), (0, 0));
        assert_eq!((legs.clients.capacity(), legs.clients_room), (0, 2250));
        // The next part: one record of the busy destination and one client's.
        push(&mut shard, &part(1, 20_000).lines().take(2).map(|l| format!("{l}\n")).collect::<String>());
        let legs = &shard.per_iface[1].on_nat;
        assert!(legs.dests[&busy].flows.capacity() >= 2250);
        assert_eq!(legs.dests[&quiet].flows.capacity(), 0);
        assert!(legs.clients.capacity() >= 2250);
    }

    /// One client address whose flows show on the NAT gateway's interface and on its own: its records
    /// on both go to one tracker, the first interface's, whichever lanes its 5-tuples fall in. In
    /// time order the streams take them (within a part, the interfaces' records are merged by time);
    /// a record of a later part too late for that tracker makes them refuse, though it is the first
    /// on its own interface.
    #[test]
    fn a_clients_records_on_two_interfaces_share_one_tracker() {
        let nat = Some("eni-nat".to_owned());
        let own = Some("eni-own".to_owned());
        for lanes in [1, 2, 3, 8] {
            // Two of the client's 5-tuples in different lanes (the same one when there is one lane).
            let a = client_record("10.0.1.9", 40_000, "52.216.1.2");
            let other = (40_001..50_000)
                .find(|p| lanes == 1 || lane_of(&client_record("10.0.1.9", *p, "").0, lanes) != lane_of(&a.0, lanes));
            let b = client_record("10.0.1.9", other.unwrap_or(40_001), "52.216.1.2");
            assert!(lanes == 1 || lane_of(&a.0, lanes) != lane_of(&b.0, lanes), "{lanes} lanes");
            // The same 5-tuple on the client's own interface, `at` seconds after the NAT's record, in
            // the same part or the next.
            let flows = |at: i64, apart: bool| {
                let mut later = a;
                later.1.start = a.1.start.saturating_add_signed(at);
                later.1.end = a.1.end.saturating_add_signed(at);
                let (first, second) = ((nat.clone(), true, vec![a, b]), (own.clone(), false, vec![later]));
                let part = |clients| NatFlows { nat: Vec::new(), clients };
                if apart { vec![part(vec![first]), part(vec![second])] } else { vec![part(vec![first, second])] }
            };
            for (at, apart, usable) in [(5, true, true), (5, false, true), (-1_000, false, true), (-1_000, true, false)]
            {
                let mut whole = FlowStreams::new(Some("eni-nat"), lanes);
                flows(at, apart).into_iter().for_each(|f| whole.feed(f));
                assert_eq!(whole.usable(), usable, "fed whole, {lanes} lanes, {at} s, apart {apart}");
                // Lane by lane, joined again.
                let mut split = FlowStreams::new(Some("eni-nat"), lanes).into_lanes();
                for part in flows(at, apart) {
                    for (lane, share) in split.iter_mut().zip(part.into_lanes(lanes)) {
                        lane.feed(share);
                    }
                }
                let joined = FlowStreams::from_lanes(split);
                assert_eq!(joined.usable(), usable, "lane by lane, {lanes} lanes, {at} s");
                // One tracker of each lane holds the client's records: the NAT interface's, unless the
                // own interface's record came first in time.
                let holders = joined.clients.iter().flat_map(|c| &c.trackers).filter(|t| t.open_flows() > 0).count();
                assert_eq!(holders, if lanes == 1 { 1 } else { 2 }, "{lanes} lanes, {at} s");
                for c in &joined.clients {
                    let owners: Vec<usize> = c.owners.values().copied().collect();
                    let first = usize::from(at < 0 && !apart && c.trackers.len() > 1);
                    assert!(owners.iter().all(|o| *o == first), "{lanes} lanes, {at} s: {owners:?}");
                }
            }
        }
    }

    /// One client's 5-tuples spread evenly over the client lanes (an incident is often one client).
    #[test]
    fn one_clients_flows_spread_over_the_lanes() {
        for lanes in [2, 3, 7] {
            let mut counts = vec![0usize; lanes];
            for port in 32_768..61_000 {
                counts[lane_of(&client_record("10.0.1.9", port, "52.216.1.2").0, lanes)] += 1;
            }
            let even = (61_000 - 32_768) / lanes;
            assert!(counts.iter().all(|c| c.abs_diff(even) < even / 20), "{lanes} lanes: {counts:?}");
        }
    }

    /// A destination keeps its records past [`FEW`] while they are sparse in time, and streams once
    /// they are dense; with a fixed number (`keeping_records`), the pages seen do not count.
    #[test]
    fn sparse_destinations_keep_their_records_longer() {
        let d = Destination { address: IpAddr::from([52, 0, 0, 1]), port: 443, protocol: Protocol::TCP };
        let obs = |n: u64, every: u64| -> Vec<NatFlowObs> {
            (0..n)
                .map(|i| NatFlowObs {
                    nat_address: IpAddr::from([10, 0, 0, 142]),
                    nat_port: 1024 + (i % 60_000) as u16,
                    start: 1_780_000_000 + i * every,
                    end: 1_780_000_000 + i * every + 30,
                    tcp_flags: None,
                })
                .collect()
        };
        let streams = |lane: &DestLane| lane.streams.values().filter(|f| matches!(f, Feed::Stream(_))).count();
        // 6,000 records, one every 30 s (2 a page: 6,000 < 24 × 2,813 pages): kept.
        let mut lane = DestLane::default();
        lane.feed(vec![(None, d, obs(6_000, 30))]);
        assert_eq!(streams(&lane), 0);
        // One a second (64 a page): past 4,096 and 24 a page, it streams.
        let mut lane = DestLane::default();
        lane.feed(vec![(None, d, obs(6_000, 1))]);
        assert_eq!(streams(&lane), 1);
        // A stray timestamp (1970) first counts as one page: dense records still stream.
        let mut lane = DestLane::default();
        let mut stray = obs(1, 1);
        stray[0].start = 0;
        lane.feed(vec![(None, d, stray), (None, d, obs(6_000, 1))]);
        assert_eq!(streams(&lane), 1);
        // However sparse, past 65,536 records a destination streams.
        let mut lane = DestLane::default();
        lane.feed(vec![(None, d, obs(KEPT_MAX as u64, 30))]);
        assert_eq!(streams(&lane), 0);
        lane.feed(vec![(None, d, obs(1, 30))]);
        assert_eq!(streams(&lane), 1);
        // A fixed number: the sparse records stream too.
        let mut lane = FlowStreams::new(None, 1).keeping_records(FEW).dests;
        lane.feed(vec![(None, d, obs(6_000, 30))]);
        assert_eq!(streams(&lane), 1);
    }
}
