//! The `traffic` binary: the platform's command line over this crate's dataflows.

fn main() {
    std::process::exit(traffic::cli::main(dataflows::application()));
}
