//! The bench's own heap, counted (`peak_alloc` wraps the system allocator):
//! a step's peak can then be read apart from what earlier steps left behind
//! (the process's VmHWM only ever grows, and freed pages the allocator keeps
//! hide a later step's growth). Counts Rust allocations only: SQLite's page
//! cache and sorter use libc's allocator directly and show in the
//! resident-memory figures instead.

pub use peak_alloc::PeakAlloc as Counting;

/// Starts a step's measurement: the peak restarts from the heap in use now,
/// which is returned.
pub fn mark() -> usize {
    super::HEAP.reset_peak_usage();
    super::HEAP.current_usage()
}

/// The most heap in use since `mark` above what was in use then, in MiB.
pub fn peak_above_mib(mark: usize) -> f64 {
    super::HEAP.peak_usage().saturating_sub(mark) as f64 / 1_048_576.0
}
