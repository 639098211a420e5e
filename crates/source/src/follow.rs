//! Following files that grow (the `file` source of `logveil run`): glob patterns are expanded
//! on every poll, new bytes are cut into [`Chunk`]s of whole lines, and a partial last line is
//! held until its newline arrives.
//!
//! A file is identified by a **fingerprint of its content**: BLAKE3 of its first line (or first
//! [`FollowOptions::fingerprint_lines`] lines; at most [`FollowOptions::fingerprint_bytes`],
//! after gzip decompression), not by its path or inode.
//! So a file renamed by rotation, the copy made by copy-truncate and a rotated file compressed
//! with gzip are all the file already read: reading goes on at its [`FilePosition`] instead of
//! starting over, and no line is read twice. A file is not read before its first line is
//! complete (it has no identity yet). Two files whose first lines are identical are taken for
//! one; log lines start with a timestamp, which makes that rare.
//!
//! Positions are what a checkpoint stores: after a restart, a [`Follower`] given the positions
//! of the lines that were committed reads every other line exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Chunk, SourceError};

/// Where reading of one file stands: everything before `offset` (bytes of decompressed
/// content) has been handed out, as lines `1 ..= line`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FilePosition {
    /// Hex BLAKE3 (128 bits) of the file's first line.
    pub fingerprint: String,
    pub offset: u64,
    pub line: u64,
    /// Where the file was last seen (for messages; identity is the fingerprint).
    pub path: PathBuf,
}

/// Tuning of a [`Follower`].
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// Bytes read from one file per poll at most (and the size of a chunk).
    pub chunk_size: usize,
    /// Longest line kept whole; longer ones are cut and flagged, like [`crate::Chunker`].
    pub max_line: usize,
    /// Bytes of the first lines that make the fingerprint, at most.
    pub fingerprint_bytes: usize,
    /// Lines that make the fingerprint: more than 1 for files that all begin with the same
    /// header (W3C/IIS `#Software:`, `#Fields:` lines, a banner). A file is read once it has
    /// that many complete lines.
    pub fingerprint_lines: usize,
    /// How long a file is still read after its name disappeared (a writer may append to a
    /// renamed file until it reopens its log).
    pub drain_after: std::time::Duration,
    /// The position of a file no pattern has matched for this long (in one process) is
    /// forgotten, so that positions do not pile up as rotated files are deleted.
    pub forget_after: std::time::Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            chunk_size: 1 << 20,
            max_line: 64 * 1024,
            fingerprint_bytes: 1024,
            fingerprint_lines: 1,
            drain_after: std::time::Duration::from_secs(2),
            forget_after: std::time::Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// One file being read.
struct Tracked {
    path: PathBuf,
    name: Arc<str>,
    reader: Box<dyn Read + Send>,
    /// The open file (plain files only): its length tells truncation apart from growth.
    file: Option<File>,
    gz: bool,
    /// Offset and line number after the last line handed out.
    offset: u64,
    line: u64,
    /// Bytes read after the last newline (not handed out).
    partial: Vec<u8>,
    /// Skipping the rest of an over-long line.
    skipping: bool,
    /// Source bytes read past `offset`: the held partial line, or the over-long line being
    /// skipped (of which `partial` keeps the first `max_line` bytes).
    pending: u64,
    /// Since when the file has been at its end with its name gone.
    gone_since: Option<std::time::Instant>,
}

/// Follows the files matching some glob patterns.
pub struct Follower {
    patterns: Vec<String>,
    opts: FollowOptions,
    tracked: BTreeMap<String, Tracked>,
    /// Last known position of every fingerprint ever seen (or given to resume).
    positions: BTreeMap<String, FilePosition>,
    /// Fingerprints whose file was truncated under us (copy-truncate): their content now
    /// lives in the copy, if anywhere.
    retired: BTreeSet<String>,
    /// Fingerprints of matching names, valid while the file's metadata is unchanged.
    ids: BTreeMap<PathBuf, (FileStamp, String, bool)>,
    /// Compressed files read to their end in this process.
    complete: BTreeSet<String>,
    /// Since when a known position's file has not been matched (this process).
    unseen_since: BTreeMap<String, std::time::Instant>,
    /// Which file a poll reads first (rotates).
    turn: usize,
}

