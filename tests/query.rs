//! `logveil query`: SQL over the datasets, with expired partitions invisible at the query's
//! `now` (a controlled clock) even before the sweep deletes them; output formats; mistakes
//! in the statement are usage errors.
#![cfg(feature = "query")]

mod common;

use std::path::Path;

use common::*;

fn line(hour: u32, i: usize) -> String {
    format!(
        "198.51.100.{} - - [27/Nov/2026:{hour:02}:{:02}:00 +0000] \"GET /dashboard HTTP/1.1\" 200 {i} \"-\" \"Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/118.0\"\n",
        i % 250,
        i % 60
    )
}

/// 30 requests at 00:xx and 20 at 20:xx on 27 November 2026, kept 2 days: hour 00 expires
/// on 29 November at 01:00, hour 20 at 21:00.
fn ingest(dir: &Path) -> std::path::PathBuf {
    let log: String = (0..30)
        .map(|i| line(0, i))
        .chain((0..20).map(|i| line(20, i)))
        .collect();
    let input = dir.join("access.log");
    std::fs::write(&input, log).unwrap();
    let root = dir.join("data");
    ok(bin()
        .args([
            "ingest",
            "--format",
            "combined",
            "--dev-key",
            "--retention-days",
            "2",
            "--no-progress",
            "--out",
        ])
        .arg(&root)
        .arg(&input));
    root
}

fn query(root: &Path, now: &str, sql: &str) -> String {
    let o = ok(bin()
        .args(["query", "--format", "csv", "--now", now, "--root"])
        .arg(root)
        .arg(sql));
    text(&o.stdout)
}

#[test]
fn an_expired_partition_is_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let root = ingest(dir.path());
    let sql = "SELECT hour, count(*) AS n FROM access GROUP BY hour ORDER BY hour";
    assert_eq!(
        query(&root, "2026-11-28T12:00:00Z", sql),
        "hour,n\n0,30\n20,20\n"
    );
    // Hour 00 has expired, hour 20 not yet: the sweep has not run, the files are there.
    assert!(root.join("access/dt=2026-11-27/hour=00").exists());
    assert_eq!(query(&root, "2026-11-29T12:00:00Z", sql), "hour,n\n20,20\n");
    // Not through a filter on other columns, an aggregate or a join either.
    let all = "SELECT count(*) AS n FROM access WHERE bytes_sent < 100 OR bytes_sent IS NULL";
    assert_eq!(query(&root, "2026-11-29T12:00:00Z", all), "n\n20\n");
    let join = "SELECT count(*) AS n FROM access a JOIN access b ON a.ip_pseudonym = b.ip_pseudonym AND a.hour = 0";
    assert_eq!(query(&root, "2026-11-29T12:00:00Z", join), "n\n0\n");
    // One second before hour 20's expiry it is there; at it, it is gone.
    assert_eq!(query(&root, "2026-11-29T20:59:59Z", sql), "hour,n\n20,20\n");
    assert_eq!(query(&root, "2026-11-29T21:00:00Z", sql), "hour,n\n");

    // The plan shows the hidden partition as a filter on the partition columns.
    let o = ok(bin()
        .args([
            "query",
            "--explain",
            "--now",
            "2026-11-29T12:00:00Z",
            "--root",
        ])
        .arg(&root)
        .arg("SELECT count(*) FROM access"));
    let plan = text(&o.stdout);
    assert!(plan.contains("dt") && plan.contains("hour"), "{plan}");
    assert!(
        text(&o.stderr).contains("access: 1 expired partition(s) not shown"),
        "{}",
        text(&o.stderr)
    );

    // Once the sweep has deleted every partition, the table is there and empty.
    ok(bin()
        .args([
            "retention",
            "sweep",
            "--allow-future-now",
            "--now",
            "2026-11-29T21:00:00Z",
            "--root",
        ])
        .arg(&root));
    assert!(!root.join("access/dt=2026-11-27").exists());
    assert_eq!(query(&root, "2026-11-29T21:00:00Z", sql), "hour,n\n");
}

#[test]
fn filters_on_single_hours_before_ten_find_their_partition() {
    // Directories are `hour=00`; a filter `hour = 0` must not become the listing prefix
    // `hour=0`, which no directory has.
    let dir = tempfile::tempdir().unwrap();
    let root = ingest(dir.path());
    let now = "2026-11-28T12:00:00Z";
    for sql in [
        "SELECT count(*) AS n FROM access WHERE hour = 0",
        "SELECT count(*) AS n FROM access WHERE dt = DATE '2026-11-27' AND hour = 0",
        "SELECT count(*) AS n FROM access WHERE hour IN (0) AND dt >= DATE '2026-11-27'",
    ] {
        assert_eq!(query(&root, now, sql), "n\n30\n", "{sql}");
    }
    assert_eq!(
        query(
            &root,
            now,
            "SELECT count(*) AS n FROM access WHERE hour < 10"
        ),
        "n\n30\n"
    );
}

#[test]
fn a_partition_the_sweep_is_deleting_is_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let root = ingest(dir.path());
    // A sweep that stopped after its tombstone (the intent to delete hour 00) was written.
    let tomb = root.join("_retention/tombstones/access/dt=2026-11-27/hour=00.json");
    std::fs::create_dir_all(tomb.parent().unwrap()).unwrap();
    std::fs::write(&tomb, "{}").unwrap();
    let sql = "SELECT hour, count(*) AS n FROM access GROUP BY hour ORDER BY hour";
    assert_eq!(query(&root, "2026-11-28T12:00:00Z", sql), "hour,n\n20,20\n");
}

