//! Benchmark inputs for `cargo xtask bench`, made by the simulator: a long hot-S3 incident (the
//! scenario's pattern repeated), as one plain 10 M-line v2 file, the same lines as 1,000 gzip files of
//! 10,000 lines (as S3 delivers them), a custom-format variant, and the plain file's lines four times
//! over in time (for the peak RSS's dependence on the input's length).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::Compression;
use flate2::write::GzEncoder;
use natgw_testkit::sim::{Scenario, Simulation};

/// Lines per benchmark file (records; a header line comes on top).
pub const LINES: usize = 10_000_000;
/// Gzip files the same records are split into.
pub const GZ_FILES: usize = 1_000;
/// Copies of the plain file's lines in the long input.
pub const LONG_COPIES: u64 = 4;

/// What the inputs are, for the benchmark and its answer checks.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct BenchInputs {
    pub plain: PathBuf,
    pub custom: PathBuf,
    pub custom_format: String,
    pub gz_dir: PathBuf,
    /// The same lines as one gzip file (one stream: it cannot be cut into chunks).
    #[serde(default)]
    pub one_gz: PathBuf,
    /// The plain file's lines [`LONG_COPIES`] times over, each copy `long_shift` seconds after the
    /// last (empty in manifests made before it was).
    #[serde(default)]
    pub long: PathBuf,
    #[serde(default)]
    pub long_copies: u64,
    #[serde(default)]
    pub long_shift: u64,
    pub nat_ip: String,
    pub vpc_cidrs: Vec<String>,
    pub lines: usize,
}

/// The scenario: hot-s3 repeated `times` times back to back.
fn scenario(times: u32) -> Result<Scenario> {
    let mut s = Scenario::builtin("hot-s3").context("hot-s3 scenario missing")?;
    let period = s.duration_secs;
    for d in &mut s.destinations {
        let base = d.phases.clone();
        d.phases = (0..times)
            .flat_map(|i| {
                base.iter().map(move |p| {
                    let mut p = *p;
                    p.from_sec += i * period;
                    p.to_sec += i * period;
                    p
                })
            })
            .collect();
    }
    s.duration_secs = period * times;
    s.name = format!("hot-s3 x{times}");
    Ok(s)
}

/// Makes the inputs under `dir` unless they are there already.
pub fn ensure(dir: &Path) -> Result<BenchInputs> {
    let manifest = dir.join("inputs.json");
    if let Ok(text) = std::fs::read_to_string(&manifest)
        && let Ok(mut inputs) = serde_json::from_str::<BenchInputs>(&text)
        && inputs.plain.exists()
        && inputs.custom.exists()
        && inputs.gz_dir.exists()
    {
        // Inputs made before the single gzip file or the long one were: add them.
        if !inputs.one_gz.is_file() {
            inputs.one_gz = dir.join("nat-v2.log.gz");
            gzip_file(&inputs.plain, &inputs.one_gz)?;
            std::fs::write(&manifest, serde_json::to_string_pretty(&inputs)?)?;
        }
        if !inputs.long.is_file() || inputs.long_copies != LONG_COPIES {
            inputs.long = dir.join("nat-v2-long.log");
            inputs.long_shift = repeat_in_time(&inputs.plain, &inputs.long, LONG_COPIES)?;
            inputs.long_copies = LONG_COPIES;
            std::fs::write(&manifest, serde_json::to_string_pretty(&inputs)?)?;
        }
        return Ok(inputs);
    }
    std::fs::create_dir_all(dir)?;
    eprintln!("generating benchmark inputs in {} (once)…", dir.display());
    let scenario = scenario(7)?;
    let sim = Simulation::run(&scenario)?;
    let nat_ip = scenario.nat.addresses[0].to_string();
    let vpc_cidrs = scenario.vpc_cidrs.clone();

    let v2 = sim.nat_v2();
    let (header, lines) = split_lines(&v2, LINES).context("simulation too small for the benchmark")?;
    let plain = dir.join("nat-v2.log");
    write_file(&plain, header, &lines)?;
    let gz_dir = dir.join("gz");
    std::fs::create_dir_all(&gz_dir)?;
    for (i, part) in lines.chunks(LINES / GZ_FILES).enumerate() {
        let mut enc = GzEncoder::new(Vec::new(), Compression::new(6));
        enc.write_all(header)?;
        for l in part {
            enc.write_all(l)?;
        }
        std::fs::write(gz_dir.join(format!("part-{i:04}.log.gz")), enc.finish()?)?;
    }
    drop(lines);
    let one_gz = dir.join("nat-v2.log.gz");
    gzip_file(&plain, &one_gz)?;
    let custom_bytes = sim.nat_custom();
    let (header, lines) = split_lines(&custom_bytes, LINES).context("simulation too small for the benchmark")?;
    let custom = dir.join("nat-custom.log");
    write_file(&custom, header, &lines)?;

    let long = dir.join("nat-v2-long.log");
    let long_shift = repeat_in_time(&plain, &long, LONG_COPIES)?;
    let inputs = BenchInputs {
        long,
        long_copies: LONG_COPIES,
        long_shift,
        plain,
        custom,
        custom_format: sim.custom_format().to_owned(),
        gz_dir,
        one_gz,
        nat_ip,
        vpc_cidrs,
        lines: LINES,
    };
    std::fs::write(&manifest, serde_json::to_string_pretty(&inputs)?)?;
    Ok(inputs)
}

