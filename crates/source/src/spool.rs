//! The spool: a local write-ahead log between the network sources (HTTP, syslog) or a
//! followed stdin and the pipeline. What a listener accepts is appended here and made durable
//! (`fdatasync`) before it is acknowledged (HTTP's 200); the pipeline reads it back as lines,
//! like a followed file, and commits its position in the source's journal together with the
//! Parquet files holding those lines. Committed segments are deleted, and the open segment as
//! soon as the writer is idle and it is all committed ([`SpoolWriter::retire_if_committed`]),
//! so raw events stay only until their commit (under steady traffic up to a segment's
//! [`SEGMENT_AGE`] plus a commit interval).
//!
//! Layout of a spool directory (mode 0700):
//! - `spool.lock`: held by the one process that uses the spool;
//! - `spool.id`: a random id, so that a journal position never applies to another spool
//!   (e.g. after the directory was wiped);
//! - `durable`: the spool offset up to which everything is durable, rewritten in place after
//!   every group of appends. Bytes after it are a torn write of a group that was never
//!   acknowledged, and are cut off when the spool is opened again;
//! - `<base>.ndjson`: segments, named (like Kafka's) by the spool offset of their first byte.
//!   Offsets grow for ever; a position is one number.
//!
//! Every append ends with a newline and a segment is only changed between appends, so lines
//! never straddle segments and the durable offset always falls between lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Chunk;

/// Errors of the spool. Messages name the spool's directory, never its content.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {dir}: {what}: {source}")]
    Io {
        dir: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error(
        "spool {dir} is damaged: {what}. Move the directory aside (its segments are NDJSON) and start again"
    )]
    Damaged { dir: PathBuf, what: String },
    #[error("spool {dir} is in use by another process; stop it, or give this source its own spool")]
    Busy { dir: PathBuf },
}

/// Where reading of a spool stands: everything before `offset` was handed out, as lines
/// `1 ..= line`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolPosition {
    /// The id of the spool the offset belongs to.
    pub spool: String,
    pub offset: u64,
    pub line: u64,
}

/// What the writer and the readers of one spool share.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    id: String,
    /// Everything before this offset is durable.
    durable: AtomicU64,
    /// Everything before this offset is committed (and may be deleted).
    committed: AtomicU64,
}

/// An open spool directory (held locked while open).
#[derive(Clone, Debug)]
pub struct Spool {
    shared: Arc<Shared>,
    _lock: Arc<File>,
}

/// Segments are rolled after this many bytes…
pub const SEGMENT_BYTES: u64 = 32 << 20;
/// … or when this old, so that committed raw events do not stay in the spool for long.
pub const SEGMENT_AGE: std::time::Duration = std::time::Duration::from_secs(60);

const DURABLE_FILE: &str = "durable";
const ID_FILE: &str = "spool.id";
const LOCK_FILE: &str = "spool.lock";
const EXT: &str = ".ndjson";

fn io_err<'a>(dir: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        dir: dir.to_path_buf(),
        what,
        source,
    }
}

fn segment_name(base: u64) -> String {
    format!("{base:020}{EXT}")
}

/// The segments of a spool directory: (base offset, path), by base.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir, "cannot list"))? {
        let e = e.map_err(io_err(dir, "cannot list"))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = name.strip_suffix(EXT).and_then(|b| b.parse::<u64>().ok()) {
            out.push((base, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "cannot sync the directory"))?;
    Ok(())
}

fn read_durable(dir: &Path) -> Result<u64, SpoolError> {
    let text = std::fs::read_to_string(dir.join(DURABLE_FILE))
        .map_err(io_err(dir, "cannot read its durable offset"))?;
    text.trim().parse().map_err(|_| SpoolError::Damaged {
        dir: dir.to_path_buf(),
        what: "its `durable` file does not hold an offset".into(),
    })
}

