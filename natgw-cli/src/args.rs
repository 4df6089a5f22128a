//! Command-line flags (clap), validated into typed values before anything runs.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use natgw_core::flowlog::LogFormat;
use natgw_core::net::{Destination, InterfaceId, unmapped_net};

/// The most worker threads `analyze` takes. Each holds a shard and a lane of the streams (16 threads
/// on 2 cores peaked at 148 MiB), and past a few thousand the system refused to start them: the
/// thread spawn panicked.
pub const MAX_THREADS: u16 = 256;

#[derive(Debug, Parser)]
#[command(
    name = "aws-natgw",
    version,
    about = "Find and fix AWS NAT gateway port exhaustion (ErrorPortAllocation).",
    long_about = "Find and fix AWS NAT gateway port exhaustion (ErrorPortAllocation).\n\n\
        A NAT gateway allows 55,000 simultaneous connections per NAT address to each unique destination \
        (IP, port, protocol). aws-natgw estimates each destination's peak from VPC flow logs, names the \
        clients behind it and prints a remedy plan with exact commands.",
    after_help = crate::exit::HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse flow-log files (plain or gzip; S3 or CloudWatch exports) on this machine: no AWS account needed.
    Analyze(AnalyzeArgs),
    /// Diagnose a NAT gateway in AWS: metrics, discovery, prerequisites, Logs Insights, estimate, remedy plan.
    Diagnose(DiagnoseArgs),
    /// Check a NAT gateway's flow-log prerequisites, with the commands that fix each gap.
    Doctor(DoctorArgs),
    /// A NAT gateway's CloudWatch metrics per minute.
    Metrics(MetricsArgs),
    /// Every NAT gateway of a region (or all regions) with its port allocation errors, worst first.
    Scan(ScanArgs),
    /// Print a CloudWatch Logs Insights query for copy-paste into the console.
    Query(QueryArgs),
}

/// Where and as whom to call AWS. Without flags the standard chain decides: AWS_PROFILE, AWS_REGION,
/// AWS_ENDPOINT_URL, the shared config files, SSO, instance roles (the AWS CLI does not pass its own
/// --profile/--region to an alias: `AWS_PROFILE=x aws natgw …`, or these flags after the command).
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// The AWS region (default: AWS_REGION or the profile's region).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// A named profile from the shared config files (default: AWS_PROFILE).
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (default: AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// The time range to look at.
#[derive(Debug, Clone, Args)]
pub struct TimeArgs {
    /// How far back from now: 30m, 3h, 2d.
    #[arg(long, value_name = "DURATION", default_value = "3h", value_parser = parse_duration, conflicts_with = "start")]
    pub since: u64,
    /// Range start, RFC 3339 (2026-11-26T08:00:00Z); with --end.
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "end")]
    pub start: Option<u64>,
    /// Range end, RFC 3339 (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub end: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// CloudWatch Logs Insights scans the logs in AWS (billed per GB scanned; nothing large is downloaded).
    Insights,
    /// Pull the windows' records with FilterLogEvents and analyse them here (small windows, or where
    /// Insights is not allowed).
    Local,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The NAT gateway: its ID (nat-…) or its Name tag.
    #[arg(value_name = "NAT_GATEWAY")]
    pub nat: String,
    #[command(flatten)]
    pub time: TimeArgs,
    #[arg(long, value_enum, default_value_t = EngineArg::Insights)]
    pub engine: EngineArg,
    /// How many destinations to list, nearest their limit first (every one near it is listed).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub top: u16,
    /// With --engine local: stop after this many log events.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_events: usize,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The NAT gateway: its ID (nat-…) or its Name tag.
    #[arg(value_name = "NAT_GATEWAY")]
    pub nat: String,
    #[arg(long, short, value_enum, default_value_t = PlainOutput::Table)]
    pub output: PlainOutput,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// The NAT gateway: its ID (nat-…) or its Name tag.
    #[arg(value_name = "NAT_GATEWAY")]
    pub nat: String,
    #[command(flatten)]
    pub time: TimeArgs,
    #[arg(long, short, value_enum, default_value_t = PlainOutput::Table)]
    pub output: PlainOutput,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Every region enabled for the account.
    #[arg(long, conflicts_with = "region")]
    pub all_regions: bool,
    #[command(flatten)]
    pub time: TimeArgs,
    /// Metric reads in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    #[arg(long, short, value_enum, default_value_t = PlainOutput::Table)]
    pub output: PlainOutput,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Markdown,
    /// One self-contained page (inline CSS, nothing fetched).
    Html,
}

