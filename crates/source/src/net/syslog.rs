//! The `syslog` network source: messages over UDP (one per datagram), TCP (RFC 6587:
//! octet-counted `LEN SP MSG` frames or newline-terminated ones, told apart per frame: `LEN SP
//! <` starts an octet-counted frame, anything else is newline-terminated) and TLS (RFC 5425: the same framing inside TLS 1.2/1.3, rustls with
//! ring), each appended to the source's spool as one line (newlines inside a
//! message become spaces; a message longer than the line limit is cut, and counted).
//!
//! Syslog has no acknowledgement: what a sender wrote is safe once appended, which happens
//! every [`FLUSH_AFTER`] or [`BATCH_BYTES`], whichever comes first. Under backpressure, TCP
//! connections stop being read and UDP datagrams are dropped (counted as
//! `logveil_syslog_dropped_total{reason="backpressure"}`).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};

use super::{AppendError, SpoolHandle, push_line};

/// Settings of one syslog source.
#[derive(Clone, Debug)]
pub struct SyslogSettings {
    /// The source's name (metrics label).
    pub source: String,
    /// Longest message kept whole.
    pub max_line: usize,
}

/// Messages of a connection (or of the UDP socket) are appended at least this often.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);
/// … or once this many bytes are waiting.
pub const BATCH_BYTES: usize = 256 * 1024;
/// TCP connections at most; more are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;

fn counted(s: &SyslogSettings, transport: &'static str, n: u64, cut: u64) {
    metrics::counter!("logveil_syslog_messages_total", "source" => s.source.clone(), "transport" => transport)
        .increment(n);
    if cut > 0 {
        metrics::counter!("logveil_syslog_truncated_total", "source" => s.source.clone())
            .increment(cut);
    }
}

/// Frames of a TCP stream (RFC 6587), or newline-terminated lines only.
#[derive(Default)]
pub(crate) struct Framer {
    /// Bytes read; those before `pos` are used up (dropped at the next [`Framer::feed`], not
    /// at every frame).
    buf: Vec<u8>,
    pos: usize,
    /// Lines only (stdin): no octet counting.
    lines_only: bool,
    /// Bytes of an over-long frame still to skip (octet-counted), or `u64::MAX` to skip to
    /// the next newline.
    skip: u64,
}

