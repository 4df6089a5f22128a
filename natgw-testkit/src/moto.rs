//! The moto end-to-end test bed: moto and the CloudWatch CBOR proxy as a guard, and seeding of a
//! simulated incident into them.
//!
//! [`Moto::start`] runs moto's server (EC2, CloudWatch Logs, CloudWatch over JSON/query) and
//! `moto/cbor_proxy.py` (CloudWatch over Smithy RPC v2 CBOR, which `aws-sdk-cloudwatch` speaks and
//! moto does not) on free ports of 127.0.0.1, from the Python venv that `cargo xtask moto-venv`
//! builds. [`Moto::env`] / [`Moto::apply`] point a child process (`aws-natgw`) at them with dummy
//! credentials and no developer profile. [`Moto::seed`] writes a [`Simulation`]'s NAT-interface flow
//! log, metrics and scenario to a temporary folder and runs `moto/seed.py`, which creates the
//! topology, flow log, log events and metrics in moto and answers with the IDs moto assigned
//! ([`Seeded`]). Dropping the guard kills both processes.
//!
//! What moto does not emulate (Logs Insights queries, secondary NAT addresses, …) is listed in
//! `docs/testing.md`.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::sim::{Scenario, SimError, Simulation};

/// Environment variable naming the Python venv (default `<workspace>/target/moto-venv`).
pub const VENV_ENV: &str = "NATGW_MOTO_VENV";
/// Region moto is seeded in and clients are pointed at.
pub const REGION: &str = "us-east-1";
/// A scenario ending within this many seconds before now is seeded as it is; others are shifted.
pub const RECENT_SECS: u64 = 12 * 3600;
/// A shifted scenario ends this many seconds (plus up to a minute) before now.
pub const END_BEFORE_NOW_SECS: u64 = 300;

