//! The allocation guard counts what it must, alone in its process (the smoke's readers would
//! otherwise see this test's allocation as theirs).

use fuzz::guard;

#[global_allocator]
static ALLOCATOR: guard::CappedAllocator = guard::CappedAllocator;

#[test]
fn an_allocation_above_the_cap_is_counted() {
    guard::set_cap(guard::DEFAULT_CAP);
    let (before, _) = guard::oversize_requests();
    // Zeroed pages are mapped lazily: asking costs nothing.
    let claim = vec![0u8; guard::DEFAULT_CAP + 1];
    std::hint::black_box(&claim);
    let (after, largest) = guard::oversize_requests();
    assert!(after > before);
    assert!(largest > guard::DEFAULT_CAP);
}
