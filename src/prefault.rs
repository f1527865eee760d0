//! Large buffers about to be filled ask the kernel for their pages in one call.
//!
//! A fresh 4 KB page costs its first write a fault: on the VMs this project runs on, some
//! 1.5-2.3 µs a page, of which a third is the fault's way in and out. A buffer of megabytes
//! (a large meta snapshot's encoding, the effects of applying it) took thousands of them.
//! `MADV_POPULATE_WRITE` (Linux 5.14) maps the same pages in one call; what the buffer holds
//! does not change. A kernel without it refuses and the pages fault in as before.

/// Spare room below this is left to fault in: a call per small buffer would cost more than
/// its few faults.
const PREFAULT_BYTES_MIN: usize = 1 << 20;

/// Map the whole pages of `v`'s spare capacity now, before they are written. True when the
/// kernel did.
pub fn prefault_spare<T>(v: &mut Vec<T>) -> bool {
    let spare = v.spare_capacity_mut();
    let bytes = std::mem::size_of_val(spare);
    bytes >= PREFAULT_BYTES_MIN && populate(spare.as_mut_ptr() as usize, bytes)
}

#[cfg(target_os = "linux")]
fn populate(start: usize, bytes: usize) -> bool {
    const PAGE: usize = 4096;
    // Whole pages inside the buffer only; the partial ones at its ends fault in as usual.
    let (first, end) = (start.next_multiple_of(PAGE), (start + bytes) / PAGE * PAGE);
    // SAFETY: the range lies inside the spare capacity of a vector borrowed mutably, so no
    // one else uses it; populating pages keeps their content. A refusal only leaves the
    // pages to fault in.
    end > first && unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_POPULATE_WRITE) } == 0
}

#[cfg(not(target_os = "linux"))]
fn populate(_start: usize, _bytes: usize) -> bool {
    false
}

/// Page faults the calling thread has taken so far (minor ones: a fresh page's first touch),
/// or 0 where the count is not to be had. What the bench and the tests here count.
#[cfg(target_os = "linux")]
pub fn thread_page_faults() -> i64 {
    // SAFETY: `rusage` is plain integers, for which all zeros is a value; `getrusage` only
    // writes the struct it is given, which lives on this stack.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } == 0;
    if ok {
        usage.ru_minflt
    } else {
        0
    }
}

#[cfg(not(target_os = "linux"))]
pub fn thread_page_faults() -> i64 {
    0
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Room of `bytes` whose pages fault in 4 KB at a time, as they do in the binary (whose
    /// allocator takes no huge pages), whatever the test's allocator and the machine's
    /// transparent huge pages do.
    fn room(bytes: usize) -> Vec<u8> {
        let mut v: Vec<u8> = Vec::with_capacity(bytes);
        let start = v.as_mut_ptr() as usize;
        let (first, end) = (start.next_multiple_of(4096), (start + bytes) / 4096 * 4096);
        // SAFETY: advice on pages of a buffer this function owns; they hold nothing yet.
        unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_NOHUGEPAGE) };
        v
    }

    /// A buffer keeps what it holds, and filling its spare room after the call takes (next to)
    /// no faults, where filling fresh room takes one a page.
    #[test]
    fn spare_room_is_mapped_before_it_is_written() {
        let room_bytes = 8 << 20;
        let mut v = room(room_bytes);
        v.extend_from_slice(b"held");
        if !prefault_spare(&mut v) {
            return; // a kernel without MADV_POPULATE_WRITE: nothing to check
        }
        assert_eq!(v, b"held");
        let before = thread_page_faults();
        v.resize(room_bytes, 7);
        assert!(thread_page_faults() - before < 16, "{} faults filling prefaulted room", thread_page_faults() - before);
        let mut fresh = room(room_bytes);
        let before = thread_page_faults();
        fresh.resize(room_bytes, 7);
        assert!(thread_page_faults() - before > 1_000, "fresh room faults in page by page");
        let small = &mut Vec::<u8>::with_capacity(PREFAULT_BYTES_MIN - 1);
        assert!(!prefault_spare(small), "small buffers are left alone");
    }
}