/// What can go wrong starting or seeding moto.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    /// The venv with moto is missing.
    #[error("no moto venv at {0} (no {1}): run `cargo xtask moto-venv` (or set NATGW_MOTO_VENV)")]
    NoVenv(PathBuf, PathBuf),
    /// A process could not be started.
    #[error("cannot start {what}")]
    Spawn {
        /// Which process.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A process did not answer in time (or exited); its log is attached.
    #[error("{what} did not answer on {url} within {secs} s; its log:\n{log}")]
    NotReady {
        /// Which process.
        what: &'static str,
        /// The URL polled.
        url: String,
        /// Seconds waited.
        secs: u64,
        /// Tail of its stdout/stderr.
        log: String,
    },
    /// Temporary files could not be written.
    #[error("moto test bed: {0}")]
    Io(#[from] std::io::Error),
    /// The simulation could not be serialized.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// seed.py (or another helper script) failed.
    #[error("{script} failed ({status}):\n{stderr}")]
    Script {
        /// The script.
        script: String,
        /// Its exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// A script's JSON answer could not be read.
    #[error("cannot read {script}'s answer {stdout:?}")]
    Answer {
        /// The script.
        script: String,
        /// What it printed.
        stdout: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// How [`Moto::seed`] sets up moto.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedMode {
    /// The incident: topology, a custom-format 60 s flow log on the NAT interface with the
    /// simulator's records in its log group, and the per-minute metrics.
    Diagnose,
    /// Findings for `doctor`: the scenario's topology and metrics without any flow log, plus a NAT
    /// gateway whose VPC logs to S3 only and one whose interface logs in the default format every
    /// 600 s (see [`Seeded::doctor_cases`]).
    Doctor,
}

impl SeedMode {
    /// The `--mode` value of seed.py.
    pub fn as_str(self) -> &'static str {
        match self {
            SeedMode::Diagnose => "diagnose",
            SeedMode::Doctor => "doctor",
        }
    }
}

/// What [`Moto::seed_with`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedOptions {
    /// What to set up.
    pub mode: SeedMode,
    /// Diagnose mode: write only the records whose `start` is in `[from, to)` (simulation times)
    /// instead of all of them. An exhaustion means at least 55,000 held ports, so a few hundred
    /// thousand NAT-interface records, which moto takes ~20 s to store and as long to page through
    /// (its FilterLogEvents rescans the stream for every page); a two-minute slice takes seconds.
    pub records_between: Option<(u64, u64)>,
}

/// What seed.py created, with the IDs and addresses moto assigned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seeded {
    /// `diagnose` or `doctor`.
    pub mode: String,
    /// Scenario name.
    pub scenario: String,
    /// moto's `nat-…` (the metrics' `NatGatewayId` dimension).
    pub nat_gateway_id: String,
    /// moto's `vpc-…`.
    pub vpc_id: String,
    /// moto's `eni-…` of the NAT gateway (the records' `interface-id`).
    pub nat_interface: String,
    /// moto's private IP of the NAT gateway (the records' NAT address). moto picks it at random in
    /// 10/8, usually outside the VPC's CIDRs and the subnet.
    pub nat_private_ip: Ipv4Addr,
    /// The Elastic IP (moto hands out 127.x.x.x addresses).
    pub nat_public_ip: Option<Ipv4Addr>,
    /// `IsPrimary` as moto reports it: `None` (moto omits it).
    pub nat_is_primary: Option<bool>,
    /// The NAT gateway's public subnet.
    pub nat_subnet_id: String,
    /// Its availability zone.
    pub nat_az: String,
    /// The private (client) subnets, routed to the NAT gateway.
    pub private_subnet_ids: Vec<String>,
    /// Their route table (0.0.0.0/0 → the NAT gateway).
    pub private_route_table_id: String,
    /// First simulated second after the shift (unix).
    pub start: u64,
    /// First second after the simulated span, after the shift (unix).
    pub end: u64,
    /// Seconds added to every time of the simulation (0 when it already ended recently).
    pub shift_secs: i64,
    /// The flow log's log group (diagnose mode).
    pub log_group: Option<String>,
    /// The NAT interface's stream, `eni-…-all` (diagnose mode).
    pub log_stream: Option<String>,
    /// `fl-…` (diagnose mode).
    pub flow_log_id: Option<String>,
    /// The flow log's `LogFormat` (diagnose mode).
    pub log_format: Option<String>,
    /// Log events written (diagnose mode; NODATA and SKIPDATA records included).
    pub records_written: u64,
    /// `AWS/NATGateway` datapoints written.
    pub metric_datums: u64,
    /// Doctor mode: every gateway set up and what is wrong with its flow logs.
    pub doctor_cases: Vec<DoctorCase>,
    /// Seconds seed.py took.
    pub seconds: f64,
}

/// One NAT gateway of the doctor mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorCase {
    /// `no-flow-log`, `s3-only` or `default-format-600s`.
    pub case: String,
    /// `nat-…`.
    pub nat_gateway_id: String,
    /// `vpc-…` (each case has its own VPC).
    pub vpc_id: String,
    /// `eni-…`.
    pub nat_interface: String,
    /// The flow log set up, if any.
    pub flow_log_id: Option<String>,
    /// What is set up, in words.
    pub detail: String,
}

/// Options of [`Moto::start_with`].
#[derive(Clone, Debug)]
pub struct MotoOptions {
    /// The venv; default: `NATGW_MOTO_VENV`, else `<workspace>/target/moto-venv`.
    pub venv: Option<PathBuf>,
    /// Most datapoints per GetMetricData page the proxy returns when the request sets no
    /// `MaxDatapoints` (CloudWatch's 100,800 by default); small values exercise pagination.
    pub max_datapoints: Option<u32>,
    /// How long to wait for each process to answer.
    pub startup_timeout: Duration,
}

impl Default for MotoOptions {
    fn default() -> Self {
        Self { venv: None, max_datapoints: None, startup_timeout: Duration::from_secs(30) }
    }
}

/// Running moto and CBOR proxy processes; both are killed on drop.
#[derive(Debug)]
pub struct Moto {
    venv: PathBuf,
    moto: Child,
    proxy: Child,
    moto_port: u16,
    proxy_port: u16,
    dir: tempfile::TempDir,
    seeds: AtomicU32,
}

