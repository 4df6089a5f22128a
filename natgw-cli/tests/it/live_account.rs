//! Smoke test against a real AWS account, `#[ignore]`d: run by `cargo xtask live-test` with the
//! caller's own credentials (AWS_PROFILE / AWS_REGION or the default chain). Read-only, like every
//! natgw call. `NATGW_LIVE_NAT=nat-…` adds doctor and diagnose of that gateway (Logs Insights queries
//! are billed per GB scanned: `NATGW_LIVE_SINCE`, default 30m, bounds the window).

use std::process::Output;

use serde_json::Value;

use crate::cli::natgw;

fn json(args: &[&str], codes: &[i32]) -> Value {
    let out: Output = natgw().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("aws-natgw {}: exit {:?}\n{stderr}", args.join(" "), out.status.code());
    assert!(out.status.code().is_some_and(|c| codes.contains(&c)), "exit {:?}: {stderr}", out.status.code());
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"))
}

#[test]
#[ignore = "needs an AWS account: cargo xtask live-test"]
fn live_account_smoke() {
    let since = std::env::var("NATGW_LIVE_SINCE").unwrap_or_else(|_| "30m".into());
    let scan = json(&["scan", "--since", &since, "-o", "json"], &[0, 5]);
    let gateways = scan["gateways"].as_array().unwrap();
    eprintln!("{} NAT gateway(s): {}", gateways.len(), scan["verdict"]["summary"]);
    let Ok(nat) = std::env::var("NATGW_LIVE_NAT") else {
        eprintln!("NATGW_LIVE_NAT not set: doctor and diagnose skipped");
        return;
    };
    let doctor = json(&["doctor", &nat, "-o", "json"], &[0, 4, 6]);
    assert!(doctor["nat_gateway_id"].as_str().is_some_and(|id| id.starts_with("nat-")), "{doctor}");
    let report = json(&["diagnose", &nat, "--since", &since, "-o", "json"], &[0, 4, 5]);
    let live = &report["live"];
    assert!(live.is_object(), "a live report carries its evidence");
    eprintln!(
        "{}; {} queries, {} bytes scanned (~${})",
        report["verdict"]["summary"],
        live["queries"].as_array().map_or(0, Vec::len),
        live["bytes_scanned"],
        live["estimated_cost_usd"]
    );
}
