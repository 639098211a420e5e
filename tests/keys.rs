//! End-to-end tests of key epochs and crypto-shredding: `keygen`, `keys rotate|list|shred`,
//! legal holds blocking a shred, the hash-chained audit log, and what ingest does with events
//! whose epoch key was shredded. Time is controlled with the hidden `--now` flags.

use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};

mod common;
use common::*;

/// The same client in October, November and December 2026.
const LINES: &str = "\
198.51.100.23 - - [15/Oct/2026:10:00:00 +0000] \"GET /dashboard HTTP/1.1\" 200 5 \"-\" \"curl/8\"
198.51.100.23 - - [15/Nov/2026:10:00:00 +0000] \"GET /dashboard HTTP/1.1\" 200 5 \"-\" \"curl/8\"
198.51.100.23 - - [02/Dec/2026:10:00:00 +0000] \"GET /dashboard HTTP/1.1\" 200 5 \"-\" \"curl/8\"
";

fn ingest(keys: &Path, input: &Path, out: &Path) -> serde_json::Value {
    let o = ok(bin()
        .args(["ingest", "--format", "combined", "--summary-json", "--keys"])
        .arg(keys)
        // The events span October to December: judge them as of December, kept a year.
        .args(["--now", "2026-12-03T00:00:00Z", "--retention-days", "365"])
        .arg("--out")
        .arg(out)
        .arg(input));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// (dt, key_id column, ip_pseudonym column, footer key id) per access file, sorted by dt.
fn rows(out: &Path) -> Vec<(String, String, String, String)> {
    let mut v = Vec::new();
    for p in files_under(&out.join("access")) {
        if !is_parquet(&p) {
            continue;
        }
        let dt = p
            .components()
            .find_map(|c| {
                c.as_os_str()
                    .to_str()?
                    .strip_prefix("dt=")
                    .map(String::from)
            })
            .unwrap();
        let r = SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap();
        let footer = r
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .iter()
            .find(|kv| kv.key == "logveil.key_id")
            .and_then(|kv| kv.value.clone())
            .unwrap();
        let dir = p.parent().unwrap().to_path_buf();
        let one = |col: &str| {
            let vals = column_values_in(&dir, col);
            assert_eq!(vals.len(), 1);
            vals[0].clone()
        };
        v.push((dt, one("key_id"), one("ip_pseudonym"), footer));
    }
    v.sort();
    v
}

fn column_values_in(dir: &Path, column: &str) -> Vec<String> {
    use parquet::record::Field;
    let mut out = Vec::new();
    for p in files_under(dir).iter().filter(|p| is_parquet(p)) {
        let r = SerializedFileReader::new(std::fs::File::open(p).unwrap()).unwrap();
        for row in r.get_row_iter(None).unwrap() {
            for (name, f) in row.unwrap().get_column_iter() {
                if name == column
                    && let Field::Str(s) = f
                {
                    out.push(s.clone());
                }
            }
        }
    }
    out
}

fn key_hexes(keys: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(keys).unwrap()).unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["key"].as_str().map(String::from))
        .collect()
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    ok(bin().args(["keygen", "--out"]).arg(&keys));
    for from in ["2026-11-01", "2026-12-01T00:00:00Z"] {
        ok(bin().args(["keys", "rotate", "--keys"]).arg(&keys).args([
            "--from",
            from,
            "--now",
            "2026-10-20T09:30:00Z",
        ]));
    }
    let input = dir.path().join("access.log");
    std::fs::write(&input, LINES).unwrap();
    (dir, keys, input)
}

