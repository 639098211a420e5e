//! Analysts' engines read what logveil writes: DuckDB, Polars and pyarrow (Python packages)
//! and `logveil query` read every dataset of the demo pipeline's output (rollups included)
//! with hive partitioning and the documented glob `<root>/<dataset>/**/*.parquet`, as docs/ANALYSTS.md shows (with the partition
//! columns typed: `dt` a date, `hour` an integer, which engines otherwise guess differently),
//! and agree with the Parquet footers on row counts and with each other on column types.
//! Without the packages the test says so in one line and passes, unless
//! `LOGVEIL_REQUIRE_INTEROP` is set (CI sets it, and installs them).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

#[cfg(not(feature = "query"))]
const ENGINES: [&str; 3] = ["duckdb", "polars", "pyarrow"];
/// `logveil query` (DataFusion) is one more engine.
#[cfg(feature = "query")]
const ENGINES: [&str; 4] = ["duckdb", "polars", "pyarrow", "logveil"];

/// Reads every dataset under the root with each engine; prints, per dataset and engine, the
/// row count and each column's type reduced to a family (int, float, string, bool,
/// timestamp, date).
const SCRIPT: &str = r#"
import json, os, sys
import duckdb, polars as pl, pyarrow as pa, pyarrow.dataset as pads

root = sys.argv[1]
def family(t):
    t = str(t).lower()
    for key, fam in (("dictionary<values=string", "string"), ("timestamp", "timestamp"),
                     ("datetime", "timestamp"), ("date", "date"), ("bool", "bool"),
                     ("float", "float"), ("double", "float"), ("int", "int"),
                     ("utf8", "string"), ("string", "string"), ("varchar", "string"),
                     ("list", "list")):
        if key in t:
            return fam
    return t

out = {}
for ds in sorted(os.listdir(root)):
    path = os.path.join(root, ds)
    if not os.path.isdir(path) or (ds.startswith("_") and ds != "_quarantine"):
        continue
    glob = f"{path}/**/*.parquet"
    r = {}
    con = duckdb.connect()
    rel = (f"read_parquet('{glob}', hive_partitioning = true, "
           "hive_types = {'dt': DATE, 'hour': INTEGER})")
    n = con.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]
    cols = {c[0]: family(c[1]) for c in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
    r["duckdb"] = {"rows": n, "columns": cols}
    lf = pl.scan_parquet(glob, hive_partitioning=True,
                         hive_schema={"dt": pl.Date, "hour": pl.Int32})
    n = lf.select(pl.len()).collect().item()
    cols = {k: family(v) for k, v in lf.collect_schema().items()}
    r["polars"] = {"rows": n, "columns": cols}
    hive = pads.partitioning(pa.schema([("dt", pa.date32()), ("hour", pa.int32())]),
                             flavor="hive")
    d = pads.dataset(path, format="parquet", partitioning=hive,
                     exclude_invalid_files=True, ignore_prefixes=["_", "."])
    cols = {f.name: family(f.type) for f in d.schema}
    r["pyarrow"] = {"rows": d.count_rows(), "columns": cols}
    out[ds] = r
print(json.dumps(out))
"#;

/// What `logveil query` sees of every table: its row count and its columns' type families
/// (from `information_schema.columns`), in the shape the Python script prints.
#[cfg(feature = "query")]
fn logveil_query_reads(root: &Path) -> BTreeMap<String, serde_json::Value> {
    fn family(t: &str) -> String {
        let t = t.to_lowercase();
        // `Dictionary(Int32, Utf8)`: the values' type is what a reader sees.
        let t = match t.strip_prefix("dictionary(") {
            Some(rest) => rest.split_once(", ").map_or(rest, |(_, v)| v).to_string(),
            None => t,
        };
        for (key, fam) in [
            ("timestamp", "timestamp"),
            ("date", "date"),
            ("bool", "bool"),
            ("float", "float"),
            ("int", "int"),
            ("utf8", "string"),
            ("list", "list"),
        ] {
            if t.contains(key) {
                return fam.into();
            }
        }
        t
    }
    let query = |sql: &str| -> Vec<serde_json::Value> {
        let o = ok(bin()
            .args([
                "query",
                "--format",
                "json",
                "--now",
                "2026-11-28T12:00:00Z",
                "--root",
            ])
            .arg(root)
            .arg(sql));
        text(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut out: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let cols = query(
        "SELECT table_name AS t, column_name AS c, data_type AS ty FROM information_schema.columns \
         WHERE table_schema = 'public'",
    );
    for r in &cols {
        let t = r["t"].as_str().unwrap();
        out.entry(t.into())
            .or_insert_with(|| serde_json::json!({"rows": 0, "columns": {}}))["columns"]
            [r["c"].as_str().unwrap()] = family(r["ty"].as_str().unwrap()).into();
    }
    let counts = out
        .keys()
        .map(|t| format!("SELECT '{t}' AS t, count(*) AS n FROM \"{t}\""))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    for r in query(&counts) {
        out.get_mut(r["t"].as_str().unwrap()).unwrap()["rows"] = r["n"].clone();
    }
    out
}

fn python_has_engines() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import duckdb, polars, pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("LOGVEIL_REQUIRE_INTEROP").is_none(),
            "duckdb, polars and pyarrow are required (LOGVEIL_REQUIRE_INTEROP) but not importable"
        );
        eprintln!(
            "skipping: python3 cannot import duckdb, polars and pyarrow (pip install duckdb polars pyarrow)"
        );
    }
    ok
}

