//! Keeps freed tensor memory in the process, so training steps stop faulting it in again.
//!
//! Why: every Burn CPU operation allocates its output, and glibc's malloc maps large buffers
//! straight from the kernel and hands freed memory back past its trim threshold, so each step's
//! activations and gradients were faulted in page by page again: 8–10 % of a CIFAR ResNet-20
//! training step on flex went to the kernel's page-fault path (`benches/RESULTS.md`). With both
//! thresholds raised, memory the first steps touched stays mapped and is reused; the process's
//! resident memory stays at its peak, as PyTorch's caching allocators keep theirs (and the peak
//! itself rises a little: freed blocks are not always the right size for the next request).

/// Buffers up to this size come from malloc's heap rather than their own mapping. 1 GiB, so
/// that VGG-16's 411 MB classifier gradients are reused too: with glibc's own ceiling for its
/// dynamic threshold (`DEFAULT_MMAP_THRESHOLD_MAX`, 32 MiB) VGG-16 trained at 28–35 images/s on
/// flex, with 1 GiB at 47, for 15 % more peak memory (`benches/RESULTS.md`).
pub const MMAP_THRESHOLD_BYTES: usize = 1 << 30;

/// Free memory at the top of a heap is handed back to the kernel only beyond this much.
pub const TRIM_THRESHOLD_BYTES: usize = 1 << 30;

/// Sets malloc's thresholds for this process ([`MMAP_THRESHOLD_BYTES`],
/// [`TRIM_THRESHOLD_BYTES`]); `true` when the allocator took both. A no-op returning `false`
/// off glibc, where the allocator differs.
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes malloc's tuning parameters, under malloc's own lock;
        // both values fit an `int` and lie within glibc's accepted ranges.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as libc::c_int) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES as libc::c_int) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Minor page faults of the calling thread so far.
    fn minor_faults() -> i64 {
        // SAFETY: `getrusage` fills the zeroed struct it is given.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
            usage.ru_minflt
        }
    }

    /// Page faults while filling a fresh buffer of `bytes`, which is then freed.
    fn faults_filling(bytes: usize) -> i64 {
        let before = minor_faults();
        let buffer = std::hint::black_box(vec![1u8; bytes]);
        let faults = minor_faults() - before;
        drop(buffer);
        faults
    }

    #[test]
    fn a_freed_buffer_is_reused_without_page_faults() {
        assert!(retain_freed_memory());
        // 24 MiB: above glibc's default threshold, so without the settings the first buffer is
        // a mapping of its own and the second grows the heap, faulting in every page (6,144).
        let bytes = 24 << 20;
        faults_filling(bytes);
        let again = faults_filling(bytes);
        assert!(
            again < 64,
            "{again} page faults refilling a freed 24 MiB buffer"
        );
    }
}
