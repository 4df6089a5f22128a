//! The `aws-natgw` binary end to end: outputs (snapshots), exit codes, bad input, pipes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};
use natgw_testkit::sim::{Scenario, Simulation};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn natgw() -> Command {
    let mut c = Command::new(get_cargo_bin("aws-natgw"));
    c.current_dir(root());
    c
}

const SAMPLE: &str = "examples/idle-leak/nat-eni-custom.log.gz";
const RANGES: &str = "examples/idle-leak/ip-ranges.json";

#[test]
fn sample_table() {
    assert_cmd_snapshot!(natgw().args(["analyze", SAMPLE, "--aws-ip-ranges", RANGES]));
}

#[test]
fn sample_json() {
    assert_cmd_snapshot!(natgw().args(["analyze", SAMPLE, "--aws-ip-ranges", RANGES, "--top", "3", "-o", "json"]));
}

#[test]
fn sample_markdown() {
    assert_cmd_snapshot!(natgw().args(["analyze", SAMPLE, "--aws-ip-ranges", RANGES, "--top", "2", "-o", "markdown"]));
}

#[test]
fn sample_html() {
    assert_cmd_snapshot!(natgw().args(["analyze", SAMPLE, "--aws-ip-ranges", RANGES, "--top", "2", "-o", "html"]));
}