/// Writes the durable offset in place: one short write of a fixed width, then `fdatasync`.
fn write_durable(f: &File, offset: u64) -> io::Result<()> {
    let text = format!("{offset:020}\n");
    #[cfg(unix)]
    std::os::unix::fs::FileExt::write_all_at(f, text.as_bytes(), 0)?;
    #[cfg(not(unix))]
    {
        let mut f = f;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(text.as_bytes())?;
    }
    f.sync_data()
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, locks it, and cuts off any torn write
    /// an earlier process left after its durable offset.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir, "cannot create"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Raw events until their commit: nobody else reads them.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err(dir, "cannot restrict permissions of"))?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(io_err(dir, "cannot open the lock of"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Busy {
                    dir: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_err(dir, "cannot lock")(e));
            }
        }
        let fresh = !dir.join(ID_FILE).exists();
        if fresh && (dir.join(DURABLE_FILE).exists() || !segments(dir)?.is_empty()) {
            return Err(SpoolError::Damaged {
                dir: dir.to_path_buf(),
                what: "it holds segments but no `spool.id`".into(),
            });
        }
        if fresh {
            // Not secret, only unique: time, process and directory, hashed.
            let seed = format!(
                "{:?}{}{}",
                std::time::SystemTime::now(),
                std::process::id(),
                dir.display()
            );
            let id: String = blake3::hash(seed.as_bytes()).as_bytes()[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let df = File::create(dir.join(DURABLE_FILE))
                .map_err(io_err(dir, "cannot create the durable offset of"))?;
            write_durable(&df, 0).map_err(io_err(dir, "cannot write the durable offset of"))?;
            // The id last: a spool without it is still fresh.
            let tmp = dir.join(format!("{ID_FILE}.tmp"));
            std::fs::write(&tmp, format!("{id}\n"))
                .and_then(|()| File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, dir.join(ID_FILE)))
                .map_err(io_err(dir, "cannot write the id of"))?;
            sync_dir(dir)?;
        }
        let id = std::fs::read_to_string(dir.join(ID_FILE))
            .map_err(io_err(dir, "cannot read the id of"))?
            .trim()
            .to_string();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SpoolError::Damaged {
                dir: dir.to_path_buf(),
                what: "its `spool.id` is not an id".into(),
            });
        }
        let durable = read_durable(dir)?;
        // Cut off what was written after the durable offset (never acknowledged).
        let segs = segments(dir)?;
        let mut cut = false;
        for (base, path) in &segs {
            if *base > durable || (*base == durable && *base > 0) {
                std::fs::remove_file(path).map_err(io_err(dir, "cannot remove a torn segment"))?;
                cut = true;
            } else {
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(dir, "cannot open a segment of"))?;
                let len = f
                    .metadata()
                    .map_err(io_err(dir, "cannot stat a segment of"))?
                    .len();
                let next = segs
                    .iter()
                    .map(|(b, _)| *b)
                    .find(|b| b > base)
                    .unwrap_or(u64::MAX);
                if next > durable && base + len > durable {
                    f.set_len(durable - base)
                        .and_then(|()| f.sync_all())
                        .map_err(io_err(dir, "cannot cut a torn write off"))?;
                    cut = true;
                } else if next > durable && base + len < durable {
                    return Err(SpoolError::Damaged {
                        dir: dir.to_path_buf(),
                        what: format!(
                            "segment {base} ends at {} but {durable} bytes were made durable",
                            base + len
                        ),
                    });
                } else if next <= durable && base + len != next {
                    return Err(SpoolError::Damaged {
                        dir: dir.to_path_buf(),
                        what: format!("segment {} does not end where the next begins", base),
                    });
                }
            }
        }
        if cut {
            sync_dir(dir)?;
        }
        // What is before the oldest segment was committed (and deleted) by an earlier run.
        let oldest = segments(dir)?.first().map_or(durable, |(b, _)| *b);
        Ok(Spool {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                id,
                durable: AtomicU64::new(durable),
                committed: AtomicU64::new(oldest.min(durable)),
            }),
            _lock: Arc::new(lock),
        })
    }

    /// The spool's id (what a [`SpoolPosition`] must name to apply).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Everything before this offset is durable.
    pub fn durable(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Durable bytes not committed yet: what a listener's backpressure limits.
    pub fn backlog(&self) -> u64 {
        self.durable()
            .saturating_sub(self.shared.committed.load(Ordering::Acquire))
    }

    /// The writer of the spool (one at a time; appends go on after the durable offset).
    pub fn writer(&self, segment_bytes: u64) -> Result<SpoolWriter, SpoolError> {
        let dir = &self.shared.dir;
        let durable = self.durable();
        let segs = segments(dir)?;
        let (base, file) = match segs.iter().rev().find(|(b, _)| *b <= durable) {
            Some((base, path)) if *base < durable || *base == 0 => {
                let f = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(io_err(dir, "cannot open a segment of"))?;
                (*base, Some(f))
            }
            _ => (durable, None),
        };
        let marker = OpenOptions::new()
            .write(true)
            .open(dir.join(DURABLE_FILE))
            .map_err(io_err(dir, "cannot open the durable offset of"))?;
        Ok(SpoolWriter {
            spool: self.clone(),
            file,
            base,
            end: durable,
            marker,
            segment_bytes: segment_bytes.max(1),
            opened: std::time::Instant::now(),
        })
    }

    /// A reader from `from` (or from the oldest segment when `from` belongs to no spool or
    /// to another one).
    pub fn reader(
        &self,
        source: Arc<str>,
        from: Option<SpoolPosition>,
        chunk_size: usize,
        max_line: usize,
    ) -> Result<SpoolReader, SpoolError> {
        let (offset, line) = match from {
            Some(p) if p.spool == self.shared.id => (p.offset, p.line),
            _ => (
                segments(&self.shared.dir)?
                    .first()
                    .map_or(self.durable(), |(b, _)| *b),
                0,
            ),
        };
        if offset > self.durable() {
            return Err(SpoolError::Damaged {
                dir: self.shared.dir.clone(),
                what: format!(
                    "the journal's position {offset} is past the spool's durable end {}",
                    self.durable()
                ),
            });
        }
        self.shared.committed.store(offset, Ordering::Release);
        Ok(SpoolReader {
            spool: self.clone(),
            source,
            offset,
            line,
            chunk_size: chunk_size.max(4096),
            max_line,
            open: None,
        })
    }

    /// Everything before `offset` is committed: deletes the segments that lie wholly before
    /// it. Returns how many were deleted.
    pub fn release(&self, offset: u64) -> Result<usize, SpoolError> {
        self.shared.committed.fetch_max(offset, Ordering::AcqRel);
        let dir = &self.shared.dir;
        let segs = segments(dir)?;
        let mut deleted = 0;
        for w in segs.windows(2) {
            let ((_, path), (next, _)) = (&w[0], &w[1]);
            if *next <= offset && *next <= self.durable() {
                std::fs::remove_file(path).map_err(io_err(dir, "cannot remove a segment of"))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Like [`release`](Spool::release), and also deletes the last segment when everything in
    /// it is committed: for when no writer is running (the listeners have stopped), so that no
    /// raw event stays on disk after its commit.
    pub fn release_all(&self, offset: u64) -> Result<usize, SpoolError> {
        let mut deleted = self.release(offset)?;
        let dir = &self.shared.dir;
        if let Some((base, path)) = segments(dir)?.last() {
            let len = std::fs::metadata(path)
                .map_err(io_err(dir, "cannot stat a segment of"))?
                .len();
            if base + len <= offset && base + len == self.durable() {
                std::fs::remove_file(path).map_err(io_err(dir, "cannot remove a segment of"))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// Appends to a spool. Not shared: one thread writes, in groups.
pub struct SpoolWriter {
    spool: Spool,
    file: Option<File>,
    base: u64,
    end: u64,
    marker: File,
    segment_bytes: u64,
    /// When the open segment was opened (segments are also rolled by age).
    opened: std::time::Instant,
}

impl SpoolWriter {
    /// Appends `parts` (each a run of whole lines, ending with a newline) and makes them
    /// durable: once this returns `Ok`, they survive a crash and will be read. On error,
    /// nothing of them counts (the next open cuts them off) and the writer should not be used
    /// again.
    pub fn append(&mut self, parts: &[&[u8]]) -> Result<u64, SpoolError> {
        let dir = self.spool.shared.dir.clone();
        if self.file.is_none()
            || self.end - self.base >= self.segment_bytes
            || (self.end > self.base && self.opened.elapsed() >= SEGMENT_AGE)
        {
            let path = dir.join(segment_name(self.end));
            let mut o = OpenOptions::new();
            o.create_new(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            let f = o
                .open(&path)
                .map_err(io_err(&dir, "cannot create a segment in"))?;
            // The old segment is complete and durable already.
            sync_dir(&dir)?;
            self.file = Some(f);
            self.base = self.end;
            self.opened = std::time::Instant::now();
        }
        let f = self.file.as_mut().expect("a segment is open");
        let mut n = 0u64;
        for p in parts {
            debug_assert!(p.is_empty() || p.ends_with(b"\n"));
            f.write_all(p).map_err(io_err(&dir, "cannot append to"))?;
            n += p.len() as u64;
        }
        f.sync_data().map_err(io_err(&dir, "cannot sync"))?;
        write_durable(&self.marker, self.end + n)
            .map_err(io_err(&dir, "cannot write the durable offset of"))?;
        self.end += n;
        self.spool.shared.durable.store(self.end, Ordering::Release);
        Ok(self.end)
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Deletes the open segment if everything in it is committed (the next append starts a
    /// new one): called when idle, so that no committed raw event waits on disk for more
    /// traffic. Returns whether it did.
    pub fn retire_if_committed(&mut self) -> Result<bool, SpoolError> {
        let committed = self.spool.shared.committed.load(Ordering::Acquire);
        if self.file.is_none() || self.end == self.base || committed < self.end {
            return Ok(false);
        }
        let dir = self.spool.shared.dir.clone();
        self.file = None;
        std::fs::remove_file(dir.join(segment_name(self.base)))
            .map_err(io_err(&dir, "cannot remove a segment of"))?;
        self.base = self.end;
        Ok(true)
    }
}

/// Reads a spool back as chunks of lines, up to its durable offset.
pub struct SpoolReader {
    spool: Spool,
    source: Arc<str>,
    offset: u64,
    line: u64,
    chunk_size: usize,
    /// Lines longer than this are marked over-long in their chunk (the pipeline quarantines
    /// them, as it does for files).
    max_line: usize,
    /// The open segment: (base, end if sealed, file positioned at `offset`).
    open: Option<(u64, Option<u64>, File)>,
}

impl SpoolReader {
    /// Where reading stands (what a commit records).
    pub fn position(&self) -> SpoolPosition {
        SpoolPosition {
            spool: self.spool.shared.id.clone(),
            offset: self.offset,
            line: self.line,
        }
    }

    /// Durable bytes not read yet.
    pub fn lag(&self) -> u64 {
        self.spool.durable().saturating_sub(self.offset)
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Opens the segment holding `offset`, if it is not open.
    fn seek(&mut self) -> Result<(), SpoolError> {
        if let Some((_, Some(end), _)) = &self.open
            && self.offset >= *end
        {
            self.open = None;
        }
        if self.open.is_some() {
            return Ok(());
        }
        let dir = self.spool.shared.dir.clone();
        let segs = segments(&dir)?;
        let Some(i) = segs.iter().rposition(|(b, _)| *b <= self.offset) else {
            return Err(SpoolError::Damaged {
                dir,
                what: format!("no segment holds offset {}", self.offset),
            });
        };
        let (base, path) = &segs[i];
        let sealed = segs.get(i + 1).map(|(b, _)| *b);
        let mut f = File::open(path).map_err(io_err(&dir, "cannot open a segment of"))?;
        f.seek(SeekFrom::Start(self.offset - base))
            .map_err(io_err(&dir, "cannot read a segment of"))?;
        self.open = Some((*base, sealed, f));
        Ok(())
    }

    /// The next chunk of durable lines (at most about `chunk_size` bytes), or `None` when
    /// everything durable has been read.
    pub fn poll(&mut self) -> Result<Option<Chunk>, SpoolError> {
        let durable = self.spool.durable();
        if self.offset >= durable {
            return Ok(None);
        }
        let dir = self.spool.shared.dir.clone();
        // At most twice: the open segment may have been sealed since it was opened (its end
        // is then where the next one begins).
        for _ in 0..2 {
            self.seek()?;
            let (base, sealed, f) = self.open.as_mut().expect("seeked");
            let end = match sealed {
                Some(e) => *e,
                None => {
                    *base
                        + f.metadata()
                            .map_err(io_err(&dir, "cannot stat a segment of"))?
                            .len()
                }
            }
            .min(durable);
            if self.offset >= end {
                self.open = None;
                continue;
            }
            let want = (end - self.offset).min(self.chunk_size as u64);
            let mut data = Vec::with_capacity(want as usize);
            f.take(want)
                .read_to_end(&mut data)
                .map_err(io_err(&dir, "cannot read a segment of"))?;
            if (data.len() as u64) < want {
                return Err(SpoolError::Damaged {
                    dir,
                    what: format!("segment {base} is shorter than it was a moment ago"),
                });
            }
            // Whole lines only: what is after the last newline is read again next time. A
            // line longer than a chunk (accepted with a larger line limit) is read whole.
            let i = loop {
                if let Some(i) = memchr::memrchr(b'\n', &data) {
                    break i;
                }
                let at = self.offset + data.len() as u64;
                if at >= end {
                    return Err(SpoolError::Damaged {
                        dir,
                        what: format!("the line at offset {} has no end", self.offset),
                    });
                }
                let more = (end - at).min(self.chunk_size as u64);
                f.take(more)
                    .read_to_end(&mut data)
                    .map_err(io_err(&dir, "cannot read a segment of"))?;
                if self.offset + (data.len() as u64) < at + more {
                    return Err(SpoolError::Damaged {
                        dir,
                        what: format!("segment {base} is shorter than it was a moment ago"),
                    });
                }
            };
            let keep = i + 1;
            if keep < data.len() {
                let back = (data.len() - keep) as i64;
                f.seek(SeekFrom::Current(-back))
                    .map_err(io_err(&dir, "cannot read a segment of"))?;
                data.truncate(keep);
            }
            let (mut lines, mut start) = (0u64, 0usize);
            let mut overlong = Vec::new();
            for end in memchr::memchr_iter(b'\n', &data) {
                lines += 1;
                let len = data[start..end]
                    .strip_suffix(b"\r")
                    .map_or(end - start, <[u8]>::len);
                if len > self.max_line {
                    // Its whole length in the spool (the line is all there).
                    let raw = (end - start) as u64;
                    overlong.push((self.line + lines, self.offset + start as u64, raw));
                }
                start = end + 1;
            }
            let chunk = Chunk::whole_lines(
                self.source.clone(),
                self.line + 1,
                self.offset,
                data,
                lines,
                overlong,
            );
            self.offset += keep as u64;
            self.line += lines;
            return Ok(Some(chunk));
        }
        Err(SpoolError::Damaged {
            dir,
            what: format!("no segment holds offset {}, which is durable", self.offset),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(r: &mut SpoolReader) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(c) = r.poll().unwrap() {
            out.extend(
                c.lines()
                    .map(|l| String::from_utf8(l.bytes.to_vec()).unwrap()),
            );
        }
        out
    }

    #[test]
    fn appends_are_read_back_across_segments_and_released() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path()).unwrap();
        let mut w = s.writer(100).unwrap();
        let mut expect = Vec::new();
        for i in 0..50 {
            let line = format!("{{\"n\":{i}}}\n");
            w.append(&[line.as_bytes()]).unwrap();
            expect.push(line.trim_end().to_string());
        }
        assert!(segments(d.path()).unwrap().len() > 3);
        let mut r = s.reader("t".into(), None, 64 * 1024, usize::MAX).unwrap();
        assert_eq!(read_all(&mut r), expect);
        assert_eq!(r.position().line, 50);
        assert_eq!(s.backlog(), s.durable());
        s.release(r.position().offset).unwrap();
        assert_eq!(s.backlog(), 0);
        // Only the last segment is kept (the writer appends to it)…
        assert_eq!(segments(d.path()).unwrap().len(), 1);
        // … until no writer runs.
        drop(w);
        let at = r.position();
        drop(r);
        s.release_all(at.offset).unwrap();
        assert!(segments(d.path()).unwrap().is_empty());
        drop(s);
        let s = Spool::open(d.path()).unwrap();
        let mut w = s.writer(100).unwrap();
        w.append(&[b"{}\n"]).unwrap();
        let mut r = s.reader("t".into(), Some(at), 4096, usize::MAX).unwrap();
        assert_eq!(read_all(&mut r), vec!["{}"]);
        assert_eq!(r.position().line, 51);
    }

    #[test]
    fn a_torn_write_after_the_durable_offset_is_cut_off() {
        let d = tempfile::tempdir().unwrap();
        let pos;
        {
            let s = Spool::open(d.path()).unwrap();
            let mut w = s.writer(SEGMENT_BYTES).unwrap();
            w.append(&[b"{\"a\":1}\n"]).unwrap();
            pos = s.durable();
            drop(w);
        }
        // An append that crashed before its durable offset was written.
        let seg = segments(d.path()).unwrap()[0].1.clone();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"{\"b\":2}\n{\"c\"").unwrap();
        drop(f);
        let s = Spool::open(d.path()).unwrap();
        assert_eq!(s.durable(), pos);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), pos);
        let mut w = s.writer(SEGMENT_BYTES).unwrap();
        w.append(&[b"{\"d\":4}\n"]).unwrap();
        let mut r = s.reader("t".into(), None, 4096, usize::MAX).unwrap();
        assert_eq!(read_all(&mut r), vec!["{\"a\":1}", "{\"d\":4}"]);
    }

    #[test]
    fn a_position_resumes_and_a_foreign_position_starts_over() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path()).unwrap();
        let mut w = s.writer(SEGMENT_BYTES).unwrap();
        w.append(&[b"1\n2\n", b"3\n"]).unwrap();
        let mut r = s.reader("t".into(), None, 4096, usize::MAX).unwrap();
        let c = r.poll().unwrap().unwrap();
        assert_eq!(c.line_count(), 3);
        w.append(&[b"4\n"]).unwrap();
        let p = r.position();
        let mut r2 = s
            .reader("t".into(), Some(p.clone()), 4096, usize::MAX)
            .unwrap();
        assert_eq!(read_all(&mut r2), vec!["4"]);
        let other = SpoolPosition {
            spool: "0000".into(),
            ..p
        };
        let mut r3 = s.reader("t".into(), Some(other), 4096, usize::MAX).unwrap();
        assert_eq!(read_all(&mut r3).len(), 4);
    }

    #[test]
    fn a_second_process_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let _s = Spool::open(d.path()).unwrap();
        assert!(matches!(
            Spool::open(d.path()),
            Err(SpoolError::Busy { .. })
        ));
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_read_whole() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path()).unwrap();
        let mut w = s.writer(SEGMENT_BYTES).unwrap();
        let long = [vec![b'y'; 10_000], b"\nz\n".to_vec()].concat();
        w.append(&[&long]).unwrap();
        let mut r = s.reader("t".into(), None, 4096, usize::MAX).unwrap();
        let lens: Vec<usize> = std::iter::from_fn(|| r.poll().unwrap())
            .flat_map(|c| c.lines().map(|l| l.bytes.len()).collect::<Vec<_>>())
            .collect();
        assert_eq!(lens, vec![10_000, 1]);
    }

    #[test]
    fn lines_over_the_limit_are_marked_over_long() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path()).unwrap();
        let mut w = s.writer(SEGMENT_BYTES).unwrap();
        w.append(&[b"short\n123456789\r\nok\n"]).unwrap();
        let mut r = s.reader("t".into(), None, 4096, 8).unwrap();
        let c = r.poll().unwrap().unwrap();
        assert_eq!(c.overlong, vec![(2, 6, 10)]);
        let lines: Vec<(u64, u64)> = c.lines().map(|l| (l.number, l.offset)).collect();
        assert_eq!(lines, vec![(1, 0), (2, 6), (3, 17)]);
    }

    #[test]
    fn an_idle_committed_segment_is_retired_by_the_writer() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path()).unwrap();
        let mut w = s.writer(SEGMENT_BYTES).unwrap();
        w.append(&[b"1\n"]).unwrap();
        assert!(!w.retire_if_committed().unwrap(), "not committed yet");
        let mut r = s.reader("t".into(), None, 4096, usize::MAX).unwrap();
        assert!(r.poll().unwrap().is_some());
        s.release(r.position().offset).unwrap();
        assert!(w.retire_if_committed().unwrap());
        assert!(segments(d.path()).unwrap().is_empty());
        w.append(&[b"2\n"]).unwrap();
        assert_eq!(read_all(&mut r), vec!["2"]);
        drop((w, r, s));
        // Reopened: the backlog counts from the oldest segment, not from offset 0.
        let s = Spool::open(d.path()).unwrap();
        assert_eq!(s.backlog(), 2);
    }

    #[test]
    fn segments_without_an_id_are_not_taken_for_a_fresh_spool() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = Spool::open(d.path()).unwrap();
            s.writer(SEGMENT_BYTES).unwrap().append(&[b"1\n"]).unwrap();
        }
        std::fs::remove_file(d.path().join(ID_FILE)).unwrap();
        assert!(matches!(
            Spool::open(d.path()),
            Err(SpoolError::Damaged { .. })
        ));
    }

    #[test]
    fn chunks_hold_whole_lines() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path()).unwrap();
        let mut w = s.writer(SEGMENT_BYTES).unwrap();
        let line = vec![b'x'; 3000];
        for _ in 0..10 {
            let l = [&line[..], b"\n"].concat();
            w.append(&[&l]).unwrap();
        }
        let mut r = s.reader("t".into(), None, 4096, usize::MAX).unwrap();
        let mut n = 0;
        while let Some(c) = r.poll().unwrap() {
            for l in c.lines() {
                assert_eq!(l.bytes.len(), 3000);
                n += 1;
            }
        }
        assert_eq!(n, 10);
    }
}