#[test]
fn a_failed_query_leaves_the_previous_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = ingest(dir.path());
    let out = dir.path().join("result.csv");
    let q = |sql: &str| {
        run(bin()
            .args([
                "query",
                "--format",
                "csv",
                "--now",
                "2026-11-28T12:00:00Z",
                "--output",
            ])
            .arg(&out)
            .arg("--root")
            .arg(&root)
            .arg(sql))
    };
    assert!(q("SELECT count(*) AS n FROM access").status.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "n\n50\n");
    // Fails while reading (a cast of every path to a number), not while planning.
    let o = q("SELECT CAST(path AS INT) AS p FROM access");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "n\n50\n");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("logveil-tmp")),
        "{names:?}"
    );
}

#[test]
fn every_dataset_is_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let root = ingest(dir.path());
    let t = query(
        &root,
        "2026-11-28T12:00:00Z",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    assert_eq!(t, "table_name\n_quarantine\naccess\n");
    // Nothing was quarantined: the quarantine has no file, and is an empty table.
    let sql = "SELECT count(*) AS n FROM \"_quarantine\"";
    assert_eq!(query(&root, "2026-11-28T12:00:00Z", sql), "n\n0\n");
}

#[test]
fn results_come_as_a_table_csv_json_or_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let root = ingest(dir.path());
    let sql = "SELECT dt, hour, count(*) AS n FROM access GROUP BY dt, hour ORDER BY hour";
    let now = "2026-11-28T12:00:00Z";
    let t = ok(bin()
        .args(["query", "--now", now, "--root"])
        .arg(&root)
        .arg(sql));
    let t = text(&t.stdout);
    assert!(
        t.contains("| dt") && t.contains("2026-11-27") && t.contains("| 30"),
        "{t}"
    );
    assert_eq!(
        query(&root, now, sql),
        "dt,hour,n\n2026-11-27,0,30\n2026-11-27,20,20\n"
    );
    let j = ok(bin()
        .args(["query", "--format", "json", "--now", now, "--root"])
        .arg(&root)
        .arg(sql));
    let rows: Vec<serde_json::Value> = text(&j.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["n"], 20);
    assert_eq!(rows[1]["dt"], "2026-11-27");
    let out = dir.path().join("result.parquet");
    ok(bin()
        .args(["query", "--format", "parquet", "--now", now, "--output"])
        .arg(&out)
        .arg("--root")
        .arg(&root)
        .arg(sql));
    let r = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&out).unwrap())
        .unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(r.metadata().file_metadata().num_rows(), 2);
    // Parquet needs a file.
    let o = run(bin()
        .args(["query", "--format", "parquet", "--root"])
        .arg(&root)
        .arg(sql));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn mistakes_in_the_statement_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = ingest(dir.path());
    for sql in [
        "SELECT nope FROM access",
        "SELECT * FROM nothing_here",
        "SELEC 1",
    ] {
        let o = run(bin().args(["query", "--root"]).arg(&root).arg(sql));
        assert_eq!(o.status.code(), Some(2), "{sql}: {}", text(&o.stderr));
        assert!(!text(&o.stderr).contains("panicked"), "{}", text(&o.stderr));
    }
}

#[test]
fn statements_that_write_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = ingest(dir.path());
    let target = dir.path().join("copied.csv");
    for sql in [
        format!("COPY (SELECT * FROM access) TO '{}'", target.display()),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "INSERT INTO access SELECT * FROM access".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ] {
        let o = run(bin().args(["query", "--root"]).arg(&root).arg(&sql));
        assert_eq!(o.status.code(), Some(2), "{sql}: {}", text(&o.stderr));
    }
    assert!(!target.exists());
}

#[test]
fn an_odd_root_path_and_a_broken_dataset_do_not_stop_queries() {
    let dir = tempfile::tempdir().unwrap();
    // Glob characters in the path are taken literally.
    let odd = dir.path().join("logs [copy] *");
    std::fs::create_dir_all(&odd).unwrap();
    let root = ingest(&odd);
    // A dataset whose marker cannot be read is left out, with a warning; the others work.
    std::fs::create_dir_all(root.join("broken")).unwrap();
    std::fs::write(root.join("broken/_dataset.json"), "{not json").unwrap();
    let o = ok(bin()
        .args([
            "query",
            "--format",
            "csv",
            "--now",
            "2026-11-28T12:00:00Z",
            "--root",
        ])
        .arg(&root)
        .arg("SELECT count(*) AS n FROM access"));
    assert_eq!(text(&o.stdout), "n\n50\n");
    assert!(
        text(&o.stderr).contains("broken: not a table"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_root_with_hundreds_of_partitions_is_judged_and_read() {
    // More partitions than tokio's cooperative budget (128): judging them once spun forever.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("access.log");
    ok(bin()
        .args([
            "generate",
            "--kind",
            "combined",
            "--lines",
            "3000",
            "--span-hours",
            "300",
            "--out",
        ])
        .arg(&input));
    let root = dir.path().join("data");
    ok(bin()
        .env("LOGVEIL_NOW", "2026-12-10T00:00:00Z")
        .args([
            "ingest",
            "--format",
            "combined",
            "--dev-key",
            "--no-progress",
            "--out",
        ])
        .arg(&root)
        .arg(&input));
    let rows = parquet_rows(&root, "access");
    let hours = query(
        &root,
        "2026-12-10T00:00:00Z",
        "SELECT count(DISTINCT (dt, hour)) AS partitions, count(*) AS n FROM access",
    );
    assert_eq!(hours, format!("partitions,n\n300,{rows}\n"));
}
