//! The `http` source: `POST <path>` with an NDJSON body (one JSON object per line, optionally
//! gzip'd) appends the batch to the source's spool and answers `200 {"accepted":N}` once it
//! is durable. A batch is taken whole or not at all. Lines that are not JSON objects are taken
//! too, like bad lines of a file: the pipeline quarantines them (scrubbed, counted), and the
//! answer says `"invalid":K,"first_invalid":{"line":L,"error":"…"}` (never the line's text).
//!
//! | status | when |
//! |---|---|
//! | 400 | no line is a JSON object (not NDJSON at all: a JSON array, a form), the body could not be read, or it is not valid gzip |
//! | 401 | a token is configured and the request does not carry it (`Authorization: Bearer …`) |
//! | 404 / 405 | another path / another method |
//! | 413 | the body (after decompression) or one line is over its limit |
//! | 415 | a `Content-Encoding` other than `gzip` or `identity` |
//! | 408 | the body did not arrive within 60 s |
//! | 503 | backpressure (the spool's backlog is over its limit), too many requests in memory (64 MiB, or 3 × `max_body`), or stopping; `Retry-After: 1` |
//! | 500 | the spool cannot be written |

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{AppendError, SpoolHandle};

/// Settings of one HTTP source.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// The source's name (metrics label).
    pub source: String,
    /// The path batches are posted to, e.g. `/v1/events`.
    pub path: String,
    /// Largest body accepted, after decompression.
    pub max_body: usize,
    /// Longest line (one event) accepted.
    pub max_line: usize,
    /// Bearer token required, if any.
    pub token: Option<String>,
}

type Body = Full<Bytes>;

fn answer(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, reason: &str) -> Response<Body> {
    let mut r = answer(
        status,
        serde_json::json!({ "error": reason }).to_string() + "\n",
    );
    match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        StatusCode::UNAUTHORIZED => {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    r
}

/// Compares without an early exit, so that timing does not tell how much of a token matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A checked batch: the spool's lines and what was found.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The lines (blank ones dropped, `\r\n` made `\n`, a last newline added).
    pub lines: Vec<u8>,
    pub count: u64,
    /// Lines that are not a JSON object: kept (the pipeline quarantines them, scrubbed and
    /// counted, as it does bad lines of files), and reported in the answer.
    pub invalid: u64,
    /// The first of them: its line number and why.
    pub first_invalid: Option<(usize, String)>,
}

/// Checks an NDJSON body. A batch is refused whole (400) when none of its lines is a JSON
/// object (it is not NDJSON at all: a JSON array, a form), or (413) when a line is longer than
/// `max_line`; otherwise every line is taken, and the bad ones are counted.
pub(crate) fn check_batch(body: &[u8], max_line: usize) -> Result<Batch, (StatusCode, String)> {
    let mut b = Batch {
        lines: Vec::with_capacity(body.len() + 1),
        count: 0,
        invalid: 0,
        first_invalid: None,
    };
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let number = i + 1;
        if line.len() > max_line {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "line {number} is longer than {max_line} bytes; split the event or raise max_line_bytes"
                ),
            ));
        }
        // Why it is invalid: the category and column only, never anything of the event (the
        // text is made for the first invalid line only).
        let invalid = if trimmed[0] != b'{' {
            Some(None)
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(trimmed)
                .err()
                .map(Some)
        };
        if let Some(e) = invalid {
            b.invalid += 1;
            if b.first_invalid.is_none() {
                let why = match e {
                    None => "not a JSON object".to_string(),
                    Some(e) => format!(
                        "not valid JSON ({:?} error at column {})",
                        e.classify(),
                        e.column()
                    ),
                };
                b.first_invalid = Some((number, why));
            }
        }
        b.lines.extend_from_slice(trimmed);
        b.lines.push(b'\n');
        b.count += 1;
    }
    if b.count > 0 && b.invalid == b.count {
        let (n, why) = b.first_invalid.take().expect("an invalid line");
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "no line is a JSON object (line {n}: {why}); send one event object per line (NDJSON)"
            ),
        ));
    }
    Ok(b)
}

struct Ctx {
    settings: HttpSettings,
    spool: SpoolHandle,
    /// Request bytes that may be held in memory at once, in KiB (a request holds its body,
    /// a decompressed copy and the checked lines: three times its size).
    inflight: Arc<tokio::sync::Semaphore>,
}

/// Bytes of requests in memory at once, at least (more if `max_body` needs it).
const INFLIGHT_BYTES: usize = 64 << 20;
/// Open connections at most; more are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// A body must arrive within this long.
const BODY_WITHIN: Duration = Duration::from_secs(60);

fn count(ctx: &Ctx, status: StatusCode) {
    metrics::counter!(
        "logveil_http_requests_total",
        "source" => ctx.settings.source.clone(),
        "status" => status.as_u16().to_string()
    )
    .increment(1);
}

/// The in-flight budget, in KiB, of a source taking bodies of up to `max_body` bytes.
fn budget_kib(max_body: usize) -> usize {
    INFLIGHT_BYTES.max(max_body.saturating_mul(3)) / 1024
}

async fn handle(req: Request<Incoming>, ctx: Arc<Ctx>) -> Result<Response<Body>, Infallible> {
    let r = respond(req, &ctx).await;
    count(&ctx, r.status());
    Ok(r)
}

