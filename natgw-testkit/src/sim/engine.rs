//! The simulation engine: second-by-second arrivals, NAT port accounting, ground truth and metrics.

use std::collections::BTreeMap;
use std::fmt;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Poisson};

use super::scenario::{DestSpec, Lifetime, Range, Scenario, TCP};
use super::truth::{ClientTruth, DestTruth, Metrics, Truth, Verdict};
use super::{
    CLIENT_PORT_MAX, CLIENT_PORT_MIN, IDLE_TIMEOUT_SECS, NAT_PORT_MAX, NAT_PORT_MIN, PORTS_PER_ADDRESS, SimError,
};

/// Longest active duration a lifetime draw may give, seconds.
const MAX_LIFETIME_SECS: u32 = 7200;
/// Bytes of a bare SYN (IPv4 20 + TCP with options 40).
const SYN_BYTES: u64 = 60;
/// TCP flag bits as written in `tcp-flags`.
pub(crate) const FIN: u8 = 1;
pub(crate) const SYN: u8 = 2;
pub(crate) const SYN_ACK: u8 = 18;
/// Seconds after the first SYN at which a TCP client retransmits it.
const SYN_OFFSETS: [u32; 3] = [0, 1, 3];

/// How a connection attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TCP, closed with FIN at its last packet: port free from `l + 1`.
    Closed,
    /// TCP, went quiet after its last packet: port free from `l + 351`.
    Abandoned,
    /// UDP mapping: port free from `l + 351`.
    Udp,
    /// The host never answered (TCP: SYNs at `o, o+1, o+3`, port free from `o + 4`; UDP: one query,
    /// mapping free from `o + 351`).
    Unanswered,
    /// The NAT gateway could not allocate a port: only the client's packets exist.
    Failed,
}

/// One client attempt and, unless it failed, the NAT mapping it got.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conn {
    /// First packet, seconds since the scenario start.
    pub(crate) o: u32,
    /// Last packet, seconds since the scenario start.
    pub(crate) l: u32,
    /// Seed of the packet counts and sizes.
    pub(crate) seed: u32,
    pub(crate) client: u16,
    pub(crate) dest: u16,
    pub(crate) cport: u16,
    /// NAT source port (0 when failed).
    pub(crate) nport: u16,
    /// Index of the NAT address used (0 when failed).
    pub(crate) addr: u8,
    pub(crate) kind: Kind,
}

/// The packets of one direction pair at one packet time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Packet {
    /// Seconds since the scenario start.
    pub(crate) t: u32,
    pub(crate) out_pk: u32,
    pub(crate) out_b: u64,
    pub(crate) in_pk: u32,
    pub(crate) in_b: u64,
    pub(crate) out_fl: u8,
    pub(crate) in_fl: u8,
}

/// Iterator over a connection's packet times inside the simulated span.
#[derive(Debug)]
pub(crate) struct Packets<'a> {
    conn: &'a Conn,
    dest: &'a DestSpec,
    end: u32,
    k: u32,
    n: u32,
}

impl Iterator for Packets<'_> {
    type Item = Packet;

    fn next(&mut self) -> Option<Packet> {
        if self.k >= self.n {
            return None;
        }
        let c = self.conn;
        let d = self.dest;
        let k = self.k;
        self.k += 1;
        let tcp = d.protocol == TCP;
        let syn_only = matches!(c.kind, Kind::Failed | Kind::Unanswered);
        let last = self.k == self.n;
        let t = if syn_only {
            if tcp { c.o + SYN_OFFSETS[k as usize] } else { c.o }
        } else if last {
            c.l
        } else {
            c.o + k * d.packet_interval_secs
        };
        if t >= self.end {
            self.k = self.n;
            return None;
        }
        let h1 = mix(u64::from(c.seed) << 32 | u64::from(k));
        let h2 = mix(h1);
        let mut p = Packet { t, ..Packet::default() };
        if syn_only {
            if tcp {
                p.out_pk = 1;
                p.out_b = SYN_BYTES;
                p.out_fl = SYN;
            } else {
                p.out_pk = pick(d.packets_per_time, h1);
                p.out_b = u64::from(p.out_pk) * u64::from(pick(d.bytes_out, h2));
            }
            return Some(p);
        }
        p.out_pk = pick(d.packets_per_time, h1);
        p.in_pk = pick(d.packets_per_time, h1 >> 32);
        p.out_b = u64::from(p.out_pk) * u64::from(pick(d.bytes_out, h2));
        p.in_b = u64::from(p.in_pk) * u64::from(pick(d.bytes_in, h2 >> 32));
        if tcp {
            if k == 0 {
                p.out_fl |= SYN;
                p.in_fl |= SYN_ACK;
            }
            if last && c.kind == Kind::Closed {
                p.out_fl |= FIN;
                p.in_fl |= FIN;
            }
        }
        Some(p)
    }
}

