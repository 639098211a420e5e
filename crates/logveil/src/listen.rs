//! The network sources of a `logveil run` (`[sources.http]`, `[sources.syslog]`, and a
//! followed stdin, which is read the same way): binds their
//! addresses at start-up, runs their listeners on a small tokio runtime, and stops them in
//! order: stop accepting, let requests in progress finish, write what is queued to the spool,
//! then tell the source's reader (`stream.rs`) that nothing more will come, so that it reads
//! the spool to its end and commits before the process exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use logveil_source::net::{self, SpoolHandle};
use logveil_source::spool::{SEGMENT_BYTES, Spool};

/// What a network source listens on.
#[derive(Clone, Debug)]
pub enum Listen {
    Http(HttpListen),
    Syslog {
        udp: Option<SocketAddr>,
        tcp: Option<SocketAddr>,
        tls: Option<TlsListen>,
    },
    /// A followed standard input (read to its end, even with `--once`).
    Stdin,
}

/// Syslog over TLS: where, and the server's certificate chain and key (PEM files).
#[derive(Clone, Debug)]
pub struct TlsListen {
    pub address: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug)]
pub struct HttpListen {
    pub address: SocketAddr,
    pub path: String,
    pub max_body: usize,
    pub token: Option<String>,
}

impl Listen {
    /// The addresses, for the start-up message.
    pub fn describe(&self) -> String {
        match self {
            Listen::Http(h) => format!("http://{}{}", h.address, h.path),
            Listen::Syslog { udp, tcp, tls } => [
                udp.map(|a| format!("syslog udp {a}")),
                tcp.map(|a| format!("syslog tcp {a}")),
                tls.as_ref().map(|t| format!("syslog tls {}", t.address)),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", "),
            Listen::Stdin => "standard input".into(),
        }
    }
}

/// The spool of a network source: `<spool_dir>/<source>`.
pub fn spool_path(spool_dir: &std::path::Path, source: &str) -> PathBuf {
    spool_dir.join(source)
}

