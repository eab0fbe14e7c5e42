//! The lake: an object store (local, S3 or in-memory) seen through blocking, idempotent helpers.

mod location;

pub use location::{configure_s3, redact, Location};

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutMode, PutOptions, PutPayload};

/// An object listed under a lake, with its path relative to the lake's root.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Path relative to the lake root, `/`-separated.
    pub path: String,
}

/// A dataset root in an object store, with the few operations the platform's commit protocols need.
///
/// Every call blocks the calling thread on the shared I/O runtime; paths are relative to the root.
#[derive(Clone, Debug)]
pub struct Lake {
    location: Location,
}

impl Lake {
    /// Opens the lake at `url` (see [`Location::parse`]); local directories are created.
    pub fn open(url: &str) -> Result<Lake> {
        Ok(Lake { location: Location::parse(url, true)? })
    }

    /// The lake's URL, safe to print.
    pub fn url(&self) -> &str {
        &self.location.url
    }

    fn path(&self, relative: &str) -> Path {
        self.location.child(relative)
    }

    /// Writes `bytes` at `relative`, replacing any object there (atomic for readers).
    pub fn put(&self, relative: &str, bytes: Bytes) -> Result<()> {
        let path = self.path(relative);
        crate::runtime::block_on(self.location.store.put(&path, PutPayload::from(bytes)))
            .with_context(|| format!("cannot write {}/{relative}", self.url()))?;
        Ok(())
    }

    /// Writes `bytes` at `relative` only if nothing is there yet; returns `false` if it existed.
    ///
    /// This is the atomic create (`If-None-Match: *` on S3) that commit records rely on.
    pub fn put_new(&self, relative: &str, bytes: Bytes) -> Result<bool> {
        let path = self.path(relative);
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        let result = crate::runtime::block_on(self.location.store.put_opts(&path, PutPayload::from(bytes), options));
        match result {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot create {}/{relative}", self.url())),
        }
    }

    /// Reads the whole object at `relative`, or `None` if it does not exist.
    pub fn get(&self, relative: &str) -> Result<Option<Bytes>> {
        crate::runtime::block_on(self.get_async(relative))
    }

    /// Reads the whole object at `relative` (async form of [`Lake::get`]).
    pub async fn get_async(&self, relative: &str) -> Result<Option<Bytes>> {
        let path = self.path(relative);
        let result = async { self.location.store.get(&path).await?.bytes().await }.await;
        match result {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}/{relative}", self.url())),
        }
    }

    /// Writes several objects, a few at a time.
    pub fn put_many(&self, files: Vec<(String, Bytes)>) -> Result<()> {
        self.for_each_concurrently(files, |(relative, bytes)| async move {
            let path = self.path(&relative);
            self.location
                .store
                .put(&path, PutPayload::from(bytes))
                .await
                .with_context(|| format!("cannot write {}/{relative}", self.url()))
                .map(drop)
        })
    }

    /// Moves each staged file to its final name, a few at a time; a move whose source is gone
    /// and whose target exists is already done, so that a publication interrupted by a crash can
    /// simply be repeated.
    pub fn publish_many(&self, moves: &[(String, String)]) -> Result<()> {
        self.for_each_concurrently(moves.to_vec(), |(from, to)| async move {
            let (source, target) = (self.path(&from), self.path(&to));
            match self.location.store.rename(&source, &target).await {
                Ok(()) => Ok(()),
                Err(object_store::Error::NotFound { .. }) => match self.location.store.head(&target).await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(e)
                        .with_context(|| format!("cannot publish {}/{from}: neither it nor {to} exists", self.url())),
                },
                Err(e) => Err(e).with_context(|| format!("cannot publish {}/{from} as {to}", self.url())),
            }
        })
    }

    /// [`Lake::delete`] for several objects, a few at a time.
    pub fn delete_many(&self, paths: &[String]) -> Result<()> {
        self.for_each_concurrently(paths.to_vec(), |relative| async move {
            let path = self.path(&relative);
            match self.location.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e).with_context(|| format!("cannot delete {}/{relative}", self.url())),
            }
        })
    }

    fn for_each_concurrently<I, F, Fut>(&self, items: Vec<I>, action: F) -> Result<()>
    where
        F: Fn(I) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        use futures::StreamExt;
        crate::runtime::block_on(async {
            let mut results = futures::stream::iter(items).map(action).buffer_unordered(16);
            while let Some(result) = results.next().await {
                result?;
            }
            Ok(())
        })
    }

    /// Lists every object under `prefix` (relative; empty for all), sorted by path.
    pub fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let path = self.path(prefix);
        let metas: Vec<ObjectMeta> = crate::runtime::block_on(self.location.store.list(Some(&path)).try_collect())
            .with_context(|| format!("cannot list {}/{prefix}", self.url()))?;
        let mut entries: Vec<Entry> = metas
            .into_iter()
            .filter_map(|meta| {
                let path = self.location.relative(&meta.location)?;
                Some(Entry { path })
            })
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Removes empty directories left under `prefix` by moves and deletes (local lakes only;
    /// object stores have no directories).
    pub fn tidy(&self, prefix: &str) {
        let Some(root) = self.location.url.strip_prefix("file://") else {
            return;
        };
        fn remove_empty(dir: &std::path::Path) -> bool {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return false;
            };
            let mut empty = true;
            for entry in entries.flatten() {
                let path = entry.path();
                if !(path.is_dir() && remove_empty(&path)) {
                    empty = false;
                }
            }
            empty && std::fs::remove_dir(dir).is_ok()
        }
        remove_empty(&std::path::Path::new(root).join(prefix));
    }

    /// Deletes the object at `relative`; a missing object is not an error.
    pub fn delete(&self, relative: &str) -> Result<()> {
        self.delete_many(&[relative.to_string()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_new_refuses_a_second_create() {
        let lake = Lake::open("memory://lake-test/root").unwrap();
        assert!(lake.put_new("a/b", Bytes::from_static(b"1")).unwrap());
        assert!(!lake.put_new("a/b", Bytes::from_static(b"2")).unwrap());
        assert_eq!(lake.get("a/b").unwrap().unwrap(), Bytes::from_static(b"1"));
    }

    #[test]
    fn publish_is_idempotent() {
        let lake = Lake::open("memory://lake-test2").unwrap();
        lake.put("_staging/x", Bytes::from_static(b"x")).unwrap();
        let moves = [("_staging/x".to_string(), "data/x".to_string())];
        lake.publish_many(&moves).unwrap();
        lake.publish_many(&moves).unwrap();
        let listed: Vec<String> = lake.list("").unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(listed, vec!["data/x".to_string()]);
    }

    #[test]
    fn missing_objects_read_as_none() {
        let lake = Lake::open("memory://lake-test3").unwrap();
        assert!(lake.get("nope").unwrap().is_none());
        lake.delete("nope").unwrap();
    }
}