/// SplitMix64 finalizer: cheap, well-mixed, deterministic.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick(r: Range, h: u64) -> u32 {
    let span = u64::from(r.max - r.min) + 1;
    // `h % span` < span <= u32::MAX + 1, and r.min + that <= r.max.
    r.min + u32::try_from(h % span).unwrap_or(0)
}

/// A simulated NAT gateway: every connection, the truth and the metrics; renders the flow logs on demand.
pub struct Simulation {
    pub(crate) scenario: Scenario,
    pub(crate) conns: Vec<Conn>,
    /// Offset (seconds) of the NAT interface's aggregation windows.
    pub(crate) nat_offset: u32,
    /// Offsets of each client interface's windows.
    pub(crate) client_offsets: Vec<u32>,
    /// Seed of the choice of SKIPDATA windows.
    pub(crate) skip_seed: u64,
    truth: Truth,
    metrics: Metrics,
}

impl fmt::Debug for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("scenario", &self.scenario.name)
            .field("seed", &self.scenario.seed)
            .field("connections", &self.conns.len())
            .field("verdict", &self.truth.verdict)
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// Simulates `scenario`; deterministic for its seed.
    pub fn run(scenario: &Scenario) -> Result<Simulation, SimError> {
        scenario.validate()?;
        let mut engine = Engine::new(scenario);
        engine.run();
        let mut offsets = SmallRng::seed_from_u64(scenario.seed ^ 0x0ff5_e7c0_ffee_0001);
        let nat_offset = offsets.random_range(0..scenario.interval_secs);
        let client_offsets =
            (0..scenario.clients.len()).map(|_| offsets.random_range(0..scenario.interval_secs)).collect();
        let skip_seed = offsets.random();
        let (truth, metrics) = engine.finish();
        Ok(Simulation {
            scenario: scenario.clone(),
            conns: engine.conns,
            nat_offset,
            client_offsets,
            skip_seed,
            truth,
            metrics,
        })
    }

    /// The simulated scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// What really happened.
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// Per-minute NAT gateway metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Number of client attempts simulated (failed ones included).
    pub fn attempt_count(&self) -> usize {
        self.conns.len()
    }

    /// The packet times of a connection that fall inside the simulated span.
    pub(crate) fn packets<'a>(&'a self, c: &'a Conn) -> Packets<'a> {
        packets(&self.scenario, c)
    }
}

/// The packet times of a connection that fall inside the simulated span.
pub(crate) fn packets<'a>(sc: &'a Scenario, c: &'a Conn) -> Packets<'a> {
    let dest = &sc.destinations[usize::from(c.dest)];
    let n = match c.kind {
        Kind::Failed | Kind::Unanswered if dest.protocol == TCP => 3,
        Kind::Failed | Kind::Unanswered => 1,
        _ if c.l > c.o => (c.l - c.o - 1) / dest.packet_interval_secs + 2,
        _ => 1,
    };
    Packets { conn: c, dest, end: sc.duration_secs, k: 0, n }
}

#[derive(Clone, Copy, Debug)]
struct Release {
    dest: u16,
    addr: u8,
    port: u16,
    idle: bool,
}

#[derive(Clone, Copy, Debug)]
struct Retry {
    dest: u16,
    client: u16,
    retry_no: u32,
}

#[derive(Debug)]
enum Sampler {
    Fixed(u32),
    Uniform(u32, u32),
    Exp(Exp<f64>),
    LogNormal(LogNormal<f64>),
}

