//! The sweep through `object_store`'s in-memory store (the code path object storage uses:
//! no local locks, receipts as create-only segments): boundaries, dry runs, holds, retention
//! changes, and a crash (a panic from the step hook) at every step of the delete sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use logveil_model::HourKey;
use logveil_model::time::{MICROS_PER_DAY, MICROS_PER_HOUR, parse_rfc3339};
use logveil_retention::sweep::ManifestState;
use logveil_retention::{HoldSet, ReceiptLog, Step, SweepOptions, Sweeper, synth};
use logveil_sink::Storage;
use object_store::path::Path;

const DAY0: &str = "2026-11-01T00:00:00Z";

fn t(s: &str) -> i64 {
    parse_rfc3339(s.as_bytes()).unwrap()
}

/// `days` days of hourly partitions of `access` (retention 1 day) and 2 days of `session`
/// (retention 3 days), two files each.
fn root(days: i64) -> Storage {
    let s = Storage::memory();
    let put = |(p, b): (Path, Bytes)| s.put(&p, b).unwrap();
    put(synth::marker("access", "access", 1));
    put(synth::marker("session", "session", 3));
    let h0 = HourKey::of_micros(t(DAY0)).0;
    for h in 0..days * 24 {
        synth::partition("access", "access", 1, HourKey(h0 + h), 2, 64)
            .into_iter()
            .for_each(put);
    }
    for h in 0..48 {
        synth::partition("session", "session", 3, HourKey(h0 + h), 2, 64)
            .into_iter()
            .for_each(put);
    }
    s
}

fn snapshot(s: &Storage) -> BTreeMap<String, Bytes> {
    s.list(&Path::from(""))
        .unwrap()
        .into_iter()
        .map(|o| {
            let b = s.get(&o.location).unwrap().unwrap();
            (o.location.to_string(), b)
        })
        .collect()
}

/// Data objects (everything outside `_retention/`).
fn data(s: &Storage) -> BTreeSet<String> {
    snapshot(s)
        .into_keys()
        .filter(|p| !p.starts_with("_retention/"))
        .collect()
}

fn opts(now: i64, id: &str) -> SweepOptions {
    SweepOptions {
        now,
        wall_clock: now,
        dry_run: false,
        operator: "test".into(),
        sweep_id: id.into(),
    }
}

/// (dataset, partition) of every receipt, in order.
fn receipted(s: &Storage) -> Vec<(String, String)> {
    ReceiptLog::new(s.clone())
        .verify()
        .unwrap()
        .into_iter()
        .map(|e| {
            let g = |k: &str| e.details[k].as_str().unwrap().to_string();
            (g("dataset"), g("partition"))
        })
        .collect()
}

#[test]
fn sweeps_exactly_the_expired_partitions_and_receipts_each() {
    let s = root(3);
    let now = t("2026-11-02T12:00:00Z");
    let before = data(&s);
    let r = Sweeper::new(s.clone()).sweep(&opts(now, "s1")).unwrap();
    let h0 = HourKey::of_micros(t(DAY0)).0;
    let expired: BTreeSet<(String, String)> = (0..72)
        .map(|h| HourKey(h0 + h))
        .filter(|k| k.end_micros() + MICROS_PER_DAY <= now)
        .map(|k| ("access".to_string(), k.dir()))
        .collect();
    assert_eq!(
        expired.len(),
        12,
        "hours 00-11 of day 0 (access); no session partition"
    );
    let got: BTreeSet<_> = r
        .deleted
        .iter()
        .map(|d| (d.dataset.clone(), d.partition.clone()))
        .collect();
    assert_eq!(got, expired);
    assert!(r.deleted.iter().all(|d| d.manifest == ManifestState::Ok));
    let after = data(&s);
    for p in &before {
        let gone = expired
            .iter()
            .any(|(ds, part)| p.starts_with(&format!("{ds}/{part}/")));
        assert_eq!(after.contains(p), !gone, "{p}");
    }
    let rec = receipted(&s);
    assert_eq!(rec.len(), expired.len());
    assert_eq!(rec.iter().cloned().collect::<BTreeSet<_>>(), expired);
    let v = logveil_retention::verify(&s).unwrap();
    assert!(v.passed());
    assert_eq!(v.partitions_checked, expired.len() as u64);
    // Idempotent: nothing more to do at the same instant.
    let again = Sweeper::new(s.clone()).sweep(&opts(now, "s2")).unwrap();
    assert!(again.deleted.is_empty());
    assert_eq!(receipted(&s).len(), expired.len());
    let st = logveil_retention::status(&s, now).unwrap();
    assert!(st.datasets.iter().all(|d| d.overdue == 0));
    assert_eq!(st.pending_tombstones, 0);
}

