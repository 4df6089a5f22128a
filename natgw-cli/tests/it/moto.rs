//! `aws-natgw diagnose --engine local`, `doctor` and `metrics` end to end against moto, a
//! third-party AWS emulator (EC2, CloudWatch Logs; CloudWatch metrics through the test kit's
//! RPC v2 CBOR proxy). Logs Insights is not emulated by moto: the Insights engine is covered by the
//! orchestration tests (natgw-testkit/tests/live.rs) and the adapter's smithy mocks. Needs the venv
//! of `cargo xtask moto-venv` (`cargo xtask test` builds it); no network beyond 127.0.0.1.

use std::process::{Command, Output};

use natgw_testkit::moto::{Moto, SeedMode, recent};
use natgw_testkit::sim::{Scenario, Simulation, Verdict};
use serde_json::Value;

use crate::cli::natgw;

fn run(moto: &Moto, args: &[&str]) -> (Output, Value) {
    let mut c: Command = natgw();
    moto.apply(&mut c);
    let out = c.args(args).output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}), exit {:?}\nstdout: {}\nstderr: {}\nmoto: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            moto.logs()
        )
    });
    (out, json)
}

#[test]
fn diagnose_local_engine_finds_the_exhaustion_moto_holds() {
    // idle-leak, 8 minutes: the leak starts at 2 min, the ports run out after about 7.
    let sim = Simulation::run(&recent(Scenario::builtin("idle-leak").unwrap().with_duration(480))).unwrap();
    let truth = sim.truth();
    assert_eq!(truth.verdict, Verdict::Exhaustion);
    let top = truth.destinations.iter().max_by_key(|d| (d.peak, d.attempts)).unwrap();
    let moto = Moto::start().unwrap();
    let seeded = moto.seed(&sim, SeedMode::Diagnose).unwrap_or_else(|e| panic!("{e}\n{}", moto.logs()));
    let ts = |t: u64| natgw_core::time::Timestamp(t).to_string();
    let (start, end) = (ts(seeded.start / 60 * 60), ts(seeded.end.div_ceil(60) * 60 + 60));
    let nat = seeded.nat_gateway_id.as_str();

    let (out, report) =
        run(&moto, &["diagnose", nat, "--engine", "local", "--start", &start, "--end", &end, "-o", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "exit 5: exhausted\n{stderr}");
    assert_eq!(report["verdict"]["status"], "exhausted", "{stderr}");
    let d = &report["destinations"][0];
    assert_eq!(d["address"], top.ip.to_string());
    assert_eq!(d["port"], top.port);
    assert_eq!(d["peak_connections"], 55_000);
    assert_eq!(d["saturated"], true);
    let errors = sim.metrics().total("ErrorPortAllocation");
    assert_eq!(d["evidence"]["error_port_allocation"], errors, "CloudWatch's count through the CBOR proxy");
    let live = &report["live"];
    assert_eq!(live["engine"], "local");
    assert!(live["events_pulled"].as_u64().unwrap() > 100_000);
    assert_eq!(live["log_group"], seeded.log_group.as_deref().unwrap());
    assert_eq!(report["input"]["nat_addresses"][0], seeded.nat_private_ip.to_string());
    assert_eq!(report["attribution"]["method"], "pkt-dstaddr");
    let want: Vec<String> = top.top_clients.iter().take(3).map(|c| c.ip.to_string()).collect();
    let got: Vec<String> =
        d["sources"].as_array().unwrap().iter().take(3).map(|s| s["address"].as_str().unwrap().to_owned()).collect();
    assert_eq!(got, want);

    // The table: the verdict, the metrics' sparklines, what was read.
    let mut c = natgw();
    moto.apply(&mut c);
    let out = c.args(["diagnose", nat, "--engine", "local", "--start", &start, "--end", &end]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    assert_eq!(out.status.code(), Some(5));
    assert!(table.starts_with("EXHAUSTED  Port exhaustion: "), "{table}");
    let spark = table.lines().find(|l| l.trim_start().starts_with("ErrorPortAllocation")).unwrap();
    assert!(spark.contains('█') && spark.contains(&format!("total {}", natgw_core::analyze::thousands(errors))));
    assert!(table.contains("FLOW LOGS  ") && table.contains("FilterLogEvents, "), "{table}");

    // The fleet view: one gateway, with its errors.
    let (out, scan) = run(&moto, &["scan", "--start", &start, "--end", &end, "-o", "json"]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(scan["gateways"][0]["id"], nat);
    assert_eq!(scan["gateways"][0]["errors"], errors);

    // The same gateway's metrics, and an unknown gateway named with the region's list.
    let (out, m) = run(&moto, &["metrics", nat, "--start", &start, "--end", &end, "-o", "json"]);
    assert_eq!(out.status.code(), Some(5));
    let epa = m["metrics"].as_array().unwrap().iter().find(|s| s["metric"] == "ErrorPortAllocation").unwrap();
    assert_eq!(epa["total"].as_f64().unwrap() as u64, errors);

    let mut c = natgw();
    moto.apply(&mut c);
    let out = c.args(["diagnose", "nat-00000000000000000", "--since", "1h"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("NAT gateway nat-00000000000000000 not found in us-east-1; the region has: ")
            && stderr.contains(nat),
        "{stderr}"
    );
}

#[test]
fn doctor_names_each_gap_with_the_command_that_closes_it() {
    let sim = Simulation::run(&recent(Scenario::builtin("healthy").unwrap().with_duration(120))).unwrap();
    let moto = Moto::start().unwrap();
    let seeded = moto.seed(&sim, SeedMode::Doctor).unwrap_or_else(|e| panic!("{e}\n{}", moto.logs()));
    let want: &[(&str, i32, &[&str])] = &[
        ("no-flow-log", 6, &["no-flow-logs"]),
        ("s3-only", 6, &["flow-logs-s3-only"]),
        ("default-format-600s", 4, &["flow-logs-600s", "no-pkt-dstaddr", "no-tcp-flags"]),
    ];
    for (case, code, ids) in want {
        let c = seeded.doctor_cases.iter().find(|c| c.case == *case).unwrap_or_else(|| panic!("no {case} case"));
        let (out, v) = run(&moto, &["doctor", &c.nat_gateway_id, "-o", "json"]);
        assert_eq!(out.status.code(), Some(*code), "{case}: {}", String::from_utf8_lossy(&out.stderr));
        let got: Vec<&str> = v["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
        for id in *ids {
            assert!(got.contains(id), "{case}: {id} missing from {got:?}");
        }
        let first = &v["findings"][0]["remedies"][0]["command"];
        assert!(first.as_str().unwrap().starts_with("aws ec2 create-flow-logs "), "{case}: {first}");
        assert!(first.as_str().unwrap().contains(&c.nat_interface), "{case}: the NAT's own interface");
    }
}

#[test]
fn runs_as_aws_natgw_through_an_aws_cli_alias() {
    let sim = Simulation::run(&recent(Scenario::builtin("healthy").unwrap().with_duration(120))).unwrap();
    let moto = Moto::start().unwrap();
    let seeded = moto.seed(&sim, SeedMode::Doctor).unwrap_or_else(|e| panic!("{e}\n{}", moto.logs()));
    let case = seeded.doctor_cases.iter().find(|c| c.case == "no-flow-log").unwrap();
    let home = tempfile::tempdir().unwrap();
    let alias_dir = home.path().join(".aws").join("cli");
    std::fs::create_dir_all(&alias_dir).unwrap();
    let bin = insta_cmd::get_cargo_bin("aws-natgw");
    std::fs::write(alias_dir.join("alias"), format!("[toplevel]\nnatgw = !{}\n", bin.display())).unwrap();
    let aws = moto.python().with_file_name("aws");
    let mut c = Command::new(aws);
    moto.apply(&mut c);
    let out = c.env("HOME", home.path()).args(["natgw", "doctor", &case.nat_gateway_id]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The alias passes the arguments and the exit code through (6: the flow logs cannot be queried).
    assert_eq!(out.status.code(), Some(6), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with(&format!("NOT READY  {}", case.nat_gateway_id)), "{stdout}");
    assert!(stdout.contains("$ aws ec2 create-flow-logs --resource-type NetworkInterface"), "{stdout}");
}