#[test]
fn sample_matches_the_truth_shipped_with_it() {
    let out = natgw().args(["analyze", SAMPLE, "-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "exhaustion found");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("examples/idle-leak/truth.json")).unwrap()).unwrap();
    let hot = truth["destinations"].as_array().unwrap().iter().max_by_key(|d| d["peak"].as_u64()).unwrap();
    let top = &report["destinations"][0];
    assert_eq!(top["address"], hot["ip"]);
    assert_eq!(top["peak_connections"], hot["peak"]);
    assert_eq!(top["saturated"], true);
    assert_eq!(report["verdict"]["status"], "exhausted");
}

/// A scratch folder with the inputs of the bad-input cases, named relatively in messages.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read(root().join(SAMPLE)).unwrap();
    std::fs::write(dir.path().join("empty.log"), b"").unwrap();
    std::fs::write(dir.path().join("truncated.log.gz"), &sample[..sample.len() / 3]).unwrap();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(dir.path().join("garbage.bin"), garbage).unwrap();
    std::fs::create_dir(dir.path().join("no-logs")).unwrap();
    std::fs::write(dir.path().join("no-logs/notes.md"), b"# not a flow log\n").unwrap();
    std::fs::write(dir.path().join("header-only.log"), b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n").unwrap();
    std::fs::write(
        dir.path().join("custom-no-header.log"),
        b"10.0.1.5 10.0.0.7 40000 443 6 1780000000 1780000010 x y z\n",
    )
    .unwrap();
    // A flow log re-saved as UTF-16 (little-endian, with its byte-order mark).
    let line = "2 1 eni-0a 10.0.1.5 10.0.0.7 40000 443 6 1 100 1780000000 1780000010 ACCEPT OK\n";
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(line.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    std::fs::write(dir.path().join("utf16.log"), utf16).unwrap();
    // The same big-endian, without the mark.
    let utf16be: Vec<u8> = line.encode_utf16().flat_map(u16::to_be_bytes).collect();
    std::fs::write(dir.path().join("utf16be.log"), utf16be).unwrap();
    // UTF-32, little-endian without the mark.
    let utf32: Vec<u8> = line.chars().flat_map(|c| u32::from(c).to_le_bytes()).collect();
    std::fs::write(dir.path().join("utf32.log"), utf32).unwrap();
    // A tar archive of a flow log: a 512-byte header, `ustar` at byte 257, then the file.
    let mut tar = vec![0u8; 512];
    tar[..9].copy_from_slice(b"flows.log");
    tar[257..263].copy_from_slice(b"ustar\0");
    tar.extend_from_slice(line.as_bytes());
    std::fs::write(dir.path().join("flows.tar"), tar).unwrap();
    // Text without a line break, longer than a chunk (2 MiB); zeros (a file never written to).
    std::fs::write(dir.path().join("no-breaks.log"), vec![b'x'; 5 << 20]).unwrap();
    std::fs::write(dir.path().join("zeros.log"), vec![0u8; 3 << 20]).unwrap();
    dir
}

fn in_dir(dir: &Path) -> Command {
    let mut c = Command::new(get_cargo_bin("aws-natgw"));
    c.current_dir(dir);
    c
}

#[test]
fn bad_inputs_get_one_clear_message_and_exit_code_3() {
    let dir = scratch();
    for (name, args) in [
        ("missing", vec!["analyze", "missing.log"]),
        ("empty", vec!["analyze", "empty.log"]),
        ("truncated_gzip", vec!["analyze", "truncated.log.gz"]),
        ("binary_garbage", vec!["analyze", "garbage.bin"]),
        ("header_only", vec!["analyze", "header-only.log"]),
        ("custom_format_without_header", vec!["analyze", "custom-no-header.log"]),
        ("directory_without_flow_logs", vec!["analyze", "no-logs"]),
        ("utf16", vec!["analyze", "utf16.log"]),
        ("utf16_without_byte_order_mark", vec!["analyze", "utf16be.log"]),
        ("utf32", vec!["analyze", "utf32.log"]),
        ("tar_archive", vec!["analyze", "flows.tar"]),
        ("no_line_breaks", vec!["analyze", "no-breaks.log"]),
        ("no_line_breaks_one_thread", vec!["analyze", "no-breaks.log", "--threads", "1"]),
        ("zeros", vec!["analyze", "zeros.log"]),
    ] {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_suffix(name);
        settings.bind(|| assert_cmd_snapshot!(in_dir(dir.path()).args(&args)));
    }
}

#[test]
fn bad_values_are_usage_errors_with_exit_code_2() {
    let dir = scratch();
    for (name, args) in [
        ("cidr", vec!["analyze", "empty.log", "--vpc-cidr", "10.0.0.0/33"]),
        ("log_format_token", vec!["analyze", "empty.log", "--log-format", "${srcaddr} dstaddr"]),
        ("log_format_missing_fields", vec!["analyze", "empty.log", "--log-format", "${srcaddr} ${dstaddr}"]),
        ("nat_ip", vec!["analyze", "empty.log", "--nat-ip", "10.0.0.300"]),
        ("interface", vec!["analyze", "empty.log", "--nat-interface", "i-0123"]),
        ("stdin_twice", vec!["analyze", "-", "-"]),
        ("too_many_threads", vec!["analyze", "empty.log", "--threads", "20000"]),
        (
            "nine_nat_ips",
            vec![
                "analyze",
                "empty.log",
                "--nat-ip",
                "10.0.0.1",
                "--nat-ip",
                "10.0.0.2",
                "--nat-ip",
                "10.0.0.3",
                "--nat-ip",
                "10.0.0.4",
                "--nat-ip",
                "10.0.0.5",
                "--nat-ip",
                "10.0.0.6",
                "--nat-ip",
                "10.0.0.7",
                "--nat-ip",
                "10.0.0.8",
                "--nat-ip",
                "10.0.0.9",
            ],
        ),
    ] {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_suffix(name);
        settings.bind(|| assert_cmd_snapshot!(in_dir(dir.path()).args(&args)));
    }
}

/// A temporary directory with `logs/a.log.gz`, the bundled sample: the directory and `logs`.
fn sample_under_logs() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::copy(root().join(SAMPLE), logs.join("a.log.gz")).unwrap();
    (dir, logs)
}

/// Under a directory given, a file that is not a flow log (empty, a README, only a header) is left
/// out with a warning, and the rest is analysed; named, it is an error, and so is a directory with
/// nothing else.
#[test]
fn files_under_a_directory_that_are_not_flow_logs_are_left_out() {
    let (dir, logs) = sample_under_logs();
    std::fs::write(logs.join("b.log"), b"").unwrap();
    std::fs::write(logs.join("README.txt"), b"Flow logs of the NAT gateway, from S3.\n").unwrap();
    let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end \
                  action log-status\n";
    std::fs::write(logs.join("c.log"), header).unwrap();
    // Gzip: of nothing, and of 5 MiB of zeros (read through, as plain text is: one line too long).
    for (name, text) in [("d.log.gz", vec![]), ("e.log.gz", vec![0u8; 5 << 20])] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        std::fs::write(logs.join(name), gz.finish().unwrap()).unwrap();
    }
    let json = |out: &std::process::Output| {
        let mut r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        r["input"]["sources"] = serde_json::Value::Null;
        r
    };
    let want = natgw().args(["analyze", SAMPLE, "-o", "json"]).output().unwrap();
    // In name order, as the directory is read.
    let left_out = [
        (
            "logs/README.txt",
            "logs/README.txt: no flow-log records: line 1 has 8 fields, the log format has 14 (if this flow log \
             uses a custom format, pass it with --log-format)",
        ),
        ("logs/b.log", "logs/b.log is empty"),
        ("logs/c.log", "logs/c.log: no flow-log records: only a header line"),
        ("logs/d.log.gz", "logs/d.log.gz: the gzip stream holds no data"),
        ("logs/e.log.gz", "logs/e.log.gz: no flow-log records: line 1 is longer than 64 KiB: not a flow-log record"),
    ];
    for threads in ["1", "2"] {
        let out = in_dir(dir.path()).args(["analyze", "logs", "-o", "json", "--threads", threads]).output().unwrap();
        assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
        // The report lists them, and a note says why for the first three.
        let mut got = json(&out);
        let listed = got["input"]["left_out"].take();
        let want_listed: Vec<serde_json::Value> =
            left_out.iter().map(|(source, reason)| serde_json::json!({"source": source, "reason": reason})).collect();
        assert_eq!(listed, serde_json::Value::Array(want_listed));
        let note = got["notes"].as_array_mut().unwrap().pop().unwrap();
        assert_eq!(
            note,
            format!(
                "Left out 5 inputs found under the directories given: {}; {}; {}; and 2 more (the JSON report's \
                 input.left_out lists every one)",
                left_out[0].1, left_out[1].1, left_out[2].1
            )
        );
        let mut want = json(&want);
        want["input"]["left_out"].take();
        assert_eq!(got, want);
        let warnings: Vec<String> = left_out.iter().map(|(_, why)| format!("aws-natgw: left out: {why}")).collect();
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().collect::<Vec<_>>(), warnings);
    }
    let named = in_dir(dir.path()).args(["analyze", "logs/a.log.gz", "logs/c.log"]).output().unwrap();
    assert_eq!(named.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&named.stderr),
        "aws-natgw: logs/c.log: no flow-log records: only a header line\n"
    );
    std::fs::remove_file(logs.join("a.log.gz")).unwrap();
    let none = in_dir(dir.path()).args(["analyze", "logs"]).output().unwrap();
    assert_eq!(none.status.code(), Some(3));
    // The first few (in name order, as the directory is read) whatever the step each was found at.
    let why = format!(
        "aws-natgw: none of the 5 files found under the directories given could be read as a flow log: {}; {}; {}; \
         and 2 more\n",
        left_out[0].1, left_out[1].1, left_out[2].1
    );
    assert_eq!(String::from_utf8_lossy(&none.stderr), why);
    assert!(none.stdout.is_empty());
}

