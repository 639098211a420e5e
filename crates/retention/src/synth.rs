//! Synthetic datasets for tests and benchmarks: markers, manifests and small stand-in files
//! laid out exactly as the sink writes them, without encoding any Parquet. Not part of the
//! product's interface.

use bytes::Bytes;
use logveil_model::time::{MICROS_PER_DAY, format_rfc3339};
use logveil_model::{HourKey, SCHEMA_VERSION};
use logveil_sink::manifest::{DatasetMarker, Manifest, ManifestFile, manifest_path, marker_path};
use object_store::path::Path;

/// `<dataset>/_dataset.json`.
pub fn marker(dataset: &str, kind: &str, retention_days: u32) -> (Path, Bytes) {
    let m = DatasetMarker {
        format: "logveil-dataset".into(),
        dataset: dataset.into(),
        kind: kind.into(),
        schema_version: SCHEMA_VERSION,
        retention_days,
        retention_floor_days: None,
    };
    (
        marker_path(dataset),
        Bytes::from(serde_json::to_vec_pretty(&m).expect("marker serialises")),
    )
}

/// One partition: `files` stand-in data files of `file_bytes` bytes each, and the manifest
/// listing them (expiry = partition end + `retention_days`).
pub fn partition(
    dataset: &str,
    kind: &str,
    retention_days: u32,
    key: HourKey,
    files: usize,
    file_bytes: usize,
) -> Vec<(Path, Bytes)> {
    let mut out = Vec::with_capacity(files + 1);
    let mut listed = Vec::with_capacity(files);
    for i in 0..files {
        let name = format!("part-synth-{}-{i:05}.parquet", key.0);
        let data = Bytes::from(vec![(key.0 as u8).wrapping_add(i as u8); file_bytes]);
        listed.push(ManifestFile {
            name: name.clone(),
            rows: 10,
            bytes: data.len() as u64,
            blake3: blake3::hash(&data).to_hex().to_string(),
            min_ts: format_rfc3339(key.start_micros()),
            max_ts: format_rfc3339(key.end_micros() - 1),
            run_id: "synth".into(),
            key_ids: vec!["k-synth".into()],
            dev_key: false,
            written_at: format_rfc3339(key.end_micros()),
        });
        out.push((Path::from(format!("{dataset}/{}/{name}", key.dir())), data));
    }
    let m = Manifest {
        format: "logveil-manifest".into(),
        manifest_version: 1,
        dataset: dataset.into(),
        kind: kind.into(),
        dt: key.date(),
        hour: key.hour(),
        partition_start: format_rfc3339(key.start_micros()),
        partition_end: format_rfc3339(key.end_micros()),
        retention_days,
        expires_at: format_rfc3339(key.end_micros() + i64::from(retention_days) * MICROS_PER_DAY),
        schema_version: SCHEMA_VERSION,
        logveil_version: env!("CARGO_PKG_VERSION").into(),
        key_ids: vec!["k-synth".into()],
        dev_key: false,
        rows: 10 * files as u64,
        bytes: listed.iter().map(|f| f.bytes).sum(),
        files: listed,
        updated_at: format_rfc3339(key.end_micros()),
        rollup: None,
    };
    out.push((
        manifest_path(dataset, key),
        Bytes::from(serde_json::to_vec_pretty(&m).expect("manifest serialises")),
    ));
    out
}
