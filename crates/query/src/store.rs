//! Object-storage roots for DataFusion: a read-only adapter that presents the sink's store
//! (`object_store` 0.14, with its credentials, endpoint and I/O runtime) as the
//! `object_store` 0.13 that DataFusion 55 reads through.
//!
//! The adapter is registered for the root's bucket (`s3://bucket`), and tables are listed
//! at their real URLs (`s3://bucket/prefix/<dataset>/`), so DataFusion's messages name real
//! objects. Paths under the root's prefix are handed to the sink's store (itself rooted at
//! the prefix); anything else is not found. Requests run on the sink's I/O runtime
//! ([`Storage::spawn`]); a body is read whole there (DataFusion asks for byte ranges: a
//! footer, a column chunk) and handed over as one chunk. Writes are refused: queries,
//! finds and exports only read; erasures write through the sink's [`Storage`].

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use logveil_sink::Storage;
use object_store as os14;
use object_store_df as os13;
use os13::path::Path;

/// The sink's store seen as DataFusion's `object_store`.
#[derive(Debug)]
pub(crate) struct RootStore {
    storage: Storage,
    /// The root's prefix inside the bucket (no slashes at either end; empty for a bucket).
    prefix: String,
}

impl RootStore {
    pub(crate) fn new(storage: Storage, prefix: &str) -> RootStore {
        RootStore {
            storage,
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    /// The sink's path for a bucket path, `None` outside the root.
    fn inner(&self, p: &Path) -> Option<os14::path::Path> {
        let rest = if self.prefix.is_empty() {
            p.as_ref()
        } else {
            let rest = p.as_ref().strip_prefix(self.prefix.as_str())?;
            if rest.is_empty() {
                rest
            } else {
                rest.strip_prefix('/')?
            }
        };
        os14::path::Path::parse(rest).ok()
    }

    /// The bucket path of a sink path.
    fn outer(&self, p: &os14::path::Path) -> Path {
        let full = if self.prefix.is_empty() {
            p.as_ref().to_string()
        } else if p.as_ref().is_empty() {
            self.prefix.clone()
        } else {
            format!("{}/{}", self.prefix, p.as_ref())
        };
        Path::parse(&full).unwrap_or_else(|_| Path::from(full.as_str()))
    }

    fn meta(&self, m: os14::ObjectMeta) -> os13::ObjectMeta {
        os13::ObjectMeta {
            location: self.outer(&m.location),
            last_modified: m.last_modified,
            size: m.size,
            e_tag: m.e_tag,
            version: m.version,
        }
    }

    fn not_found(p: &Path) -> os13::Error {
        os13::Error::NotFound {
            path: p.to_string(),
            source: "outside the output root".into(),
        }
    }
}

impl fmt::Display for RootStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "logveil root {}", self.storage.label())
    }
}

/// The sink's error as DataFusion's (kinds kept where readers tell them apart).
fn error(e: os14::Error) -> os13::Error {
    match e {
        os14::Error::NotFound { path, source } => os13::Error::NotFound { path, source },
        os14::Error::Precondition { path, source } => os13::Error::Precondition { path, source },
        os14::Error::NotModified { path, source } => os13::Error::NotModified { path, source },
        e => os13::Error::Generic {
            store: "logveil",
            source: Box::new(e),
        },
    }
}

fn read_only() -> os13::Error {
    os13::Error::NotSupported {
        source: "queries read output roots; they never write to them".into(),
    }
}

fn range(r: os13::GetRange) -> os14::GetRange {
    match r {
        os13::GetRange::Bounded(r) => os14::GetRange::Bounded(r),
        os13::GetRange::Offset(o) => os14::GetRange::Offset(o),
        os13::GetRange::Suffix(n) => os14::GetRange::Suffix(n),
    }
}

