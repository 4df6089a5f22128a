//! Reading flow-log inputs on all cores: files or standard input, plain or gzip (by magic bytes,
//! multi-member streams included). Standard input is kept in a temporary file first ([`spool`]) and
//! then read like a file. Plain files are split into chunks at line boundaries, each gzip file is one
//! task; worker threads parse into their own analyzer shards. Every failure names the input; line
//! numbers in bad-line reports are those of the whole file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};

use flate2::bufread::MultiGzDecoder;
use natgw_core::analyze::{
    Analyzer, FIELDS, FastShard, FlowStreams, LaneFlows, NatEvidence, NatFlows, Shard, StreamLane, check_format,
};
use natgw_core::flowlog::{LineError, LogFormat, ParseStats, StreamParser};

mod ahead;
mod spool;

use ahead::DecodeAhead;
use spool::{At, Kept, Spooled};

/// A problem with one input, shown as one line and exit code 3.
#[derive(Debug)]
pub struct InputError(pub String);

/// Bytes per task of a plain file, at most. A chunk is handed to the streams as one part, and the
/// parts in flight are most of what streaming adds to the RSS: measured on the benchmark's file (10 M
/// lines, two threads), 4-MiB chunks peaked at 59–62 MiB and 2-MiB ones at 54 MiB, 2 % slower.
const CHUNK: u64 = 2 << 20;
/// Seconds of data a task of a plain file spans, at most, when other inputs cover the same time: their
/// tasks are read in the order of their ends' times, so their records interleave, and the client
/// flows take records up to 120 s behind the latest start (see natgw-core's `analyze`).
const CHUNK_SECS: u64 = 30;
/// The least a chunk is split to (a chunk spanning more seconds is then fine: its data is sparse,
/// and a fallback to memory costs little).
const MIN_CHUNK: u64 = 16 << 10;
/// Compressed data (or a stream's text) read at a time.
const RAW_BUF: usize = 64 << 10;
/// Text without a line break after which a stream (one read as it comes, or one being kept in a
/// file) is not a flow log: it may be endless. A file's is read through, a line over 64 KiB being a
/// bad line (`natgw_core::flowlog::MAX_LINE`), as plain text or gzip alike.
const LINELESS: u64 = 4 << 20;
/// Why a stream with no line break in its first [`LINELESS`] bytes is not read on.
fn lineless_reason() -> String {
    format!("has no line break in the first {} MiB: not a flow-log file", LINELESS >> 20)
}

/// What a plain file's task reads at a time: small enough to stay in a core's cache while it is parsed.
const READ_PIECE: usize = 256 << 10;
/// What a gzip file's or a stream's task reads at a time.
const STREAM_READ: usize = 64 << 10;

#[derive(Debug)]
enum Source {
    /// Read once, as it comes: standard input or a pipe that could not be kept in a file.
    Stream,
    Gzip,
    /// A plain file of this size.
    Plain(u64),
}

#[derive(Debug)]
struct Input {
    path: PathBuf,
    /// The stream as it was kept, for `-` and a path that names a pipe.
    kept: Option<Arc<Kept>>,
    name: String,
    source: Source,
    /// The format its records are read with (after a header line, if any).
    format: LogFormat,
    header: bool,
    /// The data's time at its beginning, if known: a plain file's latest start among its first
    /// records ([`head_start`]), a gzip file's earliest ([`head_times`]).
    starts_at: Option<u64>,
    /// Found under a directory given, not named: an unusable one is skipped ([`read_all`]).
    found: bool,
}

#[derive(Debug)]
struct Task {
    input: usize,
    /// Byte range of a plain file; the whole input otherwise.
    range: Option<(u64, u64)>,
    /// The first task of its input (may hold the header line).
    first: bool,
    /// The data's time at its start ([`Input::starts_at`]), or at its end for the chunks of files
    /// that cover the same time, if known, and never before an earlier task's of the same input:
    /// tasks are taken in this order, and their parts' keys start there ([`Sequencer`]).
    starts_at: Option<u64>,
    /// A gzip stream is decoded on a thread of its own ([`DecodeAhead`]): there are fewer tasks than
    /// workers, so a core would otherwise be idle.
    decode_ahead: bool,
}

/// What one task produced.
struct Done {
    task: usize,
    stats: ParseStats,
    format: LogFormat,
    /// Cut short: why ([`Outcome::Done`]).
    cut: Option<String>,
}

/// A stream that could not be kept: it could not be read, or it is not text ([`spool::keep`]).
fn unreadable(name: &str, e: &io::Error) -> InputError {
    match e.kind() {
        io::ErrorKind::InvalidData => InputError(format!("{name} {e}")),
        _ => InputError(format!("cannot read {name}: {}", io_reason(e))),
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::UnexpectedEof => "unexpected end of data".into(),
        _ => e.to_string(),
    }
}

/// Whether a command-line path names standard input (`-`).
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How an input is named in messages and the report: `<stdin>` for `-`, else its path.
fn input_name(path: &Path) -> String {
    if is_stdin(path) { "<stdin>".to_owned() } else { path.display().to_string() }
}

/// The pipe a path names, if it names one rather than a file: `<(zcat x.gz)`'s `/dev/fd/63`, a
/// FIFO, a socket. It can be read only once, from its start to its end. The pipe itself (device
/// and inode) tells two names of one pipe apart from two pipes. Devices are read as files are: one
/// may never end (`/dev/zero`).
#[cfg(unix)]
fn pipe_node(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let m = std::fs::metadata(path).ok()?;
    (m.file_type().is_fifo() || m.file_type().is_socket()).then(|| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn pipe_node(_: &Path) -> Option<(u64, u64)> {
    None
}

impl Input {
    /// An input not yet [`probe`]d: its own fields, allocated before any probe runs. A stream kept
    /// whole in a file is read like a file given by path.
    fn named(path: &Path, given: &LogFormat, kept: Option<&Arc<Kept>>, found: bool) -> Input {
        let from_stdin = is_stdin(path);
        let mut input = Input {
            path: path.to_owned(),
            kept: kept.cloned(),
            name: input_name(path),
            source: Source::Plain(0),
            format: given.clone(),
            header: false,
            starts_at: None,
            found,
        };
        if (from_stdin || input.kept.is_some()) && input.spooled().is_none() {
            input.source = Source::Stream;
        }
        input
    }

    /// The stream's file, when it is kept whole in one.
    fn spooled(&self) -> Option<&Spooled> {
        match self.kept.as_deref() {
            Some(Kept::Whole(s)) => Some(s),
            _ => None,
        }
    }

    /// Opens it (a file, or a stream's file) at its start.
    fn open(&self) -> io::Result<Opened> {
        match self.spooled() {
            Some(s) => Ok(Opened::At(s.reader())),
            None => File::open(&self.path).map(Opened::File),
        }
    }
}

/// An input opened for reading: a file by path, or a reader of a stream's file.
enum Opened {
    File(File),
    At(At),
}

impl Opened {
    /// Whether it is a directory, and its size.
    fn kind_and_size(&self) -> io::Result<(bool, u64)> {
        match self {
            Opened::File(f) => f.metadata().map(|m| (m.is_dir(), m.len())),
            Opened::At(a) => a.len().map(|n| (false, n)),
        }
    }
}

impl Read for Opened {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Opened::File(f) => f.read(buf),
            Opened::At(a) => a.read(buf),
        }
    }
}

impl Seek for Opened {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match self {
            Opened::File(f) => f.seek(to),
            Opened::At(a) => a.seek(to),
        }
    }
}

/// The inputs of one analysis: the files the paths name ([`expand`]), and the streams among them
/// (standard input when one is `-`, pipes), kept so that they can be read like a file
/// ([`spool`]).
#[derive(Debug)]
pub struct Inputs {
    paths: Vec<PathBuf>,
    /// Each stream's path (`-` for standard input), once, and how it was kept.
    kept: Vec<(PathBuf, Arc<Kept>)>,
    /// Paths left out because they name a file named before ([`once`]).
    repeated: Vec<PathBuf>,
    /// The paths found under a directory given (not named themselves).
    found: BTreeSet<PathBuf>,
    /// Those found that cannot be read, with why ([`expand_noting`]).
    cannot_read: BTreeMap<PathBuf, String>,
}

impl Inputs {
    /// The inputs the command line names: directories expanded, streams (standard input, pipes)
    /// read to their end and kept in a temporary file (standard input where it is, if it is a file).
    /// A file or stream named twice (by the same name, two names of one pipe, a directory and a file
    /// in it, standard input redirected from a file named too) is read once: the later names are
    /// left out ([`once`], [`Inputs::repeated`]).
    pub fn gather(args: &[PathBuf]) -> Result<Inputs, InputError> {
        let mut cannot_read = BTreeMap::new();
        let (paths, repeated) = once(expand_noting(args, &mut cannot_read)?);
        let named: BTreeSet<&PathBuf> = args.iter().collect();
        let found = paths.iter().filter(|p| !named.contains(p)).cloned().collect();
        let mut kept: Vec<(PathBuf, Arc<Kept>)> = Vec::new();
        let mut pipes: Vec<((u64, u64), Arc<Kept>)> = Vec::new();
        for path in &paths {
            if kept.iter().any(|(k, _)| k == path) {
                continue;
            }
            let stream = if is_stdin(path) {
                let s = spool::keep_stdin().map_err(|e| unreadable("<stdin>", &e))?;
                Arc::new(s)
            } else if let Some(node) = pipe_node(path).filter(|_| !cannot_read.contains_key(path)) {
                match pipes.iter().find(|(n, _)| *n == node) {
                    Some((_, s)) => Arc::clone(s),
                    None => {
                        let name = path.display();
                        let file = File::open(path)
                            .map_err(|e| InputError(format!("cannot open {name}: {}", io_reason(&e))))?;
                        let s = spool::keep(file).map_err(|e| unreadable(&name.to_string(), &e))?;
                        let s = Arc::new(s);
                        pipes.push((node, Arc::clone(&s)));
                        s
                    }
                }
            } else {
                continue;
            };
            kept.push((path.clone(), stream));
        }
        let inputs = Inputs { paths, kept, repeated, found, cannot_read };
        inputs.named_once_if_partial()?;
        Ok(inputs)
    }

    /// A stream no temporary file could take whole is read as it comes, once: named twice, the
    /// second name would have nothing left to read (or would wait on a pipe no one writes to).
    fn named_once_if_partial(&self) -> Result<(), InputError> {
        for (path, s) in &self.kept {
            let Some(why) = s.why_partial() else { continue };
            let names = self.paths.iter().filter(|p| self.kept(p).is_some_and(|k| Arc::ptr_eq(k, s))).count();
            if names > 1 {
                let name = input_name(path);
                return Err(InputError(format!(
                    "{name} is named {names} times, but it could not be kept in a temporary file ({why}): name it once"
                )));
            }
        }
        Ok(())
    }

    /// Files only (standard input, if named, is read as it comes).
    #[cfg(test)]
    fn files(paths: &[PathBuf]) -> Inputs {
        Inputs {
            paths: paths.to_vec(),
            kept: Vec::new(),
            repeated: Vec::new(),
            found: BTreeSet::new(),
            cannot_read: BTreeMap::new(),
        }
    }

    /// Paths left out because they name a file (or pipe) named before: directly, through a
    /// directory or a link. Its records would count twice.
    pub fn repeated(&self) -> &[PathBuf] {
        &self.repeated
    }

    /// How the stream a path names was kept, if it names one.
    fn kept(&self, path: &Path) -> Option<&Arc<Kept>> {
        self.kept.iter().find(|(k, _)| k == path).map(|(_, s)| s)
    }

    /// The streams read as they come, in memory, because they could not be kept in a file: each
    /// one's name and why.
    pub fn in_memory(&self) -> impl Iterator<Item = (String, &str)> {
        self.kept.iter().filter_map(|(path, s)| {
            let name = if is_stdin(path) { "standard input".to_owned() } else { path.display().to_string() };
            s.why_partial().map(|why| (name, why))
        })
    }
}

/// The buffers each [`probe`] reuses, and then [`last_start`] and [`chunks`]. Probing a thousand gzip files allocated and freed a read buffer,
/// the text and a decoder per file, and each input's own fields came between them: the allocator then
/// kept the freed buffers as holes it could not reuse. Measured on the benchmark's 1,000 gzip files,
/// the peak RSS was 20 MiB higher when their paths had 41 characters or more (which moved those fields
/// to another size class): 69–77 MiB instead of 48–50. Now [`Input::named`] allocates every input's
/// fields first, and the probes allocate nothing that outlives them.
struct Peek {
    raw: Vec<u8>,
    text: Vec<u8>,
}

