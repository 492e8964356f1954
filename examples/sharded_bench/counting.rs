//! A counting global allocator: allocations (and reallocations) made by
//! every thread of the process, for the benchmark's "allocations per
//! write". Each thread counts on a counter of its own cache line (64 of
//! them, taken in turn), so counting adds no contention between the
//! drivers, the transports and the clients.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The system allocator, counted.
pub struct Counting;

#[repr(align(64))]
struct Slot(AtomicU64);

const SLOTS: usize = 64;
static COUNTS: [Slot; SLOTS] = [const { Slot(AtomicU64::new(0)) }; SLOTS];
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MINE: usize = NEXT.fetch_add(1, Relaxed) % SLOTS;
}

fn bump() {
    // A thread being torn down counts on the first slot.
    let slot = MINE.try_with(|&s| s).unwrap_or(0);
    COUNTS[slot].0.fetch_add(1, Relaxed);
}

/// Allocations and reallocations so far, every thread's.
pub fn count() -> u64 {
    COUNTS.iter().map(|s| s.0.load(Relaxed)).sum()
}

// SAFETY: every call is passed to `System` unchanged; counting touches no
// memory the allocator hands out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
