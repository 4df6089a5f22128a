//! Decoding ahead: a gzip stream decoded on a thread of its own while the worker parses what came
//! before. A gzip stream cannot be cut into chunks, so one file (or a `cat *.gz` on standard input)
//! was decoded and parsed on one core while the others waited: decoding is about a third of that
//! work. [`DecodeAhead`] moves it to another core when a core would otherwise be idle (fewer tasks
//! than workers; with more, every core has parsing to do and the thread would only compete).

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};

/// Text decoded at a time: big enough that handing a block over costs nothing next to decoding it.
const BLOCK: usize = 1 << 20;

/// Blocks decoded and not yet read, at most: the decoder may run this far ahead of the parser (a few
/// MiB; the parser is the slower).
const DEPTH: usize = 2;

/// A reader whose text another thread decodes ahead of it. Errors come in order, after the text
/// decoded before them. Dropped early (the task failed), it stops the thread at its next block.
#[derive(Debug)]
pub(super) struct DecodeAhead {
    blocks: Receiver<io::Result<Vec<u8>>>,
    /// Blocks read, for the thread to reuse (allocating and zeroing a block each time cost more
    /// than decoding one).
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    done: bool,
}

impl DecodeAhead {
    /// Starts decoding `inner` on a thread of its own; `Err(inner)` when no thread can be started
    /// (then read it in place).
    pub(super) fn start<R: Read + Send + 'static>(inner: R) -> Result<DecodeAhead, R> {
        let (to_reader, blocks) = sync_channel(DEPTH);
        let (spare, from_reader) = sync_channel(DEPTH + 2);
        // The reader is handed over only once the thread runs: a failed spawn gives it back.
        let (hand, take) = sync_channel::<R>(1);
        let spawned = std::thread::Builder::new().name("gzip-decode".into()).spawn(move || {
            if let Ok(inner) = take.recv() {
                decode(inner, &to_reader, &from_reader);
            }
        });
        if spawned.is_err() {
            return Err(inner);
        }
        match hand.send(inner) {
            Ok(()) => Ok(DecodeAhead { blocks, spare, current: Vec::new(), at: 0, done: false }),
            Err(back) => Err(back.0),
        }
    }
}

/// The thread's loop: fills blocks from `inner` and sends them, an empty one at the end; stops at an
/// error (sent after the text before it) or when the reader is gone.
fn decode(mut inner: impl Read, blocks: &SyncSender<io::Result<Vec<u8>>>, spare: &Receiver<Vec<u8>>) {
    loop {
        let mut block = match spare.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Vec::with_capacity(BLOCK),
        };
        block.resize(BLOCK, 0);
        let mut n = 0;
        let mut failed = None;
        while n < BLOCK {
            match inner.read(&mut block[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        block.truncate(n);
        let end = n == 0;
        if (n > 0 || failed.is_none()) && blocks.send(Ok(block)).is_err() {
            return;
        }
        if let Some(e) = failed {
            let _ = blocks.send(Err(e));
            return;
        }
        if end {
            return;
        }
    }
}

impl Read for DecodeAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            match self.blocks.recv() {
                Ok(Ok(block)) if block.is_empty() => self.done = true,
                Ok(Ok(block)) => {
                    let used = std::mem::replace(&mut self.current, block);
                    // The thread may have ended or have spares enough: then the block is freed.
                    let _ = self.spare.try_send(used);
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the decoding thread stopped"));
                }
            }
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Cursor, Write as _};

    use flate2::bufread::MultiGzDecoder;

    use super::*;

    /// Text of `n` bytes that repeats nowhere nearby.
    fn text(n: usize) -> Vec<u8> {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                b"0123456789 abcdef\n"[(s % 18) as usize]
            })
            .collect()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// What is read through it is what decoding in place gives, whatever the reads' sizes, over
    /// several blocks and multi-member streams.
    #[test]
    fn reads_what_decoding_in_place_reads() {
        for (len, members) in [(0, 1), (10, 1), (BLOCK - 1, 1), (BLOCK, 1), (3 * BLOCK + 17, 1), (2 * BLOCK + 5, 3)] {
            let want = text(len);
            let step = len.div_ceil(members).max(1);
            let gz: Vec<u8> = if want.is_empty() { gzip(&want) } else { want.chunks(step).flat_map(gzip).collect() };
            for read_size in [1, 4093, 256 << 10, 3 * BLOCK] {
                let mut ahead =
                    DecodeAhead::start(MultiGzDecoder::new(Cursor::new(gz.clone()))).map_err(|_| ()).unwrap();
                let mut got = Vec::new();
                let mut buf = vec![0; read_size];
                loop {
                    let n = ahead.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(got.len(), want.len(), "{len} bytes in {members}, reads of {read_size}");
                assert!(got == want, "{len} bytes in {members}, reads of {read_size}");
                assert_eq!(ahead.read(&mut buf).unwrap(), 0, "the end stays the end");
            }
        }
    }

    /// A truncated stream gives every byte decoded before the damage, then the decoder's error.
    #[test]
    fn an_error_comes_after_the_text_before_it() {
        let want = text(3 * BLOCK);
        let gz = gzip(&want);
        let cut = &gz[..gz.len() * 2 / 3];
        let mut in_place = MultiGzDecoder::new(cut);
        let mut before = Vec::new();
        let want_err = in_place.read_to_end(&mut before).unwrap_err();
        let mut ahead = DecodeAhead::start(MultiGzDecoder::new(Cursor::new(cut.to_vec()))).map_err(|_| ()).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0; 64 << 10];
        let err = loop {
            match ahead.read(&mut buf) {
                Ok(0) => panic!("no error after {} bytes", got.len()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert!(got == before, "{} bytes before the error, {} in place", got.len(), before.len());
        assert_eq!((err.kind(), err.to_string()), (want_err.kind(), want_err.to_string()));
    }

    /// Dropped before the end, the reader stops the thread (which then holds nothing).
    #[test]
    fn dropping_it_early_stops_the_thread() {
        let gz = gzip(&text(8 * BLOCK));
        let mut ahead = DecodeAhead::start(MultiGzDecoder::new(Cursor::new(gz))).map_err(|_| ()).unwrap();
        let mut buf = vec![0; 1000];
        assert_eq!(ahead.read(&mut buf).unwrap(), 1000);
        let spare = ahead.spare.clone();
        drop(ahead);
        // The thread holds the other end of the spares' channel until it returns.
        let stopped = (0..2_000).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            matches!(spare.try_send(Vec::new()), Err(std::sync::mpsc::TrySendError::Disconnected(_)))
        });
        assert!(stopped, "the decoding thread still runs");
    }
}