impl Sampler {
    fn new(l: Lifetime) -> Self {
        match l {
            Lifetime::Fixed { secs } => Sampler::Fixed(secs),
            Lifetime::Uniform { min_secs, max_secs } => Sampler::Uniform(min_secs, max_secs),
            Lifetime::Exponential { mean_secs } => match Exp::new(1.0 / mean_secs) {
                Ok(e) => Sampler::Exp(e),
                Err(_) => Sampler::Fixed(0),
            },
            Lifetime::LogNormal { mean_secs, sigma } => {
                match LogNormal::new(mean_secs.ln() - sigma * sigma / 2.0, sigma) {
                    Ok(d) => Sampler::LogNormal(d),
                    Err(_) => Sampler::Fixed(mean_secs.round() as u32),
                }
            }
        }
    }

    fn sample(&self, rng: &mut SmallRng) -> u32 {
        let secs = match self {
            Sampler::Fixed(s) => *s,
            Sampler::Uniform(a, b) => rng.random_range(*a..=*b),
            Sampler::Exp(e) => round_secs(e.sample(rng)),
            Sampler::LogNormal(d) => round_secs(d.sample(rng)),
        };
        secs.min(MAX_LIFETIME_SECS)
    }
}

fn round_secs(x: f64) -> u32 {
    // Saturating float-to-int cast: NaN gives 0, huge values u32::MAX (capped by the caller).
    x.round() as u32
}

/// Per-destination counters.
#[derive(Debug, Default, Clone)]
struct DestStats {
    attempts: u64,
    failures: u64,
    retries: u64,
    established: u64,
    unanswered: u64,
    tcp_established: u64,
    abandoned: u64,
    first_failure: Option<u32>,
    last_failure: Option<u32>,
    peak: u32,
    peak_at: u32,
    addr_peak: Vec<u32>,
    held_max_min: Vec<u32>,
}

/// Per-second counters inside the simulated span.
#[derive(Debug, Default)]
struct PerSec {
    attempts: Vec<u64>,
    established: Vec<u64>,
    failures: Vec<u64>,
    idle_timeouts: Vec<u64>,
    active: Vec<u64>,
}

struct Engine<'a> {
    sc: &'a Scenario,
    rng: SmallRng,
    n_addr: usize,
    free: Vec<Vec<u16>>,
    held: Vec<u32>,
    releases: Vec<Vec<Release>>,
    retries: Vec<Vec<Retry>>,
    /// Next client port per (destination, client).
    next_cport: Vec<u16>,
    client_attempts: Vec<u64>,
    conns: Vec<Conn>,
    stats: Vec<DestStats>,
    per_sec: PerSec,
    samplers: Vec<Sampler>,
    /// Cumulative client weights per destination.
    weights: Vec<Vec<f64>>,
    first_minute: u64,
}

impl<'a> Engine<'a> {
    fn new(sc: &'a Scenario) -> Self {
        let mut rng = SmallRng::seed_from_u64(sc.seed);
        let n_addr = sc.nat.addresses.len();
        let n_dest = sc.destinations.len();
        let n_client = sc.clients.len();
        let pool: Vec<u16> = (NAT_PORT_MIN..=NAT_PORT_MAX).collect();
        let next_cport = (0..n_dest * n_client).map(|_| rng.random_range(CLIENT_PORT_MIN..=CLIENT_PORT_MAX)).collect();
        let dur = sc.duration_secs as usize;
        let first_minute = sc.start - sc.start % 60;
        let minutes = ((sc.end() - 1 - first_minute) / 60 + 1) as usize;
        let weights = sc
            .destinations
            .iter()
            .map(|d| {
                let mut acc = 0.0;
                (0..d.clients.clients.len())
                    .map(|k| {
                        acc += 1.0 / ((k + 1) as f64).powf(d.clients.zipf_exponent);
                        acc
                    })
                    .collect()
            })
            .collect();
        Engine {
            sc,
            rng,
            n_addr,
            free: vec![pool; n_dest * n_addr],
            held: vec![0; n_dest * n_addr],
            releases: Vec::new(),
            retries: Vec::new(),
            next_cport,
            client_attempts: vec![0; n_dest * n_client],
            conns: Vec::new(),
            stats: vec![
                DestStats { addr_peak: vec![0; n_addr], held_max_min: vec![0; minutes], ..DestStats::default() };
                n_dest
            ],
            per_sec: PerSec {
                attempts: vec![0; dur],
                established: vec![0; dur],
                failures: vec![0; dur],
                idle_timeouts: vec![0; dur],
                active: vec![0; dur],
            },
            samplers: sc.destinations.iter().map(|d| Sampler::new(d.lifetime)).collect(),
            weights,
            first_minute,
        }
    }