#[test]
fn events_use_the_key_of_their_epoch() {
    let (dir, keys, input) = setup();
    let out = dir.path().join("out");
    let s = ingest(&keys, &input, &out);
    assert_eq!(s["records_written"]["access"], 3);
    let r = rows(&out);
    assert_eq!(r.len(), 3);
    let ids: Vec<&str> = r.iter().map(|x| x.1.as_str()).collect();
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    for (dt, key_id, _, footer) in &r {
        assert_eq!(key_id, footer, "footer of {dt}");
    }
    let ps: Vec<&str> = r.iter().map(|x| x.2.as_str()).collect();
    assert!(ps[0] != ps[1] && ps[1] != ps[2], "one pseudonym per epoch");
    assert_eq!(s["key_ids"].as_array().unwrap().len(), 3);
    // Each manifest names its partition's key.
    for p in files_under(&out.join("access")) {
        if p.ends_with("_manifest.json") {
            let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            assert_eq!(m["key_ids"].as_array().unwrap().len(), 1, "{}", p.display());
        }
    }

    let list = ok(bin().args(["keys", "list", "--json", "--keys"]).arg(&keys));
    let l: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let k = l["keys"].as_array().unwrap();
    assert_eq!(k.len(), 3);
    assert_eq!(k[0]["from"], "-inf");
    assert_eq!(k[1]["from"], "2026-11-01T00:00:00Z");
    assert_eq!(k[1]["to"], "2026-12-01T00:00:00Z");
    assert_eq!(k[2]["to"], "+inf");
    assert_eq!(l["audit"], "3 entries, chain intact");

    // Rotation into the past, or not on a whole hour, is refused.
    for (from, why) in [
        ("2026-10-01", "in the past"),
        ("2027-01-01T00:30:00Z", "whole hour"),
    ] {
        let o = run(bin().args(["keys", "rotate", "--keys"]).arg(&keys).args([
            "--from",
            from,
            "--now",
            "2026-12-10T00:00:00Z",
        ]));
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o.stderr).contains(why), "{}", text(&o.stderr));
    }
}

#[test]
fn shredding_is_blocked_by_holds_then_makes_old_epochs_unlinkable() {
    let (dir, keys, input) = setup();
    let out = dir.path().join("out");
    ingest(&keys, &input, &out);
    let before = rows(&out);
    let hexes = key_hexes(&keys);
    assert_eq!(hexes.len(), 3);

    let o = ok(bin().args(["retention", "hold", "--root"]).arg(&out).args([
        "--dataset",
        "access",
        "--from",
        "2026-11-10",
        "--to",
        "2026-11-20",
        "--reason",
        "case 1",
        "--owner",
        "legal",
    ]));
    assert_eq!(text(&o.stdout).trim(), "h-1");
    let shred = |extra: &[&str]| {
        run(bin()
            .args(["keys", "shred", "--keys"])
            .arg(&keys)
            .args([
                "--before",
                "2026-12-01",
                "--now",
                "2026-12-05T00:00:00Z",
                "--root",
            ])
            .arg(&out)
            .args(extra))
    };
    let o = shred(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("h-1") && err.contains("case 1"), "{err}");
    assert_eq!(key_hexes(&keys), hexes, "a refused shred changes nothing");

    ok(bin()
        .args(["retention", "release", "--root"])
        .arg(&out)
        .args(["--id", "h-1"]));
    let root_audit = text(&std::fs::read(out.join("_retention/audit.jsonl")).unwrap());
    assert_eq!(
        root_audit.matches("\"hold_placed\"").count(),
        1,
        "{root_audit}"
    );
    assert_eq!(
        root_audit.matches("\"hold_released\"").count(),
        1,
        "{root_audit}"
    );
    let holds = ok(bin()
        .args(["retention", "holds", "--json", "--root"])
        .arg(&out));
    let h: serde_json::Value = serde_json::from_slice(&holds.stdout).unwrap();
    assert_eq!(h[0]["reason"], "case 1");
    assert_eq!(h[0]["owner"], "legal");
    assert!(h[0]["released_at"].is_string());
    let o = shred(&["--dry-run"]);
    assert!(o.status.success());
    assert_eq!(text(&o.stdout).matches("would shred").count(), 2);
    assert_eq!(key_hexes(&keys), hexes, "a dry run changes nothing");

    let o = shred(&[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ring_text = text(&std::fs::read(&keys).unwrap());
    for h in &hexes[..2] {
        assert!(
            !ring_text.contains(h.as_str()),
            "shredded material still in the ring"
        );
    }
    assert!(ring_text.contains(hexes[2].as_str()));
    let audit = text(&std::fs::read(dir.path().join("keys.audit.jsonl")).unwrap());
    assert_eq!(audit.matches("\"key_shredded\"").count(), 2);
    for h in &hexes {
        assert!(!audit.contains(&h[..16]), "key material in the audit log");
    }
    let list = ok(bin().args(["keys", "list", "--keys"]).arg(&keys));
    let l = text(&list.stdout);
    assert_eq!(l.matches("shredded 2026-12-05T00:00:00Z").count(), 2, "{l}");
    assert!(l.contains("5 entries, chain intact"), "{l}");
    // Shredding again finds nothing to do.
    let o = shred(&[]);
    assert!(o.status.success());
    assert!(text(&o.stderr).contains("nothing to shred"));

    // Re-ingesting: events of shredded epochs are dropped and counted, never pseudonymised
    // under another key; December's pseudonym is unchanged.
    let out2 = dir.path().join("out2");
    let s = ingest(&keys, &input, &out2);
    assert_eq!(s["records_written"]["access"], 1);
    assert_eq!(s["dropped"]["key_shredded"], 2);
    assert_eq!(s["rules"]["access"]["key-shredded/9.4"], 2);
    let after = rows(&out2);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].2, before[2].2);
    let old: Vec<&str> = before[..2].iter().map(|x| x.2.as_str()).collect();
    for (_, t) in all_output_text(&out2) {
        for p in &old {
            assert!(!t.contains(p), "an old pseudonym was recomputed");
        }
    }
}