#[test]
fn the_sweep_only_reads_what_can_have_expired() {
    let s = root(3);
    // Nothing has expired: no partition is even examined.
    let r = Sweeper::new(s.clone())
        .sweep(&opts(t("2026-11-02T00:59:59Z"), "s1"))
        .unwrap();
    assert_eq!(r.partitions_examined, 0);
    assert!(r.deleted.is_empty());
    // One hour expired: only day 0 is visited, and only its first hour examined.
    let r = Sweeper::new(s.clone())
        .sweep(&opts(t("2026-11-02T01:00:00Z"), "s2"))
        .unwrap();
    assert_eq!(r.deleted.len(), 1);
    assert_eq!(r.partitions_examined, 1);
}

#[test]
fn dry_run_changes_nothing() {
    let s = root(2);
    let before = snapshot(&s);
    let mut o = opts(t("2026-11-10T00:00:00Z"), "dry");
    o.dry_run = true;
    let r = Sweeper::new(s.clone()).sweep(&o).unwrap();
    assert_eq!(r.deleted.len(), 48 + 48);
    assert_eq!(snapshot(&s), before);
}

#[test]
fn holds_keep_partitions_and_are_named_in_the_receipt_later() {
    let s = root(2);
    let now = t("2026-11-10T00:00:00Z");
    let hold = HoldSet::add(
        &s,
        "access",
        t("2026-11-01T05:00:00Z"),
        t("2026-11-01T07:00:00Z"),
        "case 42",
        "legal",
        None,
        t("2026-11-01T12:00:00Z"),
    )
    .unwrap();
    let r = Sweeper::new(s.clone()).sweep(&opts(now, "s1")).unwrap();
    let held: Vec<&str> = r.held.iter().map(|h| h.partition.as_str()).collect();
    assert_eq!(held, ["dt=2026-11-01/hour=05", "dt=2026-11-01/hour=06"]);
    assert!(r.held.iter().all(|h| h.holds == [hold.id.clone()]));
    assert!(
        data(&s)
            .iter()
            .any(|p| p.contains("dt=2026-11-01/hour=05/"))
    );
    let st = logveil_retention::status(&s, now).unwrap();
    let access = st.datasets.iter().find(|d| d.dataset == "access").unwrap();
    assert_eq!((access.held, access.overdue, access.partitions), (2, 0, 2));

    HoldSet::release(&s, &hold.id, "legal", now + MICROS_PER_HOUR).unwrap();
    let later = now + 2 * MICROS_PER_HOUR;
    let r = Sweeper::new(s.clone()).sweep(&opts(later, "s2")).unwrap();
    assert_eq!(r.deleted.len(), 2);
    let log = ReceiptLog::new(s.clone()).verify().unwrap();
    let last = log.last().unwrap();
    let delayed = last.details["delayed_by_holds"].as_array().unwrap();
    assert_eq!(delayed[0]["id"], hold.id.as_str());
    assert_eq!(delayed[0]["reason"], "case 42");
    // Receipts of partitions no hold touched say nothing about holds.
    assert!(log[0].details.get("delayed_by_holds").is_none());
}