/// Raw bytes read at the top of an input: its first line (a header, perhaps) and, for gzip, enough
/// compressed data for [`PEEK`] bytes of text.
const RAW_PEEK: usize = 64 << 10;

impl Peek {
    fn new() -> Peek {
        // The text buffer takes a file's tail too, and a line end after it ([`last_start`]).
        Peek { raw: vec![0; RAW_PEEK], text: Vec::with_capacity(PEEK + 1) }
    }
}

/// Opens an input and looks at its start: empty, gzip, a header line.
fn probe(
    input: &mut Input,
    given: &LogFormat,
    peek: &mut Peek,
    sample: Option<&mut NatEvidence>,
) -> Result<(), InputError> {
    if matches!(input.source, Source::Stream) {
        return Ok(());
    }
    let name = &input.name;
    let mut file = input
        .open()
        .map_err(|e| InputError(format!("cannot open {name}: {}{}", io_reason(&e), broken_link(&input.path))))?;
    let (is_dir, size) =
        file.kind_and_size().map_err(|e| InputError(format!("cannot read {name}: {}", io_reason(&e))))?;
    if is_dir {
        return Err(InputError(format!("{name}: is a directory, not a flow-log file")));
    }
    let n = loop {
        match file.read(&mut peek.raw) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r.map_err(|e| InputError(format!("cannot read {name}: {}", io_reason(&e))))?,
        }
    };
    let head = &peek.raw[..n];
    if head.is_empty() {
        return Err(InputError(format!("{name} is empty")));
    }
    not_text(name, head)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        // The text of the compressed bytes at hand (the read may end mid-stream: what came is enough).
        peek.text.clear();
        let decoded = MultiGzDecoder::new(head).take(PEEK as u64).read_to_end(&mut peek.text);
        if size <= n as u64 && matches!(decoded, Ok(0)) {
            // The whole file, decoded without error, to nothing.
            return Err(InputError(format!("{name}: the gzip stream holds no data")));
        }
        not_text(name, &peek.text)?;
        input.source = Source::Gzip;
        let first_line = peek.text.split(|&b| b == b'\n').next().unwrap_or(&peek.text);
        if let Some(f) = given.with_export_time(first_line) {
            input.format = f;
        }
        // Read in parts whose keys follow its data ([`Sequencer`]), a gzip file enters the merge at
        // its first records' time: the latest of a small or sparse file's head may be near its end.
        input.starts_at = head_times(&peek.text, &input.format, sample).map(|(earliest, _)| earliest);
        return Ok(());
    }
    let first_line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    let first_line = first_line.strip_suffix(b"\r").unwrap_or(first_line);
    if let Some(h) = LogFormat::from_header(first_line) {
        input.format = h;
        input.header = true;
    } else if let Some(f) = given.with_export_time(first_line) {
        // CloudWatch Logs' export to S3: each event's time, then the record.
        input.format = f;
    }
    input.source = Source::Plain(size);
    input.starts_at = head_start(&head[..head.len().min(PEEK)], &input.format, sample);
    Ok(())
}

/// Text in a wide encoding (an editor's or PowerShell's re-save), or a tar archive, is an error that
/// says so: read as bytes, each field would be a bad value with NULs in it, or the archive's header
/// a line of the wrong shape. UTF-16 and UTF-32 are known by their byte-order mark, or without one by
/// their ASCII characters' NUL bytes: the same places in every character of the head, and only
/// those; a tar archive by `ustar` at byte 257.
fn not_text(name: &str, text: &[u8]) -> Result<(), InputError> {
    not_text_reason(text).map_or(Ok(()), |why| Err(InputError(format!("{name} {why}"))))
}

/// Why text that starts with `text` is not a flow log ([`not_text`]), if it says.
fn not_text_reason(text: &[u8]) -> Option<String> {
    let head = &text[..text.len().min(512)];
    // Each character of `width` bytes has its ASCII byte at `at` and NULs elsewhere.
    let wide = |width: usize, at: usize| {
        let chars = head.chunks_exact(width);
        let n = chars.len();
        n >= 8 && chars.filter(|c| c.iter().enumerate().all(|(i, b)| (i == at) == (*b != 0))).count() * 10 >= n * 9
    };
    let utf32 =
        text.starts_with(&[0xFF, 0xFE, 0, 0]) || text.starts_with(&[0, 0, 0xFE, 0xFF]) || wide(4, 0) || wide(4, 3);
    let utf16 = text.starts_with(&[0xFF, 0xFE]) || text.starts_with(&[0xFE, 0xFF]) || wide(2, 0) || wide(2, 1);
    let encoding = if utf32 { "UTF-32" } else { "UTF-16" };
    if utf32 || utf16 {
        return Some(format!(
            "is {encoding} text; flow logs are ASCII: convert it first (iconv -f {encoding} -t UTF-8)"
        ));
    }
    if text.get(257..262) == Some(b"ustar") {
        return Some("is a tar archive: extract it first (tar -xf), then analyse the flow-log files in it".into());
    }
    None
}

/// Bytes of an input's text looked at for its first records' time.
const PEEK: usize = 16 << 10;

/// The latest start among the whole lines of `text` (the start of an input or chunk, header line
/// and all): where the data's time stands there. Flow logs are in time order but for records that
/// come up to an aggregation interval late; reading inputs and chunks in the order of this time
/// keeps that lateness for the whole, where the earliest start would add a chunk's lateness to the
/// next one's.
fn head_start(text: &[u8], given: &LogFormat, sample: Option<&mut NatEvidence>) -> Option<u64> {
    head_times(text, given, sample).map(|(_, latest)| latest)
}

/// The earliest and the latest start among the whole lines of `text`; its records go to `sample`.
fn head_times(text: &[u8], given: &LogFormat, mut sample: Option<&mut NatEvidence>) -> Option<(u64, u64)> {
    let whole = &text[..memchr::memrchr(b'\n', text)? + 1];
    let mut times: Option<(u64, u64)> = None;
    let mut parser = StreamParser::new(given.clone(), false).with_fields(FIELDS);
    parser.feed(whole, &mut |r| {
        if let Some(s) = r.start {
            times = Some(times.map_or((s, s), |(a, b)| (a.min(s), b.max(s))));
        }
        if let Some(sample) = sample.as_deref_mut() {
            sample.push(r);
        }
    });
    times
}

/// The paths with each file (or pipe) once, in the order they came, and the paths left out: a file
/// named twice (as itself and in a directory given, say) would have its records counted twice.
///
/// Standard input redirected from a file that is named too is the one left out, wherever it comes:
/// it may start past the file's beginning (`(head -c 100 >/dev/null; aws-natgw analyze - x.log) <
/// x.log`), so the file by name holds all of it, and the result does not depend on the order.
fn once(paths: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    // Each path's file, once (standard input is the file or pipe it was given).
    let ids: Vec<_> =
        paths.iter().map(|p| file_identity(if is_stdin(p) { Path::new("/dev/stdin") } else { p })).collect();
    let named: BTreeSet<_> =
        paths.iter().zip(&ids).filter(|(p, _)| !is_stdin(p)).filter_map(|(_, id)| id.as_ref()).collect();
    let mut seen = BTreeSet::new();
    let (kept, repeated): (Vec<_>, Vec<_>) = paths
        .into_iter()
        .zip(&ids)
        .partition(|(p, id)| id.as_ref().is_none_or(|id| (!is_stdin(p) || !named.contains(id)) && seen.insert(id)));
    (kept.into_iter().map(|(p, _)| p).collect(), repeated.into_iter().map(|(p, _)| p).collect())
}

/// " (a broken symbolic link)" when `path` is a link that leads nowhere (or in a loop), for the
/// message that it cannot be read; else nothing.
fn broken_link(path: &Path) -> &'static str {
    let link = path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink());
    if link && path.metadata().is_err() { " (a broken symbolic link)" } else { "" }
}

/// The file a path names, whatever the name: its device and inode (a link that leads nowhere: its
/// own, so that it is named once too).
#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).or_else(|_| std::fs::symlink_metadata(path)).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// The inputs the paths name: files as given and, for a directory, the flow-log files under it
/// (`*.log`, `*.gz`, `*.txt`; hidden ones skipped), recursively, in name order.
#[cfg(test)]
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    expand_noting(paths, &mut BTreeMap::new())
}

/// [`expand`], noting in `cannot_read` the entries under a directory that cannot be read, with why:
/// a broken symbolic link or a link loop named like a flow-log file, a directory that cannot be
/// listed. They are in the paths too, in their place, to be left out there with the files that are
/// not flow logs ([`read_all`]): a directory given is what can be read under it. (A link back to a
/// directory above is passed over: its files are found where they are.) A path named that cannot
/// be read is an error, as before.
fn expand_noting(paths: &[PathBuf], cannot_read: &mut BTreeMap<PathBuf, String>) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for path in paths {
        if is_stdin(path) || !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        let before = out.len();
        let hidden = |e: &walkdir::DirEntry| e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.');
        let walk = walkdir::WalkDir::new(path).follow_links(true).sort_by_file_name();
        let flow_log_name = |name: &str| [".log", ".gz", ".txt"].iter().any(|x| name.ends_with(x));
        for entry in walk.into_iter().filter_entry(|e| !hidden(e)) {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if e.loop_ancestor().is_some() => continue,
                Err(e) => {
                    let at = e.path().unwrap_or(path);
                    let why = e.io_error().map_or_else(|| e.to_string(), io_reason);
                    let problem = format!("cannot read {}: {why}", at.display());
                    if e.depth() == 0 {
                        return Err(InputError(problem));
                    }
                    let dir = at.metadata().is_ok_and(|m| m.is_dir());
                    // A link to nothing not named like a flow log would not be read anyway; what
                    // cannot be looked at (no permission, a path too long) might be a directory.
                    let unknown = e.io_error().is_none_or(|io| io.kind() != io::ErrorKind::NotFound);
                    if dir || unknown || flow_log_name(&at.file_name().unwrap_or_default().to_string_lossy()) {
                        cannot_read.insert(at.to_owned(), format!("{problem}{}", broken_link(at)));
                        out.push(at.to_owned());
                    }
                    continue;
                }
            };
            let (kind, named) = (entry.file_type(), flow_log_name(&entry.file_name().to_string_lossy()));
            if named && !kind.is_file() && !kind.is_dir() {
                // A pipe, a device or a socket named like a flow log: it may never end.
                let why = format!("{} is not a regular file (a pipe, a device or a socket)", entry.path().display());
                cannot_read.insert(entry.path().to_owned(), why);
                out.push(entry.into_path());
            } else if named && kind.is_file() {
                out.push(entry.into_path());
            }
        }
        if out.len() == before {
            return Err(InputError(format!(
                "{}: a directory with no flow-log files (*.log, *.gz, *.txt) under it",
                path.display()
            )));
        }
    }
    Ok(out)
}