/// What tells that a name still holds the same, unchanged file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(m: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(m);
        #[cfg(not(unix))]
        let inode = 0;
        FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            inode,
        }
    }
}

fn open_err(path: &Path, source: io::Error) -> SourceError {
    SourceError::Open {
        path: path.to_path_buf(),
        source,
    }
}

fn is_gzip(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 2];
    let mut f = File::open(path)?;
    let mut got = 0;
    while got < 2 {
        match f.read(&mut magic[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got == 2 && magic == [0x1f, 0x8b])
}

fn open_reader(path: &Path, gz: bool) -> io::Result<(Box<dyn Read + Send>, Option<File>)> {
    let f = File::open(path)?;
    if gz {
        Ok((Box::new(flate2::read::MultiGzDecoder::new(f)), None))
    } else {
        let handle = f.try_clone()?;
        Ok((Box::new(f), Some(handle)))
    }
}

/// The part of a file's beginning that identifies it: its first `lines` lines (without the
/// last newline), at most `limit` bytes; `None` while they are incomplete.
fn identity(head: &[u8], lines: usize, limit: usize) -> Option<&[u8]> {
    let mut from = 0;
    for _ in 0..lines.max(1) {
        match memchr::memchr(b'\n', &head[from..]) {
            Some(i) if from + i < limit => from += i + 1,
            Some(_) => return Some(&head[..limit]),
            None => return (head.len() >= limit).then(|| &head[..limit]),
        }
    }
    Some(&head[..from - 1])
}

/// The fingerprint of the file at `path`, or `None` while its identifying lines are
/// incomplete.
fn fingerprint(path: &Path, lines: usize, limit: usize) -> io::Result<Option<(String, bool)>> {
    let gz = is_gzip(path)?;
    let (mut r, _) = open_reader(path, gz)?;
    let mut head = Vec::with_capacity(limit);
    let mut buf = [0u8; 4096];
    while head.len() < limit {
        let want = (limit - head.len()).min(buf.len());
        let n = match r.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if gz => {
                // A compressed file still being written is not ready yet.
                let _ = e;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if identity(&head, lines, limit).is_some() {
            break;
        }
    }
    Ok(identity(&head, lines, limit).map(|id| (fingerprint_of(id), gz)))
}

/// Whether the open file still has the fingerprint `fp` (read without moving its cursor).
#[cfg(unix)]
fn still_starts_with(f: &File, fp: &str, lines: usize, limit: usize) -> bool {
    use std::os::unix::fs::FileExt;
    let mut head = vec![0u8; limit];
    let mut got = 0;
    while got < limit {
        match f.read_at(&mut head[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return true, // cannot tell: keep reading
        }
        if identity(&head[..got], lines, limit).is_some() {
            break;
        }
    }
    match identity(&head[..got], lines, limit) {
        Some(id) => fingerprint_of(id) == fp,
        None => false, // shorter than its identifying lines were: replaced
    }
}

#[cfg(not(unix))]
fn still_starts_with(_: &File, _: &str, _: usize, _: usize) -> bool {
    true
}

fn fingerprint_of(first_line: &[u8]) -> String {
    blake3::hash(first_line).as_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Follower {
    /// Follows `patterns` (glob syntax: `*`, `?`, `[…]`, `**`), resuming every file whose
    /// fingerprint is in `resume` after its position; other files are read from the start.
    pub fn new(patterns: Vec<String>, opts: FollowOptions, resume: Vec<FilePosition>) -> Follower {
        Follower {
            patterns,
            opts,
            tracked: BTreeMap::new(),
            positions: resume
                .into_iter()
                .map(|p| (p.fingerprint.clone(), p))
                .collect(),
            retired: BTreeSet::new(),
            ids: BTreeMap::new(),
            complete: BTreeSet::new(),
            unseen_since: BTreeMap::new(),
            turn: 0,
        }
    }

    /// Bytes of the files being read that were not handed out yet (how far reading is
    /// behind the writers), and how many files are being read.
    pub fn lag(&self) -> (u64, usize) {
        let behind = self
            .tracked
            .values()
            .filter_map(|t| {
                let len = t.file.as_ref()?.metadata().ok()?.len();
                Some(len.saturating_sub(t.offset))
            })
            .sum();
        (behind, self.tracked.len())
    }

    /// The position of every file seen: after the last line handed out by [`poll`].
    ///
    /// [`poll`]: Follower::poll
    pub fn positions(&self) -> Vec<FilePosition> {
        self.positions.values().cloned().collect()
    }

    /// The fingerprint of a matching file, recomputed only when its metadata changed.
    fn identify(&mut self, path: &Path) -> io::Result<Option<(String, bool)>> {
        let m = std::fs::metadata(path)?;
        let stamp = FileStamp::of(&m);
        if let Some((s, fp, gz)) = self.ids.get(path)
            && *s == stamp
        {
            return Ok(Some((fp.clone(), *gz)));
        }
        let found = fingerprint(
            path,
            self.opts.fingerprint_lines,
            self.opts.fingerprint_bytes,
        )?;
        match &found {
            Some((fp, gz)) => {
                self.ids
                    .insert(path.to_path_buf(), (stamp, fp.clone(), *gz));
            }
            None => {
                self.ids.remove(path);
            }
        }
        Ok(found)
    }

    /// Paths matching the patterns now, sorted (oldest rotated names do not come first by
    /// any rule; order does not matter for identity).
    fn matches(&self) -> Vec<PathBuf> {
        let mut out = BTreeSet::new();
        for p in &self.patterns {
            if let Ok(paths) = glob::glob(p) {
                out.extend(paths.flatten().filter(|p| p.is_file()));
            }
        }
        out.into_iter().collect()
    }

    /// Finds new files, reads what is new in every file, and returns the complete lines.
    /// A file that cannot be read is skipped until the next poll; the error is returned
    /// beside the chunks.
    pub fn poll(&mut self) -> (Vec<Chunk>, Vec<SourceError>) {
        let mut errors = Vec::new();
        // What every matching name holds now, by fingerprint.
        let mut seen: BTreeMap<String, (PathBuf, bool)> = BTreeMap::new();
        for path in self.matches() {
            match self.identify(&path) {
                Ok(Some((fp, gz))) => {
                    // Two names for one content (a copy, a compressed copy): the plain file
                    // that may still grow wins, then the first name.
                    let replace = seen.get(&fp).is_some_and(|(_, was_gz)| *was_gz && !gz);
                    if replace || !seen.contains_key(&fp) {
                        seen.insert(fp, (path, gz));
                    }
                }
                Ok(None) => {}
                // Deleted between the listing and now: nothing to say.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => errors.push(open_err(&path, e)),
            }
        }
        for (fp, (path, gz)) in &seen {
            if *gz && self.complete.contains(fp) {
                continue;
            }
            match self.tracked.get_mut(fp) {
                // Renamed: the open file goes on under its new name. (A compressed copy is
                // not its new name: the open plain file is drained, then let go.)
                Some(t) if t.gz == *gz => t.path.clone_from(path),
                Some(_) => {}
                None if self.retired.contains(fp) && !*gz && self.positions.contains_key(fp) => {
                    // Truncated under us, and this name still shows the old content: the
                    // copy made before the truncation. Read on from the position.
                    if let Err(e) = self.track(path, fp, *gz) {
                        errors.push(e);
                    }
                }
                None => {
                    if let Err(e) = self.track(path, fp, *gz) {
                        errors.push(e);
                    }
                }
            }
        }
        self.forget(&seen);
        // Names not matched any more need no cached fingerprint.
        let matched: BTreeSet<&PathBuf> = seen.values().map(|(p, _)| p).collect();
        self.ids.retain(|p, _| matched.contains(p));
        let mut chunks = Vec::new();
        // A poll reads at most a few chunks in all, starting with a different file each time,
        // so that memory stays bounded however many files match.
        let mut budget = self.opts.chunk_size.saturating_mul(4);
        let mut fps: Vec<String> = self.tracked.keys().cloned().collect();
        if !fps.is_empty() {
            let start = self.turn % fps.len();
            fps.rotate_left(start);
            self.turn = self.turn.wrapping_add(1);
        }
        for fp in fps {
            if budget == 0 {
                break;
            }
            // Whether the open file still has a name of its kind (a plain file whose only
            // name left is a compressed copy is on its way out).
            let named = match (seen.get(&fp), self.tracked.get(&fp)) {
                (Some((_, gz)), Some(t)) => *gz == t.gz,
                _ => false,
            };
            match self.read_file(&fp, named) {
                Ok(mut c) => {
                    let read: usize = c.iter().map(|c| c.data.len()).sum();
                    budget = budget.saturating_sub(read);
                    chunks.append(&mut c);
                }
                Err(e) => {
                    errors.push(e);
                    self.tracked.remove(&fp);
                }
            }
        }
        (chunks, errors)
    }

    /// Forgets the positions of files unmatched for `forget_after`.
    fn forget(&mut self, seen: &BTreeMap<String, (PathBuf, bool)>) {
        let now = std::time::Instant::now();
        for fp in self.positions.keys() {
            if seen.contains_key(fp) || self.tracked.contains_key(fp) {
                self.unseen_since.remove(fp);
            } else {
                self.unseen_since.entry(fp.clone()).or_insert(now);
            }
        }
        let limit = self.opts.forget_after;
        let stale: Vec<String> = self
            .unseen_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= limit)
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in stale {
            self.unseen_since.remove(&fp);
            self.positions.remove(&fp);
            self.complete.remove(&fp);
            self.retired.remove(&fp);
        }
    }

    fn track(&mut self, path: &Path, fp: &str, gz: bool) -> Result<(), SourceError> {
        let (mut reader, file) = open_reader(path, gz).map_err(|e| open_err(path, e))?;
        let (mut offset, mut line) = match self.positions.get(fp) {
            Some(p) => (p.offset, p.line),
            None => (0, 0),
        };
        if offset > 0 {
            match &file {
                Some(f) => {
                    let len = f.metadata().map_err(|e| open_err(path, e))?.len();
                    if len < offset {
                        // Shorter than what was read of it: not that file after all (its first
                        // line is the same, e.g. truncated and written again): read it whole.
                        (offset, line) = (0, 0);
                    }
                    let mut f2 = f.try_clone().map_err(|e| open_err(path, e))?;
                    f2.seek(SeekFrom::Start(offset))
                        .map_err(|e| open_err(path, e))?;
                    reader = Box::new(f2);
                }
                None => {
                    let skipped = io::copy(&mut (&mut reader).take(offset), &mut io::sink())
                        .map_err(|e| open_err(path, e))?;
                    if skipped < offset {
                        // A compressed file shorter than the position holds nothing new:
                        // do not decompress it again at every poll.
                        self.complete.insert(fp.to_string());
                        return Ok(());
                    }
                }
            }
        }
        let name: Arc<str> = path.display().to_string().into();
        self.positions.insert(
            fp.to_string(),
            FilePosition {
                fingerprint: fp.to_string(),
                offset,
                line,
                path: path.to_path_buf(),
            },
        );
        self.retired.remove(fp);
        self.tracked.insert(
            fp.to_string(),
            Tracked {
                path: path.to_path_buf(),
                name,
                reader,
                file,
                gz,
                offset,
                line,
                partial: Vec::new(),
                skipping: false,
                pending: 0,
                gone_since: None,
            },
        );
        Ok(())
    }

    /// Reads what is new in one file; drops it when it is finished (gone, compressed, or
    /// truncated under us).
    fn read_file(&mut self, fp: &str, named: bool) -> Result<Vec<Chunk>, SourceError> {
        let opts = self.opts.clone();
        let t = self.tracked.get_mut(fp).expect("tracked");
        // Copy-truncate: the file is now shorter than what was read of it, or (when new lines
        // were written after the truncation) no longer starts with the line it started with.
        if let Some(f) = &t.file
            && (f.metadata().is_ok_and(|m| m.len() < t.offset + t.pending)
                || !still_starts_with(f, fp, opts.fingerprint_lines, opts.fingerprint_bytes))
        {
            self.retired.insert(fp.to_string());
            self.tracked.remove(fp);
            return Ok(Vec::new());
        }
        let mut chunks = Vec::new();
        let mut buf = if t.skipping {
            Vec::new()
        } else {
            std::mem::take(&mut t.partial)
        };
        let held = buf.len();
        let mut at_eof = false;
        while buf.len() - held < opts.chunk_size {
            let want = (opts.chunk_size - (buf.len() - held)).min(256 * 1024);
            let n = (&mut t.reader)
                .take(want as u64)
                .read_to_end(&mut buf)
                .map_err(|source| SourceError::Read {
                    name: t.name.clone(),
                    offset: t.offset + t.pending,
                    source,
                })?;
            if n == 0 {
                at_eof = true;
                break;
            }
        }
        // A compressed file is complete; a plain one is finished once its name is gone (and
        // stayed gone for a few polls: a writer may still append to a renamed file).
        let gone = !t.gz && !named;
        if gone && at_eof {
            t.gone_since.get_or_insert_with(std::time::Instant::now);
        } else {
            t.gone_since = None;
        }
        let drained = t
            .gone_since
            .is_some_and(|s| s.elapsed() >= opts.drain_after);
        let finished = at_eof && (t.gz || drained);
        if let Some(c) = cut(t, &buf, finished, &opts) {
            chunks.push(c);
        }
        self.positions.insert(
            fp.to_string(),
            FilePosition {
                fingerprint: fp.to_string(),
                offset: t.offset,
                line: t.line,
                path: t.path.clone(),
            },
        );
        if finished {
            let t = self.tracked.remove(fp).expect("tracked");
            if t.gz {
                // Read to its end (a truncated stream is an error, never an end): a
                // compressed file does not grow, so it is not opened again.
                self.complete.insert(fp.to_string());
            }
        }
        Ok(chunks)
    }
}

/// Cuts `buf` (what was just read, after the held partial line unless an over-long line is
/// being skipped) into a chunk of whole lines, keeping the incomplete rest in `t`. With
/// `last` (the file will not grow), the rest is a line of its own. An over-long line is
/// handed out only when it ends, so a position never falls inside a line.
fn cut(t: &mut Tracked, buf: &[u8], last: bool, opts: &FollowOptions) -> Option<Chunk> {
    let mut out = Vec::with_capacity(buf.len());
    let mut overlong = Vec::new();
    let mut lines = 0u64;
    let mut first_offset = None;
    // Source bytes of the lines handed out by this call.
    let mut consumed = 0u64;
    // Source bytes of the current line read before this call (held or skipped).
    let mut carried = if t.skipping { t.pending } else { 0 };
    t.pending = 0;
    let first_line = t.line + 1;
    let max = opts.max_line;
    let mut pos = 0usize;
    macro_rules! emit {
        ($bytes:expr, $src_len:expr, $newline:expr) => {{
            let bytes: &[u8] = $bytes;
            let src_len: u64 = $src_len;
            let at = t.offset + consumed;
            first_offset.get_or_insert(at);
            let body = src_len - u64::from($newline);
            if body > max as u64 {
                overlong.push((t.line + lines + 1, at, body));
            }
            out.extend_from_slice(&bytes[..bytes.len().min(max)]);
            if $newline {
                out.push(b'\n');
            }
            lines += 1;
            consumed += src_len;
        }};
    }
    while let Some(i) = memchr::memchr(b'\n', &buf[pos..]) {
        if t.skipping {
            let kept = std::mem::take(&mut t.partial);
            emit!(&kept, carried + i as u64 + 1, true);
            t.skipping = false;
        } else {
            emit!(&buf[pos..pos + i], i as u64 + 1, true);
        }
        carried = 0;
        pos += i + 1;
    }
    let rest = &buf[pos..];
    if t.skipping {
        carried += rest.len() as u64;
        if last {
            let kept = std::mem::take(&mut t.partial);
            emit!(&kept, carried, false);
            t.skipping = false;
        } else {
            t.pending = carried;
        }
    } else if last && !rest.is_empty() {
        emit!(rest, rest.len() as u64, false);
    } else if rest.len() > max {
        t.partial = rest[..max].to_vec();
        t.skipping = true;
        t.pending = rest.len() as u64;
    } else {
        t.partial = rest.to_vec();
        t.pending = rest.len() as u64;
    }
    t.offset += consumed;
    t.line += lines;
    (lines > 0).then(|| Chunk {
        source: t.name.clone(),
        first_line,
        first_offset: first_offset.unwrap_or(t.offset),
        data: out,
        overlong,
        lines,
    })
}

#[cfg(test)]
mod tests;