/// The columns a Parquet file of the dataset declares.
fn parquet_columns(root: &Path, dataset: &str) -> Vec<String> {
    let file = files_under(&root.join(dataset))
        .into_iter()
        .find(|p| is_parquet(p))
        .expect("a Parquet file");
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(file).unwrap())
            .unwrap();
    use parquet::file::reader::FileReader;
    reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect()
}

#[test]
fn every_engine_reads_every_dataset_alike() {
    if !python_has_engines() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    ok(bin()
        .current_dir(workspace_root())
        .args([
            "run",
            "pipelines/demo.toml",
            "--once",
            "--no-progress",
            "--out",
        ])
        .arg(&out));
    let o = run(std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(&out));
    assert!(
        o.status.success(),
        "the engines failed: {}",
        text(&o.stderr)
    );
    #[allow(unused_mut)]
    let mut seen: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
        serde_json::from_slice(&o.stdout).unwrap();
    #[cfg(feature = "query")]
    for (ds, by) in logveil_query_reads(&out) {
        seen.get_mut(&ds)
            .unwrap_or_else(|| panic!("logveil query has a table {ds} the engines lack"))
            .insert("logveil".into(), by);
    }
    let expected = [
        "_quarantine",
        "access",
        "app",
        "app_events_hourly",
        "page_views_daily",
        "proxy_usage",
        "session",
        "syslog",
    ];
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        expected,
        "datasets"
    );
    for (ds, by_engine) in &seen {
        let rows = parquet_rows(&out, ds);
        assert!(rows > 0, "{ds}: no rows");
        let declared = parquet_columns(&out, ds);
        let reference = &by_engine["duckdb"]["columns"];
        for engine in ENGINES {
            let r = &by_engine[engine];
            assert_eq!(r["rows"].as_u64(), Some(rows), "{ds}: {engine} row count");
            let cols = r["columns"].as_object().unwrap();
            for c in declared.iter().map(String::as_str).chain(["dt", "hour"]) {
                assert!(
                    cols.contains_key(c),
                    "{ds}: {engine} lacks column {c}: {cols:?}"
                );
            }
            assert_eq!(cols["dt"], "date", "{ds}: {engine} dt");
            assert_eq!(cols["hour"], "int", "{ds}: {engine} hour");
            // The file's own columns have the same type family in every engine.
            for c in &declared {
                assert_eq!(
                    cols[c.as_str()],
                    reference[c.as_str()],
                    "{ds}.{c}: {engine} and duckdb disagree on its type"
                );
            }
        }
    }
}