    fn run(&mut self) {
        let dur = self.sc.duration_secs;
        let mut poisson: Vec<Option<(f64, Poisson<f64>)>> = vec![None; self.sc.destinations.len()];
        let mut t: u32 = 0;
        while t < dur || (t as usize) < self.releases.len() {
            let ti = t as usize;
            if let Some(rs) = self.releases.get_mut(ti) {
                for r in std::mem::take(rs) {
                    let i = usize::from(r.dest) * self.n_addr + usize::from(r.addr);
                    self.free[i].push(r.port);
                    self.held[i] -= 1;
                    if r.idle && t < dur {
                        self.per_sec.idle_timeouts[ti] += 1;
                    }
                }
            }
            if t < dur {
                if let Some(rs) = self.retries.get_mut(ti) {
                    for r in std::mem::take(rs) {
                        self.attempt(r.dest, r.client, r.retry_no, t);
                    }
                }
                for (d, pois) in poisson.iter_mut().enumerate() {
                    let rate = self.sc.destinations[d].rate_at(t);
                    if rate <= 0.0 {
                        continue;
                    }
                    if pois.as_ref().is_none_or(|(r, _)| *r != rate) {
                        *pois = Poisson::new(rate).ok().map(|p| (rate, p));
                    }
                    let n = match pois {
                        Some((_, p)) => p.sample(&mut self.rng) as u64,
                        None => 0,
                    };
                    let dest = d as u16;
                    for _ in 0..n {
                        let client = self.pick_client(d);
                        self.attempt(dest, client, 0, t);
                    }
                }
            }
            self.account_second(t);
            t += 1;
        }
    }

    fn pick_client(&mut self, d: usize) -> u16 {
        let w = &self.weights[d];
        let total = w.last().copied().unwrap_or(0.0);
        let u = self.rng.random::<f64>() * total;
        let k = w.partition_point(|&x| x <= u).min(w.len() - 1);
        self.sc.destinations[d].clients.clients[k] as u16
    }

    fn choose_addr(&mut self, d: usize) -> Option<usize> {
        let base = d * self.n_addr;
        if self.n_addr == 1 {
            return (self.held[base] < PORTS_PER_ADDRESS).then_some(0);
        }
        let mut order = [0usize, 1, 2, 3, 4, 5, 6, 7];
        let order = &mut order[..self.n_addr];
        for i in (1..order.len()).rev() {
            let j = self.rng.random_range(0..=i);
            order.swap(i, j);
        }
        order.iter().copied().find(|&a| self.held[base + a] < PORTS_PER_ADDRESS)
    }

    fn schedule_release(&mut self, at: u32, r: Release) {
        let at = at as usize;
        if self.releases.len() <= at {
            self.releases.resize_with(at + 1, Vec::new);
        }
        self.releases[at].push(r);
    }

