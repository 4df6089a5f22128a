//! `cargo xtask moto-venv`: the Python venv of the moto end-to-end tests, rebuilt only when
//! natgw-testkit/moto/requirements.txt (or the Python) changes.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// File in the venv recording what it was built from.
const STAMP: &str = "natgw-requirements.stamp";

/// Creates `venv` with `python -m venv` if needed and installs the pinned requirements, unless the
/// stamp says it already holds exactly them.
pub fn ensure(venv: &Path, python: &str) -> Result<()> {
    let requirements = natgw_testkit::moto::moto_dir().join("requirements.txt");
    let reqs = std::fs::read(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let version = output(Command::new(python).arg("--version"))
        .with_context(|| format!("`{python}` is needed to build the moto venv (Python 3.9 or newer)"))?;
    let stamp = format!("requirements fnv1a64 {:016x}\n{}\n", fnv1a64(&reqs), version.trim());
    let venv_python = natgw_testkit::moto::python_in(venv);
    let stamp_path = venv.join(STAMP);
    if venv_python.exists() && std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        eprintln!("moto venv {} is up to date", venv.display());
        return Ok(());
    }
    let began = std::time::Instant::now();
    // An interrupted install must not look complete.
    let _ = std::fs::remove_file(&stamp_path);
    if !venv_python.exists() {
        super::run(Command::new(python).args(["-m", "venv"]).arg(venv))?;
    }
    super::run(
        Command::new(&venv_python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet", "-r"])
            .arg(&requirements),
    )?;
    super::run(Command::new(&venv_python).args(["-c", "import moto, boto3, botocore, cbor2"]))?;
    std::fs::write(&stamp_path, stamp).with_context(|| format!("writing {}", stamp_path.display()))?;
    eprintln!("moto venv {} ready in {:.0} s", venv.display(), began.elapsed().as_secs_f64());
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", out.status);
    }
    // Python 2 printed its version on stderr.
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

/// FNV-1a, 64 bits: a stable fingerprint of the requirements (not a security boundary).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(super::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
