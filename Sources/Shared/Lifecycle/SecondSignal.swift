import Logging
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// "A second signal exits at once": after the first SIGTERM/SIGINT started a graceful shutdown,
/// the next one ends the process immediately (exit status 130), whatever is still running.
///
/// ServiceLifecycle reacts to the first signal only; this listens for the next one.
public enum SecondSignal {
    public static func exitOnNext(logger: Logger) {
        Task.detached {
            let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
            for await signal in signals {
                logger.warning("second \(signal) during shutdown: exiting now")
                exit(130)
            }
        }
    }
}
