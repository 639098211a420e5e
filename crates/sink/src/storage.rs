//! A small synchronous facade over `object_store`: whole-object put/get/list/delete, and
//! streaming uploads that become visible atomically.
//!
//! Local disk uses `LocalFileSystem` with fsync on. Because its multipart staging file sits
//! next to the destination (`name#N`), where Spark-style readers that list directories would
//! see it, local uploads go to `<dataset>/_staging/` first and are renamed into their
//! partition when complete. Object stores publish a multipart upload atomically on completion,
//! so they upload straight to the final name.

use std::io::{self, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::executor::block_on;
use futures::stream::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload,
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
}

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
        })
    }

    /// An in-memory store (tests).
    pub fn memory() -> Storage {
        Storage {
            store: Arc::new(InMemory::new()),
            local_root: None,
            label: "memory://".into(),
        }
    }

    /// Any `object_store` implementation (S3, GCS, Azure…).
    pub fn object_store(store: Arc<dyn ObjectStore>, label: String) -> Storage {
        Storage {
            store,
            local_root: None,
            label,
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
        match block_on(self.store.get(path)) {
            Ok(r) => Ok(Some(block_on(r.bytes()).map_err(store_err(path))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(path)(e)),
        }
    }

    /// Writes a whole object atomically (durably on local disk).
    pub fn put(&self, path: &Path, data: Bytes) -> Result<()> {
        block_on(self.store.put(path, PutPayload::from(data))).map_err(store_err(path))?;
        Ok(())
    }

    /// Every object under `prefix`, at any depth.
    pub fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        block_on(self.store.list(Some(prefix)).try_collect()).map_err(store_err(prefix))
    }

    /// One level under `prefix`: its objects and its "directories" (common prefixes).
    pub fn list_level(&self, prefix: &Path) -> Result<ListResult> {
        block_on(self.store.list_with_delimiter(Some(prefix))).map_err(store_err(prefix))
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
        match block_on(self.store.head(path)) {
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
        match block_on(self.store.put_opts(path, PutPayload::from(data), opts)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(store_err(path)(e)),
        }
    }

    pub fn delete(&self, path: &Path) -> Result<()> {
        match block_on(self.store.delete(path)) {
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
        match block_on(self.store.rename_if_not_exists(staged, &c.dest)) {
            Ok(()) => Ok(()),
            // A rename interrupted between its link and its unlink (local disk: a crash)
            // leaves both names on one file: finish it.
            Err(object_store::Error::AlreadyExists { .. }) if self.same_file(staged, &c.dest) => {
                self.delete(staged)
            }
            Err(object_store::Error::NotImplemented { .. }) => {
                block_on(self.store.rename(staged, &c.dest)).map_err(store_err(&c.dest))
            }
            Err(e) => Err(store_err(&c.dest)(e)),
        }
    }

    /// Makes a finished upload visible under its final name, replacing what is there in one
    /// step (local disk: an atomic rename; object stores: the upload already replaced it).
    /// Readers see the old object or the new one, never neither or a mix. For objects that
    /// are recomputed whole, such as a rollup's file.
    pub fn replace(&self, c: &Committed) -> Result<()> {
        let Some(staged) = &c.staged else {
            return Ok(());
        };
        block_on(self.store.rename(staged, &c.dest)).map_err(store_err(&c.dest))
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
        let local = self.local_root.is_some();
        let target = if local { staging } else { dest.clone() };
        let part_size = if local { LOCAL_PART_SIZE } else { PART_SIZE };
        let inner = block_on(self.store.put_multipart(&target)).map_err(store_err(&target))?;
        Ok(Upload {
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
        block_on(up.put_part(PutPayload::from(data))).map_err(io::Error::other)
    }

    /// Finishes the upload. On local disk the object is complete and durable in its staging
    /// place, still invisible to readers, until [`Storage::publish`]; on object stores it is
    /// visible under its final name now.
    pub fn finish(mut self) -> Result<Committed> {
        if let Err(source) = self.send_part() {
            return Err(SinkError::Io {
                path: self.dest.to_string(),
                source,
            });
        }
        let mut up = self.inner.take().expect("upload is live until finish");
        block_on(up.complete()).map_err(store_err(&self.target))?;
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
            let _ = block_on(up.abort());
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
