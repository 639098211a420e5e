//! End-to-end test of the privacy self-check: a partition holding a raw address is withheld
//! (never published), counted under `self-check/10.1`, reported loudly without the value, and
//! the run exits 3 while every other partition is published. The leak is injected with the
//! debug-build test hook `LOGVEIL_TEST_LEAK=1` (a request for `/__leak__` keeps its raw client
//! address as the path).

mod common;
use common::*;

const LEAKER: &str = "198.51.100.77";

fn lines() -> String {
    let mut s = String::new();
    for (ip, hour, path) in [
        ("203.0.113.1", "10", "/dashboard"),
        ("203.0.113.2", "10", "/billing"),
        (LEAKER, "10", "/__leak__"),
        ("203.0.113.3", "11", "/dashboard"),
        ("203.0.113.4", "11", "/usage"),
    ] {
        s.push_str(&format!(
            "{ip} - - [15/Nov/2026:{hour}:00:00 +0000] \"GET {path} HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n"
        ));
    }
    s
}

#[test]
fn a_partition_with_a_raw_address_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.log");
    std::fs::write(&input, lines()).unwrap();
    let out = dir.path().join("out");
    let o = run(bin()
        .env("LOGVEIL_TEST_LEAK", "1")
        .args([
            "ingest",
            "--format",
            "combined",
            "--dev-key",
            "--summary-json",
            "--out",
        ])
        .arg(&out)
        .arg(&input));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("PRIVACY SELF-CHECK FAILED: access dt=2026-11-15 hour=10: column path holds a raw ipv4_address; 3 rows withheld"),
        "{err}"
    );
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["records_written"]["access"], 2, "{s}");
    assert_eq!(s["rules"]["access"]["self-check/10.1"], 3, "{s}");
    assert_eq!(s["self_check_withheld"][0]["column"], "path");
    assert_eq!(s["self_check_withheld"][0]["rows"], 3);

    // Hour 11 is published; hour 10 has no file and no manifest entry; nothing is staged.
    assert_eq!(parquet_rows(&out, "access"), 2);
    let files = files_under(&out);
    assert!(
        !files
            .iter()
            .any(|p| p.to_string_lossy().contains("hour=10") && is_parquet(p)),
        "{files:?}"
    );
    assert!(
        !files
            .iter()
            .any(|p| p.to_string_lossy().contains("_staging")
                && p.extension().is_some_and(|e| e == "tmp")),
        "{files:?}"
    );
    // The value itself is nowhere: not in the output, not in the messages.
    for (p, t) in all_output_text(&out) {
        assert!(!t.contains(LEAKER), "{}", p.display());
    }
    assert!(!err.contains(LEAKER) && !text(&o.stdout).contains(LEAKER));

    // Without the hook the same input is clean and fully published.
    let out2 = dir.path().join("out2");
    let o = ok(bin()
        .args([
            "ingest",
            "--format",
            "combined",
            "--dev-key",
            "--summary-json",
            "--out",
        ])
        .arg(&out2)
        .arg(&input));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["records_written"]["access"], 5, "{s}");
    assert!(s["self_check_withheld"].as_array().unwrap().is_empty());
}
