//! The live commands (`diagnose`, `doctor`, `metrics`, `scan`): build the AWS adapter, run natgw-aws'
//! orchestration on a small tokio runtime, stop running Logs Insights queries on Ctrl-C, render.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use natgw_aws::live::{self, DiagnoseOptions, Engine, GatewayHealth, LiveError};
use natgw_aws::runner::{QueryRunner, RunnerOptions};
use natgw_aws::{AwsApi, AwsOptions, SdkAws};
use natgw_core::analyze::thousands;
use natgw_core::metrics::MetricSummary;
use natgw_core::report::{Severity, Status};
use natgw_core::time::Timestamp;

use crate::args::{AwsArgs, DiagnoseArgs, DoctorArgs, EngineArg, MetricsArgs, PlainOutput, ScanArgs, TimeArgs};
use crate::render;
use crate::{Failure, emit, exit};

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(exit::ERROR, format!("cannot start the async runtime: {e}")))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `[start, end)` in Unix seconds, whole minutes.
fn range(t: &TimeArgs) -> Result<(u64, u64), Failure> {
    let end = t.end.unwrap_or_else(now);
    let start = t.start.unwrap_or(end.saturating_sub(t.since));
    if end <= start {
        return Err(Failure::new(exit::USAGE, "--end must come after --start"));
    }
    Ok((start / 60 * 60, end.div_ceil(60) * 60))
}

fn aws_failure(e: impl std::fmt::Display) -> Failure {
    Failure::new(exit::ERROR, e.to_string())
}

async fn adapter(a: &AwsArgs) -> Result<SdkAws, Failure> {
    let options =
        AwsOptions { region: a.region.clone(), profile: a.profile.clone(), endpoint_url: a.endpoint_url.clone() };
    SdkAws::new(&options).await.map_err(aws_failure)
}

fn progress(line: &str) {
    let _ = writeln!(io::stderr(), "aws-natgw: {line}");
}

pub(crate) fn status_code(s: Status) -> u8 {
    match s {
        Status::Healthy => exit::HEALTHY,
        Status::AtRisk => exit::AT_RISK,
        Status::Exhausted => exit::EXHAUSTED,
    }
}

pub fn diagnose(a: DiagnoseArgs) -> Result<u8, Failure> {
    let (start, end) = range(&a.time)?;
    let rt = runtime()?;
    let report = rt.block_on(async {
        let api = adapter(&a.aws).await?;
        let runner = QueryRunner::new(&api, RunnerOptions::default());
        let mut opts = DiagnoseOptions::new(&a.nat, start, end);
        opts.engine = match a.engine {
            EngineArg::Insights => Engine::Insights,
            EngineArg::Local => Engine::Local,
        };
        opts.top = usize::from(a.top);
        opts.max_events = a.max_events;
        let diagnosis = live::diagnose(&api, &runner, &opts, &progress);
        tokio::pin!(diagnosis);
        tokio::select! {
            r = &mut diagnosis => r.map_err(live_failure),
            _ = tokio::signal::ctrl_c() => {
                let n = runner.stop_all().await;
                // Let a StartQuery already on the wire come back, so its query is stopped too.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), &mut diagnosis).await;
                Err(Failure::new(exit::INTERRUPTED, format!("interrupted; stopped {n} running Logs Insights quer{}",
                    if n == 1 { "y" } else { "ies" })))
            }
        }
    })?;
    emit(status_code(report.verdict.status), |out| render::report(&report, a.output, out))
}

fn live_failure(e: LiveError) -> Failure {
    match e {
        LiveError::Analysis(e) => Failure::new(exit::INPUT, e.to_string()),
        e => aws_failure(e),
    }
}

pub fn doctor(a: DoctorArgs) -> Result<u8, Failure> {
    let rt = runtime()?;
    let (discovery, prereqs) = rt.block_on(async {
        let api = adapter(&a.aws).await?;
        let nat = live::find_nat(&api, &a.nat).await.map_err(live_failure)?;
        let d = live::discover(&api, nat).await.map_err(live_failure)?;
        let p = d.prerequisites();
        Ok::<_, Failure>((d, p))
    })?;
    let worst = prereqs.findings.iter().map(|f| f.severity).max();
    let code = if !prereqs.can_query() {
        exit::NOT_READY
    } else if worst >= Some(Severity::Warning) {
        exit::AT_RISK
    } else {
        exit::HEALTHY
    };
    emit(code, |out| {
        match a.output {
            PlainOutput::Json => {
                let v = serde_json::json!({
                    "nat_gateway_id": discovery.nat.id,
                    "vpc_id": discovery.nat.vpc_id,
                    "ready": prereqs.can_query(),
                    "nat_log_group": prereqs.nat_source.as_ref().map(|s| &s.log_group),
                    "nat_flow_log": prereqs.nat_source.as_ref().map(|s| &s.flow_log_id),
                    "client_log_group": prereqs.client_source.as_ref().map(|s| &s.log_group),
                    "flow_logs": discovery.flow_logs,
                    "findings": prereqs.findings,
                });
                render::json_value(&v, out)?;
            }
            PlainOutput::Table => {
                let nat = &discovery.nat;
                writeln!(
                    out,
                    "{}  {} ({}, {} address(es), interface {})",
                    if prereqs.can_query() { "READY" } else { "NOT READY" },
                    nat.id,
                    nat.state,
                    nat.addresses.len(),
                    nat.interface_ids().first().map(ToString::to_string).unwrap_or_else(|| "-".into())
                )?;
                for f in &discovery.flow_logs {
                    writeln!(
                        out,
                        "  flow log {} on {}: {:?} → {} ({} s, {})",
                        f.id,
                        f.resource_id,
                        f.traffic_type,
                        f.log_group.as_deref().or(f.destination.as_deref()).unwrap_or("-"),
                        f.max_aggregation_interval,
                        f.deliver_status.as_deref().unwrap_or("-")
                    )?;
                }
                if discovery.flow_logs.is_empty() {
                    writeln!(out, "  no flow log on the NAT interface, its subnet, the VPC or the client subnets")?;
                }
                writeln!(out)?;
                render::findings(&prereqs.findings, out)?;
                if prereqs.findings.is_empty() {
                    writeln!(out, "Every prerequisite is met: `aws-natgw diagnose {}` can run.", nat.id)?;
                }
            }
        }
        Ok(())
    })
}

