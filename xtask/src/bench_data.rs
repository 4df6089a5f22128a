//! Benchmark inputs for `cargo xtask bench`, made by the simulator: a long hot-S3 incident (the
//! scenario's pattern repeated), as one plain 10 M-line v2 file, the same lines as 1,000 gzip files of
//! 10,000 lines (as S3 delivers them), and a custom-format variant.

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
        // Inputs made before the single gzip file was: add it.
        if !inputs.one_gz.is_file() {
            inputs.one_gz = dir.join("nat-v2.log.gz");
            gzip_file(&inputs.plain, &inputs.one_gz)?;
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

    let inputs = BenchInputs {
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
