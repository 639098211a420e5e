//! Line sources: opens files, stdin and gzip streams and cuts them into [`Chunk`]s of whole
//! lines, each knowing the source name, its first line number and byte offset, so that every
//! later error can say exactly where it happened. Chunks are the unit of parallel work.
//!
//! [`follow`] reads files that are still being written (tailing, rotation, checkpoints).
//!
//! Lines are split on `\n`; a trailing `\r` is removed. A line longer than the configured
//! maximum is not buffered without bound: its first bytes are kept, the rest skipped, and the
//! line is flagged as over-long for the caller to quarantine.

pub mod follow;
pub mod kafka;
pub mod nats;
pub mod net;
pub mod spool;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open {path}: {source}; check that the file exists and is readable")]
    Open { path: PathBuf, source: io::Error },
    #[error("read error in {name} after byte {offset}: {source}")]
    Read {
        name: Arc<str>,
        offset: u64,
        source: io::Error,
    },
}

/// Bytes asked of the reader at a time.
const READ_SIZE: usize = 512 * 1024;

/// One input: a file path, or `-` for standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn from_arg(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::File(PathBuf::from(arg))
        }
    }

    /// Name used in errors and the quarantine (`<stdin>` or the path as given).
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_string(),
            Input::File(p) => p.display().to_string(),
        }
    }

    /// Opens the input; gzip is detected by its magic bytes (not by the file name), and
    /// concatenated gzip members are read as one stream.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, SourceError> {
        let raw: Box<dyn Read + Send> = match self {
            Input::Stdin => Box::new(io::stdin()),
            Input::File(p) => Box::new(open_file(p)?),
        };
        decompressed(raw, &self.name())
    }
}

/// Wraps a reader in a gzip decoder if its first bytes are the gzip magic number.
pub fn decompressed(
    mut raw: Box<dyn Read + Send>,
    name: &str,
) -> Result<Box<dyn Read + Send>, SourceError> {
    {
        // Sniff the magic bytes. A pipe may deliver them one read at a time.
        let mut head = [0u8; 2];
        let mut n = 0;
        while n < head.len() {
            match raw.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(SourceError::Read {
                        name: name.into(),
                        offset: n as u64,
                        source,
                    });
                }
            }
        }
        let gz = n == 2 && head == [0x1f, 0x8b];
        let r = io::Cursor::new(head[..n].to_vec()).chain(raw);
        if gz {
            Ok(Box::new(flate2::bufread::MultiGzDecoder::new(
                BufReader::with_capacity(256 * 1024, r),
            )))
        } else {
            // Chunks are read in large pieces: no extra buffering needed.
            Ok(Box::new(r))
        }
    }
}

fn open_file(p: &Path) -> Result<File, SourceError> {
    File::open(p).map_err(|source| SourceError::Open {
        path: p.to_path_buf(),
        source,
    })
}

/// A run of whole lines from one source. `Debug` shows sizes, never the lines.
pub struct Chunk {
    pub source: Arc<str>,
    /// 1-based number of the first line in `data`.
    pub first_line: u64,
    /// Byte offset of `data[0]` in the (decompressed) source.
    pub first_offset: u64,
    /// Whole lines, each terminated by `\n` (the last one may lack it at end of input).
    pub data: Vec<u8>,
    /// Lines cut short because they exceeded the maximum length: (line number, byte offset,
    /// original length). Their kept prefix is in `data` like any other line.
    pub overlong: Vec<(u64, u64, u64)>,
    /// Number of lines in `data` (counted while cutting, so nobody scans for it again).
    lines: u64,
}

/// One line of a chunk. `Debug` shows its position and length, never its bytes.
#[derive(Clone, Copy)]
pub struct Line<'a> {
    pub number: u64,
    pub offset: u64,
    pub bytes: &'a [u8],
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("source", &self.source)
            .field("first_line", &self.first_line)
            .field("first_offset", &self.first_offset)
            .field("bytes", &self.data.len())
            .field("overlong", &self.overlong)
            .finish()
    }
}

