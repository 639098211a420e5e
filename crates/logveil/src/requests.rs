//! Data-subject requests as records (privacy policy §7.10: answered within 30 days of
//! receipt). Every `logveil subject` command given `--request-id` records what it did in the
//! root's hash-chained audit log (`_retention/audit.jsonl`, action `subject_request`: the
//! step, counts, never an identifier); `logveil subject requests` reads the log back as a
//! list of requests with their deadlines.
//!
//! A request is received when its first step is recorded, or at `--received` (the day the
//! request arrived, which may be earlier). It is answered once it was exported (access,
//! portability), erased (the erasure queued behind a legal hold counts, the subject being
//! told the data is restricted until the hold ends), objected to or restricted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use logveil_model::time::{days_micros, format_rfc3339, parse_rfc3339};
use logveil_retention::AuditLog;
use serde_json::{Map, Value, json};

use crate::keys_cmd::{operator, parse_when, second};
use crate::usage;

/// Days a request may take (§7.10).
pub const DEADLINE_DAYS: u32 = 30;

/// Steps that answer a request.
const ANSWERS: [&str; 5] = [
    "exported",
    "erased",
    "erasure_queued",
    "objected",
    "restricted",
];

/// The request a command answers.
#[derive(Args, Default)]
pub struct RequestArgs {
    /// The data-subject request this answers: the step is recorded in the root's audit log
    /// and listed by `logveil subject requests`.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// When the request was received (YYYY-MM-DD or RFC 3339), if before the first command
    /// that names it: the 30-day deadline runs from then.
    #[arg(long, value_name = "DATE", requires = "request_id")]
    pub received: Option<String>,
    /// Who answers it (default: $USER), for the audit log.
    #[arg(long)]
    pub operator: Option<String>,
}

impl RequestArgs {
    /// Checks the request id (it names files) and `--received`.
    pub fn check(&self) -> Result<()> {
        if let Some(id) = &self.request_id {
            logveil_retention::check_request_id(id).map_err(usage)?;
        }
        if let Some(r) = &self.received {
            parse_when("--received", r)?;
        }
        Ok(())
    }

    /// Records a step of the request (nothing without `--request-id`).
    pub fn record(&self, root: &Path, step: &str, facts: Value) -> Result<()> {
        let Some(id) = &self.request_id else {
            return Ok(());
        };
        let mut d = Map::new();
        d.insert("request_id".into(), json!(id));
        d.insert("step".into(), json!(step));
        if let Some(r) = &self.received {
            d.insert(
                "received".into(),
                json!(format_rfc3339(parse_when("--received", r)?)),
            );
        }
        if let Value::Object(m) = facts {
            d.extend(m);
        }
        AuditLog::of_storage(&crate::keys_cmd::root_storage(root)?).append(
            &second(crate::now_micros()),
            "subject_request",
            &operator(&self.operator),
            d,
        )?;
        Ok(())
    }
}

#[derive(Args)]
pub struct RequestsArgs {
    /// Output root whose requests to list.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Only requests not answered yet.
    #[arg(long)]
    pub open: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One request, as the audit log tells it.
struct Request {
    id: String,
    received: i64,
    steps: Vec<(String, String)>,
    answered: Option<String>,
}

pub fn cmd_requests(a: RequestsArgs) -> Result<()> {
    let entries = AuditLog::of_storage(&crate::keys_cmd::root_storage(&a.root)?).verify()?;
    let mut by_id: BTreeMap<String, Request> = BTreeMap::new();
    for e in &entries {
        let Some(id) = e.details.get("request_id").and_then(Value::as_str) else {
            continue;
        };
        let step = match e.action.as_str() {
            "subject_request" => e
                .details
                .get("step")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            // `subject object|restrict|lift` record their changes of the suppression list.
            "suppression_added" => match e.details.get("ground").and_then(Value::as_str) {
                Some("objection") => "objected".into(),
                _ => "restricted".into(),
            },
            "suppression_lifted" => "lifted".into(),
            _ => continue,
        };
        let at = parse_rfc3339(e.at.as_bytes()).unwrap_or(i64::MAX);
        let received = e
            .details
            .get("received")
            .and_then(Value::as_str)
            .and_then(|r| parse_rfc3339(r.as_bytes()))
            .unwrap_or(at)
            .min(at);
        let r = by_id.entry(id.to_string()).or_insert_with(|| Request {
            id: id.to_string(),
            received,
            steps: Vec::new(),
            answered: None,
        });
        r.received = r.received.min(received);
        if r.answered.is_none() && ANSWERS.contains(&step.as_str()) {
            r.answered = Some(e.at.clone());
        }
        r.steps.push((e.at.clone(), step));
    }
    let now = crate::now_micros();
    let mut rows: Vec<&Request> = by_id.values().collect();
    rows.sort_by_key(|r| (r.received, r.id.clone()));
    if a.open {
        rows.retain(|r| r.answered.is_none());
    }
    let deadline = |r: &Request| r.received.saturating_add(days_micros(DEADLINE_DAYS));
    let status = |r: &Request| match &r.answered {
        Some(_) => "answered",
        None if now > deadline(r) => "overdue",
        None => "open",
    };
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "request_id": r.id,
                    "received": second(r.received),
                    "deadline": second(deadline(r)),
                    "status": status(r),
                    "answered": r.answered,
                    "steps": r.steps.iter().map(|(at, s)| json!({"at": at, "step": s})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<24} {:<9} {:<21} {:<21} STEPS",
        "REQUEST", "STATUS", "RECEIVED", "DEADLINE"
    );
    for r in rows {
        println!(
            "{:<24} {:<9} {:<21} {:<21} {}",
            r.id,
            status(r),
            second(r.received),
            second(deadline(r)),
            r.steps
                .iter()
                .map(|(_, s)| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