impl Framer {
    /// Adds bytes read.
    pub(crate) fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// What is not used up yet.
    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }

    /// A framer of newline-terminated lines only.
    pub(crate) fn lines() -> Framer {
        Framer {
            lines_only: true,
            ..Framer::default()
        }
    }
    /// Whether the buffer starts with an octet count (`LEN SP <PRI>…`): the number of its
    /// digits. A message without a PRI that starts with digits is newline-framed.
    fn octet_count(&self) -> Option<usize> {
        if self.lines_only {
            return None;
        }
        let b = self.rest();
        if !b.first()?.is_ascii_digit() || b[0] == b'0' {
            return None;
        }
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        (digits <= 9 && b.get(digits) == Some(&b' ') && b.get(digits + 1) == Some(&b'<'))
            .then_some(digits)
    }

    /// Whether more bytes could still make the start an octet count.
    fn maybe_octet_count(&self) -> bool {
        if self.lines_only {
            return false;
        }
        let b = self.rest();
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        digits > 0
            && digits <= 9
            && b[0] != b'0'
            && (digits == b.len() || (b[digits] == b' ' && digits + 1 == b.len()))
    }

    /// Cuts the next complete frame off the buffer; `eof` makes a last unterminated frame
    /// complete. Returns the message and whether it was cut short.
    pub(crate) fn next(&mut self, max: usize, eof: bool, out: &mut Vec<u8>) -> Option<bool> {
        // Skipping the rest of an over-long frame.
        if self.skip == u64::MAX {
            match memchr::memchr(b'\n', self.rest()) {
                Some(i) => {
                    self.consume(i + 1);
                    self.skip = 0;
                }
                None => {
                    self.clear();
                    return None;
                }
            }
        } else if self.skip > 0 {
            let n = (self.skip as usize).min(self.rest().len());
            self.consume(n);
            self.skip -= n as u64;
            if self.skip > 0 {
                return None;
            }
        }
        if self.lines_only {
            // Every newline ends a line, as in a file: blank lines and control bytes stay.
            let (end, used) = match memchr::memchr(b'\n', self.rest()) {
                Some(i) => (i, i + 1),
                None if self.rest().len() > max => {
                    out.extend_from_slice(&self.rest()[..max]);
                    out.push(b'\n');
                    self.clear();
                    self.skip = u64::MAX;
                    return Some(true);
                }
                None if eof && !self.rest().is_empty() => (self.rest().len(), self.rest().len()),
                None => return None,
            };
            let cut = end > max;
            out.extend_from_slice(&self.rest()[..end.min(max)]);
            out.push(b'\n');
            self.consume(used);
            return Some(cut);
        }
        // Separators between frames.
        let lead = self
            .rest()
            .iter()
            .take_while(|b| matches!(b, b'\n' | b'\r' | 0))
            .count();
        self.consume(lead);
        if self.rest().is_empty() {
            return None;
        }
        // (start, length, bytes consumed) of the message.
        let (start, len, used) = if let Some(digits) = self.octet_count() {
            let len: usize = std::str::from_utf8(&self.rest()[..digits])
                .ok()?
                .parse()
                .ok()?;
            let start = digits + 1;
            if len > max {
                if self.rest().len() < start + max {
                    return None;
                }
                push_line(out, &self.rest()[start..start + max], max);
                let take = (self.rest().len() - start).min(len);
                self.consume(start + take);
                self.skip = (len - take) as u64;
                return Some(true);
            }
            if self.rest().len() < start + len {
                return None;
            }
            (start, len, start + len)
        } else {
            if !eof && self.maybe_octet_count() {
                return None; // too short to tell
            }
            match memchr::memchr(b'\n', self.rest()) {
                Some(i) => (0, i, i + 1),
                None if self.rest().len() > max => {
                    push_line(out, &self.rest()[..max], max);
                    self.clear();
                    self.skip = u64::MAX;
                    return Some(true);
                }
                None if eof => (0, self.rest().len(), self.rest().len()),
                None => return None,
            }
        };
        let cut = push_line(out, &self.rest()[start..start + len], max);
        self.consume(used);
        Some(cut)
    }
}

async fn connection<S: AsyncRead + Unpin>(
    mut stream: S,
    s: SyslogSettings,
    spool: SpoolHandle,
    transport: &'static str,
) {
    let mut framer = Framer::default();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut pending = Vec::with_capacity(BATCH_BYTES);
    let (mut n, mut cut) = (0u64, 0u64);
    let mut eof = false;
    let mut flush_at = tokio::time::Instant::now() + FLUSH_AFTER;
    loop {
        // Frames already read.
        while let Some(c) = framer.next(s.max_line, eof, &mut pending) {
            n += 1;
            cut += u64::from(c);
        }
        let due = tokio::time::Instant::now() >= flush_at;
        if !pending.is_empty() && (pending.len() >= BATCH_BYTES || due || eof) {
            let data = std::mem::replace(&mut pending, Vec::with_capacity(BATCH_BYTES));
            if spool.append_waiting(data).await.is_err() {
                return; // stopping, or the spool failed (reported by its writer)
            }
            counted(&s, transport, n, cut);
            (n, cut) = (0, 0);
        }
        if due || pending.is_empty() {
            flush_at = tokio::time::Instant::now() + FLUSH_AFTER;
        }
        if eof {
            return;
        }
        // Backpressure: stop reading; the sender's window fills.
        spool.wait_for_room(Duration::from_millis(50)).await;
        if spool.stopping() {
            // Read what the kernel holds, then stop.
            eof = true;
        }
        tokio::select! {
            r = tokio::time::timeout(IDLE_AFTER, stream.read(&mut chunk)) => match r {
                // Closed, failed, or silent for too long: the connection ends (its slot is
                // for senders that send).
                Ok(Ok(0) | Err(_)) | Err(_) => eof = true,
                Ok(Ok(k)) => framer.feed(&chunk[..k]),
            },
            () = tokio::time::sleep_until(flush_at), if !pending.is_empty() => {}
            () = tokio::time::sleep(Duration::from_millis(100)), if pending.is_empty() => {}
        }
    }
}