/// Splits a plain file into chunks that end at line boundaries: at most [`CHUNK`] bytes and, when
/// `span` is set, at most that many seconds of data (down to [`MIN_CHUNK`]). The data's time at a
/// cut is [`head_start`] of the lines after it, at the file's end `last` (its last records' latest
/// start). Each chunk comes with the times at its start and end.
fn chunks(
    input: &Input,
    size: u64,
    last: Option<u64>,
    span: Option<u64>,
    peek: &mut Peek,
    mut sample: Option<&mut NatEvidence>,
) -> io::Result<Vec<Chunk>> {
    let mut file = input.open()?;
    let probe = &mut peek.raw[..PEEK];
    // The first line boundary at or after `at` (the file's end if none), and the time there.
    let mut cut_at = |at: u64| -> io::Result<(u64, Option<u64>)> {
        if at == 0 {
            return Ok((0, input.starts_at));
        }
        let mut at = at;
        loop {
            file.seek(SeekFrom::Start(at))?;
            let n = file.read(probe)?;
            if n == 0 {
                return Ok((size, None));
            }
            if let Some(i) = memchr::memchr(b'\n', &probe[..n]) {
                let cut = at + i as u64 + 1;
                // The probe's lines after the cut, read for their time (more may follow).
                let rest = &probe[i + 1..n];
                return Ok((cut.min(size), head_start(rest, &input.format, sample.as_deref_mut())));
            }
            // A line longer than the probe: the cut comes after it.
            at += n as u64;
        }
    };
    let mut cuts = vec![cut_at(0)?];
    while let Some(&(last, _)) = cuts.last()
        && last + CHUNK < size
    {
        let next = cut_at(last + CHUNK)?;
        if next.0 >= size {
            break;
        }
        cuts.push(next);
    }
    cuts.push((size, last));
    if let Some(span) = span {
        // Halve every chunk whose first records are further than `span` from the next chunk's.
        let mut k = 0;
        while k + 1 < cuts.len() {
            let ((a, ta), (b, tb)) = (cuts[k], cuts[k + 1]);
            let wide = matches!((ta, tb), (Some(ta), Some(tb)) if tb > ta + span);
            if wide && b - a >= 2 * MIN_CHUNK {
                let mid = cut_at(a + (b - a) / 2)?;
                if mid.0 > a && mid.0 < b {
                    cuts.insert(k + 1, mid);
                    continue;
                }
            }
            k += 1;
        }
    }
    cuts.dedup_by_key(|c| c.0);
    Ok(cuts.windows(2).filter(|w| w[1].0 > w[0].0).map(|w| ((w[0].0, w[1].0), (w[0].1, w[1].1))).collect())
}

/// A chunk of a plain file: its byte range, and the data's time at its start and end.
type Chunk = ((u64, u64), (Option<u64>, Option<u64>));

/// The latest start among the whole lines at the end of a plain file of `size` bytes ([`head_start`]
/// of its tail; the last line counts without its line end).
fn last_start(input: &Input, size: u64, peek: &mut Peek, sample: Option<&mut NatEvidence>) -> io::Result<Option<u64>> {
    let mut file = input.open()?;
    let from = size.saturating_sub(PEEK as u64);
    file.seek(SeekFrom::Start(from))?;
    let tail = &mut peek.text;
    tail.clear();
    file.take(PEEK as u64).read_to_end(tail)?;
    if tail.last() != Some(&b'\n') {
        tail.push(b'\n');
    }
    // Skip the partial line the tail starts in (unless it is the file's start).
    let whole = match from {
        0 => &tail[..],
        _ => memchr::memchr(b'\n', tail).map_or(&[][..], |i| &tail[i + 1..]),
    };
    Ok(head_start(whole, &input.format, sample))
}

/// For each input, whether the time it covers (`None`: unknown) overlaps another input's. In order of
/// their starts, a range overlaps another exactly when an earlier one reaches its start or the next
/// one starts within it: linear after the sort, for directories of many thousand files.
fn overlapping(covers: &[Option<(u64, u64)>]) -> Vec<bool> {
    let mut sorted: Vec<(u64, u64, usize)> =
        covers.iter().enumerate().filter_map(|(i, c)| c.map(|(a, b)| (a, b, i))).collect();
    sorted.sort_unstable();
    let mut out = vec![false; covers.len()];
    let mut reach: Option<u64> = None;
    for (k, &(a, b, i)) in sorted.iter().enumerate() {
        let next_within = sorted.get(k + 1).is_some_and(|&(c, _, _)| c <= b);
        out[i] = reach.is_some_and(|r| r >= a) || next_within;
        reach = reach.max(Some(b));
    }
    out
}

/// Where a worker puts its records: the fast path's classified legs when the NAT addresses are known,
/// else every record for the analyzer's reference path; or, in a first pass that finds the NAT
/// gateway, only the evidence for that.
#[derive(Debug)]
enum Sink {
    Fast(Box<FastShard>),
    Reference(Shard),
    Evidence(Box<NatEvidence>),
}

impl Sink {
    fn push(&mut self, r: &natgw_core::flowlog::Record<'_>) {
        match self {
            Sink::Fast(s) => s.push(r),
            Sink::Reference(s) => s.push(r),
            Sink::Evidence(s) => s.push(r),
        }
    }
}

/// The text of a gzip file or stdin as it is read: a task that can pause between its parts and go
/// on, on any worker ([`Sequencer::should_pause`]).
struct Streaming {
    text: Box<dyn Read + Send>,
    gzip: bool,
    parser: StreamParser,
    /// Text read so far.
    total: u64,
    /// Text read but not parsed yet, when it paused.
    rest: Vec<u8>,
}

/// How a task's reading ended.
enum Outcome {
    /// Read to its end, or cut short (why) where a file found under a directory given could not be
    /// read further: what came before is counted.
    Done(ParseStats, LogFormat, Option<String>),
    /// Paused after handing a part over; it goes on from here.
    Paused(Box<Streaming>),
}

/// The parser of a task: a header line is looked for in an input's first task only (which starts
/// with the given format when the probe found a header, and reads it again).
fn task_parser(input: &Input, task: &Task, given: &LogFormat) -> StreamParser {
    let format = if task.first && input.header { given.clone() } else { input.format.clone() };
    let parser = StreamParser::new(format, false).with_fields(FIELDS);
    if task.first { parser } else { parser.without_header() }
}

/// Opens a gzip file or a stream for reading.
fn open_stream(input: &Input, task: &Task, given: &LogFormat) -> Result<Streaming, String> {
    let raw: Box<dyn Read + Send> = match input.source {
        Source::Stream => match input.kept.as_deref().and_then(Kept::rest) {
            Some(rest) => Box::new(rest),
            None if is_stdin(&input.path) => Box::new(io::stdin()),
            // A pipe kept in part is read once ([`Inputs::gather`] lets it be named only once):
            // opening it again would wait on a pipe no one writes to.
            None => return Err(format!("{}: the pipe was read already", input.name)),
        },
        _ => Box::new(input.open().map_err(|e| format!("cannot open {}: {}", input.name, io_reason(&e)))?),
    };
    let mut reader = BufReader::with_capacity(RAW_BUF, raw);
    let head = reader.fill_buf().map_err(|e| format!("cannot read {}: {}", input.name, io_reason(&e)))?;
    if head.is_empty() {
        return Err(format!("{} is empty", input.name));
    }
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let text: Box<dyn Read + Send> = match (gzip, task.decode_ahead) {
        (false, _) => Box::new(reader),
        (true, false) => Box::new(MultiGzDecoder::new(reader)),
        (true, true) => match DecodeAhead::start(MultiGzDecoder::new(reader)) {
            Ok(ahead) => Box::new(ahead),
            Err(decoder) => Box::new(decoder),
        },
    };
    Ok(Streaming { text, gzip, parser: task_parser(input, task, given), total: 0, rest: Vec::new() })
}

/// Parses one task into `shard`: a plain file's chunk whole; a gzip file or stdin from where it
/// paused (`resume`) or its start, calling `part_done` after each piece of text, and pausing when it
/// says so (just after handing a part over: the shard then holds nothing of this task).
fn run_task(
    input: &Input,
    task: &Task,
    given: &LogFormat,
    shard: &mut Sink,
    scratch: &mut Vec<u8>,
    resume: Option<Box<Streaming>>,
    part_done: &mut dyn FnMut(&mut Sink) -> bool,
) -> Result<Outcome, String> {
    // A file found under a directory given that cannot be read on (a truncated or corrupt gzip file,
    // one gone or shrunk since it was looked at) is cut short there, not the whole run: what came
    // before is counted, and the report says so. A file named is an error.
    let cut_short = |why: String, stats: ParseStats, format: LogFormat| {
        if input.found { Ok(Outcome::Done(stats, format, Some(why))) } else { Err(why) }
    };
    if let (Source::Plain(_), Some((a, b))) = (&input.source, task.range) {
        let mut parser = task_parser(input, task, given);
        let opened = input.open().and_then(|mut f| f.seek(SeekFrom::Start(a)).map(|_| f));
        let mut file = match opened {
            Ok(f) => f,
            Err(e) => {
                let why = format!("cannot open {}: {}", input.name, io_reason(&e));
                return cut_short(why, ParseStats::default(), input.format.clone());
            }
        };
        // One small buffer per worker, reused, read into and parsed piece by piece: the kernel's
        // copy and the parser then both work in the core's cache, not in memory. (Mapping the
        // chunks instead saved the copy's system time but cost as much or more in the parser and
        // the shards, whose data then shared the TLB with the map's pages: measured at 0.98-1.25 of
        // reading's time on two threads, and left out.)
        scratch.resize(READ_PIECE, 0);
        let mut left = b - a;
        let mut cut = None;
        while left > 0 {
            let piece = &mut scratch[..READ_PIECE.min(left as usize)];
            if let Err(e) = file.read_exact(piece) {
                cut = Some(match e.kind() {
                    io::ErrorKind::UnexpectedEof => format!("{}: the file shrank while it was read", input.name),
                    _ => format!("{}: read failed: {}", input.name, io_reason(&e)),
                });
                break;
            }
            parser.feed(piece, &mut |r| shard.push(r));
            left -= piece.len() as u64;
        }
        let format = parser.format().clone();
        let stats = parser.finish(&mut |r| shard.push(r));
        return match cut {
            Some(why) => cut_short(why, stats, format),
            None => Ok(Outcome::Done(stats, format, None)),
        };
    }
    let mut s = match resume {
        Some(s) => s,
        None => match open_stream(input, task, given) {
            Ok(s) => Box::new(s),
            Err(why) => return cut_short(why, ParseStats::default(), input.format.clone()),
        },
    };
    let mut cut = None;
    // What it read before it paused.
    let mut rest = std::mem::take(&mut s.rest);
    // The worker's buffer again (a fresh one per file was allocated and zeroed per gzip file). A
    // gzip file or stdin can be large: its records are handed over as they come, in parts of a few
    // seconds of data (see [`PART_SECS`]), so the text is parsed a piece at a time.
    scratch.resize(STREAM_READ, 0);
    loop {
        let n = if rest.is_empty() {
            match s.text.read(&mut scratch[..STREAM_READ]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let what = if s.gzip { "gzip data is truncated or corrupt" } else { "read failed" };
                    let why = format!("{}: {what} after {} bytes of text: {}", input.name, s.total, io_reason(&e));
                    // Only an end that comes early is a cut: data damaged inside decodes to garbage
                    // before the error shows, so the run fails then unless nothing was read.
                    if e.kind() != io::ErrorKind::UnexpectedEof && s.total > 0 {
                        return Err(why);
                    }
                    cut = Some(why);
                    break;
                }
            }
        } else {
            let n = rest.len();
            scratch[..n].copy_from_slice(&rest);
            rest.clear();
            n
        };
        let mut at = 0;
        while at < n {
            let piece = &scratch[at..n.min(at + PIECE)];
            at += piece.len();
            s.total += piece.len() as u64;
            s.parser.feed(piece, &mut |r| shard.push(r));
            if matches!(input.source, Source::Stream) && s.parser.stats().lines == 0 && s.total > LINELESS {
                return Err(format!("{} {}", input.name, lineless_reason()));
            }
            if part_done(shard) {
                s.rest.extend_from_slice(&scratch[at..n]);
                return Ok(Outcome::Paused(s));
            }
        }
    }
    if s.total == 0 && cut.is_none() {
        return Err(format!("{}: the gzip stream holds no data", input.name));
    }
    let format = s.parser.format().clone();
    let stats = s.parser.finish(&mut |r| shard.push(r));
    match cut {
        Some(why) => cut_short(why, stats, format),
        None => Ok(Outcome::Done(stats, format, None)),
    }
}

/// What a [`read_all`] did, beyond the analyzer's records.
#[derive(Debug, Clone)]
pub struct ReadStats {
    /// The most parts that waited at once for a lane of the streams: what streaming held in memory
    /// besides the streams themselves (0 without them).
    #[cfg_attr(not(test), expect(dead_code, reason = "the tests hold what streaming keeps in memory to it"))]
    pub peak_waiting: usize,
    /// Parts handed over to the streams in all.
    #[cfg_attr(not(test), expect(dead_code, reason = "the tests hold what streaming keeps in memory to it"))]
    pub parts: usize,
    /// Passes over the records: 1, or 2 when a first pass found the NAT gateway or the guessed one
    /// was not confirmed.
    #[cfg_attr(not(test), expect(dead_code, reason = "the tests count them"))]
    pub passes: usize,
    /// Files found under a directory given that were left out, in the order given, each with why:
    /// empty, not flow-log text, or without a record (a README, say).
    pub skipped: Vec<String>,
}

