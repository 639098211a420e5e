//! Rows in, Parquet and manifests out: partitioning, file visibility, manifest contents.

use arrow_array::{Array, StringArray, TimestampMicrosecondArray};
use logveil_model::time::parse_rfc3339;
use logveil_model::{AccessRow, DatasetKind, HourKey, UaFields};
use logveil_sink::manifest::Manifest;
use logveil_sink::{
    AccessBuilder, DatasetSpec, PartitionWriter, RunInfo, SinkConfig, Storage, commit,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn row(ts: i64, path: &str) -> AccessRow<'_> {
    AccessRow {
        ts_micros: ts,
        ip_pseudonym: "0123456789abcdef0123456789abcdef",
        ip_network: "192.0.2.0/24",
        method: Some("GET"),
        path: Some(path),
        protocol: Some("HTTP/1.1"),
        status: Some(200),
        bytes_sent: Some(10),
        referrer_host: None,
        ua: UaFields {
            browser_family: "Chrome",
            browser_major: Some(1),
            os_family: "Linux",
            os_major: None,
            device_class: "desktop",
        },
        key_id: "dev-insecure",
        request_time_us: None,
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn partitions_files_and_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path()).unwrap();
    let spec = DatasetSpec::with_defaults(DatasetKind::Access);
    let cfg = SinkConfig {
        batch_rows: 3,
        max_file_rows: 5,
        max_open_partitions: 1,
        ..SinkConfig::default()
    };
    let mut w = PartitionWriter::<AccessBuilder>::new(
        storage.clone(),
        spec.clone(),
        cfg,
        "run1-w0".into(),
        vec![],
    );
    let h10 = parse_rfc3339(b"2026-11-27T10:00:00Z").unwrap();
    let h11 = parse_rfc3339(b"2026-11-27T11:59:59Z").unwrap();
    // Interleave two hours with only one open partition allowed: forces evictions.
    for i in 0..12 {
        w.push(&row(h10 + i, "/a")).unwrap();
        w.push(&row(h11 - i, "/b")).unwrap();
    }
    let files = w.finish().unwrap();
    assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 24);
    // Finished but unpublished files are invisible.
    assert!(
        files_under(dir.path())
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".parquet"))
    );
    let run = RunInfo {
        run_id: "run1".into(),
        key_epochs: vec![(i64::MIN, "dev-insecure".into())],
        dev_key: true,
        now_micros: h11,
    };
    let report = commit(&storage, &spec, &files, &run).unwrap();
    assert_eq!(report.partitions, 2);
    assert!(report.expired.is_empty());

    let all = files_under(dir.path());
    assert!(
        all.iter()
            .all(|p| !p.to_string_lossy().contains("_staging/")),
        "{all:?}"
    );
    let mut total = 0;
    for p in all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
    {
        let s = p.to_string_lossy();
        assert!(
            s.contains("/access/dt=2026-11-27/hour=10/")
                || s.contains("/access/dt=2026-11-27/hour=11/"),
            "{s}"
        );
        let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(p).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in r {
            let b = b.unwrap();
            total += b.num_rows();
            let ts = b
                .column(0)
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap();
            let path = b
                .column_by_name("path")
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            for i in 0..b.num_rows() {
                let want = if s.contains("hour=10") { "/a" } else { "/b" };
                assert_eq!(path.value(i), want);
                assert!(ts.value(i) >= h10 && ts.value(i) <= h11);
            }
            assert_eq!(ts.timezone(), Some("UTC"));
        }
    }
    assert_eq!(total, 24);

    let m: Manifest = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join("access/dt=2026-11-27/hour=10/_manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(m.rows, 12);
    assert_eq!(m.expires_at, "2026-12-27T11:00:00Z");
    assert!(m.dev_key);
    for f in &m.files {
        let bytes = std::fs::read(
            dir.path()
                .join("access/dt=2026-11-27/hour=10")
                .join(&f.name),
        )
        .unwrap();
        assert_eq!(bytes.len() as u64, f.bytes);
        assert_eq!(blake3::hash(&bytes).to_hex().to_string(), f.blake3);
    }

    // A second run into the same partition appends to the manifest.
    let mut w = PartitionWriter::<AccessBuilder>::new(
        storage.clone(),
        spec.clone(),
        SinkConfig::default(),
        "run2-w0".into(),
        vec![],
    );
    w.push(&row(h10 + 99, "/c")).unwrap();
    let files2 = w.finish().unwrap();
    commit(
        &storage,
        &spec,
        &files2,
        &RunInfo {
            run_id: "run2".into(),
            ..run.clone()
        },
    )
    .unwrap();
    let m2: Manifest = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join("access/dt=2026-11-27/hour=10/_manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(m2.rows, 13);
    assert_eq!(m2.files.len(), m.files.len() + 1);

    // Late data: a partition expired at the run's clock, or tombstoned by a retention sweep,
    // is refused whole; its files are discarded and nothing about it changes.
    let before = files_under(dir.path());
    let late_run = RunInfo {
        run_id: "run3".into(),
        now_micros: parse_rfc3339(b"2026-12-27T11:00:00Z").unwrap(),
        ..run.clone()
    };
    let mut w = PartitionWriter::<AccessBuilder>::new(
        storage.clone(),
        spec.clone(),
        SinkConfig::default(),
        "run3-w0".into(),
        vec![],
    );
    w.push(&row(h10 + 5, "/late")).unwrap();
    w.push(&row(h11, "/ok")).unwrap();
    let files3 = w.finish().unwrap();
    storage
        .put(
            &logveil_sink::manifest::tombstone_path("access", HourKey::of_micros(h11)),
            bytes::Bytes::from_static(b"{}"),
        )
        .unwrap();
    let report = commit(&storage, &spec, &files3, &late_run).unwrap();
    assert_eq!(report.partitions, 0);
    assert_eq!(
        report.expired,
        vec![(HourKey::of_micros(h10), 1), (HourKey::of_micros(h11), 1)]
    );
    let mut after = files_under(dir.path());
    after.retain(|p| !p.to_string_lossy().contains("_retention"));
    assert_eq!(before, after);
}

/// On object stores a finished upload is visible at once: a refused partition's files must
/// be deleted, not merely left unrecorded.
#[test]
fn object_store_commit_removes_refused_files() {
    let storage = Storage::memory();
    let spec = DatasetSpec::with_defaults(DatasetKind::Access);
    let h10 = parse_rfc3339(b"2026-11-27T10:00:00Z").unwrap();
    let h11 = parse_rfc3339(b"2026-11-27T11:00:00Z").unwrap();
    let mut w = PartitionWriter::<AccessBuilder>::new(
        storage.clone(),
        spec.clone(),
        SinkConfig::default(),
        "run1-w0".into(),
        vec![],
    );
    w.push(&row(h10, "/a")).unwrap();
    w.push(&row(h11, "/b")).unwrap();
    let files = w.finish().unwrap();
    storage
        .put(
            &logveil_sink::manifest::tombstone_path("access", HourKey::of_micros(h11)),
            bytes::Bytes::from_static(b"{}"),
        )
        .unwrap();
    let run = RunInfo {
        run_id: "run1".into(),
        key_epochs: vec![(i64::MIN, "k".into())],
        dev_key: false,
        now_micros: h11,
    };
    let report = commit(&storage, &spec, &files, &run).unwrap();
    assert_eq!(report.partitions, 1);
    assert_eq!(report.expired, vec![(HourKey::of_micros(h11), 1)]);
    let under = |p: &str| {
        storage
            .list(&object_store::path::Path::from(p))
            .unwrap()
            .len()
    };
    assert_eq!(
        under("access/dt=2026-11-27/hour=10"),
        2,
        "file and manifest"
    );
    assert_eq!(under("access/dt=2026-11-27/hour=11"), 0);
}
