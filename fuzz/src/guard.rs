//! What a reader must never do besides panic: ask for memory its input does not justify, or read
//! one input for ever.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Inputs are at most a few hundred kilobytes: a single allocation beyond this comes from what
/// a file claims (a header asking for 4 billion images), not from what it holds.
pub const DEFAULT_CAP: usize = 256 << 20;

static CAP: AtomicUsize = AtomicUsize::new(usize::MAX);
static OVERSIZE: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting every single request above the cap (`set_cap`). A binary that
/// fuzzes registers it with `#[global_allocator]`.
pub struct CappedAllocator;

impl CappedAllocator {
    fn check(size: usize) {
        if size > CAP.load(Ordering::Relaxed) {
            OVERSIZE.fetch_add(1, Ordering::Relaxed);
            LARGEST.fetch_max(size, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Counts single allocations above `bytes` from now on.
pub fn set_cap(bytes: usize) {
    CAP.store(bytes, Ordering::Relaxed);
}

/// Requests above the cap made so far in this process, and the largest of them.
pub fn oversize_requests() -> (usize, usize) {
    (
        OVERSIZE.load(Ordering::Relaxed),
        LARGEST.load(Ordering::Relaxed),
    )
}