/// Under a directory given, a broken link or a link loop named like a flow-log file is left out
/// with why, like a file that is not a flow log, and so is a pipe named like one (it may never end);
/// a link back to a directory above is passed over (its files are read where they are, once). Each
/// is left out once however often its directory is given; a broken link named is an error, also
/// when its directory is given too. With nothing left, the error says why for the first few.
#[cfg(unix)]
#[test]
fn links_under_a_directory_that_lead_nowhere_are_left_out() {
    use std::os::unix::fs::symlink;
    let (dir, logs) = sample_under_logs();
    std::fs::create_dir(logs.join("sub")).unwrap();
    symlink("missing.log", logs.join("b.log")).unwrap();
    symlink("c.log", logs.join("c.log")).unwrap();
    symlink("..", logs.join("sub/up")).unwrap();
    symlink("missing", logs.join("d-not-a-log")).unwrap();
    let fifo = Command::new("mkfifo").arg(logs.join("e.log")).status().unwrap();
    assert!(fifo.success());
    let want = natgw().args(["analyze", SAMPLE, "-o", "json"]).output().unwrap();
    let json = |out: &std::process::Output| {
        let mut r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        r["input"]["sources"] = serde_json::Value::Null;
        r
    };
    let broken = "cannot read logs/b.log: no such file (a broken symbolic link)";
    let pipe = "logs/e.log is not a regular file (a pipe, a device or a socket)";
    for given in [&["logs"][..], &["logs", "logs", "./logs"]] {
        let out = in_dir(dir.path()).args(["analyze", "-o", "json"]).args(given).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{stderr}");
        let mut got = json(&out);
        let sources: Vec<serde_json::Value> =
            got["input"]["left_out"].take().as_array().unwrap().iter().map(|l| l["source"].clone()).collect();
        assert_eq!(sources, ["logs/b.log", "logs/c.log", "logs/e.log"], "{given:?}");
        got["notes"].as_array_mut().unwrap().pop();
        let mut want = json(&want);
        want["input"]["left_out"].take();
        assert_eq!(got, want);
        let left_out: Vec<&str> = stderr.lines().filter(|l| l.starts_with("aws-natgw: left out: ")).collect();
        assert_eq!(left_out.len(), 3, "{stderr}");
        assert_eq!(left_out[0], format!("aws-natgw: left out: {broken}"));
        assert!(
            left_out[1].starts_with("aws-natgw: left out: cannot read logs/c.log: ")
                && left_out[1].ends_with("(a broken symbolic link)"),
            "{stderr}"
        );
        assert_eq!(left_out[2], format!("aws-natgw: left out: {pipe}"));
    }
    // Named, alone or with its directory: an error.
    for args in [&["logs/b.log"][..], &["logs", "logs/b.log"], &["logs/b.log", "logs"]] {
        let named = in_dir(dir.path()).arg("analyze").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&named.stderr);
        assert_eq!(named.status.code(), Some(3), "{args:?}: {stderr}");
        let want = "aws-natgw: cannot open logs/b.log: no such file (a broken symbolic link)\n";
        assert!(stderr.ends_with(want), "{args:?}: {stderr}");
    }
    std::fs::remove_file(logs.join("a.log.gz")).unwrap();
    let none = in_dir(dir.path()).args(["analyze", "logs"]).output().unwrap();
    assert_eq!(none.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&none.stderr);
    let want = format!(
        "aws-natgw: none of the 3 files found under the directories given could be read as a flow log: {broken}; \
         cannot read logs/c.log: "
    );
    assert!(stderr.starts_with(&want) && stderr.ends_with(&format!("; {pipe}\n")), "{stderr}");
}