/// Why a file cannot be read.
fn cannot_read(input: &Input, e: io::Error) -> InputError {
    InputError(format!("cannot read {}: {}", input.name, io_reason(&e)))
}

/// Reads every input into the analyzer with `threads` workers.
pub fn read_all(
    all: &Inputs,
    given: &LogFormat,
    threads: usize,
    analyzer: &mut Analyzer,
    stream: bool,
) -> Result<ReadStats, InputError> {
    let inputs: Vec<Input> =
        all.paths.iter().map(|p| Input::named(p, given, all.kept(p), all.found.contains(p))).collect();
    let mut peek = Peek::new();
    let rereadable = !inputs.iter().any(|i| matches!(i.source, Source::Stream));
    // The records read at the inputs' heads, tails and cuts: a sample to guess the NAT gateway from.
    let mut sample = analyzer.nat_evidence().filter(|_| rereadable);
    // A file found under a directory given that is not a flow log (empty, a README, an archive) is
    // left out, and said so; one named is an error. With none left, the problem of the first in the
    // order given is.
    let mut skipped = Skipped::default();
    let mut usable = Vec::with_capacity(inputs.len());
    for (at, mut input) in inputs.into_iter().enumerate() {
        if input.found
            && let Some(why) = all.paths.get(at).and_then(|p| all.cannot_read.get(p))
        {
            skipped.add(at, &input.name, InputError(why.clone()));
            continue;
        }
        // Probed, then the time it covers as far as its ends tell (a gzip file: its start only).
        let probed = probe(&mut input, given, &mut peek, sample.as_mut()).and_then(|()| match input.source {
            Source::Plain(size) => {
                last_start(&input, size, &mut peek, sample.as_mut()).map_err(|e| cannot_read(&input, e))
            }
            _ => Ok(None),
        });
        match probed {
            Ok(last) => usable.push((at, input, last)),
            Err(e) if input.found => skipped.add(at, &input.name, e),
            Err(e) => return Err(e),
        }
    }
    if usable.is_empty() {
        return Err(skipped.first());
    }
    let (mut places, mut inputs, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
    for (at, input, last) in usable {
        places.push(at);
        inputs.push(input);
        lasts.push(last);
    }
    // Plain files that cover the same time as another input (a NAT gateway's and its clients'
    // interfaces, say) are cut finely in time and their chunks read in the order of their ends' times:
    // they interleave so that no record comes further behind the latest start than within its own
    // file, plus the span. (A gzip file's parts are keyed by their data's time as they are read, so
    // they interleave too; its end is unknown, so it is taken to cover all time after its start: a
    // plain file cut in 4-MiB chunks beside it made its records up to a chunk's span late, 178 s on
    // the hot-s3 simulation, and the streams refused them.) Every other task is read in the order of
    // its start's time.
    let covers: Vec<Option<(u64, u64)>> = inputs
        .iter()
        .zip(&lasts)
        .map(|(i, l)| match i.source {
            Source::Plain(_) => i.starts_at.map(|a| (a, l.unwrap_or(a).max(a))),
            Source::Gzip => i.starts_at.map(|a| (a, u64::MAX)),
            Source::Stream => None,
        })
        .collect();
    let overlaps = overlapping(&covers);
    let mut tasks = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        match input.source {
            Source::Plain(size) => {
                let interleave = overlaps[i];
                let span = interleave.then_some(CHUNK_SECS);
                // A file found under a directory that cannot be cut (gone since it was looked at) is
                // one task, which its read leaves out ([`run_task`]).
                let chunks = match chunks(input, size, lasts[i], span, &mut peek, sample.as_mut()) {
                    Ok(chunks) => chunks,
                    Err(_) if input.found => vec![((0, size), (input.starts_at, None))],
                    Err(e) => return Err(cannot_read(input, e)),
                };
                let mut at = None;
                for (k, (range, (starts, ends))) in chunks.into_iter().enumerate() {
                    let time = if interleave { ends.or(starts) } else { starts };
                    at = at.max(time).or(input.starts_at);
                    tasks.push(Task {
                        input: i,
                        range: Some(range),
                        first: k == 0,
                        starts_at: at,
                        decode_ahead: false,
                    });
                }
            }
            _ => {
                tasks.push(Task { input: i, range: None, first: true, starts_at: input.starts_at, decode_ahead: false })
            }
        }
    }
    if tasks.len() < threads {
        tasks.iter_mut().for_each(|t| t.decode_ahead = t.range.is_none());
    }
    // The tasks in the time order of their first records, so that files given in another order (a
    // shell's or `find`'s, several flow logs' files side by side) still stream, and files of one
    // period interleave; as given when an input's time is unknown. Reports list the inputs as given.
    let by_time = tasks.iter().all(|t| t.starts_at.is_some());
    if by_time {
        tasks.sort_by_key(|t| t.starts_at);
    }
    // Without --nat-ip, the NAT gateway is guessed from the records read at the inputs' heads (and
    // at plain files' cuts), so that one pass takes the fast path; the pass collects the evidence over
    // every record and confirms the guess, or reads again with the NAT gateway it found. With no
    // guess, a first pass finds it. (Standard input that no temporary file could take cannot be read
    // twice: it takes the reference path.)
    let mut guessed = false;
    let mut passes = 0;
    if rereadable && let Some(evidence) = analyzer.nat_evidence() {
        guessed = sample.is_some_and(|s| analyzer.guess_nat(s));
        if !guessed {
            passes += 1;
            let evidence_sink = || Sink::Evidence(Box::new(evidence.clone()));
            let (results, sinks) = run_pool(&inputs, &tasks, given, threads, evidence_sink, None, by_time);
            if results.iter().all(Result::is_ok) {
                let mut all = evidence;
                for sink in sinks {
                    if let Sink::Evidence(e) = sink {
                        all.absorb(*e);
                    }
                }
                analyzer.infer_nat(all);
            }
        }
    }
    // With the destinations' lane, a lane per worker: every core can feed one. (Client lanes split
    // each part's client records, a copy: one lane takes them as they are.)
    let times: Vec<u64> = tasks
        .iter()
        .enumerate()
        .map(|(t, task)| if by_time { task.starts_at.unwrap_or(0) } else { t as u64 })
        .collect();
    let (mut results, shards, streams, peak_waiting, parts) = loop {
        passes += 1;
        let fast = analyzer.fast_shard().map(|f| if guessed { f.collect_nat_evidence() } else { f });
        // With the NAT known, the NAT → destination records go to the streaming estimator in time
        // order (memory bounded by ports and seconds, not records). Should they come out of time
        // order, the analysis refuses them (`AnalyzeError::StreamOrder`) and the caller reads again
        // with `stream` off, keeping the records in memory. Standard input that no temporary file
        // could take cannot be read again, so it never streams.
        let streamable = stream && fast.is_some() && rereadable;
        let sequencer = streamable.then(|| {
            let room = ROOM_PER_THREAD * threads;
            Sequencer::new(analyzer.flow_streams_in_lanes(threads.saturating_sub(1)), &times, room)
        });
        let sink = || match &fast {
            Some(f) => Sink::Fast(Box::new(f.clone())),
            None => Sink::Reference(Shard::default()),
        };
        let (results, mut shards) = run_pool(&inputs, &tasks, given, threads, sink, sequencer.as_ref(), by_time);
        if guessed && results.iter().all(Result::is_ok) {
            guessed = false;
            let mut all = analyzer.nat_evidence();
            for shard in &mut shards {
                if let (Some(all), Sink::Fast(s)) = (&mut all, shard)
                    && let Some(e) = s.take_nat_evidence()
                {
                    all.absorb(e);
                }
            }
            if !all.is_some_and(|all| analyzer.confirm_nat(all)) {
                continue;
            }
        }
        let (peak_waiting, parts) = sequencer.as_ref().map_or((0, 0), |s| {
            (s.peak_waiting.load(Ordering::Relaxed), s.lanes.first().map_or(0, |l| lock(&l.stream).fed))
        });
        break (results, shards, sequencer.map(Sequencer::into_streams), peak_waiting, parts);
    };
    results.sort_by_key(|r| match r {
        Ok(d) => d.task,
        Err((t, _)) => *t,
    });
    if let Some(Err((_, e))) = results.iter().find(|r| r.is_err()) {
        return Err(InputError(e.clone()));
    }
    // Per input, in order: join its tasks' counts, offsetting line numbers.
    let mut per_input: Vec<(ParseStats, Option<LogFormat>, Option<String>)> =
        inputs.iter().map(|_| (ParseStats::default(), None, None)).collect();
    for d in results.into_iter().flatten() {
        let (stats, format, cut) = &mut per_input[tasks[d.task].input];
        if cut.is_none() {
            *cut = d.cut;
        }
        let offset = stats.lines;
        let mut s = d.stats;
        for b in &mut s.bad_lines {
            b.line += offset;
        }
        stats.merge(s);
        if format.is_none() {
            *format = Some(d.format);
        }
    }
    let mut added = 0;
    for ((input, (stats, format, cut)), at) in inputs.iter().zip(per_input).zip(places) {
        let format = format.unwrap_or_else(|| input.format.clone());
        if let Some(why) = &cut {
            // Cut short: left out whole when nothing came before, else what came before counts.
            if stats.records == 0 {
                skipped.add(at, &input.name, InputError(why.clone()));
                continue;
            }
            let read = match stats.records {
                1 => format!("{why} (the record before it is read)"),
                n => format!("{why} (the {} records before it are read)", natgw_core::analyze::thousands(n)),
            };
            skipped.add(at, &input.name, InputError(read));
        }
        check_format(&format).map_err(|e| InputError(format!("{}: {e}", input.name)))?;
        if stats.records == 0 {
            let reason = match stats.bad_lines.first() {
                Some(b) => format!(": line {} {}", b.line, b.error),
                None if stats.header || input.header => ": only a header line".into(),
                None => String::new(),
            };
            let hint = match stats.bad_lines.first().map(|b| &b.error) {
                Some(LineError::FieldCount { .. }) => {
                    " (if this flow log uses a custom format, pass it with --log-format)"
                }
                _ => "",
            };
            let problem = InputError(format!("{}: no flow-log records{reason}{hint}", input.name));
            if !input.found {
                return Err(problem);
            }
            skipped.add(at, &input.name, problem);
            continue;
        }
        analyzer.add_input(input.name.clone(), &format, stats);
        added += 1;
    }
    if added == 0 {
        return Err(skipped.first());
    }
    for shard in shards {
        match shard {
            Sink::Fast(s) => analyzer.absorb_fast(*s),
            Sink::Reference(s) => analyzer.absorb(s),
            Sink::Evidence(_) => {}
        }
    }
    if let Some(streams) = streams {
        analyzer.absorb_streams(streams);
    }
    let skipped = skipped.in_order();
    for (name, why) in &skipped {
        analyzer.leave_out(name.clone(), why.clone());
    }
    let skipped = skipped.into_iter().map(|(_, why)| why).collect();
    Ok(ReadStats { peak_waiting, parts, passes, skipped })
}

/// The inputs left out ([`read_all`]), by their place among the inputs given.
#[derive(Default)]
struct Skipped(Vec<(usize, String, InputError)>);

impl Skipped {
    fn add(&mut self, at: usize, name: &str, problem: InputError) {
        self.0.push((at, name.to_owned(), problem));
    }

    /// Each one's name and problem, in the order given (whichever step found it).
    fn in_order(mut self) -> Vec<(String, String)> {
        self.0.sort_by_key(|(at, ..)| *at);
        self.0.into_iter().map(|(_, name, e)| (name, e.0)).collect()
    }