async fn respond(req: Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    let s = &ctx.settings;
    if req.uri().path() != s.path {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no such endpoint; POST NDJSON batches to {}", s.path),
        );
    }
    if req.method() != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    if let Some(token) = &s.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !given.is_some_and(|g| same(g, token.as_bytes())) {
            return error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer …)",
            );
        }
    }
    if ctx.spool.failed() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the batch could not be stored; retry later",
        );
    }
    if ctx.spool.stopping() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline is stopping; retry",
        );
    }
    if ctx.spool.backpressured() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline is behind (backpressure); retry later",
        );
    }
    let gzip = match req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => false,
        Some(e) if e == "identity" || e.is_empty() => false,
        Some(e) if e == "gzip" => true,
        Some(_) => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported Content-Encoding; send gzip or no encoding",
            );
        }
    };
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the body is larger than {} bytes; send smaller batches",
                s.max_body
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_body as u64) {
        return too_large();
    }
    // Memory: room for this request, or 503.
    let size = match declared {
        Some(n) if !gzip => n as usize,
        _ => s.max_body,
    };
    let want = (size.saturating_mul(3) / 1024 + 1).min(budget_kib(s.max_body)) as u32;
    let Ok(_room) = ctx.inflight.clone().try_acquire_many_owned(want) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in progress; retry later",
        );
    };
    let body = match tokio::time::timeout(
        BODY_WITHIN,
        Limited::new(req.into_body(), s.max_body).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(_)) => {
            return error(StatusCode::BAD_REQUEST, "the body could not be read");
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time",
            );
        }
    };
    let body: Bytes = if gzip {
        let mut out = Vec::new();
        let mut dec = flate2::read::MultiGzDecoder::new(&body[..]).take(s.max_body as u64 + 1);
        if dec.read_to_end(&mut out).is_err() {
            return error(StatusCode::BAD_REQUEST, "the body is not valid gzip");
        }
        if out.len() > s.max_body {
            return too_large();
        }
        out.into()
    } else {
        body
    };
    let batch = match check_batch(&body, s.max_line) {
        Ok(v) => v,
        Err((status, reason)) => return error(status, &reason),
    };
    let Batch {
        lines,
        count: n,
        invalid,
        first_invalid: first,
    } = batch;
    match ctx.spool.append(lines).await {
        Ok(()) => {
            metrics::counter!("logveil_http_events_total", "source" => s.source.clone())
                .increment(n);
            let mut a = serde_json::json!({ "accepted": n });
            if let Some((line, why)) = first {
                metrics::counter!("logveil_http_invalid_events_total", "source" => s.source.clone())
                    .increment(invalid);
                a["invalid"] = invalid.into();
                a["first_invalid"] = serde_json::json!({ "line": line, "error": why });
            }
            answer(StatusCode::OK, a.to_string() + "\n")
        }
        Err(AppendError::Stopping) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline is stopping; retry",
        ),
        Err(AppendError::Busy) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline is behind (backpressure); retry later",
        ),
        Err(AppendError::Failed) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the batch could not be stored; retry later",
        ),
    }
}

/// Serves one HTTP source on `listener` until `stop` resolves; then stops accepting, lets the
/// requests in progress finish (at most `drain`), and returns.
pub async fn serve(
    listener: TcpListener,
    settings: HttpSettings,
    spool: SpoolHandle,
    stop: impl std::future::Future<Output = ()>,
    drain: Duration,
) {
    let budget = budget_kib(settings.max_body);
    let ctx = Arc::new(Ctx {
        settings,
        spool,
        inflight: Arc::new(tokio::sync::Semaphore::new(budget)),
    });
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(slot) = connections.clone().try_acquire_owned() else {
                    metrics::counter!("logveil_http_connections_refused_total", "source" => ctx.settings.source.clone())
                        .increment(1);
                    continue; // closed: too many connections
                };
                let _ = stream.set_nodelay(true);
                let ctx = ctx.clone();
                let conn = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |req| handle(req, ctx.clone())),
                    );
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(slot);
                });
            }
            () = &mut stop => break,
        }
    }
    ctx.spool.stop();
    drop(listener);
    let _ = tokio::time::timeout(drain, graceful.shutdown()).await;
}

/// Binds an HTTP source's address (at start-up, so that a taken port is an error then).
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_checked_line_by_line() {
        let b = check_batch(b"{\"a\":1}\r\n\n  {\"b\":2}  \n", 100).unwrap();
        assert_eq!(b.lines, b"{\"a\":1}\n{\"b\":2}\n");
        assert_eq!((b.count, b.invalid), (2, 0));
        let b = check_batch(b"{\"a\":1}", 100).unwrap();
        assert_eq!((b.lines.as_slice(), b.count), (&b"{\"a\":1}\n"[..], 1));
        assert_eq!(check_batch(b"", 100).unwrap().count, 0);
        // A bad line is taken (and quarantined later), and reported without its text.
        let b = check_batch(b"{\"a\":1}\n[1,2]\n{\"ip\":\"203.0.113.77\", oops}\n", 100).unwrap();
        assert_eq!((b.count, b.invalid), (3, 2));
        let (line, why) = b.first_invalid.unwrap();
        assert_eq!(line, 2);
        assert!(why.contains("not a JSON object"), "{why}");
        let (s, m) = check_batch(b"[{\"ip\":\"203.0.113.77\"}]\n{\"a\" oops}", 100).unwrap_err();
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(!m.contains("203.0.113.77") && !m.contains("oops"), "{m}");
        let (s, _) = check_batch(&[b'{'; 200], 100).unwrap_err();
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