/// Running listeners.
pub struct Listeners {
    runtime: tokio::runtime::Runtime,
    /// Per source: set once its listeners have stopped and its spool holds all they took.
    done: Vec<(String, Arc<AtomicBool>)>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Listeners {
    /// Binds and starts the listeners of `sources` (name, what, spool). `stop` ends them;
    /// a spool that fails sets it too.
    pub fn start(
        sources: &[(String, Listen, Spool)],
        max_line: usize,
        max_backlog: u64,
        stop: Arc<AtomicBool>,
    ) -> Result<Listeners> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("logveil-net")
            .enable_all()
            .build()
            .context("starting the network runtime")?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut done = Vec::new();
        // Standard input last: every address is bound before anything reads (a runtime with a
        // blocked stdin read cannot be dropped).
        let mut sources: Vec<&(String, Listen, Spool)> = sources.iter().collect();
        sources.sort_by_key(|(_, l, _)| matches!(l, Listen::Stdin));
        let started = Self::start_all(
            &runtime,
            &sources,
            max_line,
            max_backlog,
            &stop,
            &errors,
            &mut done,
        );
        if let Err(e) = started {
            runtime.shutdown_background();
            return Err(e);
        }
        Ok(Listeners {
            runtime,
            done,
            errors,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn start_all(
        runtime: &tokio::runtime::Runtime,
        sources: &[&(String, Listen, Spool)],
        max_line: usize,
        max_backlog: u64,
        stop: &Arc<AtomicBool>,
        errors: &Arc<Mutex<Vec<String>>>,
        done: &mut Vec<(String, Arc<AtomicBool>)>,
    ) -> Result<()> {
        for (name, listen, spool) in sources.iter().copied() {
            let writer = spool
                .writer(SEGMENT_BYTES)
                .with_context(|| format!("source {name}: opening its spool"))?;
            let (handle, thread) = SpoolHandle::start(writer, max_backlog, stop.clone());
            let flag = Arc::new(AtomicBool::new(false));
            done.push((name.clone(), flag.clone()));
            let mut servers = tokio::task::JoinSet::new();
            match listen {
                Listen::Http(h) => {
                    let l = runtime
                        .block_on(net::http::bind(h.address))
                        .with_context(|| {
                            format!("source {name}: cannot listen on {} (http)", h.address)
                        })?;
                    let settings = net::http::HttpSettings {
                        source: name.clone(),
                        path: h.path.clone(),
                        max_body: h.max_body,
                        max_line,
                        token: h.token.clone(),
                    };
                    servers.spawn_on(
                        net::http::serve(
                            l,
                            settings,
                            handle.clone(),
                            net::stopped(stop.clone()),
                            Duration::from_secs(5),
                        ),
                        runtime.handle(),
                    );
                }
                Listen::Stdin => {
                    let (errors, stop, name) = (errors.clone(), stop.clone(), name.clone());
                    let read = net::stdin::serve(
                        name.clone(),
                        max_line,
                        handle.clone(),
                        net::stopped(stop.clone()),
                    );
                    servers.spawn_on(
                        async move {
                            if let Err(e) = read.await {
                                errors
                                    .lock()
                                    .expect("errors")
                                    .push(format!("source {name}: reading standard input: {e}"));
                                stop.store(true, Ordering::Relaxed);
                            }
                        },
                        runtime.handle(),
                    );
                }
                Listen::Syslog { udp, tcp, tls } => {
                    let (u, t) = runtime
                        .block_on(net::syslog::bind(*udp, *tcp))
                        .with_context(|| {
                            format!("source {name}: cannot listen on {}", listen.describe())
                        })?;
                    let settings = net::syslog::SyslogSettings {
                        source: name.clone(),
                        max_line,
                    };
                    if let Some(u) = u {
                        servers.spawn_on(
                            net::syslog::serve_udp(
                                u,
                                settings.clone(),
                                handle.clone(),
                                net::stopped(stop.clone()),
                            ),
                            runtime.handle(),
                        );
                    }
                    if let Some(t) = t {
                        servers.spawn_on(
                            net::syslog::serve_tcp(
                                t,
                                None,
                                settings.clone(),
                                handle.clone(),
                                net::stopped(stop.clone()),
                            ),
                            runtime.handle(),
                        );
                    }
                    if let Some(tls) = tls {
                        let acceptor = net::syslog::tls_acceptor(&tls.cert, &tls.key)
                            .map_err(|e| crate::usage(format!("source {name}: {e}")))?;
                        let l = runtime
                            .block_on(tokio::net::TcpListener::bind(tls.address))
                            .with_context(|| {
                                format!(
                                    "source {name}: cannot listen on {} (syslog tls)",
                                    tls.address
                                )
                            })?;
                        servers.spawn_on(
                            net::syslog::serve_tcp(
                                l,
                                Some(acceptor),
                                settings,
                                handle.clone(),
                                net::stopped(stop.clone()),
                            ),
                            runtime.handle(),
                        );
                    }
                }
            }
            let (errors, stop, name) = (errors.clone(), stop.clone(), name.clone());
            runtime.spawn(async move {
                let mut panicked = false;
                while let Some(r) = servers.join_next().await {
                    if r.is_err() && !panicked {
                        panicked = true;
                        errors
                            .lock()
                            .expect("errors")
                            .push(format!("source {name}: a listener failed (panicked)"));
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                handle.close();
                let r = tokio::task::spawn_blocking(move || thread.join()).await;
                let failed = match r {
                    Ok(Ok(Ok(()))) => None,
                    Ok(Ok(Err(e))) => Some(e.to_string()),
                    _ => Some("the spool writer thread panicked".to_string()),
                };
                if let Some(e) = failed {
                    errors
                        .lock()
                        .expect("errors")
                        .push(format!("source {name}: {e}"));
                    stop.store(true, Ordering::Relaxed);
                }
                flag.store(true, Ordering::Release);
            });
        }
        Ok(())
    }

    /// The flag telling source `name`'s reader that its listeners have stopped.
    pub fn done(&self, name: &str) -> Option<Arc<AtomicBool>> {
        self.done
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f.clone())
    }

    /// Waits for the listeners (after `stop`) and returns their spools' errors.
    pub fn finish(self) -> Vec<String> {
        for (_, f) in &self.done {
            while !f.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.runtime.shutdown_timeout(Duration::from_secs(1));
        std::mem::take(&mut *self.errors.lock().expect("errors"))
    }
}
