//! The `traffic` binary.

fn main() {
    // Keep freed memory for reuse instead of returning it to the kernel after every epoch or
    // chunk: fresh pages must be zeroed, which profiles showed costing a fifth of the stream's time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
    std::process::exit(traffic::cli::main());
}