    fn attempt(&mut self, dest: u16, client: u16, retry_no: u32, t: u32) {
        let d = usize::from(dest);
        let spec = &self.sc.destinations[d];
        let tcp = spec.protocol == TCP;
        let ci = d * self.sc.clients.len() + usize::from(client);
        let cport = self.next_cport[ci];
        self.next_cport[ci] = if cport >= CLIENT_PORT_MAX { CLIENT_PORT_MIN } else { cport + 1 };
        self.client_attempts[ci] += 1;
        let st = &mut self.stats[d];
        st.attempts += 1;
        if retry_no > 0 {
            st.retries += 1;
        }
        self.per_sec.attempts[t as usize] += 1;
        let seed = self.rng.random::<u32>();
        let mut conn = Conn { o: t, l: t, seed, client, dest, cport, nport: 0, addr: 0, kind: Kind::Failed };
        let Some(a) = self.choose_addr(d) else {
            let st = &mut self.stats[d];
            st.failures += 1;
            st.first_failure.get_or_insert(t);
            st.last_failure = Some(t);
            self.per_sec.failures[t as usize] += 1;
            if tcp {
                conn.l = t + SYN_OFFSETS[2];
            }
            self.conns.push(conn);
            if retry_no < spec.retry.max_retries {
                let delay = self.rng.random_range(spec.retry.delay_secs.min..=spec.retry.delay_secs.max);
                let at = conn.l + delay;
                if at < self.sc.duration_secs {
                    let at = at as usize;
                    if self.retries.len() <= at {
                        self.retries.resize_with(at + 1, Vec::new);
                    }
                    self.retries[at].push(Retry { dest, client, retry_no: retry_no + 1 });
                }
            }
            return;
        };
        let pi = d * self.n_addr + a;
        let pool = &mut self.free[pi];
        let port = pool.swap_remove(self.rng.random_range(0..pool.len()));
        self.held[pi] += 1;
        conn.nport = port;
        conn.addr = a as u8;
        let mut release = Release { dest, addr: a as u8, port, idle: false };
        let release_at;
        if self.rng.random::<f64>() < spec.unanswered_share {
            self.stats[d].unanswered += 1;
            conn.kind = Kind::Unanswered;
            if tcp {
                conn.l = t + SYN_OFFSETS[2];
                release_at = conn.l + 1;
            } else {
                release.idle = true;
                release_at = t + IDLE_TIMEOUT_SECS + 1;
            }
        } else {
            let life = self.samplers[d].sample(&mut self.rng);
            conn.l = t + life;
            self.per_sec.established[t as usize] += 1;
            let st = &mut self.stats[d];
            st.established += 1;
            if !tcp {
                conn.kind = Kind::Udp;
                release.idle = true;
                release_at = conn.l + IDLE_TIMEOUT_SECS + 1;
            } else {
                st.tcp_established += 1;
                if self.rng.random::<f64>() < spec.abandon_share {
                    st.abandoned += 1;
                    conn.kind = Kind::Abandoned;
                    release.idle = true;
                    release_at = conn.l + IDLE_TIMEOUT_SECS + 1;
                } else {
                    conn.kind = Kind::Closed;
                    release_at = conn.l + 1;
                }
            }
        }
        self.conns.push(conn);
        self.schedule_release(release_at, release);
    }

    /// Peaks and per-second series after second `t` is processed.
    fn account_second(&mut self, t: u32) {
        let dur = self.sc.duration_secs;
        let minute = ((self.sc.start + u64::from(t) - self.first_minute) / 60) as usize;
        let mut active = 0u64;
        for (d, spec) in self.sc.destinations.iter().enumerate() {
            let st = &mut self.stats[d];
            let mut total = 0u32;
            for a in 0..self.n_addr {
                let h = self.held[d * self.n_addr + a];
                total += h;
                st.addr_peak[a] = st.addr_peak[a].max(h);
            }
            if total > st.peak {
                st.peak = total;
                st.peak_at = t;
            }
            if t < dur {
                st.held_max_min[minute] = st.held_max_min[minute].max(total);
            }
            if spec.protocol == TCP {
                active += u64::from(total);
            }
        }
        if t < dur {
            self.per_sec.active[t as usize] = active;
        }
    }

