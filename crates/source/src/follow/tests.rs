//! The follower against rotation by rename and by copy-truncate, gzip'd rotated files,
//! partial and over-long lines, restarts from positions, and a randomized mix of all of them
//! in which every line written must come out exactly once.

use std::io::Write;

use super::*;

fn opts() -> FollowOptions {
    FollowOptions {
        chunk_size: 256,
        max_line: 40,
        fingerprint_bytes: 64,
        drain_after: std::time::Duration::from_millis(15),
        ..FollowOptions::default()
    }
}

fn append(p: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

/// Polls until nothing new comes for a few polls; the lines, in order.
fn drain(f: &mut Follower) -> Vec<String> {
    let mut out = Vec::new();
    let mut quiet = 0;
    while quiet < 4 {
        let (chunks, errors) = f.poll();
        assert!(errors.is_empty(), "{errors:?}");
        if chunks.is_empty() {
            quiet += 1;
            // Idle polls are spaced, as in a run: renamed files are drained by time.
            std::thread::sleep(std::time::Duration::from_millis(8));
        }
        for c in chunks {
            let mut expect_offset = None;
            for l in c.lines() {
                if let Some(o) = expect_offset {
                    assert_eq!(l.offset, o, "offsets are continuous within a chunk");
                }
                out.push(String::from_utf8(l.bytes.to_vec()).unwrap());
                let len = c
                    .overlong
                    .iter()
                    .find(|o| o.0 == l.number)
                    .map_or(l.bytes.len() as u64, |o| o.2);
                expect_offset = Some(l.offset + len + 1);
            }
        }
    }
    out
}

fn lines(prefix: &str, from: usize, to: usize) -> (String, Vec<String>) {
    let v: Vec<String> = (from..to).map(|i| format!("{prefix} line {i}")).collect();
    let text = v.iter().map(|l| format!("{l}\n")).collect();
    (text, v)
}

#[test]
fn partial_lines_wait_for_their_newline() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.log");
    append(&p, "first\nsecond\nthi");
    let mut f = Follower::new(vec![p.display().to_string()], opts(), vec![]);
    assert_eq!(drain(&mut f), ["first", "second"]);
    append(&p, "rd\n");
    assert_eq!(drain(&mut f), ["third"]);
    let pos = f.positions();
    assert_eq!((pos[0].offset, pos[0].line), (19, 3));
}

#[test]
fn a_file_without_a_complete_first_line_is_not_read_yet() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.log");
    append(&p, "abc");
    let mut f = Follower::new(vec![p.display().to_string()], opts(), vec![]);
    assert!(drain(&mut f).is_empty());
    append(&p, "\nnext\n");
    assert_eq!(drain(&mut f), ["abc", "next"]);
}

#[test]
fn over_long_lines_are_cut_once_they_end() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.log");
    append(&p, "short\n");
    append(&p, &"x".repeat(100));
    let mut f = Follower::new(vec![p.display().to_string()], opts(), vec![]);
    assert_eq!(drain(&mut f), ["short"]);
    // Still no newline: nothing handed out, the position stays before the line.
    assert_eq!(f.positions()[0].offset, 6);
    append(&p, &"y".repeat(300));
    assert!(drain(&mut f).is_empty());
    append(&p, "\nafter\n");
    let (chunks, _) = f.poll();
    let c = &chunks[0];
    let got: Vec<_> = c.lines().collect();
    assert_eq!(got[0].bytes, "x".repeat(40).as_bytes());
    assert_eq!(got[0].offset, 6);
    assert_eq!(c.overlong, vec![(2, 6, 400)]);
    assert_eq!(got[1].bytes, b"after");
    assert_eq!(got[1].offset, 6 + 401);
    assert_eq!(f.positions()[0].offset, 6 + 401 + 6);
}

#[test]
fn rotation_by_rename_loses_and_repeats_nothing() {
    for pattern in ["access.log*", "access.log"] {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        let (t1, mut want) = lines("a", 0, 5);
        append(&p, &t1);
        let glob = d.path().join(pattern).display().to_string();
        let mut f = Follower::new(vec![glob], opts(), vec![]);
        let mut got = drain(&mut f);
        // Written just before and after the rename, by a writer still on the old file.
        let (t2, w2) = lines("a", 5, 8);
        append(&p, &t2);
        std::fs::rename(&p, d.path().join("access.log.1")).unwrap();
        let (t3, w3) = lines("a", 8, 10);
        append(&d.path().join("access.log.1"), &t3);
        let (t4, w4) = lines("b", 0, 6);
        append(&p, &t4);
        got.extend(drain(&mut f));
        want.extend(w2);
        want.extend(w3);
        want.extend(w4);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{pattern}");
    }
}