impl std::fmt::Debug for Line<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line")
            .field("number", &self.number)
            .field("offset", &self.offset)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Chunk {
    /// A chunk of `lines` whole lines, each ending with `\n` and kept whole (a spool's): those
    /// in `overlong` are over the line limit, and are quarantined as such.
    pub fn whole_lines(
        source: Arc<str>,
        first_line: u64,
        first_offset: u64,
        data: Vec<u8>,
        lines: u64,
        overlong: Vec<(u64, u64, u64)>,
    ) -> Chunk {
        Chunk {
            source,
            first_line,
            first_offset,
            data,
            overlong,
            lines,
        }
    }

    /// The chunk's lines, without `\n` or `\r\n`.
    pub fn lines(&self) -> Lines<'_> {
        Lines {
            data: &self.data,
            pos: 0,
            number: self.first_line,
            offset: self.first_offset,
            overlong: &self.overlong,
        }
    }

    pub fn line_count(&self) -> u64 {
        self.lines
    }

    /// Whether the given line number was cut short (over-long).
    pub fn is_overlong(&self, number: u64) -> bool {
        self.overlong.iter().any(|o| o.0 == number)
    }
}

/// Iterator over a chunk's lines.
pub struct Lines<'a> {
    data: &'a [u8],
    pos: usize,
    number: u64,
    offset: u64,
    overlong: &'a [(u64, u64, u64)],
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    #[inline]
    fn next(&mut self) -> Option<Line<'a>> {
        if self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let (len, advance) = match memchr::memchr(b'\n', rest) {
            Some(i) => (i, i + 1),
            None => (rest.len(), rest.len()),
        };
        let mut bytes = &rest[..len];
        if let [head @ .., b'\r'] = bytes {
            bytes = head;
        }
        let line = Line {
            number: self.number,
            offset: self.offset,
            bytes,
        };
        self.pos += advance;
        self.offset += advance as u64;
        if let Some(&(n, _, orig_len)) = self.overlong.first()
            && n == self.number
        {
            // The line was cut short in `data`; in the source it spans its original length.
            self.offset += orig_len - len as u64;
            self.overlong = &self.overlong[1..];
        }
        self.number += 1;
        Some(line)
    }
}

/// Cuts a byte stream into chunks of whole lines.
pub struct Chunker {
    reader: Box<dyn Read + Send>,
    source: Arc<str>,
    chunk_size: usize,
    max_line: usize,
    /// Bytes read but not yet handed out (a partial last line).
    carry: Vec<u8>,
    next_line: u64,
    next_offset: u64,
    /// We are skipping the tail of an over-long line up to its newline.
    skipping: bool,
    eof: bool,
}

impl Chunker {
    /// `chunk_size`: target bytes per chunk; `max_line`: longest line kept whole.
    pub fn new(
        reader: Box<dyn Read + Send>,
        source: Arc<str>,
        chunk_size: usize,
        max_line: usize,
    ) -> Chunker {
        let max_line = max_line.max(1);
        Chunker {
            reader,
            source,
            chunk_size: chunk_size.max(max_line + 1),
            max_line,
            carry: Vec::new(),
            next_line: 1,
            next_offset: 0,
            skipping: false,
            eof: false,
        }
    }

    pub fn source(&self) -> &Arc<str> {
        &self.source
    }

    fn read_err(&self, source: io::Error) -> SourceError {
        SourceError::Read {
            name: self.source.clone(),
            offset: self.next_offset,
            source,
        }
    }

