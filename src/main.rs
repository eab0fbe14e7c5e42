//! The `traffic` binary.

fn main() {
    std::process::exit(traffic::cli::main());
}
