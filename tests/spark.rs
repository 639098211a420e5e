//! Spark reads what logveil writes: the demo pipeline's output on local disk, read with
//! PySpark (local mode) the way docs/ANALYSTS.md shows (partition discovery with inference
//! off, `dt` cast to a date, `hour` to an integer, `_`-prefixed paths skipped), agrees with
//! the Parquet footers on rows and days. Without PySpark (and Java) the test says so in one
//! line and passes, unless `LOGVEIL_REQUIRE_SPARK` is set (CI sets it and installs PySpark).

mod common;

use std::process::Command;

use common::*;

const SCRIPT: &str = r#"
import json, sys
from pyspark.sql import SparkSession, functions as F
spark = (SparkSession.builder.master("local[2]").appName("logveil-interop")
         .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
out = {}
for ds in sys.argv[2:]:
    df = (spark.read.parquet(f"{sys.argv[1]}/{ds}")
          .withColumn("dt", F.to_date("dt"))
          .withColumn("hour", F.col("hour").cast("int")))
    types = dict(df.dtypes)
    days = [str(r[0]) for r in df.select("dt").distinct().orderBy("dt").collect()]
    hours = df.where(F.col("hour").isNull()).count()
    out[ds] = {"rows": df.count(), "days": days, "null_hours": hours,
               "dt": types["dt"], "hour": types["hour"], "ts": types.get("ts")}
spark.stop()
print(json.dumps(out))
"#;

#[test]
fn spark_reads_the_demo_output() {
    let have = Command::new("python3")
        .args(["-c", "import pyspark"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("LOGVEIL_REQUIRE_SPARK").is_none(),
            "LOGVEIL_REQUIRE_SPARK is set but PySpark cannot be imported"
        );
        eprintln!(
            "skipping spark_reads_the_demo_output: PySpark not installed (pip install pyspark)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    ok(bin()
        .current_dir(workspace_root())
        .args([
            "run",
            "pipelines/demo.toml",
            "--once",
            "--no-progress",
            "--out",
        ])
        .arg(&root));
    let datasets = ["access", "session", "syslog"];
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(&root)
        .args(datasets)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    for ds in datasets {
        let r = &v[ds];
        assert_eq!(r["rows"].as_u64().unwrap(), parquet_rows(&root, ds), "{ds}");
        assert!(r["rows"].as_u64().unwrap() > 0, "{ds}");
        assert_eq!(r["days"], serde_json::json!(["2026-11-27"]), "{ds}");
        assert_eq!(r["null_hours"], 0, "{ds}");
        assert_eq!(r["dt"], "date", "{ds}");
        assert_eq!(r["hour"], "int", "{ds}");
        assert_eq!(r["ts"], "timestamp", "{ds}");
    }
}
