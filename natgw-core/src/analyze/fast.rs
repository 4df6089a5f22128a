//! The fast path of the local analysis: when the NAT gateway's addresses are known up front, each
//! parsing thread classifies its records into aggregated legs at once ([`FastShard`]) instead of
//! keeping every record for a serial pass at the end. Only what the estimator needs per record (the
//! NAT → destination flows) is kept; answers and client flows are folded into maps.
//!
//! Which interface is the NAT gateway's is decided only at the end (the most common one among the
//! records that involve its addresses, unless given), so each interface's records are classified both
//! ways — as the NAT gateway's and as a client's — and the right half is kept then. A record only
//! ever lands in one half in practice (legs on the NAT interface involve a NAT address, client legs do
//! not), so this costs no memory.
//!
//! The result is the reference path's report, exactly: the same classification code ([`Legs::add`]),
//! order-independent merges, and the same steps 3–6 ([`Analysis::report`]). The differential tests
//! in natgw-testkit (`tests/fast_path.rs`) hold the two paths equal.

use std::net::IpAddr;

use rustc_hash::FxHashMap as HashMap;

use super::clients::{ClientKey, ClientRec, ClientTracker};
use super::{
    ASSUMED_CIDRS_NOTE, AnalyzeConfig, AnalyzeError, Counts, Gathered, Legs, NatScores, NatSet, Obs, Shard, Sides,
    inferred_note, intern, internal_ranges, nat_not_seen, no_records, observe, remap_ifaces,
};
use crate::estimate::stream::DestStream;
use crate::estimate::{self, NatFlowObs};
use crate::flowlog::Record;
use crate::net::{CidrSet, Destination};

/// The NAT gateway as a first pass found it: its interface (by ID; `None` for records without one)
/// and addresses.
#[derive(Debug, Clone)]
pub(super) struct InferredNat {
    pub(super) iface: Option<String>,
    pub(super) addrs: Vec<IpAddr>,
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

    /// Moves `other`'s evidence into this one (interface numbers remapped).
    pub fn absorb(&mut self, other: NatEvidence) {
        let remap = remap_ifaces(&mut self.ifaces, other.ifaces);
        for ((i, addr), (inside, outside)) in other.scores.0 {
            let e = self.scores.0.entry((remap.get(&i).copied().unwrap_or(0), addr)).or_default();
            e.0 += inside;
            e.1 += outside;
        }
    }