impl Moto {
    /// Starts moto and the proxy with default options.
    pub fn start() -> Result<Moto, MotoError> {
        Self::start_with(MotoOptions::default())
    }

    /// Starts moto and the proxy, waiting until both answer. Both exit by themselves if this
    /// process dies without dropping the guard.
    pub fn start_with(options: MotoOptions) -> Result<Moto, MotoError> {
        let venv = options.venv.clone().unwrap_or_else(venv_dir);
        let python = python_in(&venv);
        let moto_server = bin_in(&venv, "moto_server");
        for exe in [&python, &moto_server] {
            if !exe.exists() {
                return Err(MotoError::NoVenv(venv.clone(), exe.clone()));
            }
        }
        let dir = tempfile::Builder::new().prefix("natgw-moto-").tempdir()?;
        // Empty AWS config and credentials files, so a developer's own profile cannot leak in.
        fs::write(dir.path().join("aws-config"), "")?;
        fs::write(dir.path().join("aws-credentials"), "")?;

        let moto_port = free_port()?;
        // moto_server's own entry point behind the orphan guard: a test killed outright (no Drop)
        // leaves no server behind.
        let mut moto = spawn(
            "moto_server",
            Command::new(&python).arg(moto_dir().join("serve_moto.py")).args([
                "-H",
                "127.0.0.1",
                "-p",
                &moto_port.to_string(),
            ]),
            &dir.path().join("moto.log"),
        )?;
        if let Err(e) =
            wait_ready("moto_server", &mut moto, moto_port, "/moto-api/", &dir.path().join("moto.log"), &options)
        {
            kill(&mut moto);
            return Err(e);
        }
        let proxy_port = free_port()?;
        let mut cmd = Command::new(&python);
        cmd.arg(moto_dir().join("cbor_proxy.py")).args([
            "--port",
            &proxy_port.to_string(),
            "--moto",
            &format!("http://127.0.0.1:{moto_port}"),
            "--exit-with-parent",
        ]);
        if let Some(n) = options.max_datapoints {
            cmd.args(["--max-datapoints", &n.to_string()]);
        }
        let proxy_log = dir.path().join("proxy.log");
        let mut proxy = match spawn("cbor_proxy.py", &mut cmd, &proxy_log) {
            Ok(p) => p,
            Err(e) => {
                kill(&mut moto);
                return Err(e);
            }
        };
        if let Err(e) = wait_ready("cbor_proxy.py", &mut proxy, proxy_port, "/__proxy/health", &proxy_log, &options) {
            kill(&mut proxy);
            kill(&mut moto);
            return Err(e);
        }
        Ok(Moto { venv, moto, proxy, moto_port, proxy_port, dir, seeds: AtomicU32::new(0) })
    }

