import CZMQ

/// The C heap's free memory.
public enum FreeHeap {
    /// Hands memory freed by the process back to the system (glibc's `malloc_trim`). Call it after
    /// dropping something big, such as a multi-megabyte HTTP answer: glibc otherwise keeps the pages.
    public static func release() {
        czmq_release_free_heap()
    }
}