    /// Why no input is left: the problem of the only one, or of the first few in the order given.
    fn first(self) -> InputError {
        const SAID: usize = 3;
        let all = self.in_order();
        match &all[..] {
            [] => InputError("no input".into()),
            [(_, why)] => InputError(why.clone()),
            _ => {
                let said: Vec<&str> = all.iter().take(SAID).map(|(_, why)| why.as_str()).collect();
                let more = match all.len() - said.len() {
                    0 => String::new(),
                    n => format!("; and {n} more"),
                };
                InputError(format!(
                    "none of the {} files found under the directories given could be read as a flow log: {}{more}",
                    all.len(),
                    said.join("; ")
                ))
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Tasks a worker may run ahead of the streams, per worker.
const AHEAD_PER_THREAD: usize = 4;

/// Shares a lane may have waiting, per worker ([`Sequencer`]'s room), before a worker that finds it
/// held waits, and before a task that runs ahead of the one the merge waits for waits or pauses
/// (so gzip files of more flow logs than workers are read in turns of about this many parts a
/// worker). A client lane's merge of its batch holds the lane a few milliseconds, about two parts'
/// parsing: with one share per worker the other worker soon waited for it. Measured on the
/// benchmark's plain file, 2 threads, 8 interleaved runs: medians 0.97 s (1 a worker), 0.95 s (2),
/// 0.92 s (4), with the same peak RSS (36–39 MiB). Waiting shares cost memory per worker: with 16
/// threads (on the same 2 cores) 148 MiB peak against 113 MiB with one share a worker (0.95 s
/// against 1.62 s).
const ROOM_PER_THREAD: usize = 4;

/// Records a part of a large gzip file or stdin holds before it is handed over.
const PART_RECORDS: u64 = 1 << 14;

/// Seconds of data a part of a gzip file spans, at most (as many as a chunk of a plain file that
/// other inputs overlap): the parts of gzip files of one period interleave in time at this grain.
const PART_SECS: u64 = CHUNK_SECS;

/// Text a gzip file's task parses between looks at its part's size and time (as little as a plain
/// file's chunk can be: [`MIN_CHUNK`]).
const PIECE: usize = MIN_CHUNK as usize;

/// A share's place in the order the lanes take them: the data's time at the end of its part, then
/// its task and part. The time is the latest start read in the task so far (never before the task's
/// own time, [`Task::starts_at`]), so a task's keys grow part by part. Without every task's time,
/// the time is the task's number: tasks are then fed one after the other, in turn.
type Key = (u64, usize, usize);

/// Feeds the parts of the tasks to the streaming estimates in time order, whichever worker read them.
/// The streams are lanes that share nothing ([`FlowStreams::into_lanes`]): the destinations' and the
/// client lanes, a lane per worker in all. A worker splits the part it hands over into the lanes'
/// shares; whoever holds a lane feeds every share that is next in line for it, and the workers that
/// find the lanes taken go back to parsing, so the lanes are fed on all cores at once.
///
/// The order is a merge by [`Key`]: a lane takes its least share once no task can still hand over
/// one with a smaller key. Each task's least possible next key is known (its time and next part, or
/// the time at its start for tasks not begun), so tasks read side by side — gzip files of one period
/// from several interfaces, which cannot be cut in chunks — interleave at the grain of their parts,
/// while consecutive tasks keep their turn. What waits stays small: workers take no task more than a
/// few ahead of the slowest lane unless the merge waits for it ([`claim`](Sequencer::claim)), and a
/// gzip file's task that runs ahead of the one the merge waits for waits for it, or pauses to let
/// its worker read that one ([`should_pause`](Sequencer::should_pause)).
struct Sequencer {
    lanes: Vec<Lane>,
    bounds: Mutex<Bounds>,
    /// Per lane, the first task not fed in full; changes (and shares fed, bounds moved) are signalled.
    fed: Mutex<Vec<usize>>,
    progress: Condvar,
    /// Shares a lane may have waiting before a worker that is not holding the merge back waits to
    /// hand over more, or pauses.
    room: usize,
    /// Tasks paused, for any worker to go on with once the merge waits for them.
    paused: Mutex<Vec<Paused>>,
    /// The most shares that waited in a lane at once.
    peak_waiting: AtomicUsize,
    /// Workers still claiming tasks, and workers with none left that feed the lanes meanwhile
    /// ([`help`](Sequencer::help)).
    claiming: AtomicUsize,
    helping: AtomicUsize,
    /// A worker panicked: the others stop waiting for anything ([`AbortOnPanic`]).
    aborted: AtomicBool,
}

/// Held by a worker: if it panics (a bug), the sequencer is aborted, so that the workers waiting
/// for it (to hand over, to claim, to help) stop instead of waiting forever, and the panic reaches
/// the caller once every worker has ended; without it, the read hung.
struct AbortOnPanic<'a>(&'a Sequencer);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.aborted.store(true, Ordering::SeqCst);
            self.0.signal();
        }
    }
}

/// A gzip file's task paused between parts ([`Sequencer::should_pause`]).
struct Paused {
    task: usize,
    streaming: Box<Streaming>,
    turn: Turn,
}

/// Where a task's handing over stands.
#[derive(Debug, Clone, Copy)]
struct Turn {
    /// The next part's number.
    part: usize,
    /// The data's time: the key of the next part, at least.
    time: u64,
    /// The time at the last part handed over.
    part_from: u64,
}

/// The least key each task can still hand over.
struct Bounds {
    /// By task; a task whose last part was handed over is out of `open`.
    by_task: Vec<Key>,
    /// The bounds of the tasks with parts to come, least first.
    open: BTreeSet<Key>,
    /// By task: a worker is reading it.
    running: Vec<bool>,
    /// Workers between tasks: each will claim one, and so take the task the merge waits for if no
    /// worker reads it ([`claim`](Sequencer::claim)).
    idle: usize,
}

/// One lane of the streams and the shares waiting for it.
struct Lane {
    waiting: Mutex<BTreeMap<Key, (LaneFlows, bool)>>,
    stream: Mutex<LaneFeed>,
}

/// A lane's stream and which tasks it has taken in full.
struct LaneFeed {
    stream: StreamLane,
    /// Shares fed.
    fed: usize,
    done: Vec<bool>,
    /// The first task not fed in full.
    first_open: usize,
}

impl Sequencer {
    /// The sequencer of tasks whose parts' keys start at `times` (by task), with `room` for shares
    /// waiting in each lane.
    fn new(streams: FlowStreams, times: &[u64], room: usize) -> Sequencer {
        let lanes: Vec<Lane> = streams
            .into_lanes()
            .into_iter()
            .map(|stream| Lane {
                waiting: Mutex::default(),
                stream: Mutex::new(LaneFeed { stream, fed: 0, done: vec![false; times.len()], first_open: 0 }),
            })
            .collect();
        let by_task: Vec<Key> = times.iter().enumerate().map(|(t, &time)| (time, t, 0)).collect();
        let bounds =
            Bounds { open: by_task.iter().copied().collect(), by_task, running: vec![false; times.len()], idle: 0 };
        Sequencer {
            fed: Mutex::new(vec![0; lanes.len()]),
            bounds: Mutex::new(bounds),
            lanes,
            progress: Condvar::new(),
            room: room.max(1),
            paused: Mutex::default(),
            peak_waiting: AtomicUsize::new(0),
            claiming: AtomicUsize::new(0),
            helping: AtomicUsize::new(0),
            aborted: AtomicBool::new(false),
        }
    }

    /// `workers` begin, each between tasks.
    fn start_workers(&self, workers: usize) {
        self.claiming.store(workers, Ordering::Relaxed);
        lock(&self.bounds).idle = workers;
    }

    /// A worker between tasks begins reading task `task`.
    fn begin(&self, task: usize) {
        let mut bounds = lock(&self.bounds);
        bounds.running[task] = true;
        bounds.idle -= 1;
    }

    /// A worker between tasks claims no more: it helps ([`help`](Sequencer::help)) or stops.
    fn stop_claiming(&self) {
        lock(&self.bounds).idle -= 1;
        self.claiming.fetch_sub(1, Ordering::Relaxed);
        // Helpers waiting look again: they stop once no worker claims.
        self.signal();
    }

    /// Wakes the workers that wait, to look again (under the lock they wait with: no signal is lost).
    fn signal(&self) {
        drop(lock(&self.fed));
        self.progress.notify_all();
    }

    /// Blocks while the lanes have no room and task `task` is not the one the merge waits for, which
    /// another worker is reading or will take: a task read faster in time than the others (a sparser
    /// file of the same period) waits for them instead of piling up its parts. Cannot deadlock: the
    /// task the merge waits for never waits here, a worker between tasks takes it when no worker
    /// reads it, and when none is between tasks either, nothing waits here.
    ///
    /// Returns whether it stopped waiting because no worker reads that task nor will: then `task`
    /// hands its part over and pauses, whatever the lanes look like by then, so that its worker takes
    /// that task ([`should_pause`](Sequencer::should_pause)).
    ///
    /// (Waiting only while a worker read it, and pausing only if none did after the hand-over, let
    /// a task far ahead hand a part over, and go on, each time the other worker went from one of
    /// several files of the same period to the next: 24–50 parts waited in a lane on two threads,
    /// where a few were meant to.)
    fn wait_to_hand_over(&self, task: usize) -> bool {
        let mut fed = lock(&self.fed);
        loop {
            match self.held_back(task) {
                Some(true) if !self.aborted() => fed = self.progress.wait(fed).unwrap_or_else(|p| p.into_inner()),
                unread => return unread.is_some(),
            }
        }
    }

    /// When the lanes have no room and the merge waits for a task other than `task`: whether a
    /// worker reads that one or a worker between tasks will take it (then `task` waits for it,
    /// [`wait_to_hand_over`]; else `task` pauses, [`should_pause`]). `None`: `task` may go on.
    ///
    /// [`wait_to_hand_over`]: Sequencer::wait_to_hand_over
    /// [`should_pause`]: Sequencer::should_pause
    fn held_back(&self, task: usize) -> Option<bool> {
        if !self.lanes.iter().any(|l| lock(&l.waiting).len() >= self.room) {
            return None;
        }
        let bounds = lock(&self.bounds);
        bounds.open.first().filter(|k| k.1 != task).map(|k| bounds.running[k.1] || bounds.idle > 0)
    }

    /// Whether a worker panicked ([`AbortOnPanic`]).
    fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// The time task `task`'s keys start at.
    fn start(&self, task: usize) -> u64 {
        lock(&self.bounds).by_task[task].0
    }

    /// The least key any task can still hand over (`None`: every part is in).
    fn least_to_come(&self) -> Option<Key> {
        lock(&self.bounds).open.first().copied()
    }

