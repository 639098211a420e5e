//! Helpers shared by the parser crate's corpus tests: where the shared corpora are, and how
//! to split a file into lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The corpus directory (`$LOGVEIL_CORPUS` or `<workspace>/../shared/corpus`), or `None`
/// after printing one line saying the test is skipped.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("LOGVEIL_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: corpus not found at {}", dir.display());
        None
    }
}

/// Non-empty lines without their `\n` or `\r\n` terminator.
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}
