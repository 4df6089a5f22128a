//! A plain file's chunk mapped into memory, read where the page cache holds it: the workspace's one
//! `unsafe` block.
//!
//! Reading a chunk with `read(2)` has the kernel copy every byte into the worker's buffer; on the
//! benchmark's file (10 M lines, 1.1 GB) that copy took about a fifth of the process's CPU time, and
//! the parser reads a mapped chunk at the same speed as a copied one (the hardware prefetcher keeps
//! ahead of it). See `docs/benchmarks.md` for the measurement.
//!
//! A map is of one chunk ([`super::CHUNK`], 2 MiB), or a chunk's piece of that size (a chunk is
//! longer when its lines are), at a time and is unmapped when it is parsed, so the pages it touched
//! leave the process's RSS with it.

use std::fs::File;

use memmap2::{Mmap, MmapOptions};

/// The bytes `from..to` of `file`, mapped read-only; `None` when the system cannot map them (the
/// caller then reads them).
#[expect(unsafe_code, reason = "mapping a file is unsafe in Rust: see the safety comment")]
pub(super) fn map(file: &File, from: u64, to: u64) -> Option<Mmap> {
    let len = usize::try_from(to.checked_sub(from)?).ok()?;
    if len == 0 {
        return None;
    }
    let mut options = MmapOptions::new();
    options.offset(from).len(len);
    // SAFETY: the map is private to this function's caller, read-only, and never outlives the file
    // handle. The one hazard is another process changing the file while it is mapped: bytes changed
    // under the parser read as whatever they became (the parser accepts any bytes and judges every
    // line), and a file truncated below the chunk makes a read of the lost pages raise SIGBUS, which
    // ends the process. `--no-mmap` reads with `read(2)` instead, for a file that may be rewritten
    // while it is analysed (ripgrep makes the same trade, with the same switch).
    unsafe { options.map(file) }.ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_mapped_range_holds_the_files_bytes() {
        let mut file = tempfile::tempfile().expect("temporary file");
        let bytes: Vec<u8> = (0..3 * 4096 + 17).map(|i| (i * 7 % 251) as u8).collect();
        file.write_all(&bytes).expect("write");
        // Ranges that start on a page, inside one and at its last byte, and end at the file's end.
        for (from, to) in [(0, 10), (1, 4096), (4095, 8193), (4096, bytes.len()), (12_000, bytes.len())] {
            let map = map(&file, from as u64, to as u64).expect("mapped");
            assert_eq!(&map[..], &bytes[from..to], "{from}..{to}");
        }
        assert!(map(&file, 5, 5).is_none(), "an empty range is not mapped");
        assert!(map(&file, 6, 5).is_none(), "a reversed range is not mapped");
    }
}
