//! The journal: a commit interrupted before, during or after publishing is completed by
//! recovery exactly once, and its position becomes the committed one.

use logveil_model::time::parse_rfc3339;
use logveil_model::{AccessRow, DatasetKind, UaFields};
use logveil_sink::journal::Journal;
use logveil_sink::manifest::{Manifest, manifest_path};
use logveil_sink::{
    AccessBuilder, DatasetSpec, PartitionWriter, RunInfo, SinkConfig, Storage, commit,
};
use serde_json::json;

fn row(ts: i64) -> AccessRow<'static> {
    AccessRow {
        ts_micros: ts,
        ip_pseudonym: "0123456789abcdef0123456789abcdef",
        ip_network: "192.0.2.0/24",
        method: Some("GET"),
        path: Some("/x"),
        protocol: Some("HTTP/1.1"),
        status: Some(200),
        bytes_sent: Some(1),
        referrer_host: None,
        ua: UaFields {
            browser_family: "Chrome",
            browser_major: Some(1),
            os_family: "Linux",
            os_major: None,
            device_class: "desktop",
        },
        key_id: "k",
        request_time_us: None,
    }
}

#[test]
fn a_pending_epoch_is_completed_once_whatever_was_done() {
    let h10 = parse_rfc3339(b"2026-11-27T10:00:00Z").unwrap();
    let spec = DatasetSpec::with_defaults(DatasetKind::Access);
    let run = RunInfo {
        run_id: "r".into(),
        key_epochs: vec![(i64::MIN, "k".into())],
        dev_key: false,
        now_micros: h10,
    };
    // How far the first attempt got before the crash: 0 nothing, 1 committed (not finished).
    for done in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path()).unwrap();
        let mut w = PartitionWriter::<AccessBuilder>::new(
            storage.clone(),
            spec.clone(),
            SinkConfig::default(),
            "r-w1".into(),
            vec![],
        );
        for i in 0..5 {
            w.push(&row(h10 + i)).unwrap();
        }
        let files = w.finish().unwrap();
        let mut j = Journal::open(storage.clone(), "src").unwrap();
        let pairs: Vec<(&str, _)> = files.iter().map(|f| ("access", f)).collect();
        j.begin(1, json!({"offset": 123}), &pairs, &run).unwrap();
        if done == 1 {
            commit(&storage, &spec, &files, &run).unwrap();
        }
        drop(j);
        // Restart.
        let mut j = Journal::open(storage.clone(), "src").unwrap();
        assert!(j.state().pending.is_some());
        // Completed by a run with other keys: the entries still say who wrote the files.
        let other = RunInfo {
            run_id: "other".into(),
            key_epochs: vec![(i64::MIN, "k-other".into())],
            dev_key: true,
            now_micros: h10,
        };
        let r = j
            .recover(|d| (d == "access").then(|| spec.clone()), &other)
            .unwrap();
        assert_eq!(r.epoch, Some(1));
        assert_eq!(j.state().epoch, 1);
        assert_eq!(j.state().position, json!({"offset": 123}));
        let m: Manifest = serde_json::from_slice(
            &storage
                .get(&manifest_path(
                    "access",
                    logveil_model::HourKey::of_micros(h10),
                ))
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!((m.rows, m.files.len()), (5, 1), "done={done}");
        let f = &m.files[0];
        assert_eq!(
            (f.run_id.as_str(), f.key_ids.clone(), f.dev_key),
            ("r", vec!["k".to_string()], false),
            "done={done}"
        );
        // Recovering again changes nothing.
        let mut j = Journal::open(storage.clone(), "src").unwrap();
        assert!(j.state().pending.is_none());
        assert!(j.recover(|_| None, &run).unwrap().epoch.is_none());
    }
}