#[async_trait]
impl os13::ObjectStore for RootStore {
    async fn put_opts(
        &self,
        _: &Path,
        _: os13::PutPayload,
        _: os13::PutOptions,
    ) -> os13::Result<os13::PutResult> {
        Err(read_only())
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: os13::PutMultipartOptions,
    ) -> os13::Result<Box<dyn os13::MultipartUpload>> {
        Err(read_only())
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: os13::GetOptions,
    ) -> os13::Result<os13::GetResult> {
        let p = self
            .inner(location)
            .ok_or_else(|| Self::not_found(location))?;
        let o = os14::GetOptions {
            if_match: options.if_match,
            if_none_match: options.if_none_match,
            if_modified_since: options.if_modified_since,
            if_unmodified_since: options.if_unmodified_since,
            range: options.range.map(range),
            version: options.version,
            head: options.head,
            ..Default::default()
        };
        let store = self.storage.store();
        let (meta, range, body): (os14::ObjectMeta, Range<u64>, Bytes) = self
            .storage
            .spawn(async move {
                let r = store.get_opts(&p, o).await?;
                let (meta, range) = (r.meta.clone(), r.range.clone());
                let body = if options.head {
                    Bytes::new()
                } else {
                    r.bytes().await?
                };
                Ok::<_, os14::Error>((meta, range, body))
            })
            .await
            .map_err(error)?;
        Ok(os13::GetResult {
            payload: os13::GetResultPayload::Stream(stream::once(async { Ok(body) }).boxed()),
            meta: self.meta(meta),
            range,
            attributes: os13::Attributes::default(),
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> os13::Result<Vec<Bytes>> {
        let p = self
            .inner(location)
            .ok_or_else(|| Self::not_found(location))?;
        let (store, ranges) = (self.storage.store(), ranges.to_vec());
        self.storage
            .spawn(async move { store.get_ranges(&p, &ranges).await })
            .await
            .map_err(error)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, os13::Result<Path>>,
    ) -> BoxStream<'static, os13::Result<Path>> {
        locations.map(|_| Err(read_only())).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, os13::Result<os13::ObjectMeta>> {
        let p = match prefix {
            None => Some(os14::path::Path::default()),
            Some(p) => self.inner(p),
        };
        let Some(p) = p else {
            return stream::empty().boxed();
        };
        let store = self.storage.store();
        let listed = self
            .storage
            .spawn(async move { store.list(Some(&p)).try_collect::<Vec<_>>().await });
        let this = RootStore::new(self.storage.clone(), &self.prefix);
        stream::once(listed)
            .map(move |r| match r {
                Ok(v) => stream::iter(v.into_iter().map(|m| Ok(this.meta(m))).collect::<Vec<_>>()),
                Err(e) => stream::iter(vec![Err(error(e))]),
            })
            .flatten()
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> os13::Result<os13::ListResult> {
        let p = match prefix {
            None => Some(os14::path::Path::default()),
            Some(p) => self.inner(p),
        };
        let Some(p) = p else {
            return Ok(os13::ListResult {
                common_prefixes: Vec::new(),
                objects: Vec::new(),
            });
        };
        let store = self.storage.store();
        let l = self
            .storage
            .spawn(async move { store.list_with_delimiter(Some(&p)).await })
            .await
            .map_err(error)?;
        Ok(os13::ListResult {
            common_prefixes: l.common_prefixes.iter().map(|p| self.outer(p)).collect(),
            objects: l.objects.into_iter().map(|m| self.meta(m)).collect(),
        })
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: os13::CopyOptions) -> os13::Result<()> {
        Err(read_only())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use os13::ObjectStore as _;

    fn store() -> RootStore {
        RootStore::new(Storage::memory(), "lake/eu")
    }

    #[test]
    fn paths_outside_the_prefix_are_not_the_roots() {
        let s = store();
        assert_eq!(
            s.inner(&Path::from("lake/eu/access/x.parquet"))
                .unwrap()
                .as_ref(),
            "access/x.parquet"
        );
        assert_eq!(s.inner(&Path::from("lake/eu")).unwrap().as_ref(), "");
        assert!(s.inner(&Path::from("lake/euro/x")).is_none());
        assert!(s.inner(&Path::from("other/x")).is_none());
        let back = s.outer(&os14::path::Path::from("access/dt=2026-11-28/a b.parquet"));
        assert_eq!(back.as_ref(), "lake/eu/access/dt=2026-11-28/a b.parquet");
        // A prefix written with escapes in the root's URL: DataFusion's paths are decoded,
        // and so is the prefix the store is given (`lib.rs`, `session`).
        let decoded = Path::from_url_path("/lake%20eu/").unwrap();
        let s = RootStore::new(Storage::memory(), decoded.as_ref());
        let table = Path::from_url_path("/lake%20eu/access/x.parquet").unwrap();
        assert_eq!(s.inner(&table).unwrap().as_ref(), "access/x.parquet");
        // No prefix: the root is the bucket.
        let s = RootStore::new(Storage::memory(), "");
        assert_eq!(
            s.inner(&Path::from("access/x")).unwrap().as_ref(),
            "access/x"
        );
        assert_eq!(
            s.outer(&os14::path::Path::from("access/x")).as_ref(),
            "access/x"
        );
    }

    #[test]
    fn reads_and_lists_through_the_sink_store_and_refuses_writes() {
        let s = store();
        s.storage
            .put(
                &os14::path::Path::from("access/dt=2026-11-28/f.parquet"),
                Bytes::from_static(b"0123456789"),
            )
            .unwrap();
        futures::executor::block_on(async {
            let p = Path::from("lake/eu/access/dt=2026-11-28/f.parquet");
            let o = os13::GetOptions {
                range: Some(os13::GetRange::Bounded(2..5)),
                ..Default::default()
            };
            let r = s.get_opts(&p, o).await.unwrap();
            assert_eq!(r.meta.location, p);
            assert_eq!(r.range, 2..5);
            assert_eq!(r.bytes().await.unwrap(), Bytes::from_static(b"234"));
            let listed: Vec<_> = s
                .list(Some(&Path::from("lake/eu/access")))
                .try_collect()
                .await
                .unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].location, p);
            let level = s
                .list_with_delimiter(Some(&Path::from("lake/eu/access")))
                .await
                .unwrap();
            assert_eq!(
                level.common_prefixes,
                vec![Path::from("lake/eu/access/dt=2026-11-28")]
            );
            let missing = s
                .get_opts(&Path::from("lake/eu/nope"), Default::default())
                .await;
            assert!(matches!(missing, Err(os13::Error::NotFound { .. })));
            let put = s
                .put_opts(&p, Bytes::new().into(), Default::default())
                .await;
            assert!(matches!(put, Err(os13::Error::NotSupported { .. })));
        });
    }
}