#[test]
fn a_shortened_retention_applies_to_data_already_written() {
    let s = root(1);
    // access was written with 1-day manifests; session with 3. Shorten session to 1 day:
    // its partitions now expire a day after they end, whatever their manifests say.
    let (p, b) = synth::marker("session", "session", 1);
    s.put(&p, b).unwrap();
    let r = Sweeper::new(s.clone())
        .sweep(&opts(t("2026-11-03T00:00:00Z"), "s1"))
        .unwrap();
    assert_eq!(
        r.deleted.iter().filter(|d| d.dataset == "session").count(),
        24
    );
    // A lengthened retention does not extend partitions written before: access, written
    // under 1 day, now says 30, but the marker remembers the floor only when logveil
    // changes it; a partition's own manifest still decides its earlier expiry.
    let s = root(1);
    let (p, _) = synth::marker("access", "access", 30);
    let mut m: logveil_sink::manifest::DatasetMarker =
        serde_json::from_slice(&s.get(&p).unwrap().unwrap()).unwrap();
    m.retention_days = 30;
    m.retention_floor_days = Some(1);
    s.put(&p, Bytes::from(serde_json::to_vec(&m).unwrap()))
        .unwrap();
    let r = Sweeper::new(s.clone())
        .sweep(&opts(t("2026-11-03T00:00:00Z"), "s2"))
        .unwrap();
    assert_eq!(
        r.deleted.iter().filter(|d| d.dataset == "access").count(),
        24
    );
}

#[test]
fn missing_and_corrupt_manifests_are_judged_by_path_and_say_so() {
    let s = root(1);
    let h0 = HourKey::of_micros(t(DAY0));
    let m1 = logveil_sink::manifest::manifest_path("access", h0);
    let m2 = logveil_sink::manifest::manifest_path("access", HourKey(h0.0 + 1));
    s.delete(&m1).unwrap();
    s.put(&m2, Bytes::from_static(b"{not json")).unwrap();
    let r = Sweeper::new(s.clone())
        .sweep(&opts(t("2026-11-02T02:00:00Z"), "s1"))
        .unwrap();
    let states: Vec<_> = r.deleted.iter().map(|d| d.manifest).collect();
    assert_eq!(states, [ManifestState::Missing, ManifestState::Corrupt]);
    assert_eq!(r.problems.len(), 2);
    assert!(
        !data(&s)
            .iter()
            .any(|p| p.starts_with("access/dt=2026-11-01/hour=0")
                && (p.contains("hour=00/") || p.contains("hour=01/")))
    );
    let log = ReceiptLog::new(s.clone()).verify().unwrap();
    assert_eq!(log[0].details["manifest"], "missing");
    assert_eq!(log[1].details["manifest"], "corrupt");
    assert!(logveil_retention::verify(&s).unwrap().passed());
}

/// The end state of an uninterrupted sweep at `now`.
fn reference(days: i64, now: i64) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let s = root(days);
    Sweeper::new(s.clone()).sweep(&opts(now, "ref")).unwrap();
    (data(&s), receipted(&s).into_iter().collect())
}

#[test]
fn a_crash_at_any_step_converges_on_the_next_sweep() {
    let now = t("2026-11-02T06:00:00Z");
    let (want_data, want_receipts) = reference(2, now);
    for step in Step::ALL {
        for n in [1u64, 2, 5, 40] {
            let s = root(2);
            let seen = AtomicU64::new(0);
            let hook = |x: Step| {
                if x == step && seen.fetch_add(1, Ordering::SeqCst) + 1 == n {
                    panic!("injected crash at {} #{n}", step.as_str());
                }
            };
            let crashed = catch_unwind(AssertUnwindSafe(|| {
                Sweeper::new(s.clone())
                    .with_hook(&hook)
                    .sweep(&opts(now, "crashing"))
            }))
            .is_err();
            // Steps that happen fewer than n times do not crash; both paths must converge.
            let _ = crashed;
            let r = Sweeper::new(s.clone()).sweep(&opts(now, "after")).unwrap();
            assert!(r.problems.is_empty(), "{step:?} #{n}: {:?}", r.problems);
            assert_eq!(data(&s), want_data, "{step:?} #{n}");
            let rec = receipted(&s);
            let set: BTreeSet<_> = rec.iter().cloned().collect();
            assert_eq!(
                set.len(),
                rec.len(),
                "{step:?} #{n}: a receipt written twice"
            );
            assert_eq!(set, want_receipts, "{step:?} #{n}");
            assert!(logveil_retention::verify(&s).unwrap().passed());
            assert_eq!(
                s.list(&Path::from("_retention/tombstones")).unwrap().len(),
                0
            );
        }
    }
}