    /// The next task for a worker, begun: the one the merge waits for if it is paused; else the next
    /// in order (`next`, of `tasks`) once it is fewer than `ahead` tasks past the first one some lane
    /// has not fed in full, or the merge waits for it; else, when every task is begun, a paused one
    /// once the merge waits for it. `None`: no task is left.
    ///
    /// Cannot deadlock: the task the merge waits for (the least bound) is running, or paused and
    /// taken here, or not yet begun — and then it is the next in order (tasks are numbered in the
    /// order of their times, so an earlier one not begun would have a lower bound) and taken here.
    /// A running task the merge waits for never waits ([`wait_to_hand_over`]), and pauses only when
    /// it became that task while handing over a part it had to pause after (then its worker, between
    /// tasks, takes it straight back here); each share handed over is fed by its hander or by the
    /// lane's holder.
    ///
    /// [`wait_to_hand_over`]: Sequencer::wait_to_hand_over
    fn claim(&self, next: &AtomicUsize, tasks: usize, ahead: usize) -> Option<(usize, Option<Paused>)> {
        // Under this lock: only claims move `next`, and no signal is lost while it waits.
        let mut fed = lock(&self.fed);
        loop {
            if self.aborted() {
                return None;
            }
            let least = self.least_to_come();
            if let Some(least) = least {
                let mut paused = lock(&self.paused);
                if let Some(i) = paused.iter().position(|p| p.task == least.1) {
                    let p = paused.swap_remove(i);
                    drop(paused);
                    self.begin(p.task);
                    return Some((p.task, Some(p)));
                }
            }
            let t = next.load(Ordering::Relaxed);
            if t < tasks {
                if t < fed.iter().copied().min().unwrap_or(0) + ahead.max(1) || least.is_some_and(|k| k.1 == t) {
                    next.store(t + 1, Ordering::Relaxed);
                    self.begin(t);
                    return Some((t, None));
                }
            } else if lock(&self.paused).is_empty() {
                return None;
            }
            fed = self.progress.wait(fed).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Whether task `task`, which just handed a part over, should pause: the lanes have no room, and
    /// the task the merge waits for is another that no worker reads (not begun, or paused). Then the
    /// worker goes on with that one ([`claim`](Sequencer::claim)) instead of piling up parts: gzip
    /// files of more flow logs than workers are read in turns.
    fn should_pause(&self, task: usize) -> bool {
        self.held_back(task) == Some(false)
    }

    /// Keeps a paused task for the next [`claim`](Sequencer::claim).
    fn pause(&self, p: Paused) {
        {
            let mut bounds = lock(&self.bounds);
            bounds.running[p.task] = false;
            bounds.idle += 1;
        }
        lock(&self.paused).push(p);
        self.signal();
    }

    /// Hands over part `part` of task `task` (`last`: its final part) whose data's time is `time`
    /// (at least the last part's, and the task's [`start`](Sequencer::start)): its share to every
    /// lane, then feeds the lanes that are free, starting at `first` (workers start at different
    /// lanes). Returns whether the task must pause now ([`wait_to_hand_over`]).
    ///
    /// [`wait_to_hand_over`]: Sequencer::wait_to_hand_over
    fn submit(&self, task: usize, part: usize, time: u64, flows: NatFlows, last: bool, first: usize) -> bool {
        let must_pause = self.wait_to_hand_over(task);
        let key = (time, task, part);
        // The destinations' lane, then the client lanes.
        let client_lanes = self.lanes.len().saturating_sub(1);
        for (lane, share) in self.lanes.iter().zip(flows.into_lanes(client_lanes)) {
            let mut waiting = lock(&lane.waiting);
            waiting.insert(key, (share, last));
            self.peak_waiting.fetch_max(waiting.len(), Ordering::Relaxed);
        }
        // The task's bound moves only now that its share waits in every lane: a lane that looked at
        // the bounds in between saw the old one, and waited.
        {
            let mut bounds = lock(&self.bounds);
            let old = bounds.by_task[task];
            bounds.open.remove(&old);
            let next = (time, task, part + 1);
            bounds.by_task[task] = next;
            if last {
                bounds.running[task] = false;
                bounds.idle += 1;
            } else {
                bounds.open.insert(next);
            }
        }
        // Workers that wait look at the bounds again.
        self.signal();
        // A worker that helps feeds the lanes that have room; this one goes back to parsing.
        let helped = self.helping.load(Ordering::Relaxed) > 0;
        let n = self.lanes.len();
        for k in 0..n {
            let i = (first + k) % n;
            if helped && lock(&self.lanes[i].waiting).len() < self.room {
                continue;
            }
            self.drain(i);
        }
        must_pause
    }

    /// Called by a worker that has no task left to claim: it feeds the lanes the parts that the
    /// workers still reading hand over, so that they go on parsing (one gzip file, which is one
    /// task, is then parsed on one core and its streams fed on another). Returns once every part
    /// is in, or no worker is left to hand any over (one failed).
    fn help(&self) {
        self.helping.fetch_add(1, Ordering::Relaxed);
        loop {
            for i in 0..self.lanes.len() {
                self.drain(i);
            }
            // Under the lock signals come with: none is lost between the look and the wait.
            let fed = lock(&self.fed);
            if (0..self.lanes.len()).any(|i| self.ready(i)) {
                continue;
            }
            if self.least_to_come().is_none() || self.claiming.load(Ordering::Relaxed) == 0 || self.aborted() {
                break;
            }
            drop(self.progress.wait(fed).unwrap_or_else(|p| p.into_inner()));
        }
        self.helping.fetch_sub(1, Ordering::Relaxed);
    }

    /// Takes lane `i`'s least share if it is next in line ([`ready`](Sequencer::ready)).
    fn next_share(&self, i: usize) -> Option<(Key, (LaneFlows, bool))> {
        let least = self.least_to_come();
        let mut waiting = lock(&self.lanes[i].waiting);
        if !next_in_line(&waiting, least) {
            return None;
        }
        waiting.pop_first()
    }

    /// Whether lane `i` has a share that is next in line.
    fn ready(&self, i: usize) -> bool {
        let least = self.least_to_come();
        next_in_line(&lock(&self.lanes[i].waiting), least)
    }

    /// Feeds lane `i` every share that is next in line, unless another worker holds it (which then
    /// feeds them, or sees them after letting go) and the lane has room: a worker that finds the lane
    /// taken while it has no room waits for it instead of going back to parsing, so what waits stays
    /// bounded even when the holder is descheduled (on a loaded machine the worker the merge waits
    /// for, which never waits to hand over, piled up parts behind a holder that did not run).
    /// Cannot deadlock: a worker here holds no other lock, and the holder waits for nothing.
    fn drain(&self, i: usize) {
        let lane = &self.lanes[i];
        loop {
            let mut feed = match lane.stream.try_lock() {
                Ok(s) => s,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) if lock(&lane.waiting).len() >= self.room => lock(&lane.stream),
                Err(TryLockError::WouldBlock) => return,
            };
            let mut any = false;
            while let Some(((_, task, _), (share, last))) = self.next_share(i) {
                any = true;
                feed.fed += 1;
                feed.stream.feed(share);
                if last {
                    feed.done[task] = true;
                    while feed.done.get(feed.first_open).copied().unwrap_or(false) {
                        feed.first_open += 1;
                    }
                }
            }
            let first_open = feed.first_open;
            drop(feed);
            {
                let mut fed = lock(&self.fed);
                if first_open > fed[i] {
                    fed[i] = first_open;
                }
            }
            if any {
                // Room for the workers that wait to hand over.
                self.signal();
            }
            // A share handed over (or a bound moved) while we held the lane, whose worker found it
            // taken.
            if !self.ready(i) {
                return;
            }
        }
    }

    /// The streams. Shares still waiting follow a task that failed, and then the read fails.
    fn into_streams(self) -> FlowStreams {
        let lanes =
            self.lanes.into_iter().map(|l| l.stream.into_inner().unwrap_or_else(|p| p.into_inner()).stream).collect();
        FlowStreams::from_lanes(lanes)
    }
}

/// Whether the least of a lane's `waiting` shares is next in line: no task can still hand over a
/// smaller one (`least` is the least key to come; `None`: every part is in).
fn next_in_line(waiting: &BTreeMap<Key, (LaneFlows, bool)>, least: Option<Key>) -> bool {
    waiting.first_key_value().is_some_and(|(&key, _)| least.is_none_or(|l| key <= l))
}

type TaskResult = Result<Done, (usize, String)>;

/// Hands a task's records over to the sequencer when a part is full (or `last`), and says whether the
/// task should pause then ([`Sequencer::should_pause`]).
fn hand_over(
    seq: &Sequencer,
    t: usize,
    moves: bool,
    turn: &mut Turn,
    s: &mut FastShard,
    last: bool,
    worker: usize,
) -> bool {
    // A chunk of a plain file keeps its own time (its parts are fed in turn with the chunks around
    // it); a gzip file moves on with its data.
    if moves {
        turn.time = turn.time.max(s.latest_start_since_take().unwrap_or(0));
    }
    if !(last || s.records_since_take() >= PART_RECORDS || turn.time >= turn.part_from + PART_SECS) {
        return false;
    }
    let must_pause = seq.submit(t, turn.part, turn.time, s.take_flows(), last, worker);
    turn.part += 1;
    turn.part_from = turn.time;
    !last && (must_pause || seq.should_pause(t))
}

/// Runs every task on `threads` workers, each filling its own sink made by `sink`; returns the tasks'
/// results (in completion order) and the sinks. With a sequencer, the tasks' parts are handed over to
/// it, and their keys move with the data's time when `by_time`.
fn run_pool(
    inputs: &[Input],
    tasks: &[Task],
    given: &LogFormat,
    threads: usize,
    sink: impl Fn() -> Sink,
    sequencer: Option<&Sequencer>,
    by_time: bool,
) -> (Vec<TaskResult>, Vec<Sink>) {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<TaskResult>> = Mutex::new(Vec::new());
    let shards: Mutex<Vec<Sink>> = Mutex::new(Vec::new());
    let (next, done_ref, shards_ref) = (&next, &done, &shards);
    // Workers do not run ahead of the streams by more than a few tasks: what waits for them is memory.
    let ahead = AHEAD_PER_THREAD * threads;
    // With the streams, every worker: one with no task left feeds the lanes ([`Sequencer::help`]).
    let workers = if sequencer.is_some() { threads.max(1) } else { threads.clamp(1, tasks.len().max(1)) };
    if let Some(seq) = sequencer {
        seq.start_workers(workers);
    }
    // One worker's work, on whichever thread runs it.
    let work = |worker: usize, mut shard: Sink| {
        let _abort = sequencer.map(AbortOnPanic);
        let mut scratch = Vec::new();
        loop {
            let (t, resume) = match sequencer {
                Some(seq) => match seq.claim(next, tasks.len(), ahead) {
                    Some(work) => work,
                    None => break,
                },
                None => (next.fetch_add(1, Ordering::Relaxed), None),
            };
            let Some(task) = tasks.get(t) else { break };
            let (streaming, mut turn) = match resume {
                Some(p) => (Some(p.streaming), p.turn),
                None => {
                    let start = sequencer.map_or(0, |seq| seq.start(t));
                    (None, Turn { part: 0, time: start, part_from: start })
                }
            };
            let moves = by_time && task.range.is_none();
            let mut part_done = |shard: &mut Sink, last: bool| match (sequencer, shard) {
                (Some(seq), Sink::Fast(s)) => hand_over(seq, t, moves, &mut turn, s, last, worker),
                _ => false,
            };
            let outcome = run_task(&inputs[task.input], task, given, &mut shard, &mut scratch, streaming, &mut |s| {
                part_done(s, false)
            });
            let result = match outcome {
                Ok(Outcome::Paused(streaming)) => {
                    if let Some(seq) = sequencer {
                        seq.pause(Paused { task: t, streaming, turn });
                    }
                    continue;
                }
                Ok(Outcome::Done(stats, format, cut)) => Ok(Done { task: t, stats, format, cut }),
                Err(e) => Err((t, e)),
            };
            let failed = result.is_err();
            part_done(&mut shard, true);
            lock(done_ref).push(result);
            if failed {
                break;
            }
        }
        if let Some(seq) = sequencer {
            seq.stop_claiming();
            seq.help();
        }
        if let Sink::Fast(s) = &mut shard {
            s.sort();
        }
        lock(shards_ref).push(shard);
    };
    let work = &work;
    std::thread::scope(|scope| {
        let mut started = 0;
        for worker in 0..workers {
            let shard = sink();
            // A thread the system will not start (a process limit, no memory for its stack) is one
            // worker fewer, as if it found no task.
            match std::thread::Builder::new().spawn_scoped(scope, move || work(worker, shard)) {
                Ok(_) => started += 1,
                Err(_) => {
                    if let Some(seq) = sequencer {
                        seq.stop_claiming();
                    }
                }
            }
        }
        if started == 0 {
            // None would start (the last pool's threads may not have left the process's count yet):
            // this thread does the work, as the one worker.
            if let Some(seq) = sequencer {
                seq.start_workers(1);
            }
            work(0, sink());
        }
    });
    (done.into_inner().unwrap_or_else(|p| p.into_inner()), shards.into_inner().unwrap_or_else(|p| p.into_inner()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Write as _;

    use natgw_core::analyze::{AnalyzeConfig, AnalyzeError};
    use natgw_core::net::CidrSet;
    use natgw_testkit::sim::{Scenario, Simulation};

    use super::*;

    /// A simulation's NAT-interface log in `parts` files of consecutive lines (each with the header),
    /// every other one gzipped: their paths in time order.
    fn parts(dir: &Path, parts: usize) -> Vec<PathBuf> {
        let sim = Simulation::run(&Scenario::builtin("hot-s3").unwrap()).unwrap();
        let text = sim.nat_v2();
        let mut lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
        let header = lines.remove(0);
        let per = lines.len().div_ceil(parts);
        let mut paths = Vec::new();
        for (k, chunk) in lines.chunks(per).enumerate() {
            let mut bytes = header.to_vec();
            chunk.iter().for_each(|l| bytes.extend_from_slice(l));
            let path = dir.join(format!("part-{k}.log{}", if k % 2 == 1 { ".gz" } else { "" }));
            if k % 2 == 1 {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&bytes).unwrap();
                bytes = gz.finish().unwrap();
            }
            std::fs::write(&path, bytes).unwrap();
            paths.push(path);
        }
        paths
    }

    fn config() -> AnalyzeConfig {
        AnalyzeConfig {
            nat_addresses: vec!["10.0.0.142".parse().unwrap()],
            vpc_cidrs: CidrSet::new(["10.0.0.0/16".parse().unwrap(), "100.64.0.0/16".parse().unwrap()]),
            ..AnalyzeConfig::default()
        }
    }

    /// The hot-s3 simulation's NAT-interface log, as text and gzipped.
    fn hot_s3_nat_log() -> (Vec<u8>, Vec<u8>) {
        let sim = Simulation::run(&Scenario::builtin("hot-s3").unwrap()).unwrap();
        let text = sim.nat_v2();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        (text, gz.finish().unwrap())
    }

    /// Standard input kept in a file is read like a file: a plain text in chunks on every worker, a
    /// gzip stream in parts; both stream (with the NAT gateway given or guessed and confirmed), and
    /// the report is the file's.
    #[test]
    fn standard_input_kept_in_a_file_streams() {
        let dir = tempfile::tempdir().unwrap();
        let (text, gz) = hot_s3_nat_log();
        for (bytes, plain) in [(&text, true), (&gz, false)] {
            let path = dir.path().join("nat.log");
            std::fs::write(&path, bytes).unwrap();
            for nat in [config().nat_addresses, Vec::new()] {
                let cfg = AnalyzeConfig { nat_addresses: nat.clone(), ..config() };
                let json = |inputs: &Inputs| {
                    let mut analyzer = Analyzer::new(cfg.clone());
                    let read = read_all(inputs, &LogFormat::default(), 2, &mut analyzer, true).unwrap();
                    let report = match analyzer.finish() {
                        Err(AnalyzeError::StreamOrder) => panic!("plain {plain}, NAT {nat:?}: did not stream"),
                        r => r.unwrap(),
                    };
                    let mut json = serde_json::to_value(&report).unwrap();
                    json["input"]["sources"] = serde_json::Value::Null;
                    (read.parts, json)
                };
                let mut file = tempfile::tempfile().unwrap();
                file.write_all(bytes).unwrap();
                let stdin = Inputs {
                    paths: vec![PathBuf::from("-")],
                    kept: vec![(PathBuf::from("-"), Arc::new(Kept::Whole(Spooled::of(file))))],
                    repeated: Vec::new(),
                    found: BTreeSet::new(),
                    cannot_read: BTreeMap::new(),
                };
                let (parts, got) = json(&stdin);
                let (file_parts, want) = json(&Inputs::files(std::slice::from_ref(&path)));
                assert_eq!(got, want, "plain {plain}, NAT {nat:?}");
                assert_eq!(parts, file_parts, "plain {plain}, NAT {nat:?}");
                assert!(parts > 1, "plain {plain}, NAT {nat:?}: {parts}");
            }
        }
    }

    /// A path that names a pipe (`<(zcat x.gz)` gives `/dev/fd/63`) is read to its end once, kept in
    /// a file and read like one: the report is the file's, plain or gzip, and a pipe named twice
    /// reads as its text twice. (It was opened once to probe and again to read: "Illegal seek".)
    #[cfg(unix)]
    #[test]
    fn a_pipe_given_by_path_is_read_like_its_file() {
        use std::os::fd::AsRawFd as _;
        let dir = tempfile::tempdir().unwrap();
        let (text, gz) = hot_s3_nat_log();
        // As the CLI does: records that do not stream are read again, kept.
        let json = |inputs: &Inputs| {
            let analyse = |stream: bool| {
                let mut analyzer = Analyzer::new(config());
                let read = read_all(inputs, &LogFormat::default(), 2, &mut analyzer, stream).unwrap();
                (read.parts, analyzer.finish())
            };
            let (parts, report) = match analyse(true) {
                (_, Err(AnalyzeError::StreamOrder)) => analyse(false),
                done => done,
            };
            let mut json = serde_json::to_value(report.unwrap()).unwrap();
            json["input"]["sources"] = serde_json::Value::Null;
            (parts, json)
        };
        for (bytes, plain) in [(&text, true), (&gz, false)] {
            let path = dir.path().join("nat.log");
            std::fs::write(&path, bytes).unwrap();
            for times in [1, 2] {
                let (reader, mut writer) = io::pipe().unwrap();
                let pipe = PathBuf::from(format!("/dev/fd/{}", reader.as_raw_fd()));
                assert!(pipe_node(&pipe).is_some());
                // Named twice: by the same name, or (on Linux) by another name of the same pipe.
                let mut names = vec![pipe.clone(); times];
                if times == 2 && cfg!(target_os = "linux") {
                    names[1] = PathBuf::from(format!("/proc/self/fd/{}", reader.as_raw_fd()));
                }
                let bytes = bytes.clone();
                let feed = std::thread::spawn(move || writer.write_all(&bytes));
                let inputs = Inputs::gather(&names).unwrap();
                feed.join().unwrap().unwrap();
                drop(reader);
                assert_eq!(inputs.in_memory().count(), 0);
                // Named twice, it is read once, as a file named twice is ([`once`]).
                assert_eq!(inputs.repeated().len(), times - 1);
                let (parts, got) = json(&inputs);
                let (file_parts, want) = json(&Inputs::files(std::slice::from_ref(&path)));
                assert_eq!(got, want, "plain {plain}, {times} time(s)");
                assert_eq!(parts, file_parts, "plain {plain}, {times} time(s)");
            }
        }
    }

    /// A stream that could be kept only in part is read as it comes, once: naming it twice is an
    /// error that says so, not a second read of nothing (or a wait on a drained pipe).
    #[test]
    fn a_stream_kept_in_part_cannot_be_named_twice() {
        let partial = |why: &str| {
            Arc::new(Kept::Partial {
                head: None,
                pending: Vec::new(),
                rest: spool::Rest::of(io::empty()),
                why: why.into(),
            })
        };
        let (stdin, pipe) = (PathBuf::from("-"), PathBuf::from("/dev/fd/63"));
        let once = Inputs {
            paths: vec![stdin.clone()],
            kept: vec![(stdin.clone(), partial("no room"))],
            repeated: Vec::new(),
            found: BTreeSet::new(),
            cannot_read: BTreeMap::new(),
        };
        assert!(once.named_once_if_partial().is_ok());
        let twice = Inputs {
            paths: vec![stdin.clone(), stdin.clone()],
            kept: vec![(stdin.clone(), partial("no room"))],
            repeated: Vec::new(),
            found: BTreeSet::new(),
            cannot_read: BTreeMap::new(),
        };
        let err = twice.named_once_if_partial().unwrap_err().0;
        assert_eq!(
            err,
            "<stdin> is named 2 times, but it could not be kept in a temporary file (no room): name it once"
        );
        // Two names of one pipe.
        let s = partial("disk full");
        let aliases = Inputs {
            paths: vec![pipe.clone(), PathBuf::from("/proc/self/fd/63")],
            kept: vec![(pipe.clone(), Arc::clone(&s)), (PathBuf::from("/proc/self/fd/63"), s)],
            repeated: Vec::new(),
            found: BTreeSet::new(),
            cannot_read: BTreeMap::new(),
        };
        assert!(aliases.named_once_if_partial().unwrap_err().0.starts_with("/dev/fd/63 is named 2 times"));
    }

    /// Without --nat-ip, the NAT gateway is guessed from the records at the inputs' heads and cuts, and
    /// the one pass confirms it: the records are read once. A guess the pass does not confirm (a
    /// secondary address that the heads do not show) reads them again. Either way the report is the
    /// reference path's.
    #[test]
    fn the_nat_gateway_is_guessed_and_confirmed_in_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let gzip = |text: &[u8]| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(text).unwrap();
            gz.finish().unwrap()
        };
        let hot = Simulation::run(&Scenario::builtin("hot-s3").unwrap()).unwrap();
        let two = Scenario::builtin("two-addresses").unwrap();
        let secondary = two.nat.addresses[1].to_string();
        let two = Simulation::run(&two).unwrap();
        // The two-address log with no record of the secondary address in its first 600 lines.
        let late_secondary: Vec<u8> = two
            .nat_v2()
            .split_inclusive(|b| *b == b'\n')
            .enumerate()
            .filter(|(k, l)| *k >= 600 || !String::from_utf8_lossy(l).contains(&format!(" {secondary} ")))
            .flat_map(|(_, l)| l.to_vec())
            .collect();
        // What, the files (name, bytes), and the passes over the records.
        type Case = (&'static str, Vec<(&'static str, Vec<u8>)>, usize);
        let cases: [Case; 4] = [
            ("hot-s3, plain", vec![("nat.log", hot.nat_v2())], 1),
            ("hot-s3, gzip", vec![("nat.log.gz", gzip(&hot.nat_v2()))], 1),
            (
                "hot-s3 with clients",
                vec![("nat.log", hot.nat_custom()), ("clients.log.gz", gzip(&hot.clients_v2()))],
                1,
            ),
            ("two addresses, the secondary late", vec![("nat.log.gz", gzip(&late_secondary))], 2),
        ];
        for (what, files, passes) in cases {
            let mut paths = Vec::new();
            let mut reference = Analyzer::new(AnalyzeConfig { nat_addresses: Vec::new(), ..config() });
            for (name, bytes) in &files {
                let path = dir.path().join(what.replace([' ', ','], "-")).join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, bytes).unwrap();
                let text = if name.ends_with(".gz") {
                    let mut t = Vec::new();
                    flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut t).unwrap();
                    t
                } else {
                    bytes.clone()
                };
                let mut parser = StreamParser::new(LogFormat::default(), false).with_fields(FIELDS);
                parser.feed(&text, &mut |r| reference.push(r));
                let format = parser.format().clone();
                let stats = parser.finish(&mut |r| reference.push(r));
                reference.add_input(path.display().to_string(), &format, stats);
                paths.push(path);
            }
            let want = serde_json::to_value(reference.finish().unwrap()).unwrap();
            for threads in [1, 2] {
                let mut analyzer = Analyzer::new(AnalyzeConfig { nat_addresses: Vec::new(), ..config() });
                let read =
                    read_all(&Inputs::files(&paths), &LogFormat::default(), threads, &mut analyzer, true).unwrap();
                let got = match analyzer.finish() {
                    Err(AnalyzeError::StreamOrder) => panic!("{what} on {threads} threads did not stream"),
                    r => serde_json::to_value(r.unwrap()).unwrap(),
                };
                assert_eq!(read.passes, passes, "{what} on {threads} threads");
                assert!(got == want, "{what} on {threads} threads: not the reference's report");
            }
        }
    }

    /// Files given in any order are read in time order, so they stream (the streams refuse records
    /// out of time order, and the CLI would read them again into memory).
    #[test]
    fn files_given_out_of_time_order_stream() {
        let dir = tempfile::tempdir().unwrap();
        let in_time = parts(dir.path(), 6);
        let mut orders = vec![in_time.clone(), in_time.iter().rev().cloned().collect::<Vec<_>>()];
        orders.push([3, 0, 5, 1, 4, 2].iter().map(|&k| in_time[k].clone()).collect());
        let mut reports = Vec::new();
        for paths in orders {
            for threads in [1, 2, 3] {
                let mut analyzer = Analyzer::new(config());
                read_all(&Inputs::files(&paths), &LogFormat::default(), threads, &mut analyzer, true).unwrap();
                let report = match analyzer.finish() {
                    Err(AnalyzeError::StreamOrder) => panic!("{paths:?} on {threads} threads did not stream"),
                    r => r.unwrap(),
                };
                let mut json = serde_json::to_value(&report).unwrap();
                json["input"]["sources"] = serde_json::Value::Null;
                reports.push(json);
            }
        }
        assert!(reports.windows(2).all(|w| w[0] == w[1]), "the same report whatever the order");
    }

    /// A NAT gateway's log with pkt-dstaddr and its clients' own log, of one period: their chunks are
    /// read interleaved in time, and a client's records from both join in one tracker, so they
    /// stream (they used to be read again into memory), with the reference's report.
    #[test]
    fn files_of_one_period_from_several_interfaces_stream() {
        let dir = tempfile::tempdir().unwrap();
        let sim = Simulation::run(&Scenario::builtin("hot-s3").unwrap()).unwrap();
        let nat = dir.path().join("nat-custom.log");
        let clients = dir.path().join("clients.log");
        std::fs::write(&nat, sim.nat_custom()).unwrap();
        std::fs::write(&clients, sim.clients_v2()).unwrap();
        let report = |paths: &[PathBuf], stream: bool| {
            let mut analyzer = Analyzer::new(config());
            read_all(&Inputs::files(paths), &LogFormat::default(), 2, &mut analyzer, stream).unwrap();
            match analyzer.finish() {
                Err(AnalyzeError::StreamOrder) => panic!("{paths:?} did not stream"),
                r => serde_json::to_value(r.unwrap()).unwrap(),
            }
        };
        let both = [nat.clone(), clients.clone()];
        let want = report(&both, false);
        assert_eq!(want["attribution"]["method"], "pkt-dstaddr", "{}", want["attribution"]);
        assert_eq!(report(&both, true), want);
        let reversed = [clients.clone(), nat.clone()];
        let got = report(&reversed, true);
        assert_eq!((&got["destinations"], &got["findings"]), (&want["destinations"], &want["findings"]));
        // One of them gzipped (a plain file beside a gzip file of the same period is cut finely in
        // time too: in 4-MiB chunks its records came too late for the client flows).
        for (plain, zipped) in [(&nat, &clients), (&clients, &nat)] {
            let gz = zipped.with_extension("log.gz");
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&std::fs::read(zipped).unwrap()).unwrap();
            std::fs::write(&gz, enc.finish().unwrap()).unwrap();
            let got = report(&[plain.clone(), gz.clone()], true);
            assert_eq!((&got["destinations"], &got["findings"]), (&want["destinations"], &want["findings"]), "{gz:?}");
            std::fs::remove_file(gz).unwrap();
        }
    }

    /// A flow log as S3 delivers it: a gzip file per five minutes (the records whose end falls in
    /// it), each with the header line; `logs` splits the interfaces among that many flow logs, whose
    /// files cover the same periods. Every record's interface is the same for every file.
    fn s3_files(dir: &Path, name: &str, text: &[u8], logs: usize) -> Vec<PathBuf> {
        let mut lines = text.split_inclusive(|b| *b == b'\n');
        let header = lines.next().unwrap();
        let fields = |line: &[u8]| line.trim_ascii_end().split(|b| *b == b' ').map(<[u8]>::to_vec).collect::<Vec<_>>();
        let names = fields(header);
        let at = |f: &str| names.iter().position(|x| x == f.as_bytes()).unwrap();
        let (end, iface) = (at("end"), at("interface-id"));
        let mut ifaces: Vec<Vec<u8>> = Vec::new();
        let mut files: BTreeMap<(usize, u64), Vec<u8>> = BTreeMap::new();
        for line in lines {
            let f = fields(line);
            let window = std::str::from_utf8(&f[end]).unwrap().parse::<u64>().map_or(0, |e| e / 300);
            let i = ifaces.iter().position(|x| *x == f[iface]).unwrap_or_else(|| {
                ifaces.push(f[iface].clone());
                ifaces.len() - 1
            });
            files.entry((i % logs, window)).or_insert_with(|| header.to_vec()).extend_from_slice(line);
        }
        files
            .into_iter()
            .map(|((log, window), text)| {
                let path = dir.join(format!("{name}-{log}-{window}.log.gz"));
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&text).unwrap();
                std::fs::write(&path, gz.finish().unwrap()).unwrap();
                path
            })
            .collect()
    }

    /// Gzip files of one period from several flow logs (a NAT gateway's with pkt-dstaddr, its
    /// clients' in two more), as S3 delivers them, or one file per flow log: a gzip file cannot be cut
    /// into chunks, so their parts are merged in time as they are read. They stream (they used to be
    /// read again into memory) with the reference's report, in any order and on 1–3 threads (more
    /// flow logs than workers: they are read in turns), and what waits for the streams stays small.
    #[test]
    fn gzip_files_of_one_period_from_several_flow_logs_stream() {
        let dir = tempfile::tempdir().unwrap();
        let sim = Simulation::run(&Scenario::builtin("hot-s3").unwrap()).unwrap();
        let mut delivered = s3_files(dir.path(), "nat", &sim.nat_custom(), 1);
        delivered.extend(s3_files(dir.path(), "clients", &sim.clients_v2(), 2));
        assert!(delivered.len() >= 15, "{delivered:?}");
        let whole = |name: &str, text: &[u8]| {
            let path = dir.path().join(name);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(text).unwrap();
            std::fs::write(&path, gz.finish().unwrap()).unwrap();
            path
        };
        let per_log = vec![whole("clients.log.gz", &sim.clients_v2()), whole("nat.log.gz", &sim.nat_custom())];
        let report = |paths: &[PathBuf], threads: usize, stream: bool| {
            let mut analyzer = Analyzer::new(config());
            let read = read_all(&Inputs::files(paths), &LogFormat::default(), threads, &mut analyzer, stream).unwrap();
            // What waits for the streams is a few parts per worker, not a file's worth (a worker
            // that read its file through while the merge waited for another held ~100 parts): at
            // most the room, the workers that pass the room check at once, and a share of each
            // task paused ahead.
            let few = (ROOM_PER_THREAD + AHEAD_PER_THREAD + 2) * threads;
            assert!(read.peak_waiting <= few, "{} of {} parts waited at once", read.peak_waiting, read.parts);
            let mut json = match analyzer.finish() {
                Err(AnalyzeError::StreamOrder) => panic!("{paths:?} on {threads} threads did not stream"),
                r => serde_json::to_value(r.unwrap()).unwrap(),
            };
            // The inputs as given, and their formats in that order.
            json["input"]["sources"] = serde_json::Value::Null;
            json["input"]["log_formats"] = serde_json::Value::Null;
            json
        };
        let want = report(&delivered, 2, false);
        assert_eq!(want["attribution"]["method"], "pkt-dstaddr", "{}", want["attribution"]);
        let mut shuffled = delivered.clone();
        shuffled.reverse();
        shuffled.rotate_left(delivered.len() / 3);
        for paths in [&delivered, &shuffled, &per_log] {
            for threads in [1, 2, 3] {
                assert_eq!(report(paths, threads, true), want, "{paths:?} on {threads} threads");
            }
        }
    }

    /// A plain file found under a directory that is gone, or shrinks, after it was looked at is cut
    /// short: left out, or the records before counted; named, it is an error.
    #[test]
    fn a_file_found_that_goes_or_shrinks_is_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let sim = Simulation::run(&Scenario::builtin("healthy").unwrap().with_duration(300)).unwrap();
        let text = sim.nat_v2();
        let format = LogFormat::default();
        // Looked at, then `change` done to it, then read.
        let read = |found: bool, change: &dyn Fn()| {
            std::fs::write(&path, &text).unwrap();
            let mut input = Input::named(&path, &format, None, found);
            probe(&mut input, &format, &mut Peek::new(), None).unwrap();
            let Source::Plain(size) = input.source else { panic!("not plain") };
            let task = Task { input: 0, range: Some((0, size)), first: true, starts_at: None, decode_ahead: false };
            change();
            let mut sink = Sink::Reference(Shard::default());
            match run_task(&input, &task, &format, &mut sink, &mut Vec::new(), None, &mut |_| false) {
                Ok(Outcome::Done(stats, _, cut)) => Ok((stats.records, cut)),
                Ok(Outcome::Paused(_)) => panic!("paused"),
                Err(e) => Err(e),
            }
        };
        let gone = || std::fs::remove_file(&path).unwrap();
        let shrunk = || File::options().write(true).open(&path).unwrap().set_len(text.len() as u64 / 2).unwrap();
        let (records, cut) = read(true, &gone).unwrap();
        assert_eq!(records, 0);
        assert_eq!(cut.unwrap(), format!("cannot open {}: no such file", path.display()));
        let (records, cut) = read(true, &shrunk).unwrap();
        assert!(records > 0, "{records}");
        assert_eq!(cut.unwrap(), format!("{}: the file shrank while it was read", path.display()));
        assert!(read(false, &gone).unwrap_err().starts_with("cannot open"));
        assert!(read(false, &shrunk).unwrap_err().ends_with("the file shrank while it was read"));
    }

    /// A worker that panics (a bug) wakes the workers that wait for it: the panic reaches the caller
    /// once they end, instead of the read hanging. (Without [`AbortOnPanic`], this test hung.)
    #[test]
    fn a_worker_that_panics_leaves_no_other_waiting() {
        let (sent, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let analyzer = Analyzer::new(config());
            let seq = Sequencer::new(analyzer.flow_streams_in_lanes(1), &[0, 10], 1);
            seq.start_workers(2);
            let next = AtomicUsize::new(0);
            // Task 0 is the one the merge waits for; task 1 hands a part over, then waits for it.
            assert_eq!(seq.claim(&next, 2, 8).map(|c| c.0), Some(0));
            assert_eq!(seq.claim(&next, 2, 8).map(|c| c.0), Some(1));
            let went_on = AtomicBool::new(false);
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                std::thread::scope(|scope| {
                    scope.spawn(|| {
                        assert!(!seq.submit(1, 0, 10, NatFlows::default(), false, 0));
                        // The lanes have no room now, and a worker reads task 0: this waits until
                        // that worker panics.
                        seq.submit(1, 1, 11, NatFlows::default(), false, 0);
                        went_on.store(true, Ordering::SeqCst);
                    });
                    scope.spawn(|| {
                        let _abort = AbortOnPanic(&seq);
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        panic!("a bug in the worker reading task 0");
                    });
                });
            }));
            let _ = sent.send((caught.is_err(), went_on.load(Ordering::SeqCst)));
        });
        let got = outcome.recv_timeout(std::time::Duration::from_secs(60)).expect("the read hung");
        assert_eq!(got, (true, true), "(the panic reached the caller, the waiting worker went on)");
    }

    /// The sweep agrees with comparing every pair, over every set of three ranges on a small clock
    /// (ties, nesting, touching ends, unknown ranges).
    #[test]
    fn overlapping_ranges_agree_with_every_pair_compared() {
        let mut ranges: Vec<Option<(u64, u64)>> = vec![None];
        for a in 0..4 {
            ranges.extend((a..4).map(|b| Some((a, b))));
        }
        for x in &ranges {
            for y in &ranges {
                for z in &ranges {
                    let covers = [*x, *y, *z];
                    let want: Vec<bool> = (0..3)
                        .map(|i| {
                            covers[i].is_some_and(|(a, b)| {
                                (0..3).any(|j| j != i && covers[j].is_some_and(|(c, d)| c <= b && a <= d))
                            })
                        })
                        .collect();
                    assert_eq!(overlapping(&covers), want, "{covers:?}");
                }
            }
        }
    }

    /// A directory is the flow-log files under it, recursively, in name order; hidden entries and
    /// other files are left out, and a directory with none is an error naming it.
    #[test]
    fn directories_expand_to_the_flow_log_files_under_them() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/26");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::create_dir_all(dir.path().join(".cache")).unwrap();
        std::fs::create_dir_all(dir.path().join("empty/inner")).unwrap();
        for name in ["b.log.gz", "a.log", "c.txt", "notes.md", ".hidden.log"] {
            std::fs::write(day.join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join(".cache/d.log"), b"x").unwrap();
        std::fs::write(dir.path().join("top.gz"), b"x").unwrap();
        let files = expand(&[dir.path().to_owned(), PathBuf::from("-")]).unwrap();
        let want: Vec<PathBuf> = ["a.log", "b.log.gz", "c.txt"].iter().map(|n| day.join(n)).collect();
        assert_eq!(files, [&want[..], &[dir.path().join("top.gz"), PathBuf::from("-")]].concat());
        let e = expand(&[dir.path().join("empty")]).unwrap_err();
        assert!(e.0.ends_with("empty: a directory with no flow-log files (*.log, *.gz, *.txt) under it"), "{}", e.0);
    }

    /// A file named twice (as itself, in a directory, through a link) is read once; two files with
    /// the same bytes are two files.
    #[test]
    fn a_file_named_twice_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"x").unwrap();
        let link = dir.path().join("link-to-a");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&a, &link).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&a, &link).unwrap();
        let named = [a.clone(), dir.path().to_owned(), link.clone(), PathBuf::from("-"), b.clone()];
        let (paths, repeated) = once(expand(&named).unwrap());
        #[cfg(unix)]
        {
            assert_eq!(paths, [a.clone(), b.clone(), PathBuf::from("-")]);
            assert_eq!(repeated, [a, link, b], "a.log in the directory, the link to it, b.log after the directory");
        }
        #[cfg(not(unix))]
        assert_eq!(paths.len() + repeated.len(), 6);
    }
}