#[test]
fn copy_truncate_and_gzip_are_the_file_already_read() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("access.log");
    let (t1, mut want) = lines("a", 0, 5);
    append(&p, &t1);
    let glob = d.path().join("access.log*").display().to_string();
    let mut f = Follower::new(vec![glob], opts(), vec![]);
    let mut got = drain(&mut f);
    // Lines the follower has not seen when logrotate copies and truncates.
    let (t2, w2) = lines("a", 5, 9);
    append(&p, &t2);
    std::fs::copy(&p, d.path().join("access.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    let (t3, w3) = lines("b", 0, 4);
    append(&p, &t3);
    got.extend(drain(&mut f));
    // Later the copy is compressed: same content, nothing new.
    let copy = d.path().join("access.log.1");
    let gz = d.path().join("access.log.1.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&copy).unwrap()).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(&copy).unwrap();
    got.extend(drain(&mut f));
    // Read to its end once, the compressed file is not opened again on later polls.
    assert_eq!(f.complete.len(), 1);
    assert!(f.tracked.values().all(|t| !t.gz));
    want.extend(w2);
    want.extend(w3);
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn restarting_from_positions_reads_every_other_line_once() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("access.log");
    let glob = d.path().join("access.log*").display().to_string();
    let (t1, mut want) = lines("a", 0, 6);
    append(&p, &t1);
    append(&p, "a half");
    let mut f = Follower::new(vec![glob.clone()], opts(), vec![]);
    let mut got = drain(&mut f);
    let saved = f.positions();
    drop(f);
    // While it is down: the half line is finished, the file rotated, a new one started.
    append(&p, " line\n");
    want.push("a half line".into());
    std::fs::rename(&p, d.path().join("access.log.1")).unwrap();
    let (t2, w2) = lines("b", 0, 3);
    append(&p, &t2);
    want.extend(w2);
    let mut f = Follower::new(vec![glob], opts(), saved);
    got.extend(drain(&mut f));
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

/// A small xorshift: deterministic without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn randomized_writes_rotations_and_restarts_yield_every_line_once() {
    for seed in 1..=30u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        let glob = d.path().join("app.log*").display().to_string();
        let mut f = Follower::new(vec![glob.clone()], opts(), vec![]);
        let mut written: Vec<String> = Vec::new();
        let mut got: Vec<String> = Vec::new();
        let mut half: Option<String> = None;
        let mut serial = 0;
        let mut rotations = 0;
        for step in 0..60 {
            match rng.below(10) {
                0..=4 => {
                    // Whole lines, sometimes finishing a half-written one.
                    let mut s = String::new();
                    if let Some(h) = half.take() {
                        s.push_str(&h[h.len() / 2..]);
                        s.push('\n');
                        written.push(h);
                    }
                    for _ in 0..rng.below(5) {
                        let l = format!(
                            "s{seed} g{serial} n{step} {}",
                            "z".repeat(rng.below(60) as usize)
                        );
                        s.push_str(&l);
                        s.push('\n');
                        written.push(l);
                        serial += 1;
                    }
                    append(&p, &s);
                }
                5 if half.is_none() && p.exists() && std::fs::metadata(&p).unwrap().len() > 0 => {
                    let h = format!("s{seed} half {serial}");
                    serial += 1;
                    append(&p, &h[..h.len() / 2]);
                    half = Some(h);
                }
                6 => got.extend(drain(&mut f)),
                7 if half.is_none() && p.exists() => {
                    rotations += 1;
                    std::fs::rename(&p, d.path().join(format!("app.log.{rotations}"))).unwrap();
                }
                8 if half.is_none() && p.exists() => {
                    // copy-truncate: nothing is written between the copy and the truncation.
                    rotations += 1;
                    std::fs::copy(&p, d.path().join(format!("app.log.{rotations}"))).unwrap();
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&p)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
                9 => {
                    // Restart from what was handed out so far.
                    let saved = f.positions();
                    f = Follower::new(vec![glob.clone()], opts(), saved);
                }
                _ => {}
            }
        }
        if let Some(h) = half.take() {
            append(&p, &format!("{}\n", &h[h.len() / 2..]));
            written.push(h);
        }
        got.extend(drain(&mut f));
        // Over-long lines come out cut to max_line.
        let max = opts().max_line;
        let mut w: Vec<String> = written
            .iter()
            .map(|l| l[..l.len().min(max)].to_string())
            .collect();
        w.sort();
        got.sort();
        if got != w {
            let mut missing = w.clone();
            for g in &got {
                if let Some(i) = missing.iter().position(|x| x == g) {
                    missing.remove(i);
                }
            }
            let mut extra = got.clone();
            for x in &w {
                if let Some(i) = extra.iter().position(|g| g == x) {
                    extra.remove(i);
                }
            }
            panic!("seed {seed}: missing {missing:?}, repeated or unexpected {extra:?}");
        }
    }
}

#[test]
fn positions_of_files_gone_for_long_are_forgotten() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.log");
    append(&p, "one\n");
    let o = FollowOptions {
        forget_after: std::time::Duration::from_millis(50),
        ..opts()
    };
    let mut f = Follower::new(vec![p.display().to_string()], o, vec![]);
    assert_eq!(drain(&mut f), ["one"]);
    assert_eq!(f.positions().len(), 1);
    std::fs::remove_file(&p).unwrap();
    drain(&mut f); // drained and let go
    assert_eq!(f.positions().len(), 1, "kept while recently seen");
    std::thread::sleep(std::time::Duration::from_millis(80));
    drain(&mut f);
    assert!(f.positions().is_empty());
}

#[test]
fn files_beginning_with_the_same_header_are_told_apart_by_more_lines() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.log");
    let b = d.path().join("b.log");
    let header = "#Software: Example HTTP Server 10.0\n#Fields: date time c-ip\n";
    append(&a, &format!("{header}2026-11-27 00:00:01 a\n"));
    append(&b, &format!("{header}2026-11-27 00:00:02 b\n"));
    let glob = d.path().join("*.log").display().to_string();
    // One line: both files begin with it, they are taken for one.
    let mut f = Follower::new(vec![glob.clone()], opts(), vec![]);
    assert_eq!(drain(&mut f).len(), 3);
    // Three lines: two files.
    let o = FollowOptions {
        fingerprint_lines: 3,
        fingerprint_bytes: 1024,
        ..opts()
    };
    let mut f = Follower::new(vec![glob], o, vec![]);
    let got = drain(&mut f);
    assert_eq!(got.len(), 6);
    assert_eq!(f.positions().len(), 2);
}
