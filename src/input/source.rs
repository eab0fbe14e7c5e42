//! Resolving an input argument (file, directory, glob or object-store prefix) into CSV files.

use anyhow::{bail, Context, Result};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::lake::Location;

/// One input file and the identity that tells whether it changed since it was loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Canonical URL of the file (`file:///...`, `s3://bucket/key`).
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, microseconds since the epoch.
    pub modified: i64,
    /// The store's entity tag, when it has one.
    pub etag: Option<String>,
}

impl InputFile {
    fn from_meta(base: &Location, meta: &ObjectMeta) -> InputFile {
        let scheme_root = base.url.trim_end_matches(base.root.as_ref()).trim_end_matches('/');
        let url = if base.url.starts_with("file://") {
            format!("file:///{}", meta.location.as_ref())
        } else {
            format!("{scheme_root}/{}", meta.location.as_ref())
        };
        InputFile { url, size: meta.size, modified: meta.last_modified.timestamp_micros(), etag: meta.e_tag.clone() }
    }

    /// The file name without directories and extension, e.g. `traffic_1`.
    pub fn stem(&self) -> &str {
        let name = self.url.rsplit('/').next().unwrap_or(&self.url);
        name.rsplit_once('.').map_or(name, |(stem, _)| stem)
    }

    /// A reader of this file's byte ranges.
    pub fn reader(&self) -> Result<super::chunk::RangeReader> {
        if let Some(path) = self.url.strip_prefix("file://") {
            return Ok(super::chunk::RangeReader::Local(path.into()));
        }
        let (location, path) = self.open()?;
        Ok(super::chunk::RangeReader::Store(location.store, path))
    }

    /// Opens the store that holds this file, and the file's path in it.
    pub fn open(&self) -> Result<(Location, Path)> {
        let location = Location::parse(&self.url, false)?;
        let path = location.root.clone();
        Ok((location, path))
    }
}

/// Lists the CSV files named by `spec`, sorted by URL.
///
/// `spec` is a file, a directory (every `*.csv` below it), a glob (`data/*.csv`, `**` crosses
/// directories) or an `s3://` / `memory://` object or prefix. Nothing found, or a file that
/// cannot be read, is an error.
pub fn resolve_inputs(spec: &str) -> Result<Vec<InputFile>> {
    let (base, pattern) = split_glob(spec);
    let location = Location::parse(base, false).with_context(|| format!("bad input '{spec}'"))?;
    let mut files = match pattern {
        Some(pattern) => list_matching(&location, |rel| glob_match(pattern, rel))?,
        None => match head(&location)? {
            Some(meta) => vec![InputFile::from_meta(&location, &meta)],
            None => list_matching(&location, |rel| rel.to_ascii_lowercase().ends_with(".csv"))?,
        },
    };
    if files.is_empty() {
        if location.url.starts_with("file://") && !std::path::Path::new(&location.url[7..]).exists() {
            bail!("input '{spec}' does not exist");
        }
        bail!("no CSV files found in '{spec}'");
    }
    files.sort_by(|a, b| a.url.cmp(&b.url));
    for file in &files {
        check_readable(file)?;
    }
    Ok(files)
}

