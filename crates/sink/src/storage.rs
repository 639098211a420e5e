//! A small synchronous facade over `object_store`: whole-object put/get/list/delete, and
//! streaming uploads that become visible atomically.
//!
//! Local disk uses `LocalFileSystem` with fsync on. Because its multipart staging file sits
//! next to the destination (`name#N`), where Spark-style readers that list directories would
//! see it, local uploads go to `<dataset>/_staging/` first and are renamed into their
//! partition when complete. Object stores do the same: a file is uploaded under
//! `<dataset>/_staging/` and published by a server-side copy that refuses to replace an
//! existing object (S3: a multipart copy completed with `If-None-Match`), then the staged
//! object is deleted. So readers listing a partition never see a file that no manifest, or
//! no committed journal, will ever list, even after a crash.
//!
//! Object storage (`s3://`, `gs://`, `az://`: [`Storage::open`]) is reached over HTTP by
//! async clients that need a Tokio runtime: their requests run on one small runtime of the
//! process's own, and the facade waits for them, so it can be called from plain threads and
//! from inside other runtimes alike. Object stores have no locks: objects that several
//! writers update (manifests) are replaced with conditional puts ([`Storage::update`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::executor::block_on;
use futures::stream::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, UpdateVersion,
};

use crate::{Result, SinkError};

/// What [`Storage::lock`] got.
#[derive(Debug)]
pub enum Locked {
    /// The lock, held until this file is dropped.
    Held(std::fs::File),
    /// Another process holds it.
    Busy,
    /// Not local disk: there is nothing to lock.
    NotLocal,
}

/// Where datasets live.
#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    label: String,
    /// Whether requests need the I/O runtime (object storage over HTTP).
    remote: bool,
}

/// The runtime that object storage requests run on (never dropped).
static IO_RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

fn start_io_runtime() -> io::Result<()> {
    if IO_RUNTIME.get().is_none() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("logveil-storage")
            .enable_all()
            .build()?;
        // Another thread may have won: its runtime is used, this one dropped.
        let _ = IO_RUNTIME.set(rt);
    }
    Ok(())
}

/// Runs a storage request to completion: on the I/O runtime for object storage, in place
/// otherwise (local disk and memory need no runtime).
fn run<T: Send + 'static>(remote: bool, fut: impl Future<Output = T> + Send + 'static) -> T {
    match (remote, IO_RUNTIME.get()) {
        (true, Some(rt)) => match block_on(rt.spawn(fut)) {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is never shut down, so its tasks are never cancelled.
            Err(e) => unreachable!("storage request cancelled: {e}"),
        },
        _ => block_on(fut),
    }
}

/// Schemes [`Storage::open`] takes as object storage.
const REMOTE_SCHEMES: &[&str] = &["s3", "s3a", "gs", "az", "abfs", "abfss", "azure"];