    /// Bytes and packets per second, per-client bytes, then the truth and the metrics.
    fn finish(&self) -> (Truth, Metrics) {
        let sc = self.sc;
        let dur = sc.duration_secs as usize;
        let n_client = sc.clients.len();
        // [in from source, out to destination, in from destination, out to source] × [bytes, packets].
        let mut flow = vec![[0u64; 8]; dur];
        let mut client_bytes = vec![0u64; self.client_attempts.len()];
        for c in &self.conns {
            let answered = !matches!(c.kind, Kind::Failed | Kind::Unanswered);
            let forwarded = c.kind != Kind::Failed;
            let ci = usize::from(c.dest) * n_client + usize::from(c.client);
            for p in packets(sc, c) {
                let f = &mut flow[p.t as usize];
                f[0] += p.out_b;
                f[1] += u64::from(p.out_pk);
                if forwarded {
                    f[2] += p.out_b;
                    f[3] += u64::from(p.out_pk);
                }
                if answered {
                    f[4] += p.in_b;
                    f[5] += u64::from(p.in_pk);
                    f[6] += p.in_b;
                    f[7] += u64::from(p.in_pk);
                }
                client_bytes[ci] += p.out_b + p.in_b;
            }
        }

        let minutes = self.stats.first().map_or(0, |s| s.held_max_min.len());
        let minute_of = |t: usize| ((sc.start + t as u64 - self.first_minute) / 60) as usize;
        let sum_series = |v: &dyn Fn(usize) -> u64| {
            let mut out = vec![0u64; minutes];
            for t in 0..dur {
                out[minute_of(t)] += v(t);
            }
            out
        };
        let mut series: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let ps = &self.per_sec;
        series.insert("ErrorPortAllocation".into(), sum_series(&|t| ps.failures[t]));
        series.insert("ConnectionAttemptCount".into(), sum_series(&|t| ps.attempts[t]));
        series.insert("ConnectionEstablishedCount".into(), sum_series(&|t| ps.established[t]));
        series.insert("IdleTimeoutCount".into(), sum_series(&|t| ps.idle_timeouts[t]));
        series.insert("PacketsDropCount".into(), vec![0; minutes]);
        let names = [
            "BytesInFromSource",
            "PacketsInFromSource",
            "BytesOutToDestination",
            "PacketsOutToDestination",
            "BytesInFromDestination",
            "PacketsInFromDestination",
            "BytesOutToSource",
            "PacketsOutToSource",
        ];
        for (i, name) in names.iter().enumerate() {
            series.insert((*name).into(), sum_series(&|t| flow[t][i]));
        }
        let mut active = vec![0u64; minutes];
        for t in 0..dur {
            let m = minute_of(t);
            active[m] = active[m].max(ps.active[t]);
        }
        series.insert("ActiveConnectionCount".into(), active);
        let minute_at = |m: usize| self.first_minute + 60 * m as u64;
        let metrics = Metrics {
            nat_gateway_id: sc.nat.nat_gateway_id.clone(),
            period: 60,
            series: series
                .into_iter()
                .map(|(k, v)| {
                    let pts = v.into_iter().enumerate().map(|(m, x)| (minute_at(m), x));
                    (k, pts.collect())
                })
                .collect(),
        };

        let limit = PORTS_PER_ADDRESS * self.n_addr as u32;
        let abs = |t: u32| sc.start + u64::from(t);
        let destinations: Vec<DestTruth> = sc
            .destinations
            .iter()
            .zip(&self.stats)
            .enumerate()
            .map(|(d, (spec, st))| {
                let mut top: Vec<ClientTruth> = (0..n_client)
                    .filter(|&c| self.client_attempts[d * n_client + c] > 0)
                    .map(|c| ClientTruth {
                        ip: sc.clients[c].ip,
                        attempts: self.client_attempts[d * n_client + c],
                        bytes: client_bytes[d * n_client + c],
                    })
                    .collect();
                top.sort_by(|a, b| b.attempts.cmp(&a.attempts).then(a.ip.cmp(&b.ip)));
                top.truncate(10);
                DestTruth {
                    label: spec.label.clone(),
                    ip: spec.ip,
                    port: spec.port,
                    protocol: spec.protocol,
                    limit,
                    peak: st.peak,
                    peak_at: abs(st.peak_at),
                    per_address_peak: sc.nat.addresses.iter().copied().zip(st.addr_peak.iter().copied()).collect(),
                    attempts: st.attempts,
                    failures: st.failures,
                    retries: st.retries,
                    established: st.established,
                    unanswered: st.unanswered,
                    saturated: st.failures > 0,
                    failures_between: st.first_failure.zip(st.last_failure).map(|(a, b)| (abs(a), abs(b))),
                    abandoned_share_truth: (spec.protocol == TCP && st.tcp_established > 0)
                        .then(|| st.abandoned as f64 / st.tcp_established as f64),
                    held_max_per_minute: st.held_max_min.iter().enumerate().map(|(m, &h)| (minute_at(m), h)).collect(),
                    top_clients: top,
                }
            })
            .collect();
        let verdict = if destinations.iter().any(|d| d.failures > 0) {
            Verdict::Exhaustion
        } else if destinations.iter().any(|d| f64::from(d.peak) >= 0.8 * f64::from(d.limit)) {
            Verdict::AtRisk
        } else {
            Verdict::Healthy
        };
        let truth = Truth {
            scenario: sc.name.clone(),
            seed: sc.seed,
            start: sc.start,
            end: sc.end(),
            nat_gateway_id: sc.nat.nat_gateway_id.clone(),
            nat_addresses: sc.nat.addresses.clone(),
            verdict,
            destinations,
        };
        (truth, metrics)
    }
}