    /// The next chunk, or `None` at end of input.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, SourceError> {
        let mut data = std::mem::take(&mut self.carry);
        data.reserve(self.chunk_size.saturating_sub(data.len()));
        let mut overlong = Vec::new();
        // Line bookkeeping for over-long detection: start of the current (last, partial) line.
        let mut line_start = 0usize;
        let mut lines_in_data = 0u64;
        let mut scanned = 0usize;
        let first_line = self.next_line;
        let mut first_offset = self.next_offset;
        // Bytes of the source consumed by this chunk (differs from data.len() when skipping).
        let mut consumed = data.len() as u64;
        // Source bytes left out of `data` so far (cut tails of over-long lines).
        let mut removed = 0u64;
        loop {
            // Account for newly scanned bytes, cutting over-long complete lines in place.
            let mut i = scanned;
            while let Some(off) = memchr::memchr(b'\n', &data[i..]) {
                let mut nl = i + off;
                let len = nl - line_start;
                if len > self.max_line {
                    let number = first_line + lines_in_data;
                    overlong.push((
                        number,
                        first_offset + line_start as u64 + removed,
                        len as u64,
                    ));
                    data.drain(line_start + self.max_line..nl);
                    removed += (len - self.max_line) as u64;
                    nl = line_start + self.max_line;
                }
                line_start = nl + 1;
                lines_in_data += 1;
                i = nl + 1;
            }
            scanned = data.len();
            if data.len() - line_start > self.max_line {
                // Over-long last line: keep max_line bytes, skip the rest up to its newline.
                let seen = (data.len() - line_start) as u64;
                let number = first_line + lines_in_data;
                overlong.push((number, first_offset + line_start as u64 + removed, seen));
                removed += seen - self.max_line as u64;
                data.truncate(line_start + self.max_line);
                data.push(b'\n');
                lines_in_data += 1;
                line_start = data.len();
                scanned = data.len();
                self.skipping = true;
            }
            if data.len() >= self.chunk_size || self.eof {
                break;
            }
            // Read straight into the chunk (no intermediate copy); large reads also bypass
            // the BufReader's own buffer.
            let start = data.len();
            let n = loop {
                match (&mut self.reader)
                    .take(READ_SIZE as u64)
                    .read_to_end(&mut data)
                {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(self.read_err(e)),
                }
            };
            if n < READ_SIZE {
                self.eof = true;
            }
            consumed += n as u64;
            if self.skipping && n > 0 {
                match memchr::memchr(b'\n', &data[start..]) {
                    Some(i) => {
                        if let Some(o) = overlong.last_mut() {
                            o.2 += i as u64;
                        }
                        data.drain(start..start + i + 1);
                        self.skipping = false;
                        if start == 0 {
                            // The tail belongs to a line of the previous chunk.
                            first_offset += i as u64 + 1;
                        } else {
                            removed += i as u64;
                        }
                    }
                    None => {
                        if let Some(o) = overlong.last_mut() {
                            o.2 += n as u64;
                        }
                        data.truncate(start);
                        if start == 0 {
                            first_offset += n as u64;
                        } else {
                            removed += n as u64;
                        }
                    }
                }
            }
        }
        if !self.eof {
            // Hand out whole lines only; carry the partial last line.
            self.carry = data.split_off(line_start);
        } else if data.len() > line_start {
            lines_in_data += 1; // a last line without a newline
        }
        if data.is_empty() {
            return Ok(None);
        }
        let chunk = Chunk {
            source: self.source.clone(),
            first_line,
            first_offset,
            data,
            overlong,
            lines: lines_in_data,
        };
        let carried = self.carry.len() as u64;
        self.next_line = first_line + chunk.line_count();
        self.next_offset = self.next_offset + consumed - carried;
        Ok(Some(chunk))
    }
}