pub fn metrics(a: MetricsArgs) -> Result<u8, Failure> {
    let (start, end) = range(&a.time)?;
    let rt = runtime()?;
    let (nat, series) = rt.block_on(async {
        let api = adapter(&a.aws).await?;
        let nat = live::find_nat(&api, &a.nat).await.map_err(live_failure)?;
        let series = live::fetch_metrics(&api, &nat.id, start, end).await.map_err(aws_failure)?;
        Ok::<_, Failure>((nat, series))
    })?;
    let summaries: Vec<MetricSummary> = series.iter().map(MetricSummary::of).collect();
    let errors = summaries.iter().find(|m| m.metric == natgw_core::metrics::ERROR_PORT_ALLOCATION);
    let code = if errors.is_some_and(|m| m.total > 0.0) { exit::EXHAUSTED } else { exit::HEALTHY };
    emit(code, |out| {
        match a.output {
            PlainOutput::Json => {
                let v = serde_json::json!({
                    "nat_gateway_id": nat.id, "start": Timestamp(start), "end": Timestamp(end),
                    "period_secs": live::period_for(start, end), "metrics": summaries,
                });
                render::json_value(&v, out)?;
            }
            PlainOutput::Table => {
                writeln!(out, "{}  {} → {}", nat.id, Timestamp(start), Timestamp(end))?;
                render::metric_lines(&summaries, start, end, live::period_for(start, end), out)?;
            }
        }
        Ok(())
    })
}

pub fn scan(a: ScanArgs) -> Result<u8, Failure> {
    let (start, end) = range(&a.time)?;
    let rt = runtime()?;
    let (rows, failed_regions) = rt.block_on(async {
        let api = adapter(&a.aws).await?;
        let regions = if a.all_regions { api.describe_regions().await.map_err(aws_failure)? } else { Vec::new() };
        if regions.is_empty() {
            let rows = live::scan(&api, start, end, usize::from(a.concurrency)).await.map_err(aws_failure)?;
            return Ok::<_, Failure>((rows, 0));
        }
        progress(&format!("scanning {} regions", regions.len()));
        let apis: Vec<SdkAws> = regions.iter().map(|r| api.with_region(r)).collect();
        let per_region = futures_util::future::join_all(
            apis.iter().map(|api| live::scan(api, start, end, usize::from(a.concurrency))),
        )
        .await;
        let mut rows: Vec<GatewayHealth> = Vec::new();
        let mut failed = 0;
        for (region, r) in regions.iter().zip(per_region) {
            match r {
                Ok(mut v) => rows.append(&mut v),
                Err(e) => {
                    failed += 1;
                    progress(&format!("{region}: {e}"));
                }
            }
        }
        live::worst_first(&mut rows);
        Ok((rows, failed))
    })?;
    let verdict = live::scan_verdict(&rows);
    let code = emit(status_code(verdict.status), |out| {
        match a.output {
            PlainOutput::Json => {
                let v = serde_json::json!({
                    "start": Timestamp(start), "end": Timestamp(end), "verdict": verdict, "gateways": rows,
                });
                render::json_value(&v, out)?;
            }
            PlainOutput::Table => {
                writeln!(out, "{}", verdict.summary)?;
                writeln!(
                    out,
                    "{:<14} {:<23} {:<20} {:<10} {:>10} {:>8} {:>12}  FIRST ERROR",
                    "REGION", "NAT GATEWAY", "NAME", "STATE", "ERRORS", "MINUTES", "PEAK ACTIVE"
                )?;
                for r in &rows {
                    writeln!(
                        out,
                        "{:<14} {:<23} {:<20} {:<10} {:>10} {:>8} {:>12}  {}",
                        r.region.as_deref().unwrap_or("-"),
                        r.id,
                        r.name.as_deref().unwrap_or("-"),
                        r.state,
                        thousands(r.errors),
                        r.error_minutes,
                        r.peak_active_connections.map_or("-".into(), thousands),
                        r.error.as_deref().map_or_else(
                            || r.first_error_at.map_or("-".into(), |t| t.to_string()),
                            |e| format!("metrics unavailable: {e}")
                        )
                    )?;
                }
            }
        }
        Ok(())
    })?;
    let unread = rows.iter().filter(|r| r.error.is_some()).count() + failed_regions;
    if verdict.status == Status::Healthy && unread > 0 {
        return Err(Failure::new(
            exit::ERROR,
            format!("the metrics of {unread} gateway(s) or region(s) could not be read: \"no errors\" is not proven"),
        ));
    }
    Ok(code)
}
