//! Tidy: the architecture invariants of docs/ARCHITECTURE.md, checked on the source tree.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `[dependencies]` table of a manifest, as dependency names.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once('=') {
            let name = name.trim().trim_end_matches(".workspace").to_owned();
            if !name.is_empty() && !name.starts_with('#') {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn core_does_no_io_and_knows_no_aws_or_async_runtime() {
    let manifest = std::fs::read_to_string(root().join("natgw-core/Cargo.toml")).unwrap();
    let deps = dependencies(&manifest);
    assert!(deps.contains(&"serde".to_owned()), "manifest parse failed: {deps:?}");
    for d in &deps {
        assert!(!d.starts_with("aws-") && !d.starts_with("tokio") && d != "async-trait", "natgw-core depends on {d}");
    }
    for file in rust_files(&root().join("natgw-core/src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for banned in ["std::fs", "std::net::TcpStream", "std::env", "SystemTime::now", "Instant::now", "std::process"]
        {
            assert!(!text.contains(banned), "{} uses {banned}: natgw-core does no IO", file.display());
        }
    }
}

#[test]
fn the_binary_does_not_link_the_test_kit() {
    let manifest = std::fs::read_to_string(root().join("natgw-cli/Cargo.toml")).unwrap();
    assert!(!dependencies(&manifest).iter().any(|d| d == "natgw-testkit"));
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let mut missing = Vec::new();
    for krate in ["natgw-core", "natgw-aws", "natgw-testkit", "natgw-cli", "xtask"] {
        for file in rust_files(&root().join(krate)) {
            let text = std::fs::read_to_string(&file).unwrap();
            if !text.trim_start().starts_with("//!") {
                missing.push(file.display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "files without a //! line: {missing:#?}");
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "target" && n != "snapshots") {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}
