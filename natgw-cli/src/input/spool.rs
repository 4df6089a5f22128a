//! Streams (standard input, and paths that name a pipe: `<(zcat x.gz)`, a FIFO, a socket) kept
//! in an unnamed temporary file, so that they are read like a file given by path: cut into chunks
//! for every core, read twice (a first pass finds the NAT gateway), streamed with its fallback to
//! memory. Read once as it came, standard input kept every record in memory (162 MB for 3 M lines)
//! on one core, and a pipe given by path could not be read at all (a file is opened more than once).
//!
//! The file has no name (`tempfile::tempfile`): it goes away with the process, however the process
//! ends. Standard input that is already a regular file (`< file`) is read where it is, not copied.
//! When no temporary file can take it all (no room in `$TMPDIR`, say), what the file took is read
//! first and the rest as it comes, the old way: slower and in memory, never a wrong answer.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, PoisonError};

use super::{LINELESS, lineless_reason, not_text_reason};

/// A stream, as [`keep`] or [`keep_stdin`] kept it.
#[derive(Debug)]
pub(super) enum Kept {
    /// All of it, in a file.
    Whole(Spooled),
    /// What a temporary file could not take whole: its first bytes there (if any), then `pending`,
    /// then the rest of the stream.
    Partial { head: Option<(Spooled, u64)>, pending: Vec<u8>, rest: Rest, why: String },
}

/// The rest of a stream a temporary file could not take, to read once.
pub(super) struct Rest(Mutex<Option<Box<dyn Read + Send>>>);

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rest(..)")
    }
}

impl Rest {
    pub(super) fn of(stream: impl Read + Send + 'static) -> Rest {
        Rest(Mutex::new(Some(Box::new(stream))))
    }
}

/// A file that holds a stream from `base` on (a temporary file's `base` is 0; standard input
/// opened on a regular file may have read some already).
#[derive(Debug, Clone)]
pub(super) struct Spooled {
    file: Arc<File>,
    base: u64,
}

impl Spooled {
    /// A file that holds it all.
    #[cfg(test)]
    pub(super) fn of(file: File) -> Spooled {
        Spooled { file: Arc::new(file), base: 0 }
    }

    /// A reader at its start.
    pub(super) fn reader(&self) -> At {
        At { file: Arc::clone(&self.file), base: self.base, pos: 0 }
    }
}

/// A reader of a [`Spooled`] file at its own position, by positional reads: workers on several
/// threads share the file (a cloned handle would share one position).
#[derive(Debug)]
pub(super) struct At {
    file: Arc<File>,
    base: u64,
    pos: u64,
}

