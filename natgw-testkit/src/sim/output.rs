//! Outputs of a simulation: the in-memory layouts and the files `write_to` puts in a directory.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use super::SimError;
use super::engine::Simulation;
use super::flowlog::{NAT_CUSTOM_FORMAT, Side};

/// File names written by [`Simulation::write_to`].
pub mod files {
    /// NAT interface, default format v2, gzipped.
    pub const NAT_V2: &str = "nat-eni-v2.log.gz";
    /// NAT interface, custom format, gzipped.
    pub const NAT_CUSTOM: &str = "nat-eni-custom.log.gz";
    /// The custom format's `LogFormat` string, one line.
    pub const NAT_CUSTOM_FORMAT: &str = "nat-eni-custom.format";
    /// All client interfaces, default format v2, gzipped.
    pub const CLIENTS_V2: &str = "clients-v2.log.gz";
    /// Per-minute NAT gateway metrics.
    pub const METRICS: &str = "metrics.json";
    /// Ground truth.
    pub const TRUTH: &str = "truth.json";
    /// The scenario simulated.
    pub const SCENARIO: &str = "scenario.json";
    /// Minimal `ip-ranges.json` with the AWS prefixes of the scenario's service destinations.
    pub const IP_RANGES: &str = "ip-ranges.json";
}

/// The shape of AWS's `ip-ranges.json` (only the fields natgw reads).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRanges {
    /// Publication time in unix seconds, as a string.
    #[serde(rename = "syncToken")]
    pub sync_token: String,
    /// `YYYY-MM-DD-hh-mm-ss`.
    #[serde(rename = "createDate")]
    pub create_date: String,
    /// IPv4 prefixes.
    pub prefixes: Vec<IpPrefix>,
    /// IPv6 prefixes (empty here).
    pub ipv6_prefixes: Vec<Ipv6Prefix>,
}

/// One IPv4 entry of `ip-ranges.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpPrefix {
    /// CIDR.
    pub ip_prefix: String,
    /// Region.
    pub region: String,
    /// `AMAZON`, `S3`, `DYNAMODB`, …
    pub service: String,
    /// Network border group.
    pub network_border_group: String,
}

/// One IPv6 entry of `ip-ranges.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Prefix {
    /// CIDR.
    pub ipv6_prefix: String,
    /// Region.
    pub region: String,
    /// Service.
    pub service: String,
    /// Network border group.
    pub network_border_group: String,
}

/// Real us-east-1 prefixes of the AWS services the built-in scenarios call.
const SERVICE_PREFIXES: [(&str, &str); 2] = [("52.216.0.0/15", "S3"), ("3.218.180.0/22", "DYNAMODB")];

impl Simulation {
    /// The NAT interface's flow log, default format v2, header included, uncompressed.
    pub fn nat_v2(&self) -> Vec<u8> {
        self.format_v2(Side::Nat, &self.records(Side::Nat))
    }

    /// The NAT interface's flow log in the custom format [`Self::custom_format`], header included.
    pub fn nat_custom(&self) -> Vec<u8> {
        self.format_nat_custom(&self.records(Side::Nat))
    }

    /// The clients' interfaces' flow log, default format v2, header included, uncompressed.
    pub fn clients_v2(&self) -> Vec<u8> {
        self.format_v2(Side::Clients, &self.records(Side::Clients))
    }

    /// The `LogFormat` of [`Self::nat_custom`].
    pub fn custom_format(&self) -> &str {
        NAT_CUSTOM_FORMAT
    }

    /// A minimal `ip-ranges.json`: the S3 and DynamoDB prefixes, each also listed under `AMAZON` as
    /// the real file does.
    pub fn ip_ranges(&self) -> IpRanges {
        let region = self.scenario.region.clone();
        let entry = |prefix: &str, service: &str| IpPrefix {
            ip_prefix: prefix.into(),
            region: region.clone(),
            service: service.into(),
            network_border_group: region.clone(),
        };
        let published = self.scenario.start.saturating_sub(86_400);
        let mut prefixes: Vec<IpPrefix> = SERVICE_PREFIXES.iter().map(|(p, _)| entry(p, "AMAZON")).collect();
        prefixes.extend(SERVICE_PREFIXES.iter().map(|(p, s)| entry(p, s)));
        IpRanges {
            sync_token: published.to_string(),
            create_date: create_date(published),
            prefixes,
            ipv6_prefixes: Vec::new(),
        }
    }

    /// Writes every output (see [`files`]) into `dir`, creating it; returns the paths written.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
        fs::create_dir_all(dir).map_err(|source| SimError::Io { path: dir.to_path_buf(), source })?;
        let mut written = Vec::new();
        let nat = self.records(Side::Nat);
        let mut put = |name: &str, bytes: &[u8], gzip: bool| -> Result<(), SimError> {
            let path = dir.join(name);
            write_file(&path, bytes, gzip).map_err(|source| SimError::Io { path: path.clone(), source })?;
            written.push(path);
            Ok(())
        };
        put(files::NAT_V2, &self.format_v2(Side::Nat, &nat), true)?;
        put(files::NAT_CUSTOM, &self.format_nat_custom(&nat), true)?;
        drop(nat);
        put(files::NAT_CUSTOM_FORMAT, format!("{NAT_CUSTOM_FORMAT}\n").as_bytes(), false)?;
        put(files::CLIENTS_V2, &self.clients_v2(), true)?;
        put(files::METRICS, &to_json("metrics", self.metrics())?, false)?;
        put(files::TRUTH, &to_json("truth", self.truth())?, false)?;
        put(files::SCENARIO, &to_json("scenario", self.scenario())?, false)?;
        put(files::IP_RANGES, &to_json("ip-ranges", &self.ip_ranges())?, false)?;
        Ok(written)
    }
}

/// Pretty JSON with a final newline.
fn to_json<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, SimError> {
    let mut out = serde_json::to_vec_pretty(v).map_err(|source| SimError::Json { what, source })?;
    out.push(b'\n');
    Ok(out)
}

fn write_file(path: &Path, bytes: &[u8], gzip: bool) -> std::io::Result<()> {
    let file = BufWriter::new(fs::File::create(path)?);
    if gzip {
        let mut gz = GzEncoder::new(file, Compression::new(6));
        gz.write_all(bytes)?;
        gz.finish()?.flush()
    } else {
        let mut file = file;
        file.write_all(bytes)?;
        file.flush()
    }
}

/// `YYYY-MM-DD-hh-mm-ss` (UTC) of a unix time, as in `ip-ranges.json`'s `createDate`.
pub(crate) fn create_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}-{:02}-{:02}-{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}
