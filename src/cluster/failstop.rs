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
    log::error!(target: "traffic", "{error:#}");
    std::process::exit(1);
}
