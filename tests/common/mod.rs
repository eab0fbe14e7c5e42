//! Shared test harness: running the `traffic` binary, reading Parquet back, reference computations
//! and the real servers (S3, Kafka) the end-to-end tests talk to.
#![allow(dead_code)]

pub mod kafka;
pub mod reference;
pub mod s3;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use traffic::lake::Lake;

/// The `traffic` binary under test.
pub fn traffic() -> Command {
    Command::new(env!("CARGO_BIN_EXE_traffic"))
}

/// Runs `traffic` with `args` and `envs`, asserts success and returns standard output.
pub fn run_ok(args: &[&str], envs: &[(&str, &str)]) -> String {
    let output = run(args, envs);
    assert!(
        output.status.success(),
        "traffic {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `traffic` with `args` and `envs` and returns its output, whatever the status.
pub fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    traffic().args(args).envs(envs.iter().copied()).output().expect("cannot run traffic")
}

/// A fresh, empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The repository's shipped sample data.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// Every record batch of every Parquet file under `prefix` of the lake at `url`, in path order.
pub fn read_parquet(url: &str, prefix: &str) -> Vec<RecordBatch> {
    let lake = Lake::open(url).unwrap();
    let paths: Vec<String> = if prefix.ends_with(".parquet") {
        vec![prefix.to_string()]
    } else {
        lake.list(prefix).unwrap().into_iter().map(|e| e.path).filter(|p| p.ends_with(".parquet")).collect()
    };
    let mut batches = Vec::new();
    for path in paths {
        let bytes = lake.get(&path).unwrap().unwrap_or_else(|| panic!("no file {path}"));
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
        batches.extend(reader.map(|b| b.unwrap()));
    }
    batches
}

/// Paths of the objects under `prefix` of the lake at `url`.
pub fn list(url: &str, prefix: &str) -> Vec<String> {
    Lake::open(url).unwrap().list(prefix).unwrap().into_iter().map(|e| e.path).collect()
}

/// Reads column `name` of `batch` as `A`.
pub fn column<'a, A: 'static>(batch: &'a RecordBatch, name: &str) -> &'a A {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<A>()
        .unwrap_or_else(|| panic!("column {name} has another type"))
}

/// The `read N = written N + quarantined N` figures of a run's summary line.
pub fn summary_counts(stdout: &str) -> (u64, u64, u64) {
    let number_after = |word: &str| -> u64 {
        let at = stdout.find(word).unwrap_or_else(|| panic!("no '{word}' in {stdout}")) + word.len();
        stdout[at..].split_whitespace().next().unwrap().trim_end_matches(';').parse().unwrap()
    };
    (number_after("read "), number_after("written "), number_after("quarantined "))
}

/// A command to start, and where to say it started.
type SpawnRequest = (Command, std::sync::mpsc::Sender<()>);

/// Starts `command` so that it dies with the test process (not with the calling test's thread).
pub fn spawn_for_life(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;
    // PR_SET_PDEATHSIG fires when the spawning *thread* ends, so spawn from a thread that lives
    // as long as the process.
    static KEEPER: std::sync::OnceLock<std::sync::Mutex<mpsc::Sender<SpawnRequest>>> = std::sync::OnceLock::new();
    let sender = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::spawn(move || {
            let mut children = Vec::new();
            for (mut command, done) in rx {
                // SAFETY: Between fork and exec the hook only calls prctl with plain integers, a raw
                // system call that neither allocates nor takes locks.
                unsafe {
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let program = command.get_program().to_string_lossy().into_owned();
                let child = command.spawn().unwrap_or_else(|e| panic!("cannot start the test server {program}: {e}"));
                children.push(child);
                let _ = done.send(());
            }
        });
        std::sync::Mutex::new(tx)
    });
    let (done_tx, done_rx) = mpsc::channel();
    let taken = std::mem::replace(command, Command::new("true"));
    sender.lock().unwrap().send((taken, done_tx)).unwrap();
    done_rx.recv().unwrap();
}
