//! Fail-stop: a Timely cluster cannot lose a worker and go on, so any failure ends the process.

/// Makes every panic, on any thread (Timely's network threads included), end the process with
/// status 101 after printing it, instead of leaving the other threads waiting forever.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        std::process::exit(101);
    }));
}

/// Prints `error` with its causes and ends the process with status 1.
pub fn fail_stop(error: &anyhow::Error) -> ! {
    log::error!(target: "traffic", "{}", describe(error));
    std::process::exit(1);
}

/// `error` and its causes on one line, leaving out causes that only repeat what their parent said
/// (object-store errors quote their sources in their own text).
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_causes_are_left_out() {
        let inner = anyhow::anyhow!("403 Forbidden");
        let error = inner.context("list failed: 403 Forbidden").context("cannot list s3://b/x");
        assert_eq!(describe(&error), "cannot list s3://b/x: list failed: 403 Forbidden");
    }
}