#[test]
fn receipts_are_batched_into_segments() {
    // 20 days of hourly partitions: 480 expired → two segments (batches of 256).
    let s = root(20);
    let r = Sweeper::new(s.clone())
        .sweep(&opts(t("2026-12-01T00:00:00Z"), "big"))
        .unwrap();
    assert_eq!(r.deleted.len(), 480 + 48);
    let segs = s.list(&Path::from("_retention/receipts")).unwrap();
    assert_eq!(segs.len(), 3);
    assert_eq!(receipted(&s).len(), 528);
}

#[test]
fn a_damaged_retention_never_makes_everything_expired() {
    let s = root(1);
    // A retention of 200 million days would overflow into the past if it were believed.
    let (p, _) = synth::marker("access", "access", 1);
    s.put(
        &p,
        Bytes::from_static(
            br#"{"format":"logveil-dataset","dataset":"access","kind":"access","schema_version":1,"retention_days":200000000}"#,
        ),
    )
    .unwrap();
    let before = data(&s);
    let r = Sweeper::new(s.clone())
        .sweep(&opts(t("2026-11-03T00:00:00Z"), "s1"))
        .unwrap();
    assert!(
        r.deleted.iter().all(|d| d.dataset != "access"),
        "{:?}",
        r.deleted
    );
    let p = r.problems.iter().find(|p| p.path == "access/").unwrap();
    assert!(p.needs_attention && p.what.contains("at most"), "{p:?}");
    let access_before: BTreeSet<_> = before.iter().filter(|p| p.starts_with("access/")).collect();
    let after = data(&s);
    let access_after: BTreeSet<_> = after.iter().filter(|p| p.starts_with("access/")).collect();
    assert_eq!(access_before, access_after);
}

#[test]
fn directory_marker_objects_are_not_files() {
    // Some S3 tools create zero-byte objects named like directories.
    let s = root(1);
    for p in [
        "access",
        "access/dt=2026-11-01",
        "access/dt=2026-11-01/hour=05",
    ] {
        s.put(&Path::from(p), Bytes::new()).unwrap();
    }
    let now = t("2026-11-03T00:00:00Z");
    logveil_retention::status(&s, now).unwrap();
    let r = Sweeper::new(s.clone()).sweep(&opts(now, "s1")).unwrap();
    assert_eq!(
        r.deleted.iter().filter(|d| d.dataset == "access").count(),
        24
    );
    assert!(logveil_retention::verify(&s).unwrap().passed());
}