/// Under a directory given, a gzip file cut short (a download that stopped) counts the records before
/// the cut, and one corrupt from its start is left out; the report and stderr say which. Named, such
/// a file is an error.
#[test]
fn gzip_files_cut_short_under_a_directory_count_what_came_before() {
    let (dir, logs) = sample_under_logs();
    // The sample's first 1,000 lines, gzipped, the second half of the bytes gone.
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(root().join(SAMPLE)).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let head: String = text.split_inclusive('\n').take(1001).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(head.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    std::fs::write(logs.join("t.log.gz"), &gz[..gz.len() / 2]).unwrap();
    std::fs::write(logs.join("c.log.gz"), b"\x1f\x8b\x08\x00garbage").unwrap();
    // What a reader gets of the cut file before its error: whole lines, less the header.
    let mut got = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(&gz[..gz.len() / 2]);
    let mut buf = [0u8; 4096];
    while let Ok(n) = decoder.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let whole_lines = got.iter().filter(|b| **b == b'\n').count() as u64 - 1;
    assert!(whole_lines > 100, "{whole_lines}");

    let sample = natgw().args(["analyze", SAMPLE, "-o", "json"]).output().unwrap();
    let sample: serde_json::Value = serde_json::from_slice(&sample.stdout).unwrap();
    let out = in_dir(dir.path()).args(["analyze", "logs", "-o", "json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["input"]["sources"], serde_json::json!(["logs/a.log.gz", "logs/t.log.gz"]));
    let left_out = report["input"]["left_out"].as_array().unwrap();
    let reasons: Vec<&str> = left_out.iter().map(|l| l["reason"].as_str().unwrap()).collect();
    assert_eq!(
        left_out.iter().map(|l| l["source"].as_str().unwrap()).collect::<Vec<_>>(),
        ["logs/c.log.gz", "logs/t.log.gz"]
    );
    assert!(
        reasons[0].starts_with("logs/c.log.gz: gzip data is truncated or corrupt after 0 bytes of text"),
        "{reasons:?}"
    );
    assert!(reasons[1].starts_with("logs/t.log.gz: gzip data is truncated or corrupt after "), "{reasons:?}");
    // The records before the cut: the whole lines (the cut one, a bad line, unless it was whole).
    let read = report["input"]["records"].as_u64().unwrap() - sample["input"]["records"].as_u64().unwrap();
    assert!(read == whole_lines || read == whole_lines + 1, "{read} of {whole_lines}");
    let read_text = natgw_core::analyze::thousands(read);
    assert!(reasons[1].ends_with(&format!("(the {read_text} records before it are read)")), "{reasons:?}");
    let warned: Vec<&str> = stderr.lines().collect();
    assert_eq!(warned, reasons.iter().map(|r| format!("aws-natgw: left out: {r}")).collect::<Vec<_>>());
    // Named: an error.
    let named = in_dir(dir.path()).args(["analyze", "logs/a.log.gz", "logs/t.log.gz"]).output().unwrap();
    assert_eq!(named.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&named.stderr);
    assert!(stderr.starts_with("aws-natgw: logs/t.log.gz: gzip data is truncated or corrupt after "), "{stderr}");
}

/// A worker thread the system will not start (here: a limit of one or two processes for the user) is
/// one worker fewer, and with none the calling thread does the work: the same report, never a
/// failure, also when the records come out of time order and are read twice (the first pass's
/// threads may not have left the process's count when the second starts its own). Needs root to
/// run as another user with the limit (`setpriv`, `prlimit`): elsewhere it says so and checks
/// nothing.
#[cfg(target_os = "linux")]
#[test]
fn threads_the_system_will_not_start_are_done_without() {
    use std::os::unix::fs::PermissionsExt as _;
    let root_user = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let tools = ["setpriv", "prlimit"]
        .iter()
        .all(|t| Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success()));
    if !(root_user && tools) {
        eprintln!("skipped: needs root, setpriv and prlimit to run as another user under a process limit");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("aws-natgw");
    std::fs::copy(get_cargo_bin("aws-natgw"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The sample as it is, and its records in reverse (out of time order: the streams refuse them,
    // and the records are read again).
    let sample = dir.path().join("sample.log.gz");
    std::fs::copy(root().join(SAMPLE), &sample).unwrap();
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&sample).unwrap()).read_to_string(&mut text).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    let reversed = dir.path().join("reversed.log");
    std::fs::write(&reversed, lines.join("\n") + "\n").unwrap();
    for f in [&sample, &reversed] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let json = |out: &std::process::Output| {
        let mut r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        r["input"]["sources"] = serde_json::Value::Null;
        r
    };
    // As a user of its own (the limit counts every process of the user: nobody's could be running
    // beside), with at most `procs` processes and threads (this one counts).
    let uid = 2_000_000_000 + std::process::id();
    let run = |procs: Option<u32>, input: &Path, threads: &str| {
        let limit = procs.map(|n| ["prlimit".to_owned(), format!("--nproc={n}"), "--".to_owned()]);
        Command::new("setpriv")
            .args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups"])
            .args(limit.iter().flatten())
            .arg(&bin)
            .args(["analyze".as_ref(), input.as_os_str(), "-o".as_ref(), "json".as_ref(), "--threads".as_ref()])
            .arg(threads)
            .output()
            .unwrap()
    };
    for input in [&sample, &reversed] {
        let want = run(None, input, "2");
        assert_eq!(want.status.code(), Some(5), "{}", String::from_utf8_lossy(&want.stderr));
        for threads in ["2", "4"] {
            for procs in [1, 2] {
                let out = run(Some(procs), input, threads);
                let what = format!("{} with {threads} threads, {procs} processes", input.display());
                assert_eq!(out.status.code(), Some(5), "{what}: {}", String::from_utf8_lossy(&out.stderr));
                assert_eq!(json(&out), json(&want), "{what}");
            }
        }
    }
}

/// Standard input redirected from a file that is named too is left out wherever it comes, even
/// when it starts past the file's beginning: the file is read whole, once.
#[test]
fn standard_input_from_a_file_named_too_is_read_as_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::run(&Scenario::builtin("healthy").unwrap().with_duration(300)).unwrap();
    let path = dir.path().join("nat.log");
    std::fs::write(&path, sim.nat_v2()).unwrap();
    let run = |args: &[&str], skip: u64| {
        let mut stdin = std::fs::File::open(&path).unwrap();
        std::io::Seek::seek(&mut stdin, std::io::SeekFrom::Start(skip)).unwrap();
        in_dir(dir.path()).arg("analyze").args(args).args(["-o", "json"]).stdin(stdin).output().unwrap()
    };
    let want = run(&["nat.log"], 0);
    assert_eq!(want.status.code(), Some(0), "{}", String::from_utf8_lossy(&want.stderr));
    for args in [["-", "nat.log"], ["nat.log", "-"]] {
        for skip in [0, 1000] {
            let got = run(&args, skip);
            assert_eq!(got.stdout, want.stdout, "{args:?} from byte {skip}");
            assert_eq!(
                String::from_utf8_lossy(&got.stderr),
                "aws-natgw: standard input is a file named too; the file is read, whole\n",
                "{args:?} from byte {skip}"
            );
        }
    }
}

#[test]
fn a_file_with_some_bad_lines_is_analysed_and_the_lines_counted() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::run(&Scenario::builtin("healthy").unwrap().with_duration(300)).unwrap();
    let mut bytes = sim.nat_v2();
    bytes.extend_from_slice(
        b"2 123456789012 eni-0 10.0.0.1 not-an-ip 1 2 6 1 1 5 6 ACCEPT OK\n\xff\xfe\xfd binary junk\n",
    );
    std::fs::write(dir.path().join("nat.log"), bytes).unwrap();
    let out = in_dir(dir.path()).args(["analyze", "nat.log", "-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["skipped_lines"], 2);
    assert_eq!(r["bad_lines"][0]["reason"], "field dstaddr has invalid value \"not-an-ip\"");
    assert_eq!(r["bad_lines"][1]["reason"], "is not text (binary data)");
    assert!(r["findings"].as_array().unwrap().iter().any(|f| f["id"] == "skipped-lines"));
}

#[test]
fn nat_and_client_logs_together_attribute_sources_and_stdin_works() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::run(&Scenario::builtin("udp-dns").unwrap()).unwrap();
    std::fs::write(dir.path().join("nat.log"), sim.nat_v2()).unwrap();
    let mut child = in_dir(dir.path())
        .args(["analyze", "nat.log", "-", "-o", "json", "--vpc-cidr", "10.0.0.0/16"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let clients = sim.clients_v2();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&clients));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(5));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["attribution"]["method"], "client-interfaces");
    assert_eq!(r["input"]["sources"], serde_json::json!(["nat.log", "<stdin>"]));
    let top = &r["destinations"][0];
    let truth = sim.truth().destinations.iter().max_by_key(|d| d.peak).unwrap();
    assert_eq!(top["address"], truth.ip.to_string());
    assert_eq!(top["sources"][0]["address"], truth.top_clients[0].ip.to_string());
    assert_eq!(top["sources"][0]["connections"], truth.top_clients[0].attempts);
}

/// How a test hands the tool its standard input.
enum Given<'a> {
    Nothing,
    /// Through a pipe.
    Piped(&'a [u8]),
    /// Through a pipe, with no temporary directory to keep it in: it is read as it comes, in memory.
    PipedNoTmp(&'a [u8]),
    /// On this file, opened and read up to this offset already (the tool reads from there).
    File(&'a Path, u64),
}

/// Files read one after the other stream (memory flat); records out of time order are read again and
/// kept in memory. Standard input is kept in a temporary file and read like a file, so it streams
/// and falls back alike; with no room for that file it is read as it comes, in memory. Every way,
/// with the NAT gateway given or inferred, the report is the same.
#[test]
fn records_out_of_time_order_give_the_same_report_from_files_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::run(&Scenario::builtin("hot-s3").unwrap()).unwrap();
    let text = sim.nat_v2();
    let mut lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
    let header = lines.remove(0);
    let mut reversed = header.to_vec();
    lines.iter().rev().for_each(|l| reversed.extend_from_slice(l));
    std::fs::write(dir.path().join("in-order.log"), &text).unwrap();
    std::fs::write(dir.path().join("reversed.log"), &reversed).unwrap();
    // The log after some text that the shell (say) has read already.
    let read_already = b"2 1 eni-0a 10.0.0.7 203.0.0.1 2000 443 6 1 100 1780000000 1780000001 ACCEPT OK\n";
    std::fs::write(dir.path().join("after.log"), [&read_already[..], &text].concat()).unwrap();
    for nat in [&["--nat-ip", "10.0.0.142"][..], &[]] {
        let args = [nat, &["--vpc-cidr", "10.0.0.0/16", "--vpc-cidr", "100.64.0.0/16", "-o", "json"]].concat();
        let report = |file: &str, stdin: Given<'_>| {
            let mut cmd = in_dir(dir.path());
            cmd.arg("analyze").arg(file).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped());
            let input = match stdin {
                Given::Nothing => None,
                Given::Piped(t) => Some(t.to_vec()),
                Given::PipedNoTmp(t) => {
                    // $TMPDIR on unix, %TMP% or %TEMP% on Windows.
                    for var in ["TMPDIR", "TMP", "TEMP"] {
                        cmd.env(var, dir.path().join("no-such-dir"));
                    }
                    Some(t.to_vec())
                }
                Given::File(path, offset) => {
                    let mut f = std::fs::File::open(path).unwrap();
                    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).unwrap();
                    cmd.stdin(f);
                    None
                }
            };
            if input.is_some() {
                cmd.stdin(Stdio::piped());
            }
            let mut child = cmd.spawn().unwrap();
            let writer = input.map(|bytes| {
                let mut pipe = child.stdin.take().unwrap();
                std::thread::spawn(move || pipe.write_all(&bytes))
            });
            let out = child.wait_with_output().unwrap();
            if let Some(w) = writer {
                w.join().unwrap().unwrap();
            }
            let mut r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            r["input"]["sources"] = serde_json::Value::Null;
            (out.status.code(), r, String::from_utf8_lossy(&out.stderr).into_owned())
        };
        let want = report("in-order.log", Given::Nothing);
        assert_eq!(want.0, Some(5), "{nat:?}");
        assert_eq!(want.2, "", "{nat:?}");
        assert_eq!(report("reversed.log", Given::Nothing), want, "{nat:?}");
        assert_eq!(report("-", Given::Piped(&text)), want, "{nat:?}");
        assert_eq!(report("-", Given::Piped(&reversed)), want, "{nat:?}");
        let after = dir.path().join("after.log");
        assert_eq!(report("-", Given::File(&after, read_already.len() as u64)), want, "{nat:?}");
        let (code, r, stderr) = report("-", Given::PipedNoTmp(&text));
        assert_eq!((code, r), (want.0, want.1.clone()), "{nat:?}");
        assert!(
            stderr.starts_with("aws-natgw: reading standard input into memory: cannot keep it in a temporary file in "),
            "{stderr}"
        );
    }
}