/// Output of the commands that print no report (doctor, metrics, scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlainOutput {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Flow-log files, plain or gzip (detected by content), in any order (they are read in time
    /// order); a directory: the *.log, *.gz and *.txt files under it (an S3 download's AWSLogs/
    /// tree); `-` reads standard input (kept in a temporary file in $TMPDIR, then read like a file).
    /// Give the NAT interface's logs and the clients' logs together to attribute connections to
    /// clients.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The flow log's format (`${version} ${srcaddr} …` as describe-flow-logs shows it), for files
    /// without a header line. Default: the version-2 default format.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub log_format: Option<LogFormat>,
    /// A NAT gateway private IP; repeat once per NAT address (primary first). The limit scales with
    /// their count. Inferred from the records when not given.
    #[arg(long = "nat-ip", value_name = "IP")]
    pub nat_ips: Vec<IpAddr>,
    /// The NAT gateway's network interface (eni-…). Inferred when not given.
    #[arg(long, value_name = "ENI", value_parser = parse_eni)]
    pub nat_interface: Option<InterfaceId>,
    /// A VPC CIDR block; repeat for every block (secondary blocks too). Default: the private ranges.
    #[arg(long = "vpc-cidr", value_name = "CIDR", value_parser = parse_cidr)]
    pub vpc_cidrs: Vec<IpNet>,
    /// AWS's ip-ranges.json, to recognise S3 and DynamoDB destinations (gateway endpoint remedy).
    #[arg(long, value_name = "FILE")]
    pub aws_ip_ranges: Option<PathBuf>,
    /// The region for --aws-ip-ranges and for endpoint commands.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The NAT gateway's ID, used in remedy commands.
    #[arg(long, value_name = "NAT_ID")]
    pub nat_gateway_id: Option<String>,
    /// How many destinations to list, nearest their limit first (every one near it is listed).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub top: u16,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Worker threads for reading and parsing, at most 256 (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_THREADS)))]
    pub threads: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryKindArg {
    /// Top unique destinations of the NAT gateway, by distinct NAT ports.
    TopDestinations,
    /// Distinct NAT ports per destination and minute.
    PortsPerMinute,
    /// The NAT → destination records of chosen destinations (the estimator's input).
    DestinationFlows,
    /// Top source clients of one destination.
    TopSources,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[arg(value_enum)]
    pub kind: QueryKindArg,
    /// The NAT gateway's network interface (eni-…).
    #[arg(long, value_name = "ENI", value_parser = parse_eni)]
    pub nat_interface: InterfaceId,
    /// A NAT gateway private IPv4 address; repeat for each (primary first).
    #[arg(long = "nat-ip", value_name = "IP", required = true)]
    pub nat_ips: Vec<std::net::Ipv4Addr>,
    /// A VPC IPv4 CIDR block; repeat for every block.
    #[arg(long = "vpc-cidr", value_name = "CIDR", required = true, value_parser = parse_cidr_v4)]
    pub vpc_cidrs: Vec<ipnet::Ipv4Net>,
    /// The flow log's format. Default: the version-2 default format.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub log_format: Option<LogFormat>,
    /// A destination (ADDRESS:PORT/PROTOCOL) for destination-flows and top-sources; repeatable.
    #[arg(long = "destination", value_name = "DEST")]
    pub destinations: Vec<Destination>,
    /// For top-sources: read the clients' own interface logs instead of pkt-dstaddr on the NAT's.
    #[arg(long)]
    pub client_interfaces: bool,
    /// Row limit.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

fn parse_format(s: &str) -> Result<LogFormat, String> {
    let f = LogFormat::parse(s).map_err(|e| e.to_string())?;
    natgw_core::analyze::check_format(&f).map_err(|e| e.to_string())?;
    Ok(f)
}

fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let net: IpNet = s.parse().map_err(|_| {
        "not a CIDR block: expected ADDRESS/PREFIX such as 10.0.0.0/16 (IPv4 prefix 0-32, IPv6 0-128)".to_owned()
    })?;
    // An IPv4-mapped block (::ffff:10.0.0.0/112) is the IPv4 block, as the records' addresses are
    // read (::ffff:10.0.0.7 is 10.0.0.7).
    unmapped_net(net).ok_or_else(|| {
        format!("{s} is an IPv4-mapped block with a prefix under 96: give the IPv4 block, such as 10.0.0.0/16")
    })
}

fn parse_cidr_v4(s: &str) -> Result<ipnet::Ipv4Net, String> {
    s.parse()
        .map_err(|_| "not an IPv4 CIDR block: expected ADDRESS/PREFIX such as 10.0.0.0/16 (prefix 0-32)".to_owned())
}

fn parse_eni(s: &str) -> Result<InterfaceId, String> {
    s.parse()
}

fn parse_duration(s: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("not a duration ({e}): expected a number and a unit, such as 30m, 3h or 2d"))?;
    match d.as_secs() {
        0 => Err("the duration must be at least one second".into()),
        n => Ok(n),
    }
}

fn parse_time(s: &str) -> Result<u64, String> {
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("not a time ({e}): expected RFC 3339 such as 2026-11-26T08:00:00Z"))?;
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).map_err(|_| "the time is before 1970".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_mapped_blocks_are_their_ipv4_blocks() {
        assert_eq!(parse_cidr("::ffff:10.0.0.0/112"), Ok("10.0.0.0/16".parse().unwrap()));
        assert_eq!(parse_cidr("::ffff:10.0.0.7/128"), Ok("10.0.0.7/32".parse().unwrap()));
        assert!(parse_cidr("::ffff:10.0.0.0/80").is_err_and(|e| e.contains("prefix under 96")));
        assert_eq!(parse_cidr("2001:db8::/32"), Ok("2001:db8::/32".parse().unwrap()));
    }
}