/// Appends a message's lines (a Kafka record, a NATS message) to a chunk, cutting over-long
/// ones as the chunker does; returns the bytes appended.
pub fn append_lines(chunk: &mut Chunk, payload: &[u8], max_line: usize) -> usize {
    let payload = payload.strip_suffix(b"\n").unwrap_or(payload);
    let before = chunk.data.len();
    for line in payload.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let number = chunk.first_line + chunk.line_count();
        let offset = chunk.data.len() as u64;
        if line.len() > max_line {
            chunk.data.extend_from_slice(&line[..max_line]);
            chunk.overlong.push((number, offset, line.len() as u64));
        } else {
            chunk.data.extend_from_slice(line);
        }
        chunk.data.push(b'\n');
        chunk.lines += 1;
    }
    chunk.data.len() - before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(input: &[u8], chunk: usize, max_line: usize) -> Vec<Chunk> {
        let mut c = Chunker::new(
            Box::new(io::Cursor::new(input.to_vec())),
            "t".into(),
            chunk,
            max_line,
        );
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch);
        }
        out
    }

    fn all_lines(cs: &[Chunk]) -> Vec<(u64, u64, Vec<u8>)> {
        cs.iter()
            .flat_map(|c| c.lines().map(|l| (l.number, l.offset, l.bytes.to_vec())))
            .collect()
    }

    #[test]
    fn numbers_and_offsets() {
        let input = b"ab\r\ncde\n\nfgh";
        for size in [1, 2, 3, 5, 100] {
            let cs = chunks(input, size, 4);
            assert_eq!(
                all_lines(&cs),
                vec![
                    (1, 0, b"ab".to_vec()),
                    (2, 4, b"cde".to_vec()),
                    (3, 8, b"".to_vec()),
                    (4, 9, b"fgh".to_vec())
                ],
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn overlong_lines_are_cut_and_flagged() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend_from_slice(b"\nafter\n");
        let cs = chunks(&input, 16, 8);
        let lines = all_lines(&cs);
        assert_eq!(lines[0], (1, 0, b"ok".to_vec()));
        assert_eq!(lines[1], (2, 3, b"xxxxxxxx".to_vec()));
        assert_eq!(lines[2], (3, 100_004, b"after".to_vec()));
        let over: Vec<_> = cs.iter().flat_map(|c| c.overlong.clone()).collect();
        assert_eq!(over, vec![(2, 3, 100_000)]);
    }

    #[test]
    fn overlong_lines_inside_a_chunk_and_across_chunks() {
        let mut input = Vec::new();
        input.extend_from_slice(b"a\n");
        input.extend(std::iter::repeat_n(b'y', 50));
        input.extend_from_slice(b"\nbb\n");
        input.extend(std::iter::repeat_n(b'z', 30));
        input.extend_from_slice(b"\nc");
        for chunk in [11, 16, 40, 1 << 20] {
            let cs = chunks(&input, chunk, 10);
            let lines = all_lines(&cs);
            assert_eq!(
                lines,
                vec![
                    (1, 0, b"a".to_vec()),
                    (2, 2, vec![b'y'; 10]),
                    (3, 53, b"bb".to_vec()),
                    (4, 56, vec![b'z'; 10]),
                    (5, 87, b"c".to_vec()),
                ],
                "chunk size {chunk}"
            );
            let over: Vec<_> = cs
                .iter()
                .flat_map(|c| c.overlong.iter().map(|o| (o.0, o.1)))
                .collect();
            assert_eq!(over, vec![(2, 2), (4, 56)], "chunk size {chunk}");
        }
    }

    proptest::proptest! {
        /// Any input, any chunk size: lines come out in order with the right numbers and
        /// offsets, over-long ones cut to their first `max_line` bytes.
        #[test]
        fn chunking_matches_a_plain_split(
            input in proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', b'\n', b'\r']), 0..400),
            chunk in 1usize..64,
            max_line in 1usize..40,
        ) {
            let cs = chunks(&input, chunk, max_line);
            let mut want = Vec::new();
            let mut offset = 0u64;
            let mut parts: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
            if input.last() == Some(&b'\n') || input.is_empty() {
                parts.pop();
            }
            for (i, p) in parts.iter().enumerate() {
                let mut l = &p[..p.len().min(max_line)];
                if l.last() == Some(&b'\r') {
                    l = &l[..l.len() - 1];
                }
                want.push((i as u64 + 1, offset, l.to_vec()));
                offset += p.len() as u64 + 1;
            }
            for c in &cs {
                proptest::prop_assert_eq!(c.line_count(), c.lines().count() as u64);
            }
            proptest::prop_assert_eq!(all_lines(&cs), want);
        }
    }

    #[test]
    fn gzip_is_detected() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log.gz");
        let mut e =
            flate2::write::GzEncoder::new(File::create(&p).unwrap(), flate2::Compression::fast());
        e.write_all(b"one\ntwo\n").unwrap();
        e.finish().unwrap();
        let input = Input::File(p);
        let mut c = Chunker::new(input.open().unwrap(), "a".into(), 1024, 1024);
        let ch = c.next_chunk().unwrap().unwrap();
        assert_eq!(
            ch.lines().map(|l| l.bytes.to_vec()).collect::<Vec<_>>(),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
    }

    #[test]
    fn missing_file_error_names_it() {
        let e = Input::File("/nonexistent/x.log".into())
            .open()
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/x.log"));
    }

    #[test]
    fn gzip_is_detected_when_bytes_trickle_in() {
        use std::io::Write;
        /// A reader that returns one byte per read, like a slow pipe.
        struct Trickle(io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"one\n").unwrap();
        let gz = e.finish().unwrap();
        let r = decompressed(Box::new(Trickle(io::Cursor::new(gz))), "pipe").unwrap();
        let mut c = Chunker::new(r, "pipe".into(), 64, 64);
        assert_eq!(c.next_chunk().unwrap().unwrap().data, b"one\n");
        let r = decompressed(
            Box::new(Trickle(io::Cursor::new(b"plain\n".to_vec()))),
            "pipe",
        )
        .unwrap();
        let mut c = Chunker::new(r, "pipe".into(), 64, 64);
        assert_eq!(c.next_chunk().unwrap().unwrap().data, b"plain\n");
    }
}