/// The header line and the first `n` record lines (each with its newline).
fn split_lines(buf: &[u8], n: usize) -> Option<(&[u8], Vec<&[u8]>)> {
    let mut it = buf.split_inclusive(|&b| b == b'\n');
    let header = it.next()?;
    let lines: Vec<&[u8]> = it.take(n).collect();
    (lines.len() == n).then_some((header, lines))
}

fn write_file(path: &Path, header: &[u8], lines: &[&[u8]]) -> Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    f.write_all(header)?;
    for l in lines {
        f.write_all(l)?;
    }
    f.flush()?;
    Ok(())
}

/// Writes `from` gzipped (level 6, as the 1,000 files) to `to`, through a temporary name: an
/// interrupted run leaves no truncated file that a later run would take for the input (the upgrade
/// path in [`ensure`] keeps any file it finds there).
fn gzip_file(from: &Path, to: &Path) -> Result<()> {
    eprintln!("gzipping {} into {} (once)…", from.display(), to.display());
    let part = to.with_extension("gz.part");
    let mut enc = GzEncoder::new(std::io::BufWriter::new(std::fs::File::create(&part)?), Compression::new(6));
    std::io::copy(&mut std::io::BufReader::new(std::fs::File::open(from)?), &mut enc)?;
    enc.finish()?.flush()?;
    std::fs::rename(&part, to).with_context(|| format!("cannot rename {} to {}", part.display(), to.display()))?;
    Ok(())
}

/// Fields (0-based) of a default-format line that hold its start and end.
const TIME_FIELDS: [usize; 2] = [10, 11];

/// Writes the lines of the default-format file `from` `copies` times over to `to` (its header once),
/// each copy's start and end shifted past the last copy's: the same traffic for `copies` times as
/// long. The shift is the file's span rounded up to whole 10 minutes, plus 10 minutes (longer than
/// the idle timeout, so no connection runs from one copy into the next); minute bins line up, so a
/// copy's per-minute answers are the first's. Returns the shift. Written through a temporary name, as
/// [`gzip_file`] does.
fn repeat_in_time(from: &Path, to: &Path, copies: u64) -> Result<u64> {
    use std::io::BufRead;
    eprintln!("writing {} copies of {} in time into {} (once)…", copies, from.display(), to.display());
    let times = |line: &[u8]| -> Vec<u64> {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        TIME_FIELDS.iter().filter_map(|&k| std::str::from_utf8(fields.get(k)?).ok()?.trim_end().parse().ok()).collect()
    };
    let open = || -> Result<_> { Ok(std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(from)?)) };
    let (mut first, mut last) = (u64::MAX, 0);
    for line in open()?.split(b'\n').skip(1) {
        for t in times(&line?) {
            first = first.min(t);
            last = last.max(t);
        }
    }
    anyhow::ensure!(first <= last, "{} has no times to shift", from.display());
    let shift = (last - first).div_ceil(600) * 600 + 600;
    let part = to.with_extension("log.part");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&part)?);
    for copy in 0..copies {
        let mut lines = open()?.split(b'\n');
        let header = lines.next().context("empty input")??;
        if copy == 0 {
            out.write_all(&header)?;
            out.write_all(b"\n")?;
        }
        for line in lines {
            let line = line?;
            for (k, field) in line.split(|&b| b == b' ').enumerate() {
                if k > 0 {
                    out.write_all(b" ")?;
                }
                match std::str::from_utf8(field).ok().and_then(|f| f.parse::<u64>().ok()) {
                    Some(t) if TIME_FIELDS.contains(&k) => write!(out, "{}", t + copy * shift)?,
                    _ => out.write_all(field)?,
                }
            }
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&part, to).with_context(|| format!("cannot rename {} to {}", part.display(), to.display()))?;
    Ok(shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_repeat_the_lines_later_in_time() {
        let dir = std::env::temp_dir().join(format!("natgw-xtask-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (from, to) = (dir.join("in.log"), dir.join("out.log"));
        let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
        let a = "2 1 eni-a 10.0.0.1 1.2.3.4 40000 443 6 1 60 1000 1059 ACCEPT OK\n";
        let b = "2 1 eni-a - - - - - - - 1100 1700 - NODATA\n";
        std::fs::write(&from, format!("{header}{a}{b}")).unwrap();
        let shift = repeat_in_time(&from, &to, 3).unwrap();
        // Span 700 s: two whole 10 minutes (1,200 s), plus 10 minutes.
        assert_eq!(shift, 1_800);
        let got = std::fs::read_to_string(&to).unwrap();
        let later = |k: u64| {
            let s = |t: u64| (t + k * shift).to_string();
            format!(
                "2 1 eni-a 10.0.0.1 1.2.3.4 40000 443 6 1 60 {} {} ACCEPT OK\n2 1 eni-a - - - - - - - {} {} - NODATA\n",
                s(1000),
                s(1059),
                s(1100),
                s(1700)
            )
        };
        assert_eq!(got, format!("{header}{}{}{}", later(0), later(1), later(2)));
        assert!(!to.with_extension("log.part").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
