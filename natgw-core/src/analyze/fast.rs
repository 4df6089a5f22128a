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
        let mut out = Vec::new();
        for (i, legs) in self.per_iface.iter_mut().enumerate() {
            let name =
                (i != 0).then(|| self.ifaces.iter().find(|(_, n)| **n as usize == i).map(|(k, _)| k.clone())).flatten();
            for (d, agg) in legs.on_nat.dests.iter_mut().chain(legs.off_nat.dests.iter_mut()) {
                if !agg.flows.is_empty() {
                    out.push((name.clone(), *d, std::mem::take(&mut agg.flows)));
                }
            }
        }
        NatFlows(out)
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
        if let Some(streams) = streams {
            if !streams.usable() {
                return Err(AnalyzeError::StreamOrder);
            }
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
                agg.stream = Some(Box::new(stream));
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
        })
    }
}

/// NAT → destination records of one part of the input (a chunk of a file, a gzip file), in the order
/// they came, by interface (`None`: the format has no interface ID) and destination.
#[derive(Debug, Default)]
pub struct NatFlows(Vec<(Option<String>, Destination, Vec<NatFlowObs>)>);

/// The streaming estimates of every (interface, destination), fed with [`NatFlows`] in input order:
/// the parts of the input must come in time order, and the records of each NAT port within them
/// (flow logs are written that way; a part that breaks it makes the streams
/// [`usable`](FlowStreams::usable) no more, and the records must then be analysed in memory).
#[derive(Debug, Default)]
pub struct FlowStreams {
    streams: HashMap<(Option<String>, Destination), DestStream>,
}

impl FlowStreams {
    /// Adds the next part's records.
    pub fn feed(&mut self, flows: NatFlows) {
        for (iface, d, obs) in flows.0 {
            let stream = self.streams.entry((iface, d)).or_insert_with(|| DestStream::new(d.protocol));
            for o in &obs {
                stream.push(o);
            }
        }
    }

    /// False when the streams cannot give the reference's estimates: records came out of order on a
    /// NAT port, or one destination's records came both with and without interface IDs.
    pub fn usable(&self) -> bool {
        let mixed = self
            .streams
            .keys()
            .any(|(name, d)| name.is_none() && self.streams.keys().any(|(other, e)| other.is_some() && e == d));
        !mixed && !self.streams.values().any(DestStream::disordered)
    }
}