/// Endless input on standard input that is plainly not flow-log text is refused early, not kept
/// in a temporary file until the disk is full: without a line break (`< /dev/zero`, after 4 MiB),
/// with a NUL byte before its first line break (`/dev/urandom`), in a wide encoding.
#[test]
fn endless_binary_input_is_refused_early() {
    let random: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let spaces = vec![b' '; 1 << 20];
    let utf16: Vec<u8> = "2 1 eni-0a 10.0.1.5 10.0.0.7 40000 443 6 1 100 1780000000 1780000010 ACCEPT OK\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .cycle()
        .take(1 << 20)
        .collect();
    for (what, block, why) in [
        ("spaces", spaces, "has no line break in the first 4 MiB: not a flow-log file"),
        ("random", random, "is binary data, not flow-log text"),
        ("utf16", utf16, "is UTF-16 text; flow logs are ASCII: convert it first (iconv -f UTF-16 -t UTF-8)"),
    ] {
        let mut child = natgw()
            .args(["analyze", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        // Writes until the reader goes away (or 1 GiB, if it never does).
        let writer = std::thread::spawn(move || (0..1024).take_while(|_| pipe.write_all(&block).is_ok()).count());
        let out = child.wait_with_output().unwrap();
        assert!(writer.join().unwrap() < 64, "{what}: the input was read on");
        assert_eq!(out.status.code(), Some(3), "{what}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), format!("aws-natgw: <stdin> {why}\n"), "{what}");
        assert!(out.stdout.is_empty(), "{what}");
    }
}

#[test]
fn a_closed_pipe_is_a_clean_exit_that_keeps_the_verdict() {
    // Output far larger than a pipe's buffer (5,000 destinations as JSON), so the tool is still
    // writing when the reader goes away, whatever the timing.
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for i in 0..5_000u32 {
        let (a, b) = (i / 256, i % 256);
        log += &format!("2 1 eni-0a 10.0.0.7 203.0.{a}.{b} {} 443 6 1 100 1780000000 1780000001 ACCEPT OK\n", 2000 + i);
    }
    std::fs::write(dir.path().join("many.log"), &log).unwrap();
    // The same, and 56,000 connections at once to one destination: exhausted (exit 5).
    for port in 1024..57_024u32 {
        log += &format!("2 1 eni-0a 10.0.0.7 198.51.100.9 {port} 443 6 1 100 1780000000 1780000059 ACCEPT OK\n");
    }
    std::fs::write(dir.path().join("exhausted.log"), &log).unwrap();
    for (file, verdict) in [("many.log", 0), ("exhausted.log", 5)] {
        let mut child = in_dir(dir.path())
            .args(["analyze", file, "--nat-ip", "10.0.0.7", "--top", "5000", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then drop: the pipe closes
        let out = child.wait_with_output().unwrap();
        // The reader going away is no error, and the exit code still says what was found.
        assert_eq!(out.status.code(), Some(verdict), "{file}; stderr: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{file}; stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// CloudWatch Logs' export to S3 writes each event's time before it: read as the records alone, plain
/// or gzip, and files joined with `cat` (a header each) read as the files one by one.
#[test]
fn exports_and_joined_files_read_as_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
    let mut plain = String::new();
    for i in 0..300u32 {
        let t = 1_780_000_000 + i;
        plain += &format!("2 1 eni-0a 10.0.1.{} 10.0.0.7 {} 443 6 1 100 {t} {} ACCEPT OK\n", i % 7, 30_000 + i, t + 20);
        plain +=
            &format!("2 1 eni-0a 10.0.0.7 52.216.1.{} {} 443 6 1 100 {t} {} ACCEPT OK\n", i % 3, 2_000 + i, t + 20);
    }
    let export: String = plain.lines().map(|l| format!("2026-05-28T20:30:00.000Z {l}\n")).collect();
    let (first, second) = plain.split_at(plain.len() / 2 + plain[plain.len() / 2..].find('\n').unwrap() + 1);
    std::fs::write(dir.path().join("plain.log"), &plain).unwrap();
    std::fs::write(dir.path().join("export.log"), &export).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(export.as_bytes()).unwrap();
    std::fs::write(dir.path().join("export.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.path().join("joined.log"), format!("{header}{first}{header}{second}")).unwrap();
    let report = |file: &str| {
        let out = in_dir(dir.path()).args(["analyze", file, "--nat-ip", "10.0.0.7", "-o", "json"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["input"]["sources"] = serde_json::Value::Null;
        json["input"]["log_formats"] = serde_json::Value::Null;
        json
    };
    let want = report("plain.log");
    assert_eq!(want["input"]["records"], 600);
    for file in ["export.log", "export.gz", "joined.log"] {
        assert_eq!(report(file), want, "{file}");
    }
}

#[test]
fn queries_for_the_console() {
    let base =
        ["query", "--nat-interface", "eni-0a1b2c3d4e5f60718", "--nat-ip", "10.0.0.7", "--vpc-cidr", "10.0.0.0/16"];
    for (name, extra) in [
        ("top_destinations", vec!["top-destinations"]),
        (
            "top_sources_custom",
            vec![
                "top-sources",
                "--destination",
                "52.216.8.10:443/tcp",
                "--log-format",
                natgw_core::findings::RECOMMENDED_LOG_FORMAT,
            ],
        ),
        ("top_sources_default_needs_pkt_dstaddr", vec!["top-sources", "--destination", "52.216.8.10:443/tcp"]),
        (
            "destination_flows",
            vec!["destination-flows", "--destination", "52.216.8.10:443/tcp", "--destination", "198.51.100.53:53/udp"],
        ),
    ] {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_suffix(name);
        settings.bind(|| assert_cmd_snapshot!(natgw().args(base).args(&extra)));
    }
}

/// `aws-natgw` with no AWS configuration at all: no profile files, no keys, no IMDS.
fn no_aws(home: &Path) -> Command {
    let mut c = natgw();
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        c.env_remove(k);
    }
    c.env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

#[test]
fn live_commands_say_what_to_configure() {
    let home = tempfile::tempdir().unwrap();
    let out = no_aws(home.path()).args(["diagnose", "nat-0123456789abcdef0", "--since", "1h"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("aws-natgw: no AWS region configured. Pass --region REGION, set AWS_REGION"),
        "{stderr}"
    );

    let out = no_aws(home.path()).args(["doctor", "nat-0123456789abcdef0", "--region", "eu-west-1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("aws-natgw: no usable AWS credentials: "), "{stderr}");
    assert!(stderr.contains("aws sso login --profile NAME"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, no stack trace: {stderr}");
}

/// A `--nat-ip` that cannot be the gateway's stops the analysis with the reason: outside the VPC's
/// blocks before any record is read (usage), a client's address beside the gateway's once the
/// records between them show it (input).
#[test]
fn nat_addresses_that_are_not_the_gateways_are_refused() {
    for (nat, code, want) in [
        (&["--nat-ip", "10.0.0.214", "--nat-ip", "203.0.113.45"][..], 2, "203.0.113.45 is not inside the VPC's blocks"),
        (&["--nat-ip", "10.0.0.214", "--nat-ip", "10.0.3.28"][..], 3, "records go between 10.0.0.214 and 10.0.3.28"),
        (&["--nat-ip", "10.0.3.28"][..], 3, "to outside the VPC, as a gateway's address does"),
    ] {
        let out = natgw().args(["analyze", SAMPLE, "--vpc-cidr", "10.0.0.0/16"]).args(nat).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{nat:?}: {stderr}");
        assert!(stderr.contains(want), "{nat:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{nat:?}: nothing half-written");
    }
}

/// An address given beside the gateway's that carries no connection does not raise the limit: the
/// bundled incident stays exhausted at 55,000, and the report says why the address was left out.
#[test]
fn a_nat_address_without_connections_does_not_raise_the_limit() {
    let out = natgw()
        .args(["analyze", SAMPLE, "--vpc-cidr", "10.0.0.0/16", "--nat-ip", "10.0.0.214", "--nat-ip", "10.0.0.99"])
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"]["status"], "exhausted");
    assert_eq!(report["input"]["limit_per_destination"], 55_000);
    assert_eq!(report["destinations"][0]["limit"], 55_000);
    let unused: Vec<&serde_json::Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["id"] == "nat-address-unused").collect();
    assert_eq!(unused.len(), 1);
    let summary = unused[0]["summary"].as_str().unwrap();
    assert!(summary.starts_with("NAT address 10.0.0.99 was given but carries no connection"), "{summary}");
    assert!(summary.ends_with("the limit leaves it out, 55,000 per destination with 1 address"), "{summary}");
}

/// A secondary address attached after the exhaustion (the remedy) counts from its first connection
/// on: the exhaustion before it stays at 55,000, not half of 110,000.
#[test]
fn an_address_attached_after_the_exhaustion_does_not_hide_it() {
    let dir = tempfile::tempdir().unwrap();
    let head = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport \
                pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status flow-direction \
                pkt-dst-aws-service az-id\n";
    let mut text = head.to_owned();
    for k in 1..=3 {
        let (c, n, h) = ("10.0.1.53", "10.0.0.214", "52.217.140.9");
        let (cp, np) = (50_000 + k, 30_000 + k);
        for (src, dst, sport, dport, psrc, pdst, flags, dir) in [
            (c, n, cp, 443, c, h, 3, "ingress"),
            ("10.0.0.99", h, np, 443, "10.0.0.99", h, 3, "egress"),
            (h, n, 443, np, h, "10.0.0.99", 19, "ingress"),
            (n, c, 443, cp, h, c, 19, "egress"),
        ] {
            text += &format!(
                "5 vpc-028d7f353e2fa1859 subnet-0b53887b5a575603d - eni-06d53c48933ca19f8 123456789012 IPv4 {src} {dst} \
                 {sport} {dport} {psrc} {pdst} 6 400 3 1780000700 1780000705 ACCEPT {flags} OK {dir} - use1-az1\n"
            );
        }
    }
    let later = dir.path().join("secondary-later.log");
    std::fs::write(&later, text).unwrap();
    for nat in [&["--nat-ip", "10.0.0.214", "--nat-ip", "10.0.0.99"][..], &[]] {
        let out = natgw()
            .args(["analyze", SAMPLE, later.to_str().unwrap(), "--vpc-cidr", "10.0.0.0/16", "-o", "json"])
            .args(nat)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{nat:?}: {}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["input"]["limit_per_destination"], 110_000, "{nat:?}");
        let top = &report["destinations"][0];
        assert_eq!((top["address"].as_str(), top["limit"].as_u64()), (Some("203.0.113.45"), Some(55_000)), "{nat:?}");
        assert_eq!(top["peak_connections"], 55_000, "{nat:?}");
        assert!(report["findings"].as_array().unwrap().iter().all(|f| f["id"] != "unexplained-drops"), "{nat:?}");
    }
}

#[test]
fn live_flags_are_checked_before_any_call() {
    for (args, want) in [
        (&["diagnose", "nat-1", "--since", "3 fortnights"][..], "not a duration"),
        (&["diagnose", "nat-1", "--start", "yesterday", "--end", "2026-11-26T09:00:00Z"][..], "not a time"),
        (
            &["metrics", "nat-1", "--start", "2026-11-26T10:00:00Z", "--end", "2026-11-26T09:00:00Z"][..],
            "--end must come after --start",
        ),
        (&["scan", "--all-regions", "--region", "eu-west-1"][..], "cannot be used with"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let out = no_aws(home.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
