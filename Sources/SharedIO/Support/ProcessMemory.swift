import CMalloc

/// The process's allocator, for a short run that reads a few megabytes
/// and exits (the detector): one malloc arena instead of one per thread
/// that touches the heap (curl's, SSH's), and freed memory handed back to
/// the system past 128 KiB, so the peak RSS is what is in use.
public enum ProcessMemory {
    public static func keepSmall() {
        _ = mallopt(M_ARENA_MAX, 1)
        _ = mallopt(M_TRIM_THRESHOLD, 128 << 10)
    }
}
