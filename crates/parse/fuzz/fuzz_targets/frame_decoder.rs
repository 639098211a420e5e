//! `FrameDecoder` fed random pushes.
//!
//! Input: one byte for the maximum frame length (1..=256), then chunks, each a length byte
//! and that many bytes (the last chunk may be short). The stream is decoded twice: pushed in
//! those chunks, and pushed whole (as much as fits each time).
//!
//! Properties: never panics or loops; `push` takes at most what it is given and never
//! buffers more than `capacity()`; once `next_frame` returned `None`, a push of a non-empty
//! slice takes at least one byte (the documented room guarantee); frames are at most the
//! maximum length; and the frames and the kinds of reports do not depend on how the stream
//! was split (only the `len` of a newline-framed `TooLong` may, by design).
#![no_main]

use libfuzzer_sys::fuzz_target;
use logveil_parse::syslog::{FrameDecoder, FrameEvent};

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Frame(Vec<u8>),
    TooLong,
    Truncated(usize),
}

fn record(ev: FrameEvent<'_>, max: usize, out: &mut Vec<Ev>) {
    match ev {
        FrameEvent::Frame(f) => {
            assert!(f.len() <= max, "frame longer than the maximum");
            out.push(Ev::Frame(f.to_vec()));
        }
        FrameEvent::TooLong { len } => {
            assert!(len > max, "TooLong for a frame within the maximum");
            out.push(Ev::TooLong);
        }
        FrameEvent::Truncated { len } => out.push(Ev::Truncated(len)),
    }
}

fn decode<'a>(max: usize, chunks: impl Iterator<Item = &'a [u8]>) -> Vec<Ev> {
    let mut d = FrameDecoder::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = chunk;
        loop {
            let took = d.push(rest);
            assert!(took <= rest.len(), "push took more than given");
            assert!(d.buffered_len() <= d.capacity(), "buffer over capacity");
            rest = &rest[took..];
            let mut n = 0;
            while let Some(ev) = d.next_frame() {
                record(ev, max, &mut out);
                n += 1;
                assert!(n <= 1 << 16, "next_frame does not stop");
            }
            if rest.is_empty() {
                break;
            }
            // The documented guarantee: after draining, there is room again.
            let took = d.push(rest);
            assert!(took > 0, "no room after draining next_frame");
            rest = &rest[took..];
            while let Some(ev) = d.next_frame() {
                record(ev, max, &mut out);
            }
            if rest.is_empty() {
                break;
            }
        }
    }
    if let Some(ev) = d.finish() {
        record(ev, max, &mut out);
    }
    assert!(d.finish().is_none(), "finish twice yields a frame");
    assert_eq!(d.buffered_len(), 0, "finish did not reset the decoder");
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, mut rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(m) + 1;
    let mut chunks = Vec::new();
    let mut stream = Vec::new();
    while let Some((&n, tail)) = rest.split_first() {
        let (chunk, tail) = tail.split_at(usize::from(n).min(tail.len()));
        chunks.push(chunk);
        stream.extend_from_slice(chunk);
        rest = tail;
    }
    let chunked = decode(max, chunks.into_iter());
    let whole = decode(max, std::iter::once(&stream[..]));
    assert_eq!(chunked, whole, "result depends on how the stream was split");
});
