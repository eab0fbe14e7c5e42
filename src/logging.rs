//! A small stderr logger for the `log` facade, with a process label for multi-process runs.

use std::io::Write;
use std::sync::OnceLock;

struct StderrLogger {
    level: log::LevelFilter,
    label: String,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= self.level
            && (metadata.target().starts_with("traffic") || metadata.level() <= log::Level::Warn)
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = chrono::Utc::now().format("%H:%M:%S%.3f");
        let level = match record.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARN ",
            log::Level::Info => "INFO ",
            log::Level::Debug => "DEBUG",
            log::Level::Trace => "TRACE",
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{now} {level}{} {}", self.label, record.args());
    }

    fn flush(&self) {}
}

/// Installs the logger once; `TRAFFIC_LOG` (error, warn, info, debug, trace) sets the level.
///
/// `label` names the process in multi-process runs (for example `p1`); empty for single runs.
pub fn init(label: &str) {
    static LOGGER: OnceLock<StderrLogger> = OnceLock::new();
    let level = std::env::var("TRAFFIC_LOG").ok().and_then(|v| v.parse().ok()).unwrap_or(log::LevelFilter::Info);
    let logger = LOGGER.get_or_init(|| StderrLogger {
        level,
        label: if label.is_empty() { String::new() } else { format!(" [{label}]") },
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