/// A TLS handshake must finish within this long…
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(5);
/// … and at most this many are under way at once (they cost CPU; more are closed at once).
const HANDSHAKES: usize = 64;
/// A connection that sends nothing for this long is closed.
const IDLE_AFTER: Duration = Duration::from_secs(300);

/// Serves syslog over TCP, or over TLS (RFC 5425) with `tls`, until `stop` resolves.
pub async fn serve_tcp(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    settings: SyslogSettings,
    spool: SpoolHandle,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tasks = tokio::task::JoinSet::new();
    let handshakes = std::sync::Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if tasks.len() >= MAX_CONNECTIONS {
                    metrics::counter!("logveil_syslog_connections_refused_total", "source" => settings.source.clone())
                        .increment(1);
                    continue; // closed: too many connections
                }
                match &tls {
                    None => {
                        tasks.spawn(connection(stream, settings.clone(), spool.clone(), "tcp"));
                    }
                    Some(acceptor) => {
                        let Ok(slot) = handshakes.clone().try_acquire_owned() else {
                            metrics::counter!("logveil_syslog_tls_handshakes_failed_total", "source" => settings.source.clone())
                                .increment(1);
                            continue; // closed: too many handshakes at once
                        };
                        let (acceptor, settings, spool) = (acceptor.clone(), settings.clone(), spool.clone());
                        tasks.spawn(async move {
                            // A handshake that does not finish in time is dropped.
                            let shaken = tokio::time::timeout(HANDSHAKE_WITHIN, acceptor.accept(stream)).await;
                            drop(slot);
                            match shaken {
                                Ok(Ok(tls)) => connection(tls, settings, spool, "tls").await,
                                _ => {
                                    metrics::counter!("logveil_syslog_tls_handshakes_failed_total", "source" => settings.source.clone())
                                        .increment(1);
                                }
                            }
                        });
                    }
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = &mut stop => break,
        }
    }
    spool.stop();
    drop(listener);
    // Connections append what they hold, then end.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// Serves syslog over UDP until `stop` resolves.
pub async fn serve_udp(
    socket: UdpSocket,
    settings: SyslogSettings,
    spool: SpoolHandle,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let dropped_backpressure = metrics::counter!("logveil_syslog_dropped_total", "source" => settings.source.clone(), "reason" => "backpressure");
    let mut buf = vec![0u8; 65536];
    let mut pending = Vec::with_capacity(BATCH_BYTES);
    let (mut n, mut cut) = (0u64, 0u64);
    let mut flush_at = tokio::time::Instant::now() + FLUSH_AFTER;
    loop {
        let stopping = tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((k, _peer)) = r {
                    if spool.backpressured() {
                        dropped_backpressure.increment(1);
                    } else {
                        n += 1;
                        cut += u64::from(push_line(&mut pending, &buf[..k], settings.max_line));
                    }
                }
                false
            }
            () = tokio::time::sleep_until(flush_at) => false,
            () = &mut stop => true,
        };
        let now = tokio::time::Instant::now();
        if !pending.is_empty() && (pending.len() >= BATCH_BYTES || now >= flush_at || stopping) {
            let data = std::mem::replace(&mut pending, Vec::with_capacity(BATCH_BYTES));
            match spool.append(data).await {
                Ok(()) => counted(&settings, "udp", n, cut),
                // UDP cannot wait: what the queue has no room for is dropped, and counted.
                Err(AppendError::Busy) => {
                    metrics::counter!("logveil_syslog_dropped_total", "source" => settings.source.clone(), "reason" => "queue_full")
                        .increment(n);
                }
                Err(_) => return,
            }
            (n, cut) = (0, 0);
        }
        if now >= flush_at {
            flush_at = now + FLUSH_AFTER;
        }
        if stopping {
            spool.stop();
            return;
        }
    }
}

