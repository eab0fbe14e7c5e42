//! Parsing a storage URL (`file://`, plain path, `s3://`, `memory://`) into an object store and a root.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context, Result};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;

/// Where a URL points: an object store and a path prefix inside it.
#[derive(Clone)]
pub struct Location {
    /// The store that holds the objects.
    pub store: Arc<dyn ObjectStore>,
    /// The prefix inside the store (no leading or trailing slash; empty for the root).
    pub root: Path,
    /// The URL in canonical form, safe to print (it never holds credentials).
    pub url: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Location {
    /// Parses `spec`: `s3://bucket/prefix`, `memory://name/prefix`, `file:///abs/dir`, or a local path.
    ///
    /// For `s3://` the endpoint, region and credentials come from the standard `AWS_*` environment
    /// variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`); requests use path-style addressing, and plain `http://` endpoints are
    /// allowed, as MinIO-like servers need. Local directories are created when `create` is set.
    pub fn parse(spec: &str, create: bool) -> Result<Location> {
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = split_bucket(rest)?;
            let store = s3_store(bucket)?;
            return Ok(Location { store, root: Path::from(prefix), url: join_url(&format!("s3://{bucket}"), prefix) });
        }
        if let Some(rest) = spec.strip_prefix("memory://") {
            let (name, prefix) = split_bucket(rest)?;
            return Ok(Location {
                store: memory_store(name),
                root: Path::from(prefix),
                url: join_url(&format!("memory://{name}"), prefix),
            });
        }
        if spec.contains("://") && !spec.starts_with("file://") {
            bail!("unsupported storage URL '{}': use file://, s3:// or memory://", redact(spec));
        }
        let local = spec.strip_prefix("file://").unwrap_or(spec);
        local_location(local, create)
    }

    /// The full object path of `relative` under this location's root.
    pub fn child(&self, relative: &str) -> Path {
        let mut parts: Vec<String> = self.root.parts().map(|p| p.as_ref().to_string()).collect();
        parts.extend(relative.split('/').filter(|s| !s.is_empty()).map(str::to_string));
        Path::from_iter(parts)
    }

    /// `path` relative to this location's root, or `None` when it lies outside.
    pub fn relative(&self, path: &Path) -> Option<String> {
        let root = self.root.as_ref();
        let full = path.as_ref();
        if root.is_empty() {
            return Some(full.to_string());
        }
        full.strip_prefix(root).and_then(|r| r.strip_prefix('/')).map(str::to_string)
    }
}

fn split_bucket(rest: &str) -> Result<(&str, &str)> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("storage URL needs a bucket name");
    }
    Ok((bucket, prefix.trim_matches('/')))
}

fn join_url(base: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        base.to_string()
    } else {
        format!("{base}/{prefix}")
    }
}

/// One client per bucket and process: its connection pool is shared by every worker.
fn s3_store(bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES.get_or_init(Default::default).lock().expect("s3 stores");
    if let Some(store) = stores.get(bucket) {
        return Ok(store.clone());
    }
    let store = new_s3_store(bucket)?;
    stores.insert(bucket.to_string(), store.clone());
    Ok(store)
}

/// Extra S3 settings (`aws_access_key_id`, `aws_endpoint`, ...) applied over the environment, for
/// embedding programs and tests that must not change the process environment.
pub fn configure_s3(settings: &[(&str, &str)]) {
    let mut extra = s3_settings().lock().expect("s3 settings");
    for (key, value) in settings {
        extra.push((key.to_string(), value.to_string()));
    }
}

fn s3_settings() -> &'static Mutex<Vec<(String, String)>> {
    static SETTINGS: OnceLock<Mutex<Vec<(String, String)>>> = OnceLock::new();
    SETTINGS.get_or_init(Default::default)
}

fn new_s3_store(bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT"));
    if let Ok(endpoint) = endpoint {
        builder = builder.with_allow_http(endpoint.starts_with("http://")).with_endpoint(endpoint);
    }
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        builder = builder.with_region("us-east-1");
    } else if let Ok(region) = std::env::var("AWS_DEFAULT_REGION") {
        if std::env::var("AWS_REGION").is_err() {
            builder = builder.with_region(region);
        }
    }
    for (key, value) in s3_settings().lock().expect("s3 settings").iter() {
        let key = key.parse().with_context(|| format!("unknown S3 setting '{key}'"))?;
        if let object_store::aws::AmazonS3ConfigKey::Endpoint = key {
            builder = builder.with_allow_http(value.starts_with("http://"));
        }
        builder = builder.with_config(key, value);
    }
    let store = builder
        .with_virtual_hosted_style_request(false)
        .build()
        .with_context(|| format!("cannot configure S3 bucket '{bucket}'"))?;
    Ok(Arc::new(store))
}

fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES.get_or_init(Default::default).lock().expect("memory stores");
    stores.entry(name.to_string()).or_insert_with(|| Arc::new(InMemory::new())).clone()
}

fn local_location(path: &str, create: bool) -> Result<Location> {
    let path = std::path::Path::new(path);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().context("cannot read the current directory")?.join(path)
    };
    let absolute = normalize(&absolute);
    if create {
        std::fs::create_dir_all(&absolute)
            .with_context(|| format!("cannot create directory {}", absolute.display()))?;
    }
    let text = absolute.to_str().with_context(|| format!("path is not UTF-8: {}", absolute.display()))?;
    let store = local_store();
    Ok(Location { store, root: Path::from(text.trim_start_matches('/')), url: format!("file://{text}") })
}

/// One local file-system store rooted at `/`, shared by every local location.
fn local_store() -> Arc<dyn ObjectStore> {
    static STORE: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    STORE.get_or_init(|| Arc::new(LocalFileSystem::new().with_automatic_cleanup(true))).clone()
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Hides any `user:password@` part of a URL before it is printed.
pub fn redact(spec: &str) -> String {
    match (spec.find("://"), spec.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &spec[..scheme], &spec[at + 1..])
        }
        _ => spec.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_become_file_urls() {
        let loc = Location::parse("/tmp/x/../lake", false).unwrap();
        assert_eq!(loc.url, "file:///tmp/lake");
        assert_eq!(loc.child("counts/month=2015-11/a.parquet").as_ref(), "tmp/lake/counts/month=2015-11/a.parquet");
    }

    #[test]
    fn memory_locations_share_a_store() {
        let a = Location::parse("memory://t1/out", false).unwrap();
        let b = Location::parse("memory://t1/out", false).unwrap();
        assert!(Arc::ptr_eq(&a.store, &b.store));
        assert_eq!(a.child("x").as_ref(), "out/x");
        assert_eq!(a.relative(&Path::from("out/x/y")).as_deref(), Some("x/y"));
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact("s3://key:secret@bucket/x"), "s3://***@bucket/x");
        assert_eq!(redact("s3://bucket/x"), "s3://bucket/x");
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(Location::parse("ftp://host/x", false).is_err());
    }
}