#[test]
fn a_tampered_audit_log_stops_key_changes() {
    let (dir, keys, _) = setup();
    let audit = dir.path().join("keys.audit.jsonl");
    let t = text(&std::fs::read(&audit).unwrap());
    std::fs::write(
        &audit,
        t.replacen("scheduled rotation", "nothing to see", 1),
    )
    .unwrap();
    let l = ok(bin().args(["keys", "list", "--keys"]).arg(&keys));
    assert!(text(&l.stdout).contains("BROKEN"), "{}", text(&l.stdout));
    let o = run(bin().args(["keys", "rotate", "--keys"]).arg(&keys).args([
        "--from",
        "2027-01-01",
        "--now",
        "2026-12-10T00:00:00Z",
    ]));
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("line 2"), "{}", text(&o.stderr));
}

#[test]
fn a_crash_between_ring_and_audit_log_is_repaired() {
    let (dir, keys, _) = setup();
    let audit = dir.path().join("keys.audit.jsonl");
    // As if the last rotation's audit entry was never written.
    let t = text(&std::fs::read(&audit).unwrap());
    let kept: Vec<&str> = t.lines().take(2).collect();
    std::fs::write(&audit, format!("{}\n", kept.join("\n"))).unwrap();
    ok(bin().args(["keys", "rotate", "--keys"]).arg(&keys).args([
        "--from",
        "2027-01-01",
        "--now",
        "2026-12-10T00:00:00Z",
    ]));
    let t = text(&std::fs::read(&audit).unwrap());
    assert_eq!(t.lines().count(), 4);
    assert_eq!(t.matches("\"recovered\":true").count(), 1, "{t}");
    let l = ok(bin().args(["keys", "list", "--keys"]).arg(&keys));
    assert!(text(&l.stdout).contains("4 entries, chain intact"));
}

#[test]
fn hmac_sha256_rings_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    ok(bin()
        .args(["keygen", "--algorithm", "hmac-sha256", "--out"])
        .arg(&keys));
    let input = dir.path().join("access.log");
    std::fs::write(&input, LINES).unwrap();
    let out = dir.path().join("out");
    let s = ingest(&keys, &input, &out);
    assert_eq!(s["records_written"]["access"], 3);
    let r = rows(&out);
    assert!(r.iter().all(|x| x.2 == r[0].2 && x.2.len() == 32));
    let l = ok(bin().args(["keys", "list", "--keys"]).arg(&keys));
    assert!(text(&l.stdout).contains("hmac-sha256"));
}