impl At {
    /// The size of what it reads (the file from its base).
    pub(super) fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len().saturating_sub(self.base))
    }
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let at = self.base + self.pos;
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, at)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&*self.file, buf, at)?;
        #[cfg(not(any(unix, windows)))]
        let n = {
            let _ = (buf, at);
            return Err(io::Error::new(io::ErrorKind::Unsupported, "positional reads"));
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for At {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len()?.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

impl Kept {
    /// The text of a [`Kept::Partial`]: the head, the pending bytes, the stream. The stream is read
    /// once: a second call has none (and the caller reads nothing twice).
    pub(super) fn rest(&self) -> Option<impl Read + Send + use<>> {
        let Kept::Partial { head, pending, rest, .. } = self else { return None };
        let stream = rest.0.lock().unwrap_or_else(PoisonError::into_inner).take()?;
        let head: Box<dyn Read + Send> = match head {
            Some((s, len)) => Box::new(s.reader().take(*len)),
            None => Box::new(io::empty()),
        };
        Some(head.chain(Cursor::new(pending.clone())).chain(stream))
    }

    /// Why it could not be kept whole, if it could not.
    pub(super) fn why_partial(&self) -> Option<&str> {
        match self {
            Kept::Whole(_) => None,
            Kept::Partial { why, .. } => Some(why),
        }
    }
}

/// Bytes copied at a time.
const COPY_PIECE: usize = 256 << 10;

/// Keeps standard input: where it is if it is a regular file, else in a temporary file. Fails only
/// when standard input itself cannot be read.
pub(super) fn keep_stdin() -> io::Result<Kept> {
    match regular_file() {
        Some(s) => Ok(Kept::Whole(s)),
        None => keep(io::stdin()),
    }
}

/// Keeps a stream in a temporary file, read to its end. Fails only when the stream itself cannot
/// be read.
pub(super) fn keep(mut stream: impl Read + Send + 'static) -> io::Result<Kept> {
    if cfg!(not(any(unix, windows))) {
        let why = "cannot keep it in a temporary file on this platform".to_owned();
        return Ok(Kept::Partial { head: None, pending: Vec::new(), rest: Rest::of(stream), why });
    }
    let mut file = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => {
            return Ok(Kept::Partial { head: None, pending: Vec::new(), rest: Rest::of(stream), why: no_room(&e) });
        }
    };
    let stop = copy(&mut stream, &mut file)?;
    let spooled = Spooled { file: Arc::new(file), base: 0 };
    Ok(match stop {
        None => Kept::Whole(spooled),
        // A file that took nothing is let go at once (its disk given back).
        Some(Full { written, pending, error }) => {
            let head = (written > 0).then_some((spooled, written));
            Kept::Partial { head, pending, rest: Rest::of(stream), why: no_room(&error) }
        }
    })
}

fn no_room(e: &io::Error) -> String {
    format!("cannot keep it in a temporary file in {}: {e}", std::env::temp_dir().display())
}

/// Standard input as the regular file it is opened on, from where it stands, and left at its end as
/// if read through (the file's position is shared with whoever opened it: `{ aws-natgw analyze -;
/// cat; } < file`). Not one that says it is empty there (procfs, say: read as a stream then).
#[cfg(unix)]
fn regular_file() -> Option<Spooled> {
    use std::os::fd::AsFd;
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    let mut file = File::from(fd);
    let meta = file.metadata().ok()?;
    let base = file.stream_position().ok()?;
    if !meta.is_file() || meta.len() <= base {
        return None;
    }
    file.seek(SeekFrom::End(0)).ok()?;
    Some(Spooled { file: Arc::new(file), base })
}

#[cfg(not(unix))]
fn regular_file() -> Option<Spooled> {
    None
}

/// Where a [`copy`] stopped because the file took no more.
#[derive(Debug)]
struct Full {
    /// Bytes in the file.
    written: u64,
    /// Bytes read but not in the file.
    pending: Vec<u8>,
    error: io::Error,
}

/// Copies `from` into `to` to its end: `None` when all of it is there, the bytes the file did not
/// take when a write failed, an error when a read failed.
///
/// A stream that is not gzip and is plainly not flow-log text stops the copy with an error of kind
/// `InvalidData` that says why, instead of filling the disk with it: wide text or an archive
/// ([`not_text_reason`]), a NUL byte before its first line break (`/dev/urandom`), or no line
/// break in its first [`LINELESS`] bytes (`/dev/zero`).
fn copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<Option<Full>> {
    let mut buf = vec![0u8; COPY_PIECE];
    let mut written = 0u64;
    // Bytes without a line break so far; `None` once one came, or for gzip data.
    let mut lineless = Some(0u64);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(seen) = lineless {
            let gzip = seen == 0 && buf[..n].starts_with(&[0x1f, 0x8b]);
            let first_line_end = memchr::memchr(b'\n', &buf[..n]);
            let why = if gzip {
                None
            } else if let Some(why) = (seen == 0).then(|| not_text_reason(&buf[..n])).flatten() {
                Some(why)
            } else if buf[..first_line_end.unwrap_or(n)].contains(&0) {
                Some("is binary data, not flow-log text".to_owned())
            } else if first_line_end.is_none() && seen + n as u64 > LINELESS {
                Some(lineless_reason())
            } else {
                None
            };
            if let Some(why) = why {
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            lineless = (!gzip && first_line_end.is_none()).then_some(seen + n as u64);
        }
        let mut done = 0;
        while done < n {
            match to.write(&buf[done..n]) {
                Ok(0) => {
                    let error = io::Error::from(io::ErrorKind::WriteZero);
                    return Ok(Some(Full { written, pending: buf[done..n].to_vec(), error }));
                }
                Ok(k) => {
                    done += k;
                    written += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Ok(Some(Full { written, pending: buf[done..n].to_vec(), error })),
            }
        }
    }
    match to.flush() {
        Ok(()) => Ok(None),
        Err(error) => Ok(Some(Full { written, pending: Vec::new(), error })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that takes `room` bytes, then fails as a full disk does (after a short write).
    struct Small {
        file: File,
        room: usize,
    }

    impl Write for Small {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::other("no space left on device"));
            }
            let n = buf.len().min(self.room).min(1000);
            self.room -= n;
            self.file.write(&buf[..n])
        }

        fn flush(&mut self) -> io::Result<()> {
            self.file.flush()
        }
    }

    /// Whatever the file could take, the file's bytes, then the pending ones, then the rest of the
    /// stream are the input, byte for byte.
    #[test]
    fn a_copy_that_runs_out_of_room_loses_nothing() {
        // Text (a stream that is plainly not text stops the copy): lines of 100 bytes.
        let input: Vec<u8> =
            (0..700_000u32).map(|i| if i % 100 == 99 { b'\n' } else { b'!' + (i * 7 % 94) as u8 }).collect();
        for room in [0, 1, 999, 1000, 300_000, COPY_PIECE, 699_999, 700_000, 800_000] {
            let mut from = Cursor::new(&input);
            let mut to = Small { file: tempfile::tempfile().unwrap(), room };
            let stop = copy(&mut from, &mut to).unwrap();
            let spooled = Spooled { file: Arc::new(to.file), base: 0 };
            let mut got = Vec::new();
            match stop {
                None => {
                    assert!(room >= input.len(), "room {room}");
                    spooled.reader().read_to_end(&mut got).unwrap();
                }
                Some(Full { written, pending, .. }) => {
                    assert_eq!(written, room.min(input.len()) as u64, "room {room}");
                    spooled.reader().take(written).read_to_end(&mut got).unwrap();
                    got.extend_from_slice(&pending);
                    from.read_to_end(&mut got).unwrap();
                }
            }
            assert_eq!(got.len(), input.len(), "room {room}");
            assert!(got == input, "room {room}");
        }
    }

    /// Readers of one file keep their own positions, from the file's base.
    #[test]
    fn readers_share_a_file_but_not_a_position() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"header\n0123456789").unwrap();
        let s = Spooled { file: Arc::new(file), base: 7 };
        let (mut a, mut b) = (s.reader(), s.reader());
        assert_eq!(a.len().unwrap(), 10);
        let mut two = [0u8; 2];
        a.seek(SeekFrom::Start(4)).unwrap();
        a.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"45");
        b.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"01");
        a.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"67");
        assert_eq!(b.seek(SeekFrom::End(-1)).unwrap(), 9);
        b.read_exact(&mut two[..1]).unwrap();
        assert_eq!(&two[..1], b"9");
        assert!(b.seek(SeekFrom::Current(-11)).is_err());
    }
}