fn head(location: &Location) -> Result<Option<ObjectMeta>> {
    if location.url.starts_with("file://") && std::path::Path::new(&location.url[7..]).is_dir() {
        return Ok(None);
    }
    match crate::runtime::block_on(location.store.head(&location.root)) {
        Ok(meta) => Ok(Some(meta)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read input {}", location.url)),
    }
}

fn list_matching(location: &Location, keep: impl Fn(&str) -> bool) -> Result<Vec<InputFile>> {
    let prefix = (!location.root.as_ref().is_empty()).then_some(&location.root);
    let metas: Vec<ObjectMeta> = crate::runtime::block_on(location.store.list(prefix).try_collect())
        .with_context(|| format!("cannot list input {}", location.url))?;
    Ok(metas
        .iter()
        .filter(|meta| location.relative(&meta.location).is_some_and(|rel| keep(&rel)))
        .map(|meta| InputFile::from_meta(location, meta))
        .collect())
}

/// Local files are opened once up front so that a permission problem is a clear error, not a crash later.
fn check_readable(file: &InputFile) -> Result<()> {
    if let Some(path) = file.url.strip_prefix("file://") {
        std::fs::File::open(path).with_context(|| format!("cannot read input {path}"))?;
    }
    Ok(())
}

/// Splits `data/2016/*.csv` into the directory to list (`data/2016`) and the pattern below it.
fn split_glob(spec: &str) -> (&str, Option<&str>) {
    let Some(first) = spec.find(['*', '?', '[']) else {
        return (spec, None);
    };
    match spec[..first].rfind('/') {
        Some(slash) => (&spec[..slash.max(1)], Some(&spec[slash + 1..])),
        None => (".", Some(spec)),
    }
}

/// Matches a `/`-separated path against a glob: `*` and `?` stay inside one segment, `**` spans any.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn matches(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
                (0..=s.len()).any(|i| (i == 0 || s[i - 1] == b'/') && matches(rest, &s[i..])) || matches(&p[2..], s)
            }
            Some(b'*') => (0..=s.len()).take_while(|&i| i == 0 || s[i - 1] != b'/').any(|i| matches(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && s[0] != b'/' && matches(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && matches(&p[1..], &s[1..]),
        }
    }
    matches(pattern.as_bytes(), path.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.csv", "a.csv"));
        assert!(!glob_match("*.csv", "x/a.csv"));
        assert!(glob_match("**/*.csv", "x/y/a.csv"));
        assert!(glob_match("**/*.csv", "a.csv"));
        assert!(glob_match("traffic_?.csv", "traffic_1.csv"));
        assert!(!glob_match("traffic_?.csv", "traffic_10.csv"));
    }

    #[test]
    fn splits_globs() {
        assert_eq!(split_glob("data/*.csv"), ("data", Some("*.csv")));
        assert_eq!(split_glob("/abs/**/x.csv"), ("/abs", Some("**/x.csv")));
        assert_eq!(split_glob("*.csv"), (".", Some("*.csv")));
        assert_eq!(split_glob("data"), ("data", None));
    }

    #[test]
    fn resolves_directories_files_and_globs() {
        let dir = std::env::temp_dir().join(format!("traffic-src-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.csv"), "x").unwrap();
        std::fs::write(dir.join("sub/a.CSV"), "y").unwrap();
        std::fs::write(dir.join("notes.txt"), "z").unwrap();
        let d = dir.to_str().unwrap();
        let all = resolve_inputs(d).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].url.ends_with("/b.csv") && all[1].url.ends_with("/sub/a.CSV"));
        assert_eq!(all[0].stem(), "b");
        assert_eq!(resolve_inputs(&format!("{d}/*.csv")).unwrap().len(), 1);
        assert_eq!(resolve_inputs(&format!("{d}/b.csv")).unwrap()[0].size, 1);
        let missing = resolve_inputs(&format!("{d}/missing.csv")).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolves_object_store_prefixes() {
        let lake = crate::lake::Lake::open("memory://inputs-test/raw").unwrap();
        lake.put("2016/a.csv", bytes::Bytes::from_static(b"1")).unwrap();
        lake.put("2016/b.txt", bytes::Bytes::from_static(b"1")).unwrap();
        let files = resolve_inputs("memory://inputs-test/raw").unwrap();
        assert_eq!(
            files.iter().map(|f| f.url.as_str()).collect::<Vec<_>>(),
            vec!["memory://inputs-test/raw/2016/a.csv"]
        );
        let (location, path) = files[0].open().unwrap();
        assert_eq!(path.as_ref(), "raw/2016/a.csv");
        assert_eq!(location.url, "memory://inputs-test/raw/2016/a.csv");
    }
}
