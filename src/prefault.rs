//! Large vectors whose pages are mapped in one call instead of one page fault per page.
//!
//! A batch worker's first chunk writes some 50 MB of fresh column vectors; the kernel mapped
//! them a 4 KiB page at a time, one fault each (a trap out of the VM's guest on the machines
//! measured), and a process's first chunk took ~100 ms longer than the next. Asking for the
//! pages in one `madvise(MADV_POPULATE_WRITE)` does the same work without the traps: the first
//! chunk then took ~50 ms longer (1x1, 10 M rows, 6 runs each way in turns). Later chunks reuse
//! the same memory (jemalloc keeps it), where the call finds every page mapped already.

/// Vectors smaller than this are left to fault their pages in: one call costs more than a few faults.
const MIN_BYTES: usize = 1 << 20;

/// An empty vector with room for `capacity` values, its memory mapped in (where the kernel can:
/// Linux 5.14 and later; elsewhere a plain `Vec::with_capacity`).
pub fn vec_with_capacity<T>(capacity: usize) -> Vec<T> {
    let mut values = Vec::with_capacity(capacity);
    populate_spare_capacity(&mut values);
    values
}

fn populate_spare_capacity<T>(values: &mut Vec<T>) {
    let spare = values.spare_capacity_mut();
    let bytes = size_of_val(spare);
    if bytes < MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf takes only an integer name and reads no memory of ours.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
        let start = spare.as_mut_ptr() as usize;
        let (first, end) = (start.next_multiple_of(page), (start + bytes) / page * page);
        if end > first {
            // SAFETY: The range lies inside this vector's own allocation, and populating pages does
            // not change what they hold. An older kernel refuses the advice (EINVAL): the pages then
            // fault in as usual.
            unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_POPULATE_WRITE) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_populated_vector_is_an_ordinary_empty_vector() {
        for capacity in [0, 10, MIN_BYTES, 3 * MIN_BYTES + 5] {
            let mut values: Vec<u64> = vec_with_capacity(capacity);
            assert!(values.is_empty());
            assert!(values.capacity() >= capacity);
            values.extend((0..capacity as u64).rev());
            assert_eq!(values.len(), capacity);
            assert_eq!(values.first().copied(), capacity.checked_sub(1).map(|c| c as u64));
        }
    }
}
