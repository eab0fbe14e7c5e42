//! Records kept in the lake as JSON (checkpoints, load commits, chunk records, the job catalog),
//! each with a `version` field, and the one place where older versions are read.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::lake::Lake;

/// A JSON record that later builds must still read.
///
/// Written with `"version": VERSION` beside its fields; a record without the field is version 1
/// (the records of builds before versions were written). Reading upgrades an older record's JSON
/// with [`Versioned::upgrade`] before decoding it, so the record types themselves only know the
/// current layout.
pub trait Versioned: Serialize + DeserializeOwned {
    /// What the record is, for errors (`stream checkpoint`, `load commit`).
    const KIND: &'static str;
    /// The version this build writes.
    const VERSION: u32;

    /// Turns the JSON object of a record of `version` (older than [`Versioned::VERSION`]) into the
    /// current layout. By default the layouts are the same.
    fn upgrade(record: Value, version: u32) -> Result<Value> {
        let _ = version;
        Ok(record)
    }
}

/// The name of the version field.
const VERSION_FIELD: &str = "version";

/// The JSON bytes of `record`, with its version.
pub fn encode<T: Versioned>(record: &T) -> Result<Bytes> {
    let mut value = serde_json::to_value(record)?;
    let Value::Object(fields) = &mut value else { bail!("a {} must be a JSON object", T::KIND) };
    fields.insert(VERSION_FIELD.to_string(), Value::from(T::VERSION));
    Ok(Bytes::from(serde_json::to_vec_pretty(&value)?))
}

/// Reads a record of any version this build knows.
pub fn decode<T: Versioned>(bytes: &[u8]) -> Result<T> {
    let value: Value = serde_json::from_slice(bytes)?;
    let (version, fields) = split_version::<T>(value)?;
    let current = if version < T::VERSION { T::upgrade(fields, version)? } else { fields };
    Ok(serde_json::from_value(current)?)
}

/// A record's version and its other fields.
fn split_version<T: Versioned>(value: Value) -> Result<(u32, Value)> {
    let Value::Object(mut fields) = value else { bail!("a {} must be a JSON object", T::KIND) };
    let version = match fields.remove(VERSION_FIELD) {
        None => 1,
        Some(number) => number
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .with_context(|| format!("a {} has a version that is not a number: {number}", T::KIND))?,
    };
    if version > T::VERSION {
        bail!(
            "a {} of version {version} was written by a newer traffic (this one reads up to version {})",
            T::KIND,
            T::VERSION
        );
    }
    Ok((version, Value::Object(fields)))
}

/// Writes `record` at `path`, only if nothing is there; an existing record with the same content
/// counts as written (a repeated commit, whatever version wrote it), one with other content is an
/// error.
pub fn create_record<T: Versioned + PartialEq>(lake: &Lake, path: &str, record: &T) -> Result<()> {
    let bytes = encode(record)?;
    if lake.put_new(path, bytes.clone())? {
        return Ok(());
    }
    match lake.get(path)? {
        Some(existing) if existing == bytes || decode::<T>(&existing).is_ok_and(|e| e == *record) => Ok(()),
        _ => bail!("{}/{path} already exists with other content: is another run writing to this output?", lake.url()),
    }
}

/// Reads the record at `path`, if any.
pub fn read_record<T: Versioned>(lake: &Lake, path: &str) -> Result<Option<T>> {
    match lake.get(path)? {
        None => Ok(None),
        Some(bytes) => decode(&bytes).map(Some).with_context(|| format!("corrupt {} {}/{path}", T::KIND, lake.url())),
    }
}

/// Reads every record under `prefix`, in path order, with its path.
pub fn list_records<T: Versioned>(lake: &Lake, prefix: &str) -> Result<Vec<(String, T)>> {
    let entries = lake.list(prefix)?;
    let records = crate::runtime::block_on(async {
        use futures::StreamExt;
        futures::stream::iter(entries.into_iter().filter(|e| e.path.ends_with(".json")))
            .map(|entry| async move { (entry.path.clone(), lake.get_async(&entry.path).await) })
            .buffered(16)
            .collect::<Vec<_>>()
            .await
    });
    records
        .into_iter()
        .filter_map(|(path, bytes)| match bytes {
            Ok(Some(bytes)) => Some(
                decode(&bytes)
                    .map(|r| (path.clone(), r))
                    .with_context(|| format!("corrupt {} {}/{path}", T::KIND, lake.url())),
            ),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Note {
        numbers: Vec<i32>,
    }

    impl Versioned for Note {
        const KIND: &'static str = "note";
        const VERSION: u32 = 2;

        /// Version 1 held one number.
        fn upgrade(mut record: Value, version: u32) -> Result<Value> {
            assert_eq!(version, 1);
            let number = record["number"].take();
            Ok(serde_json::json!({ "numbers": [number] }))
        }
    }

    #[test]
    fn a_record_is_created_once() {
        let lake = Lake::open("memory://checkpoint-test").unwrap();
        let note = Note { numbers: vec![1, 2] };
        create_record(&lake, "_m/1.json", &note).unwrap();
        create_record(&lake, "_m/1.json", &note).unwrap();
        assert!(create_record(&lake, "_m/1.json", &Note { numbers: vec![3] }).is_err());
        let records: Vec<(String, Note)> = list_records(&lake, "_m").unwrap();
        assert_eq!(records, vec![("_m/1.json".to_string(), note)]);
        assert_eq!(read_record::<Note>(&lake, "_m/2.json").unwrap(), None);
    }

    #[test]
    fn records_carry_their_version_and_older_ones_are_upgraded() {
        let written: Value = serde_json::from_slice(&encode(&Note { numbers: vec![4] }).unwrap()).unwrap();
        assert_eq!(written, serde_json::json!({ "numbers": [4], "version": 2 }));
        assert_eq!(decode::<Note>(br#"{"number": 7}"#).unwrap(), Note { numbers: vec![7] });
        assert_eq!(decode::<Note>(br#"{"numbers": [7], "version": 2}"#).unwrap(), Note { numbers: vec![7] });
        let newer = decode::<Note>(br#"{"numbers": [7], "version": 3}"#).unwrap_err();
        assert!(newer.to_string().contains("newer traffic"), "{newer}");
    }

    #[test]
    fn a_repeated_commit_of_an_unversioned_record_is_the_same_record() {
        // A record written before versions were, committed again by this build after a crash.
        let lake = Lake::open("memory://checkpoint-test-old").unwrap();
        lake.put("_m/1.json", Bytes::from_static(br#"{"number": 5}"#)).unwrap();
        create_record(&lake, "_m/1.json", &Note { numbers: vec![5] }).unwrap();
        assert!(create_record(&lake, "_m/1.json", &Note { numbers: vec![6] }).is_err());
    }
}