    pub(super) fn infer(&self, only_iface: Option<&str>) -> Option<InferredNat> {
        let only = match only_iface {
            Some(name) => Some(*self.ifaces.get(name)?),
            None => None,
        };
        let (iface, addrs) = self.scores.infer(only)?;
        let name = self.ifaces.iter().find(|(_, v)| **v == iface).map(|(k, _)| k.clone());
        Some(InferredNat { iface: name, addrs })
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
}

impl IfaceLegs {
    fn merge(&mut self, other: IfaceLegs) {
        self.on_nat.merge(other.on_nat);
        self.off_nat.merge(other.off_nat);
        self.kept += other.kept;
        self.touch_nat += other.touch_nat;
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
        }
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
        self.any_pkt_dst |= o.pkt_dst.is_some();
        let i = o.iface as usize;
        if self.per_iface.len() <= i {
            self.per_iface.resize_with(i + 1, IfaceLegs::default);
        }
        let sides = Sides::of(o, &self.nat, &self.internal);
        let legs = &mut self.per_iface[i];
        legs.kept += 1;
        if sides.src_nat || sides.dst_nat {
            legs.touch_nat += 1;
        }
        legs.on_nat.add(o, true, sides, &self.nat, &self.internal);
        // Records without an interface ID count as the NAT gateway's whatever it turns out to be.
        if i != 0 {
            legs.off_nat.add(o, false, sides, &self.nat, &self.internal);
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
                        out.nat.push((name.clone(), d, std::mem::take(&mut agg.flows)));
                    }
                }
            }
            for (on_nat, l) in [(true, &mut legs.on_nat), (false, &mut legs.off_nat)] {
                if !l.clients.is_empty() {
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

    /// Moves `other`'s legs into this shard (interface numbers remapped).
    pub fn absorb(&mut self, other: FastShard) {
        let remap = remap_ifaces(&mut self.ifaces, other.ifaces);
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
            Some(id) => {
                Some(self.ifaces.get(id.as_str()).copied().ok_or_else(|| AnalyzeError::NatNotSeen(id.to_string()))?)
            }
            None => None,
        };
        // The most common interface among the records that involve a NAT address (lowest number on a tie).
        let most_common = self
            .per_iface
            .iter()
            .enumerate()
            .filter(|(_, l)| l.touch_nat > 0)
            .max_by_key(|&(i, l)| (l.touch_nat, std::cmp::Reverse(i)))
            .map(|(i, _)| i as u32);
        let mut notes = Vec::new();
        let (nat_iface, nat_addrs) = match inferred {
            Some(n) if cfg.nat_addresses.is_empty() => {
                let iface = match &n.iface {
                    None => 0,
                    Some(name) => *self.ifaces.get(name.as_str()).ok_or(AnalyzeError::NoNatGateway)?,
                };
                notes.push(inferred_note(&n.addrs, n.iface.as_deref()));
                (Some(iface), n.addrs.clone())
            }
            _ => {
                if most_common.is_none() {
                    return Err(nat_not_seen(&cfg.nat_addresses));
                }
                (want_iface.or(most_common), cfg.nat_addresses.clone())
            }
        };
        if assumed_cidrs {
            notes.push(ASSUMED_CIDRS_NOTE.into());
        }
        let mut legs = Legs::default();
        let mut from_client_ifaces = false;
        for (i, l) in self.per_iface.into_iter().enumerate() {
            let i = i as u32;
            let on_nat = nat_iface.is_none_or(|n| n == i || i == 0);
            from_client_ifaces |= l.kept > 0 && nat_iface.is_some_and(|n| n != i && i != 0);
            legs.merge(if on_nat { l.on_nat } else { l.off_nat });
        }
        let mut client_flows = None;
        if let Some(mut streams) = streams {
            // The client legs were classified for the interface the first NAT flows came on; it must be
            // the one chosen now (else read again without streaming).
            let chosen = nat_iface.filter(|i| *i != 0).and_then(|i| iface_names.get(&i).cloned());
            match &streams.nat_iface {
                Some(provisional) if *provisional != chosen => return Err(AnalyzeError::StreamOrder),
                Some(_) => {}
                None => streams.decide(chosen),
            }
            if !streams.usable() || !legs.clients.is_empty() {
                return Err(AnalyzeError::StreamOrder);
            }
            let mut flows = super::clients::ClientAgg::default();
            for tracker in streams.clients.into_values() {
                flows.merge(tracker.finish());
            }
            client_flows = Some(flows);
            for ((name, d), stream) in streams.streams {
                let i = match &name {
                    None => 0,
                    Some(n) => self.ifaces.get(n.as_str()).copied().unwrap_or(u32::MAX),
                };
                if !nat_iface.is_none_or(|n| n == i || i == 0) {
                    continue;
                }
                let agg = legs.dests.entry(d).or_default();
                if !agg.flows.is_empty() || agg.stream.is_some() {
                    return Err(AnalyzeError::StreamOrder);
                }
                match stream {
                    // A destination seen a few times keeps its records: the reference path reads them.
                    Feed::Few(records) => agg.flows = records,
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
            legs,
            t_min: self.t_min,
            t_max: self.t_max,
            any_pkt_dst: self.any_pkt_dst,
            from_client_ifaces,
            client_flows,
        })
    }
}

/// Client-side records of one interface (`None`: no interface IDs), classified as if it is the NAT
/// gateway's (`true`) or not.
type ClientGroup = (Option<String>, bool, Vec<(ClientKey, ClientRec)>);

/// The records of one part of the input (a chunk of a file, a gzip file) that stream, in the order
/// they came, by interface (`None`: the format has no interface ID): NAT → destination records by
/// destination, and client-side records as classified for the interface being the NAT gateway's or
/// not.
#[derive(Debug, Default)]
pub struct NatFlows {
    nat: Vec<(Option<String>, Destination, Vec<NatFlowObs>)>,
    clients: Vec<ClientGroup>,
}

/// The streaming estimates of every (interface, destination), fed with [`NatFlows`] in input order:
/// the parts of the input must come in time order, and the records of each NAT port within them
/// (flow logs are written that way; a part that breaks it makes the streams
/// [`usable`](FlowStreams::usable) no more, and the records must then be analysed in memory).
///
/// Client-side records stream too ([`super::clients`]), classified for the interface the first NAT →
/// destination records came on (or the configured one; until then they wait), one tracker per
/// interface, so that files of different interfaces may cover the same time one after the other. The
/// reference joins a client's records across interfaces; the trackers cannot, so a client address
/// whose flows (named or not) show on two interfaces makes the streams unusable. AWS gives an address
/// to one interface, so that happens only when the NAT interface's format names destinations
/// (pkt-dstaddr) and the clients' own interfaces are read too.
#[derive(Debug, Default)]
pub struct FlowStreams {
    streams: HashMap<(Option<String>, Destination), Feed>,
    clients: HashMap<Option<String>, ClientTracker>,
    /// The interface each (client address, destination named) was seen on.
    client_ifaces: HashMap<(IpAddr, bool), Option<String>>,
    /// A client address showed on two interfaces.
    shared_client: bool,
    /// The NAT gateway's interface as the streams take it, once known (`Some(None)`: no interface IDs).
    nat_iface: Option<Option<String>>,
    /// Client records that came before it was known.
    waiting: Vec<ClientGroup>,
    waiting_records: usize,
    /// Too many records waited: the streams give up.
    overflow: bool,
}

/// One destination's NAT flows as they stream in: its records while they are few (a destination seen a
/// few times then costs those records, not the pages of per-second counts the seconds they touch would
/// take; the reference path reads them at the end, in any order), its streaming estimate after.
#[derive(Debug)]
enum Feed {
    Few(Vec<NatFlowObs>),
    Stream(Box<DestStream>),
}

/// Records a destination keeps as they are before it streams.
const FEW: usize = 64;

/// Client records that may wait for the NAT gateway's interface to show (a part or two of the input).
const MAX_WAITING: usize = 1 << 20;

impl FlowStreams {
    /// Streams for an analysis whose NAT interface is configured as `nat_interface` (`None`: the
    /// interface of the first NAT → destination records).
    pub fn new(nat_interface: Option<&str>) -> FlowStreams {
        FlowStreams { nat_iface: nat_interface.map(|n| Some(n.to_owned())), ..FlowStreams::default() }
    }

    /// Adds the next part's records.
    pub fn feed(&mut self, flows: NatFlows) {
        if self.nat_iface.is_none() {
            // The interface with the most NAT → destination records of this part.
            let mut counts: HashMap<&Option<String>, usize> = HashMap::default();
            for (iface, _, obs) in &flows.nat {
                *counts.entry(iface).or_default() += obs.len();
            }
            let best = counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0))).map(|(k, _)| k.clone());
            if let Some(iface) = best {
                self.decide(iface);
            }
        }
        for (iface, d, obs) in flows.nat {
            let feed = self.streams.entry((iface, d)).or_insert_with(|| Feed::Few(Vec::new()));
            if let Feed::Few(records) = feed {
                records.extend_from_slice(&obs);
                if records.len() <= FEW {
                    continue;
                }
                let mut stream = DestStream::new(d.protocol);
                records.iter().for_each(|o| stream.push(o));
                *feed = Feed::Stream(Box::new(stream));
            } else if let Feed::Stream(stream) = feed {
                obs.iter().for_each(|o| stream.push(o));
            }
        }
        if self.nat_iface.is_some() {
            self.feed_clients(flows.clients);
        } else {
            self.waiting_records += flows.clients.iter().map(|c| c.2.len()).sum::<usize>();
            self.overflow |= self.waiting_records > MAX_WAITING;
            if !self.overflow {
                self.waiting.extend(flows.clients);
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
        for (iface, on_nat, recs) in groups {
            // Records without an interface ID count as the NAT gateway's, as in the reference.
            if on_nat == (iface.is_none() || iface == *nat) {
                let tracker = self.clients.entry(iface.clone()).or_default();
                for (k, r) in &recs {
                    // A client address new to this interface's tracker (in its role) must not be
                    // another interface's.
                    if tracker.push(*k, r) {
                        let owner =
                            self.client_ifaces.entry((k.client, k.host.is_some())).or_insert_with(|| iface.clone());
                        self.shared_client |= *owner != iface;
                    }
                }
            }
        }
    }

    /// False when the streams cannot give the reference's report: records came out of order on a
    /// NAT port or too late for their interface's client flows, one destination's records came both
    /// with and without interface IDs, or a client address on two interfaces.
    pub fn usable(&self) -> bool {
        let named: rustc_hash::FxHashSet<&Destination> =
            self.streams.keys().filter(|(name, _)| name.is_some()).map(|(_, d)| d).collect();
        let mixed = self.streams.keys().any(|(name, d)| name.is_none() && named.contains(d));
        !mixed
            && !self.overflow
            && !self.shared_client
            && !self.clients.values().any(ClientTracker::disordered)
            && !self.streams.values().any(|f| matches!(f, Feed::Stream(s) if s.disordered()))
    }
}