/// The TLS settings of a syslog source from its certificate chain and private key (PEM
/// files): TLS 1.2 and 1.3, no client certificates.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| format!("tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls_cert {}: no certificate in it (PEM, \"BEGIN CERTIFICATE\")",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "tls_key {}: {e} (PEM: PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_cert and tls_key do not make a usable pair: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

/// Binds a syslog source's sockets (at start-up, so that a taken port is an error then).
pub async fn bind(
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
) -> std::io::Result<(Option<UdpSocket>, Option<TcpListener>)> {
    let u = match udp {
        Some(a) => Some(UdpSocket::bind(a).await?),
        None => None,
    };
    let t = match tcp {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    Ok((u, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[&[u8]], max: usize) -> (Vec<String>, usize) {
        let mut f = Framer::default();
        let mut out = Vec::new();
        let mut cut = 0;
        for (i, part) in input.iter().enumerate() {
            f.feed(part);
            let eof = i + 1 == input.len();
            while let Some(c) = f.next(max, eof, &mut out) {
                cut += usize::from(c);
            }
        }
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        (lines, cut)
    }

    #[test]
    fn newline_and_octet_counted_frames_mix() {
        let (l, cut) = frames(
            &[
                b"<13>1 a\n",
                b"11 <13>1 b\nc",
                b"d\n<13>x",
                b"\r\n",
                b"6 <1>a",
                b"\nc",
            ],
            100,
        );
        assert_eq!(l, vec!["<13>1 a", "<13>1 b cd", "<13>x", "<1>a c"]);
        assert_eq!(cut, 0);
    }

    #[test]
    fn long_frames_are_cut_and_the_stream_stays_in_step() {
        let (l, cut) = frames(&[b"20 <1>aaaaaaa", b"bbbbbbbbbb<1>next\n"], 5);
        assert_eq!(l, vec!["<1>aa", "<1>ne"]);
        assert_eq!(cut, 2);
        let (l, cut) = frames(&[b"<1>xxxxxxxxxxxx", b"yyyy\n<2>ok\n"], 8);
        assert_eq!(l, vec!["<1>xxxxx", "<2>ok"]);
        assert_eq!(cut, 1);
    }

    #[test]
    fn lines_only_keeps_every_line_as_it_is() {
        let mut f = Framer::lines();
        let mut out = Vec::new();
        f.feed(b"12 <1>a\n\n\r\n\0x\ry\nlast");
        let mut n = 0;
        while f.next(100, true, &mut out).is_some() {
            n += 1;
        }
        assert_eq!(n, 5);
        assert_eq!(out, b"12 <1>a\n\n\r\n\0x\ry\nlast\n");
    }

    #[test]
    fn messages_starting_with_digits_are_newline_framed() {
        let (l, _) = frames(
            &[b"12x <1>a\n2026-11-27 b\n", b"6 <1>abc", b"12 no pri\n"],
            100,
        );
        assert_eq!(l, vec!["12x <1>a", "2026-11-27 b", "<1>abc", "12 no pri"]);
        // Split inside the count: waits for the bytes that tell.
        let (l, _) = frames(&[b"1", b"0", b" ", b"<1>abcdef", b"g\n"], 100);
        assert_eq!(l, vec!["<1>abcdefg"]);
    }
}