/// Whether `location` names object storage (`s3://…`, `gs://…`, `az://…`) rather than a
/// local directory.
pub fn is_remote_location(location: &str) -> bool {
    location
        .split_once("://")
        .is_some_and(|(scheme, _)| REMOTE_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// How often a conditional put is retried against concurrent writers before giving up.
const UPDATE_ATTEMPTS: u32 = 64;

fn store_err(path: &Path) -> impl FnOnce(object_store::Error) -> SinkError + '_ {
    move |source| SinkError::Store {
        path: path.to_string(),
        source,
    }
}

impl Storage {
    /// A local directory (created if missing), with durable (fsynced) writes.
    pub fn local(root: &FsPath) -> Result<Storage> {
        let label = root.display().to_string();
        std::fs::create_dir_all(root).map_err(|source| SinkError::Io {
            path: label.clone(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(root)
            .map_err(|source| SinkError::Root {
                root: label.clone(),
                source,
            })?
            .with_fsync(true)
            // Deleting a partition's last file removes its (now empty) directories.
            .with_automatic_cleanup(true);
        let local_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Ok(Storage {
            store: Arc::new(store),
            local_root: Some(local_root),
            label,
            remote: false,
        })
    }

    /// An output root: a local directory, or object storage named by a URL
    /// (`s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`).
    ///
    /// Object storage is configured like `object_store` (and so like Polars' and Delta
    /// Lake's `storage_options`): from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`
    /// variables: credentials, region, endpoint), then from `options` (keys such as
    /// `aws_endpoint`, `aws_region`, `aws_allow_http`), which win. An unknown option is an
    /// error, not ignored. Options are never echoed in errors (they may hold secrets).
    pub fn open(location: &str, options: &BTreeMap<String, String>) -> Result<Storage> {
        if !is_remote_location(location) {
            if !options.is_empty() {
                return Err(SinkError::Location {
                    location: location.to_string(),
                    what: "storage options apply to object storage only (s3://, gs://, az://)"
                        .into(),
                });
            }
            return Storage::local(FsPath::new(
                location.strip_prefix("file://").unwrap_or(location),
            ));
        }
        let bad = |what: String| SinkError::Location {
            location: location.to_string(),
            what,
        };
        let url = url::Url::parse(location).map_err(|e| bad(format!("not a URL: {e}")))?;
        let scheme = url.scheme().to_string();
        let prefix = Path::from_url_path(url.path().trim_matches('/'))
            .map_err(|e| bad(format!("bad prefix: {e}")))?;
        // The client's TLS (rustls) uses ring, like the syslog listener.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let unknown = |k: &str| bad(format!("unknown storage option {k:?} for {scheme}://"));
        // Scheme, credentials-free user part (Azure's `container@account`) and host.
        let bucket = url[..url::Position::BeforePath].to_string();
        let store: Arc<dyn ObjectStore> = match scheme.as_str() {
            "s3" | "s3a" => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                // Publishing copies a staged file to its name only if that name is free.
                let mut b = AmazonS3Builder::from_env()
                    .with_url(bucket.as_str())
                    .with_config(AmazonS3ConfigKey::CopyIfNotExists, "multipart");
                for (k, v) in options {
                    let key: AmazonS3ConfigKey =
                        k.to_ascii_lowercase().parse().map_err(|_| unknown(k))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "gs" => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut b = GoogleCloudStorageBuilder::from_env().with_url(bucket.as_str());
                for (k, v) in options {
                    let key: GoogleConfigKey =
                        k.to_ascii_lowercase().parse().map_err(|_| unknown(k))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            _ => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = MicrosoftAzureBuilder::from_env().with_url(bucket.as_str());
                for (k, v) in options {
                    let key: AzureConfigKey =
                        k.to_ascii_lowercase().parse().map_err(|_| unknown(k))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
        };
        start_io_runtime().map_err(|e| bad(format!("cannot start the I/O runtime: {e}")))?;
        let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Ok(Storage {
            store,
            local_root: None,
            label: location.trim_end_matches('/').to_string(),
            remote: true,
        })
    }

    /// An in-memory store (tests).
    pub fn memory() -> Storage {
        Storage {
            store: Arc::new(InMemory::new()),
            local_root: None,
            label: "memory://".into(),
            remote: false,
        }
    }

    /// Any `object_store` implementation that needs no runtime (tests: wrappers of the
    /// in-memory store).
    pub fn object_store(store: Arc<dyn ObjectStore>, label: String) -> Storage {
        Storage {
            store,
            local_root: None,
            label,
            remote: false,
        }
    }

    /// As [`object_store`](Self::object_store), treated as object storage: no locks,
    /// conditional puts and leases (tests of those paths with a wrapped in-memory store).
    pub fn object_store_remote(store: Arc<dyn ObjectStore>, label: String) -> Storage {
        Storage {
            store,
            local_root: None,
            label,
            remote: true,
        }
    }

    /// The store itself (for readers such as DataFusion), rooted at the output root.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Whether this is object storage (no locks, no renames: conditional puts instead).
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        run(self.remote, fut)
    }

    /// A request of [`store`](Self::store) to await from another async runtime (a query
    /// engine's): object storage requests run on the storage's own I/O runtime, whose HTTP
    /// connections live there; others run in place.
    pub fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> futures::future::BoxFuture<'static, T> {
        use futures::FutureExt;
        match (self.remote, IO_RUNTIME.get()) {
            (true, Some(rt)) => {
                let task = rt.spawn(fut);
                async move {
                    match task.await {
                        Ok(v) => v,
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        Err(e) => unreachable!("storage request cancelled: {e}"),
                    }
                }
                .boxed()
            }
            _ => fut.boxed(),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The local root directory, when the storage is local disk.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }

    pub fn get(&self, path: &Path) -> Result<Option<Bytes>> {
        Ok(self.get_versioned(path)?.map(|(b, _)| b))
    }

    /// An object and its version (ETag), for a later [`Storage::update`]-style conditional
    /// put.
    pub fn get_versioned(&self, path: &Path) -> Result<Option<(Bytes, UpdateVersion)>> {
        let (store, p) = (self.store.clone(), path.clone());
        self.run(async move {
            match store.get(&p).await {
                Ok(r) => {
                    let version = UpdateVersion {
                        e_tag: r.meta.e_tag.clone(),
                        version: r.meta.version.clone(),
                    };
                    Ok(Some((r.bytes().await?, version)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(store_err(path))
    }

    /// Writes a whole object atomically (durably on local disk).
    pub fn put(&self, path: &Path, data: Bytes) -> Result<()> {
        let (store, p) = (self.store.clone(), path.clone());
        self.run(async move { store.put(&p, PutPayload::from(data)).await })
            .map_err(store_err(path))?;
        Ok(())
    }

    /// Replaces an object with what `f` makes of its current content (`None`: absent),
    /// unless `f` returns `None`. On local disk the caller holds the lock that serialises
    /// writers, and this is a read and a put. On object storage it is a conditional put
    /// (create if absent, else replace only the version read) retried against concurrent
    /// writers, so that no writer's change is lost. Returns whether it wrote.
    pub fn update<F>(&self, path: &Path, mut f: F) -> Result<bool>
    where
        F: FnMut(Option<&Bytes>) -> Result<Option<Bytes>>,
    {
        if !self.remote {
            let old = self.get(path)?;
            let Some(new) = f(old.as_ref())? else {
                return Ok(false);
            };
            self.put(path, new)?;
            return Ok(true);
        }
        for attempt in 0..UPDATE_ATTEMPTS {
            let old = self.get_versioned(path)?;
            let Some(new) = f(old.as_ref().map(|(b, _)| b))? else {
                return Ok(false);
            };
            let mode = match old {
                Some((_, v)) => PutMode::Update(v),
                None => PutMode::Create,
            };
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            let (store, p) = (self.store.clone(), path.clone());
            match self.run(async move { store.put_opts(&p, PutPayload::from(new), opts).await }) {
                Ok(_) => return Ok(true),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => {
                    // Another writer got there first: read its version and apply again.
                    std::thread::sleep(Duration::from_millis(5 + 5 * u64::from(attempt.min(20))));
                }
                Err(e) => return Err(store_err(path)(e)),
            }
        }
        Err(SinkError::Contended {
            path: path.to_string(),
            attempts: UPDATE_ATTEMPTS,
        })
    }

    /// Writes `data` only if the object is still at version `expect` (`None`: only if it does
    /// not exist); the new version, or `Ok(None)` if another writer changed it first. Object
    /// storage only: on local disk this is a plain put (writers hold a lock) and the version
    /// is empty.
    pub fn put_versioned(
        &self,
        path: &Path,
        data: Bytes,
        expect: Option<UpdateVersion>,
    ) -> Result<Option<UpdateVersion>> {
        if !self.remote {
            self.put(path, data)?;
            return Ok(Some(UpdateVersion {
                e_tag: None,
                version: None,
            }));
        }
        let opts = PutOptions {
            mode: match expect {
                Some(v) => PutMode::Update(v),
                None => PutMode::Create,
            },
            ..PutOptions::default()
        };
        let (store, p) = (self.store.clone(), path.clone());
        match self.run(async move { store.put_opts(&p, PutPayload::from(data), opts).await }) {
            Ok(r) => Ok(Some(UpdateVersion {
                e_tag: r.e_tag,
                version: r.version,
            })),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Ok(None),
            Err(e) => Err(store_err(path)(e)),
        }
    }

    /// Every object under `prefix`, at any depth.
    pub fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        let (store, p) = (self.store.clone(), prefix.clone());
        self.run(async move { store.list(Some(&p)).try_collect().await })
            .map_err(store_err(prefix))
    }

    /// One level under `prefix`: its objects and its "directories" (common prefixes).
    pub fn list_level(&self, prefix: &Path) -> Result<ListResult> {
        let (store, p) = (self.store.clone(), prefix.clone());
        self.run(async move { store.list_with_delimiter(Some(&p)).await })
            .map_err(store_err(prefix))
    }

    /// Takes an advisory lock on the file `<root>/<rel>` (created if missing), held until the
    /// returned file is dropped (or its process dies). Local disk only: object stores have no
    /// such locks ([`Locked::NotLocal`]). With `wait` false, a lock held elsewhere gives
    /// [`Locked::Busy`] at once.
    pub fn lock(&self, rel: &str, wait: bool) -> Result<Locked> {
        let Some(root) = &self.local_root else {
            return Ok(Locked::NotLocal);
        };
        let path = root.join(rel);
        let io = |source| SinkError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        if wait {
            f.lock().map_err(io)?;
            return Ok(Locked::Held(f));
        }
        match f.try_lock() {
            Ok(()) => Ok(Locked::Held(f)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(Locked::Busy),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// Whether an object exists.
    pub fn exists(&self, path: &Path) -> Result<bool> {
        let (store, p) = (self.store.clone(), path.clone());
        match self.run(async move { store.head(&p).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_err(path)(e)),
        }
    }

    /// Writes a whole object only if none exists under that name; `Ok(false)` if one does.
    pub fn put_new(&self, path: &Path, data: Bytes) -> Result<bool> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let (store, p) = (self.store.clone(), path.clone());
        match self.run(async move { store.put_opts(&p, PutPayload::from(data), opts).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(store_err(path)(e)),
        }
    }

    pub fn delete(&self, path: &Path) -> Result<()> {
        let (store, p) = (self.store.clone(), path.clone());
        match self.run(async move { store.delete(&p).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(path)(e)),
        }
    }

    /// Makes a finished upload visible under its final name: an atomic, durable rename that
    /// refuses to replace an existing object.
    pub fn publish(&self, c: &Committed) -> Result<()> {
        let Some(staged) = &c.staged else {
            return Ok(());
        };
        let (store, from, to) = (self.store.clone(), staged.clone(), c.dest.clone());
        match self.run(async move { store.rename_if_not_exists(&from, &to).await }) {
            Ok(()) => Ok(()),
            // A rename interrupted between its link and its unlink (local disk: a crash)
            // leaves both names on one file: finish it.
            Err(object_store::Error::AlreadyExists { .. }) if self.same_file(staged, &c.dest) => {
                self.delete(staged)
            }
            // Object storage: a publish interrupted between its copy and the removal of the
            // staged object leaves the same bytes under both names.
            Err(object_store::Error::AlreadyExists { .. })
                if self.remote && self.holds(&c.dest, c)? =>
            {
                self.delete(staged)
            }
            // Another process published it meanwhile (a recovery racing the run that
            // wrote it): the staged copy is gone and the file is in place.
            Err(object_store::Error::NotFound { .. }) if self.holds(&c.dest, c)? => Ok(()),
            Err(
                object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. },
            ) => {
                let (store, from, to) = (self.store.clone(), staged.clone(), c.dest.clone());
                self.run(async move { store.rename(&from, &to).await })
                    .map_err(store_err(&c.dest))
            }
            Err(e) => Err(store_err(&c.dest)(e)),
        }
    }

    /// Makes a finished upload visible under its final name, replacing what is there in one
    /// step (local disk: an atomic rename; object stores: one server-side copy of the staged
    /// object over the name, then the staged object deleted). Readers see the old object or
    /// the new one, never neither or a mix. For objects that are recomputed whole (a
    /// rollup's file, a file an erasure rewrote).
    pub fn replace(&self, c: &Committed) -> Result<()> {
        let Some(staged) = &c.staged else {
            return Ok(());
        };
        let (store, from, to) = (self.store.clone(), staged.clone(), c.dest.clone());
        self.run(async move { store.rename(&from, &to).await })
            .map_err(store_err(&c.dest))
    }

    /// Whether the object at `path` is the finished upload `c` (same size and BLAKE3).
    fn holds(&self, path: &Path, c: &Committed) -> Result<bool> {
        match self.get(path)? {
            Some(b) => {
                Ok(b.len() as u64 == c.bytes && blake3::hash(&b).to_hex().as_str() == c.blake3)
            }
            None => Ok(false),
        }
    }

    /// Whether two names are one file (local disk: the same inode).
    fn same_file(&self, a: &Path, b: &Path) -> bool {
        #[cfg(unix)]
        if let Some(root) = &self.local_root {
            use std::os::unix::fs::MetadataExt;
            let m = |p: &Path| std::fs::metadata(root.join(p.as_ref())).ok();
            return matches!((m(a), m(b)), (Some(x), Some(y)) if x.dev() == y.dev() && x.ino() == y.ino());
        }
        let _ = (a, b);
        false
    }

    /// Removes a finished upload that will not be published: its staged object (local
    /// disk), or the object itself (object stores, where completing an upload published it).
    /// File names are unique per run, so this never removes another run's file.
    pub fn discard(&self, c: &Committed) -> Result<()> {
        match &c.staged {
            Some(staged) => self.delete(staged),
            None => self.delete(&c.dest),
        }
    }

    /// Starts an upload that appears at `dest` only when [`Upload::commit`] succeeds.
    /// `staging` is where it is written first on local disk.
    pub fn upload(&self, dest: Path, staging: Path) -> Result<Upload> {
        let target = staging;
        let part_size = if self.remote {
            PART_SIZE
        } else {
            LOCAL_PART_SIZE
        };
        let (store, t) = (self.store.clone(), target.clone());
        let inner = self
            .run(async move { store.put_multipart(&t).await })
            .map_err(store_err(&target))?;
        Ok(Upload {
            remote: self.remote,
            inner: Some(inner),
            target,
            dest,
            buf: Vec::new(),
            part_size,
            hasher: blake3::Hasher::new(),
            bytes: 0,
        })
    }
}

/// Parts of 8 MiB for object stores: above S3's 5 MiB minimum, small enough to bound memory.
const PART_SIZE: usize = 8 << 20;
/// Local disk has no minimum part size: write through in 1 MiB pieces.
const LOCAL_PART_SIZE: usize = 1 << 20;

/// A streaming upload; implements `Write`, hashes (BLAKE3) and counts what passes through.
pub struct Upload {
    remote: bool,
    inner: Option<Box<dyn MultipartUpload>>,
    target: Path,
    dest: Path,
    buf: Vec<u8>,
    part_size: usize,
    hasher: blake3::Hasher,
    bytes: u64,
}

/// A finished upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub bytes: u64,
    pub blake3: String,
    /// Where the complete object waits to be published (local disk), if anywhere.
    pub staged: Option<Path>,
    pub dest: Path,
}

impl Upload {
    fn send_part(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = Bytes::from(std::mem::take(&mut self.buf));
        let up = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("upload already finished"))?;
        let part = up.put_part(PutPayload::from(data));
        run(self.remote, part).map_err(io::Error::other)
    }

    /// Finishes the upload: the object is complete and durable in its staging place, still
    /// invisible to readers, until [`Storage::publish`].
    pub fn finish(mut self) -> Result<Committed> {
        if let Err(source) = self.send_part() {
            return Err(SinkError::Io {
                path: self.dest.to_string(),
                source,
            });
        }
        let Some(mut up) = self.inner.take() else {
            return Err(SinkError::Io {
                path: self.dest.to_string(),
                source: io::Error::other("upload already finished"),
            });
        };
        run(self.remote, async move { up.complete().await }).map_err(store_err(&self.target))?;
        Ok(Committed {
            bytes: self.bytes,
            blake3: self.hasher.finalize().to_hex().to_string(),
            staged: (self.target != self.dest).then(|| self.target.clone()),
            dest: self.dest.clone(),
        })
    }
}

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.part_size {
            self.send_part()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(mut up) = self.inner.take() {
            // Not committed: remove the staged parts. Nothing was visible.
            let _ = run(self.remote, async move { up.abort().await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_is_invisible_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::local(dir.path()).unwrap();
        let dest = Path::from("d/dt=2026-01-01/hour=00/part-1.parquet");
        let mut up = s
            .upload(dest.clone(), Path::from("d/_staging/part-1.parquet.tmp"))
            .unwrap();
        up.write_all(b"hello").unwrap();
        assert!(s.get(&dest).unwrap().is_none());
        let c = up.finish().unwrap();
        assert_eq!(c.bytes, 5);
        assert_eq!(c.blake3, blake3::hash(b"hello").to_hex().to_string());
        assert!(
            s.get(&dest).unwrap().is_none(),
            "finished but not yet published"
        );
        s.publish(&c).unwrap();
        assert_eq!(&s.get(&dest).unwrap().unwrap()[..], b"hello");
        // Publishing never replaces an existing object.
        let mut again = s
            .upload(dest.clone(), Path::from("d/_staging/part-1.parquet.tmp"))
            .unwrap();
        again.write_all(b"other").unwrap();
        let c2 = again.finish().unwrap();
        assert!(s.publish(&c2).is_err());
        s.discard(&c2).unwrap();
        assert_eq!(&s.get(&dest).unwrap().unwrap()[..], b"hello");
        let left: Vec<_> = walk(dir.path())
            .into_iter()
            .filter(|p| p.contains("_staging/"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// A publish interrupted between link and unlink (kill -9) leaves the file under both
    /// names; publishing again finishes it instead of failing.
    #[cfg(unix)]
    #[test]
    fn an_interrupted_publish_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::local(dir.path()).unwrap();
        let dest = Path::from("d/dt=2026-01-01/hour=00/part-1.parquet");
        let mut up = s
            .upload(dest.clone(), Path::from("d/_staging/part-1.parquet.tmp"))
            .unwrap();
        up.write_all(b"data").unwrap();
        let c = up.finish().unwrap();
        let staged = dir.path().join("d/_staging/part-1.parquet.tmp");
        let final_ = dir.path().join("d/dt=2026-01-01/hour=00/part-1.parquet");
        std::fs::create_dir_all(final_.parent().unwrap()).unwrap();
        std::fs::hard_link(&staged, &final_).unwrap();
        s.publish(&c).unwrap();
        assert!(!staged.exists());
        assert_eq!(std::fs::read(&final_).unwrap(), b"data");
        // A different file under the name is still a conflict.
        let mut other = s
            .upload(dest.clone(), Path::from("d/_staging/part-1.parquet.tmp"))
            .unwrap();
        other.write_all(b"other").unwrap();
        let c2 = other.finish().unwrap();
        assert!(s.publish(&c2).is_err());
    }

    #[test]
    fn dropped_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::local(dir.path()).unwrap();
        let mut up = s
            .upload(
                Path::from("d/x.parquet"),
                Path::from("d/_staging/x.parquet.tmp"),
            )
            .unwrap();
        up.write_all(&vec![7u8; PART_SIZE + 10]).unwrap();
        drop(up);
        let files: Vec<_> = walk(dir.path())
            .into_iter()
            .filter(|p| !p.ends_with('/'))
            .collect();
        assert!(files.is_empty(), "{files:?}");
    }

    fn walk(p: &FsPath) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
        out
    }
}
