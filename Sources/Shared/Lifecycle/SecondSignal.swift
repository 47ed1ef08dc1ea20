import Logging
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// "A second signal exits at once": after the first SIGTERM/SIGINT started a graceful shutdown,
/// the next one ends the process immediately (exit status 130), whatever is still running.
///
/// ServiceLifecycle reacts to the first signal only; this listens for the next one. The trap is set
/// up asynchronously; ``armed()`` waits until it is in place, so that a process can say "a second
/// signal exits at once" only when that is already true.
public enum SecondSignal {
    private struct State {
        var started = false
        var armed = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private static let state = Mutex(State())

    /// Sets the trap (once per process).
    public static func exitOnNext(logger: Logger) {
        let first = state.withLock { s in
            defer { s.started = true }
            return !s.started
        }
        guard first else { return }
        Task.detached {
            let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
            let waiters = state.withLock { s in
                s.armed = true
                defer { s.waiters = [] }
                return s.waiters
            }
            for waiter in waiters { waiter.resume() }
            for await signal in signals {
                logger.warning("second \(signal) during shutdown: exiting now")
                exit(130)
            }
        }
    }

    /// Returns once the trap of ``exitOnNext(logger:)`` is in place. Call it only after
    /// `exitOnNext` (or in the same shutdown handler): otherwise it waits for it.
    public static func armed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s in
                if s.armed { return true }
                s.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
