//! The batch layer's commit records: one per finished chunk, one per published input load.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use traffic::checkpoint::{StagedFile, Versioned};
use traffic::input::InputFile;

/// Where chunk records live: `_manifests/chunks/<load>/<chunk>.json`.
pub fn chunk_record_path(load_id: &str, chunk: u32) -> String {
    format!("{}/{chunk:06}.json", chunk_records_dir(load_id))
}

/// The folder of one load's chunk records.
pub fn chunk_records_dir(load_id: &str) -> String {
    format!("_manifests/chunks/{load_id}")
}

/// Where load commits live: `_manifests/loads/<sequence>.json`, in commit order.
pub fn load_commit_path(seq: u64) -> String {
    format!("{LOAD_COMMITS}/{seq:012}.json")
}

/// Where a chunk's partial aggregates are written.
pub fn chunk_partials_path(load_id: &str, chunk: u32) -> String {
    format!("{}/{chunk:06}.parquet", chunk_partials_dir(load_id))
}

/// The folder of one load's chunk partials.
pub fn chunk_partials_dir(load_id: &str) -> String {
    format!("_manifests/partials/{load_id}")
}

/// The folder of load commits.
pub const LOAD_COMMITS: &str = "_manifests/loads";

/// A chunk whose output is staged: written by the committer as soon as it arrives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// The load this chunk belongs to.
    pub load_id: String,
    /// Chunk index within the load.
    pub chunk: u32,
    /// Byte range of the input the chunk covered.
    pub range: (u64, u64),
    /// Non-blank data lines read.
    pub read: u64,
    /// Rows written.
    pub written: u64,
    /// Lines quarantined.
    pub quarantined: u64,
    /// The chunk's staged files.
    pub files: Vec<StagedFile>,
    /// Where the partial aggregates of the chunk's rows are (Parquet, under `_manifests/partials/`).
    pub partials: String,
}

/// An input file's rows made visible: written once every chunk of the load is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadCommit {
    /// Position in the commit log.
    pub seq: u64,
    /// The load's id (a hash of the input's identity and the load settings).
    pub load_id: String,
    /// The input file as it was loaded.
    pub source: InputFile,
    /// Number of chunks.
    pub chunks: u32,
    /// Lines read.
    pub read: u64,
    /// Rows written.
    pub written: u64,
    /// Lines quarantined.
    pub quarantined: u64,
    /// Files made visible by this commit.
    pub files: Vec<StagedFile>,
    /// Files of the load this one replaces, deleted by this commit.
    pub retired: Vec<String>,
    /// The load this one replaces, if the input was loaded before.
    pub replaces: Option<String>,
    /// Where the partial aggregates of the load's rows are: its chunks' files (the first
    /// versions of the format merged them into one file).
    pub partials: Vec<String>,
}

impl Versioned for ChunkRecord {
    const KIND: &'static str = "chunk record";
    const VERSION: u32 = 2;
}

impl Versioned for LoadCommit {
    const KIND: &'static str = "load commit";
    const VERSION: u32 = 2;

    /// The first records of version 1 named one merged file of partials, later ones a list.
    fn upgrade(mut record: Value, _version: u32) -> Result<Value> {
        if let Some(path) = record["partials"].as_str().map(str::to_string) {
            record["partials"] = Value::Array(vec![Value::String(path)]);
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use traffic::checkpoint::{decode, encode};

    use super::*;

    fn commit_json(partials: &str) -> String {
        format!(
            r#"{{"seq":3,"load_id":"ab","source":{{"url":"file:///in.csv","size":10,"modified":1,"etag":null}},
               "chunks":2,"read":5,"written":4,"quarantined":1,"files":[],"retired":[],"replaces":null,
               "partials":{partials}}}"#
        )
    }

    #[test]
    fn load_commits_list_their_chunk_partials() {
        let commit: LoadCommit = decode(commit_json(r#"["p/ab/000000.parquet","p/ab/000001.parquet"]"#).as_bytes())
            .expect("version 1, later form");
        assert_eq!(commit.partials, vec!["p/ab/000000.parquet", "p/ab/000001.parquet"]);
        let reread: LoadCommit = decode(&encode(&commit).unwrap()).unwrap();
        assert_eq!(reread, commit);
    }

    #[test]
    fn load_commits_of_the_first_format_name_one_merged_file() {
        let commit: LoadCommit = decode(commit_json(r#""_manifests/partials/ab.parquet""#).as_bytes()).unwrap();
        assert_eq!(commit.partials, vec!["_manifests/partials/ab.parquet"]);
    }
}
