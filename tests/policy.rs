//! End-to-end tests of the declarative per-dataset policy (`[datasets.NAME.policy]`) and
//! `logveil policy check`: valid configs print the effective policy with rule ids; invalid ones
//! fail at start-up with the line and the reason; a declared policy is applied to the output.

use std::path::Path;

mod common;
use common::*;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn pipeline(dir: &Path, policy: &str) -> std::path::PathBuf {
    let access = write(
        dir,
        "access.log",
        "198.51.100.1 - - [15/Nov/2026:10:00:00 +0000] \"GET /users/bob/settings?page=2&token=s3cr3t HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n\
         198.51.100.2 - - [15/Nov/2026:10:00:01 +0000] \"GET /dashboard HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n",
    );
    let consent = |m: bool| {
        format!(
            r#""consent":{{"necessary":true,"preferences":true,"statistics":true,"marketing":{m}}}"#
        )
    };
    let sessions = write(
        dir,
        "sessions.jsonl",
        &format!(
            "{{\"ts\":\"2026-11-15T10:00:00Z\",\"event\":\"page_view\",\"app\":\"web\",\"device_id\":\"d-1\",\"locale\":\"en-US\",{}}}\n\
             {{\"ts\":\"2026-11-15T10:00:00Z\",\"event\":\"page_view\",\"app\":\"web\",\"device_id\":\"d-2\",\"locale\":\"en-US\",{}}}\n\
             {{\"ts\":\"2026-11-15T10:00:00Z\",\"event\":\"vpn_connect\",\"app\":\"web\",\"device_id\":\"d-3\",{}}}\n",
            consent(true),
            consent(false),
            consent(true)
        ),
    );
    write(
        dir,
        "pipeline.toml",
        &format!(
            "[output]\nroot = {:?}\n\n[keys]\ndev_key = true\n\n{policy}\n\n\
             [[sources]]\nname = \"web\"\nformat = \"combined\"\ndataset = \"access\"\npaths = [{:?}]\n\n\
             [[sources]]\nname = \"events\"\nformat = \"session-json\"\ndataset = \"session\"\npaths = [{:?}]\n",
            dir.join("out"),
            access,
            sessions
        ),
    )
}

#[test]
fn policy_check_prints_the_effective_policy_of_the_demo() {
    let root = workspace_root();
    let o = ok(bin()
        .current_dir(&root)
        .args(["policy", "check", "pipelines/demo.toml"]));
    let t = text(&o.stdout);
    assert!(t.contains("pipelines/demo.toml: valid"), "{t}");
    for d in ["access", "session", "syslog", "app", "proxy_usage"] {
        assert!(t.contains(&format!("dataset {d} (kind")), "{d}: {t}");
    }
    for id in [
        "pseudonymise-ip/1.12.2",
        "truncate-ip/1.12.2",
        "strip-query/1.12.2",
        "consent-statistics/14.2",
        "proxy-content/5.2.3",
        "proxy-aggregate/5.2.3",
        "scrub-text/1.12.2",
        "key-shredded/9.4",
        "objection/7.4",
        "self-check/10.1",
    ] {
        assert!(t.contains(id), "{id}: {t}");
    }
}

#[test]
fn invalid_policies_fail_with_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (policy, line, why) in [
        (
            "[datasets.access.policy]\ncolumns = [\"ts\", \"ip_pseudonym\",\n  \"client_ip\"]",
            "line 9:",
            "\"client_ip\" is not a column of the access schema",
        ),
        (
            "[datasets.access.policy]\nipv4_prefix = 32",
            "line 8:",
            "longer than 24",
        ),
        (
            "[datasets.session.policy]\nconsent = \"necessary\"",
            "line 8:",
            "statistics data",
        ),
        (
            "[datasets.session.policy]\nkeep_query_params = [\"page\", \"api_key\"]",
            "line 8:",
            "\"api_key\" looks like it carries a secret",
        ),
        (
            "[datasets.acces.policy]\ncolumns = [\"ts\"]",
            "line 7:",
            "no source writes dataset \"acces\"",
        ),
        (
            "[datasets.access.policy]\ncolums = [\"ts\"]",
            "line 8",
            "unknown field `colums`",
        ),
        (
            "[datasets.access.policy]\ncolumns = [\"ts\"]",
            "line 8:",
            "required by the access schema",
        ),
    ] {
        let p = pipeline(dir.path(), policy);
        for args in [vec!["policy", "check"], vec!["run"]] {
            let o = run(bin().args(&args).arg(&p));
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{policy}: {err}");
            assert!(err.contains(why), "{policy}: {err}");
            assert!(err.contains(line), "{policy}: want {line}: {err}");
        }
    }
}

#[test]
fn a_declared_policy_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(
        dir.path(),
        "[datasets.access.policy]\n\
         path_templates = [\"/users/:user/settings\"]\n\
         keep_query_params = [\"page\"]\n\n\
         [datasets.session.policy]\n\
         columns = [\"ts\", \"event\", \"app\", \"consent_preferences\", \"consent_statistics\",\n\
           \"consent_marketing\", \"browser_family\", \"os_family\", \"device_class\", \"key_id\"]\n\
         consent = \"marketing\"\n\
         proxy_events = [\"vpn_*\"]",
    );
    let o = ok(bin().args(["run", "--summary-json"]).arg(&p));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let out = dir.path().join("out");
    let mut paths = column_values(&out, "access", "path");
    paths.sort();
    assert_eq!(paths, ["/dashboard", "/users/:user/settings?page=2"]);
    // Session: one event without marketing consent and one vpn event are dropped; the kept
    // event has no device pseudonym or locale (columns not in the allow-list).
    assert_eq!(s["records_written"]["session"], 1, "{s}");
    assert_eq!(s["dropped"]["proxy_traffic"], 1, "{s}");
    assert_eq!(s["dropped"]["no_statistics_consent"], 1, "{s}");
    assert!(column_values(&out, "session", "device_pseudonym").is_empty());
    assert!(column_values(&out, "session", "locale").is_empty());
    assert_eq!(column_values(&out, "session", "event"), ["page_view"]);
    for (f, t) in all_output_text(&out) {
        assert!(
            !t.contains("s3cr3t") && !t.contains("bob"),
            "{}",
            f.display()
        );
    }
}
