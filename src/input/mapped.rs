//! A byte range of a local file mapped into memory: the page cache's own pages, read without a
//! zero-filled buffer or a copy.
//!
//! Reading a 64 MiB chunk with `read` faulted in a fresh buffer and copied the file into it;
//! those faults were 42 % of a two-process load's page faults, and each process paid for its
//! own buffers. A mapping populated at once (`MAP_POPULATE`) takes no fault at all.

use std::fs::File;
use std::ops::Range;
use std::os::fd::AsRawFd;

use anyhow::{bail, Result};
use bytes::Bytes;

/// A read-only private mapping, unmapped when the last `Bytes` slice of it is dropped.
struct Mapping {
    address: *mut libc::c_void,
    len: usize,
}

// SAFETY: The mapping is read-only and only unmapped on drop, by its single owner, so it may
// move to another thread.
unsafe impl Send for Mapping {}
// SAFETY: Shared access only reads the read-only mapping; nothing mutates it through `&self`.
unsafe impl Sync for Mapping {}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `address` is a live mapping of `len` readable bytes (non-zero, as `mmap` succeeded)
        // that stays mapped until `self` drops, which outlives the returned borrow.
        unsafe { std::slice::from_raw_parts(self.address as *const u8, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `address` and `len` are exactly what `mmap` returned and was given; this is the
        // only unmap, and no slice of it outlives the owner being dropped.
        unsafe { libc::munmap(self.address, self.len) };
    }
}

/// The bytes `range` of `file`, mapped; `None` where the file cannot be mapped (the caller then
/// reads it). A range past the file's end is an error: the file changed since it was planned.
///
/// A file truncated while its range is mapped would fault (`SIGBUS`) on the missing pages; input
/// files are not expected to change under a load, and one that changes between runs is seen by
/// its size and modification time.
pub fn map_range(file: &File, range: Range<u64>) -> Result<Option<Bytes>> {
    let size = file.metadata()?.len();
    if range.end > size {
        bail!("the file is {size} bytes, shorter than when the load was planned (it ends at {})", range.end);
    }
    // SAFETY: sysconf takes only an integer name and reads no memory of ours.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let start = range.start - range.start % page;
    let len = (range.end - start) as usize;
    // SAFETY: A new read-only private mapping at an address of the kernel's choosing touches no
    // existing memory; the fd is open for the call and the offset is page-aligned. Failure is checked.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_POPULATE,
            file.as_raw_fd(),
            start as libc::off_t,
        )
    };
    if address == libc::MAP_FAILED {
        return Ok(None);
    }
    let skip = (range.start - start) as usize;
    Ok(Some(Bytes::from_owner(Mapping { address, len }).slice(skip..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_range_holds_the_file_bytes_at_any_offset() {
        let path = std::env::temp_dir().join(format!("traffic-mapped-{}", std::process::id()));
        let text: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        for range in [0..1, 0..20_000, 4095..4097, 4096..12_000, 12_345..19_999] {
            let bytes = map_range(&file, range.clone()).unwrap().expect("a local file maps");
            assert_eq!(&bytes[..], &text[range.start as usize..range.end as usize], "{range:?}");
        }
        assert!(map_range(&file, 10..20_001).is_err(), "past the end");
        std::fs::remove_file(path).unwrap();
    }
}