#[test]
fn the_floor_is_dropped_once_no_partition_needs_it() {
    // access: retention now 30 days, floor 1 (its manifests say 1 day). Day 0 and day 1.
    let s = root(2);
    let (p, _) = synth::marker("access", "access", 30);
    let mut m: logveil_sink::manifest::DatasetMarker =
        serde_json::from_slice(&s.get(&p).unwrap().unwrap()).unwrap();
    m.retention_days = 30;
    m.retention_floor_days = Some(1);
    s.put(&p, Bytes::from(serde_json::to_vec(&m).unwrap()))
        .unwrap();
    let marker = |s: &Storage| {
        logveil_sink::manifest::DatasetMarker::read(s, "access")
            .unwrap()
            .unwrap()
    };
    // Day 0 expired, day 1 not yet: its partitions still need the floor.
    let r = Sweeper::new(s.clone())
        .sweep(&opts(t("2026-11-03T00:00:00Z"), "s1"))
        .unwrap();
    assert_eq!(
        r.deleted.iter().filter(|d| d.dataset == "access").count(),
        24
    );
    assert!(r.floors_raised.is_empty());
    assert_eq!(marker(&s).retention_floor_days, Some(1));
    // Day 1 gone too: nothing written under 1 day is left, the floor goes.
    let r = Sweeper::new(s.clone())
        .sweep(&opts(t("2026-11-04T00:00:00Z"), "s2"))
        .unwrap();
    assert_eq!(
        r.deleted.iter().filter(|d| d.dataset == "access").count(),
        24
    );
    assert_eq!(r.floors_raised, ["access"]);
    assert_eq!(marker(&s).retention_floor_days, None);
    assert_eq!(marker(&s).floor_days(), 30);
}

#[test]
fn staged_uploads_no_commit_will_publish_are_removed_after_a_week() {
    use logveil_sink::journal::{JournalFile, JournalState, PendingEpoch};
    let s = root(1);
    let staged = |name: &str| Path::from(format!("access/_staging/{name}"));
    for name in ["orphan.tmp", "pending.tmp", "erase-r1-x.parquet.tmp"] {
        s.put(&staged(name), Bytes::from_static(b"rows")).unwrap();
    }
    // A source's pending epoch lists one of them; an erasure is pending.
    let file = JournalFile {
        dataset: "access".into(),
        partition: HourKey::of_micros(t(DAY0)).0,
        name: "pending.parquet".into(),
        rows: 1,
        min_ts: 0,
        max_ts: 0,
        bytes: 4,
        blake3: String::new(),
        staged: Some("access/_staging/pending.tmp".into()),
        dest: "access/dt=2026-11-01/hour=00/pending.parquet".into(),
        run_id: String::new(),
        key_id: None,
        dev_key: false,
    };
    let journal = JournalState {
        format: "logveil-journal".into(),
        version: 1,
        source: "web".into(),
        epoch: 1,
        position: serde_json::Value::Null,
        pending: Some(PendingEpoch {
            epoch: 2,
            position: serde_json::Value::Null,
            files: vec![file],
        }),
    };
    s.put(
        &Path::from("_checkpoints/web/t/0.json"),
        Bytes::from(serde_json::to_vec(&journal).unwrap()),
    )
    .unwrap();
    s.put(
        &Path::from("_retention/erasures/pending/r1.json"),
        Bytes::from_static(b"{}"),
    )
    .unwrap();
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let at = |wall_clock: i64, dry_run: bool| SweepOptions {
        now: t(DAY0),
        wall_clock,
        dry_run,
        operator: "test".into(),
        sweep_id: "s".into(),
    };
    let present = |s: &Storage| {
        s.list(&Path::from("access/_staging"))
            .unwrap()
            .into_iter()
            .map(|o| o.location.filename().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    let all = present(&s);
    // Young: in use, perhaps.
    let r = Sweeper::new(s.clone()).sweep(&at(real_now, false)).unwrap();
    assert_eq!((r.staged_removed, present(&s)), (0, all.clone()));
    let later = real_now + 8 * MICROS_PER_DAY;
    let r = Sweeper::new(s.clone()).sweep(&at(later, true)).unwrap();
    assert_eq!((r.staged_removed, present(&s)), (1, all), "a dry run");
    let r = Sweeper::new(s.clone()).sweep(&at(later, false)).unwrap();
    assert_eq!(r.staged_removed, 1);
    assert_eq!(
        present(&s),
        BTreeSet::from([
            "erase-r1-x.parquet.tmp".to_string(),
            "pending.tmp".to_string()
        ])
    );
}