    /// moto's URL: EC2, CloudWatch Logs (and CloudWatch over JSON/query).
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.moto_port)
    }

    /// The CBOR proxy's URL: CloudWatch for `aws-sdk-cloudwatch`.
    pub fn cloudwatch_endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    /// The venv's Python (with boto3 and cbor2), for helper scripts.
    pub fn python(&self) -> PathBuf {
        python_in(&self.venv)
    }

    /// The folder holding `cbor_proxy.py`, `seed.py` and `inspect_moto.py`.
    pub fn scripts_dir() -> PathBuf {
        moto_dir()
    }

    /// Environment for a child process (`aws-natgw`): endpoints, dummy credentials, region, no IMDS,
    /// empty config and credentials files. See [`Moto::apply`] to also drop inherited `AWS_*`.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        [
            ("AWS_ENDPOINT_URL", self.endpoint_url()),
            ("AWS_ENDPOINT_URL_CLOUDWATCH", self.cloudwatch_endpoint_url()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_CONFIG_FILE", path("aws-config")),
            ("AWS_SHARED_CREDENTIALS_FILE", path("aws-credentials")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Removes every `AWS_*` variable from `cmd`, inherited or set on it (profiles, session
    /// tokens, other endpoints), and sets [`Moto::env`].
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        let set: Vec<std::ffi::OsString> = cmd.get_envs().map(|(k, _)| k.to_os_string()).collect();
        for k in std::env::vars_os().map(|(k, _)| k).chain(set) {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env())
    }

    /// Seeds moto with `sim` (see [`SeedMode`]); the scenario must have one NAT address. A scenario
    /// that did not end within the last 12 h is shifted (whole minutes) to end 5-6 min ago: build it
    /// with [`recent`] to keep the simulation's own times. Several seeds in one moto are fine (new
    /// VPCs, gateways and log groups named after the scenario); seed one scenario name once.
    pub fn seed(&self, sim: &Simulation, mode: SeedMode) -> Result<Seeded, MotoError> {
        self.seed_with(sim, &SeedOptions { mode, records_between: None })
    }

    /// [`Moto::seed`] with options (a slice of the records).
    pub fn seed_with(&self, sim: &Simulation, options: &SeedOptions) -> Result<Seeded, MotoError> {
        let mode = options.mode;
        let n = self.seeds.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.path().join(format!("seed-{n}"));
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("scenario.json"), to_json("scenario", sim.scenario())?)?;
        fs::write(dir.join("metrics.json"), to_json("metrics", sim.metrics())?)?;
        let mut args = vec![
            "--endpoint".to_owned(),
            self.endpoint_url(),
            "--mode".to_owned(),
            mode.as_str().to_owned(),
            "--scenario".to_owned(),
            dir.join("scenario.json").display().to_string(),
            "--metrics".to_owned(),
            dir.join("metrics.json").display().to_string(),
        ];
        if mode == SeedMode::Diagnose {
            fs::write(dir.join("nat-custom.log"), sim.nat_custom())?;
            fs::write(dir.join("nat-custom.format"), sim.custom_format())?;
            args.extend([
                "--records".to_owned(),
                dir.join("nat-custom.log").display().to_string(),
                "--format".to_owned(),
                dir.join("nat-custom.format").display().to_string(),
            ]);
            if let Some((from, to)) = options.records_between {
                args.extend(["--records-between".to_owned(), from.to_string(), to.to_string()]);
            }
        }
        self.run_script("seed.py", &args)
    }

    /// Runs a Python script of [`Moto::scripts_dir`] with the venv's Python and reads the one JSON
    /// value it prints.
    pub fn run_script<T: serde::de::DeserializeOwned>(&self, script: &str, args: &[String]) -> Result<T, MotoError> {
        let out = Command::new(self.python())
            .arg(moto_dir().join(script))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| MotoError::Spawn { what: "python", source })?;
        if !out.status.success() {
            return Err(MotoError::Script {
                script: script.to_owned(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        serde_json::from_str(stdout.trim()).map_err(|source| MotoError::Answer {
            script: script.to_owned(),
            stdout,
            source,
        })
    }

    /// Clears all of moto's state (`POST /moto-api/reset`).
    pub fn reset(&self) -> Result<(), MotoError> {
        let (status, body) = http(self.moto_port, "POST", "/moto-api/reset")?;
        if status != 200 {
            return Err(MotoError::Io(std::io::Error::other(format!(
                "moto reset answered {status}: {}",
                String::from_utf8_lossy(&body)
            ))));
        }
        Ok(())
    }

    /// What moto and the proxy logged so far (for a failing test's message).
    pub fn logs(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("--- moto_server ---\n{}\n--- cbor_proxy.py ---\n{}", read("moto.log"), read("proxy.log"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        kill(&mut self.proxy);
        kill(&mut self.moto);
    }
}

/// The same scenario moved (whole minutes) to end 5-6 minutes before now, unless it already ended
/// within the last 12 hours: then [`Moto::seed`] shifts nothing and the simulation's times, truth
/// included, are the ones in moto.
pub fn recent(scenario: Scenario) -> Scenario {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let shift = shift_for(scenario.end(), now);
    let start = scenario.start.saturating_add_signed(shift);
    scenario.with_start(start)
}

/// Mirror of seed.py's `shift_for`.
fn shift_for(end: u64, now: u64) -> i64 {
    if now.saturating_sub(RECENT_SECS) <= end && end <= now {
        return 0;
    }
    let delta = now as i64 - END_BEFORE_NOW_SECS as i64 - end as i64;
    delta.div_euclid(60) * 60
}

/// `NATGW_MOTO_VENV`, else `<workspace>/target/moto-venv`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os(VENV_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => workspace_root().join("target").join("moto-venv"),
    }
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `natgw-testkit/moto`: requirements.txt and the Python scripts.
pub fn moto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("moto")
}

/// The venv's Python interpreter.
pub fn python_in(venv: &Path) -> PathBuf {
    bin_in(venv, if cfg!(windows) { "python" } else { "python3" })
}

fn bin_in(venv: &Path, name: &str) -> PathBuf {
    if cfg!(windows) { venv.join("Scripts").join(format!("{name}.exe")) } else { venv.join("bin").join(name) }
}

fn to_json<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, MotoError> {
    serde_json::to_vec(v).map_err(|source| MotoError::Sim(SimError::Json { what, source }))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn spawn(what: &'static str, cmd: &mut Command, log: &Path) -> Result<Child, MotoError> {
    let out = fs::File::create(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env("PYTHONUNBUFFERED", "1")
        // For moto/orphan_guard.py: exit once this process is gone.
        .env("NATGW_MOTO_PARENT_PID", std::process::id().to_string())
        .spawn()
        .map_err(|source| MotoError::Spawn { what, source })
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_ready(
    what: &'static str,
    child: &mut Child,
    port: u16,
    path: &str,
    log: &Path,
    options: &MotoOptions,
) -> Result<(), MotoError> {
    let began = Instant::now();
    loop {
        if let Ok((status, _)) = http(port, "GET", path)
            && status < 500
        {
            return Ok(());
        }
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited || began.elapsed() > options.startup_timeout {
            let text = fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let log = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            let log = if exited { format!("(exited)\n{log}") } else { log };
            return Err(MotoError::NotReady {
                what,
                url: format!("http://127.0.0.1:{port}{path}"),
                secs: options.startup_timeout.as_secs(),
                log,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal HTTP/1.0 exchange with 127.0.0.1 (no body sent): status and body.
pub(crate) fn http(port: u16, method: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))?;
    let body = buf.windows(4).position(|w| w == b"\r\n\r\n").map_or_else(Vec::new, |i| buf[i + 4..].to_vec());
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_scenarios_are_not_shifted() {
        let now = 1_800_000_000;
        assert_eq!(shift_for(now - 600, now), 0);
        assert_eq!(shift_for(now - RECENT_SECS, now), 0);
        assert_eq!(shift_for(now, now), 0);
    }

    #[test]
    fn old_and_future_scenarios_end_five_to_six_minutes_ago_in_whole_minutes() {
        let now = 1_800_000_037;
        for end in [1_780_001_500, now - RECENT_SECS - 1, now + 1, now + 86_400] {
            let shift = shift_for(end, now);
            assert_eq!(shift % 60, 0);
            let shifted = end as i64 + shift;
            let before = now as i64 - shifted;
            assert!((300..360).contains(&before), "end {end}: {before} s before now");
        }
    }

    #[test]
    fn recent_keeps_the_second_within_the_minute() {
        let sc = Scenario::builtin("idle-leak").map(|s| s.with_duration(300));
        let Some(sc) = sc else { panic!("idle-leak is built in") };
        let moved = recent(sc.clone());
        assert_eq!(moved.start % 60, sc.start % 60);
        assert_eq!(moved.duration_secs, sc.duration_secs);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        assert!(moved.end() <= now && moved.end() + 400 > now);
    }

    #[test]
    fn a_missing_venv_says_how_to_make_one() {
        let options = MotoOptions { venv: Some(PathBuf::from("/nonexistent/moto-venv")), ..MotoOptions::default() };
        let err = Moto::start_with(options).map(|_| ()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("cargo xtask moto-venv"), "{err}");
    }
}
