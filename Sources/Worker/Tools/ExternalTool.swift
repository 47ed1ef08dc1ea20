import Foundation
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
import Shared
#endif

/// A local command-line tool (ffmpeg, ffprobe, espeak-ng, fc-match), found on the search path.
///
/// ``run(_:timeout:input:workingDirectory:standardOutputLimit:)`` starts it with arguments (never through
/// a shell), keeps only the last ``stderrTailBytes`` of its standard error for error messages, kills it
/// when the calling task is cancelled or the timeout passes, and turns a non-zero exit into a
/// ``ProviderError`` of kind `toolFailed` that carries that tail.
struct ExternalTool: Sendable, Equatable {
    /// The name it was looked up by, e.g. `ffmpeg`; used in error messages.
    var name: String
    /// Absolute path of the executable.
    var path: String

    /// How much of a tool's standard error is kept for error messages: the last 4 KiB.
    static let stderrTailBytes = 4_096
    /// The default bound on a run.
    static let defaultTimeout: Duration = .seconds(300)

    init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// What a successful run printed.
    struct Output: Sendable, Equatable {
        var standardOutput: String
        /// The last ``ExternalTool/stderrTailBytes`` of standard error (warnings of a run that succeeded).
        var standardErrorTail: String
    }

    /// Runs the tool and waits for it.
    ///
    /// - Parameters:
    ///   - arguments: passed as they are (no shell, no quoting needed).
    ///   - timeout: the tool is killed and ``ProviderError/Kind/timeout`` thrown after this long.
    ///   - input: written to its standard input, which is then closed; empty by default.
    ///   - workingDirectory: the tool's current directory; the worker's when `nil`.
    ///   - standardOutputLimit: most bytes of standard output kept; more fails the run.
    /// - Throws: ``ProviderError`` `toolFailed` if it cannot be started or exits non-zero (with the tail
    ///   of its standard error), `timeout` if it ran too long, `CancellationError` if the task was
    ///   cancelled (the tool is killed).
    @discardableResult
    func run(
        _ arguments: [String],
        timeout: Duration = defaultTimeout,
        input: String = "",
        workingDirectory: URL? = nil,
        standardOutputLimit: Int = 1 << 20
    ) async throws -> Output {
        try Task.checkCancellation()
        let outcome = try await withThrowingTaskGroup(of: RunOutcome.self) { group in
            group.addTask {
                let (status, output) = try await launch(
                    arguments,
                    input: input,
                    workingDirectory: workingDirectory,
                    limit: standardOutputLimit
                )
                return .finished(status, output)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return .timedOut
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            return first
        }
        // A tool killed because the task was cancelled reports a signal; the cancellation is the news.
        try Task.checkCancellation()
        switch outcome {
        case .timedOut:
            throw ProviderError(.timeout, "\(name) timed out after \(timeout.secondsText)")
        case .finished(let status, let output):
            guard status.isSuccess else {
                throw ProviderError(.toolFailed, Self.failureMessage(name, status: status, stderr: output))
            }
            return output
        }
    }

    private enum RunOutcome: Sendable {
        case finished(TerminationStatus, Output)
        case timedOut
    }

    private func launch(
        _ arguments: [String],
        input: String,
        workingDirectory: URL?,
        limit: Int
    ) async throws -> (TerminationStatus, Output) {
        do {
            let result = try await Subprocess.run(
                .path(FilePath(path)),
                arguments: Arguments(arguments),
                workingDirectory: workingDirectory.map { FilePath($0.path) },
                input: .string(input),
                output: .string(limit: limit),
                error: .sequence
            ) { execution in
                var tail = TailBuffer(capacity: Self.stderrTailBytes)
                for try await buffer in execution.standardError {
                    buffer.withUnsafeBytes { tail.append($0) }
                }
                return tail.text
            }
            let output = Output(standardOutput: result.standardOutput, standardErrorTail: result.closureResult)
            return (result.terminationStatus, output)
        } catch let error as SubprocessError {
            try Task.checkCancellation()
            throw ProviderError(.toolFailed, "\(name) could not run: \(error)")
        }
    }

    /// The most of a tool's standard error an error message carries: its last lines, up to this many
    /// bytes (the wire and log lines are short; the last lines say what went wrong).
    static let messageTailBytes = 800

    /// "ffmpeg exited with status 1: <last lines of stderr, joined with " | ">".
    static func failureMessage(_ name: String, status: TerminationStatus, stderr output: Output) -> String {
        let how =
            switch status {
            case .exited(let code): "exited with status \(code)"
            case .signaled(let signal): "was killed by signal \(signal)"
            }
        var kept: [Substring] = []
        var bytes = 0
        let lines = output.standardErrorTail.split(whereSeparator: \.isNewline)
        for line in lines.reversed() {
            let trimmed = line.drop(while: \.isWhitespace)
            guard !trimmed.isEmpty else { continue }
            bytes += trimmed.utf8.count + 3
            if bytes > messageTailBytes, !kept.isEmpty { break }
            kept.append(trimmed)
        }
        let tail = kept.reversed().joined(separator: " | ")
        return tail.isEmpty ? "\(name) \(how)" : "\(name) \(how): \(tail)"
    }
}

/// Keeps the last `capacity` bytes appended to it.
struct TailBuffer: Sendable {
    let capacity: Int
    private(set) var bytes: [UInt8] = []
    /// Whether anything was dropped from the front.
    private(set) var truncated = false

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func append(_ chunk: some Collection<UInt8>) {
        bytes.append(contentsOf: chunk)
        if bytes.count > capacity {
            bytes.removeFirst(bytes.count - capacity)
            truncated = true
        }
    }

    /// The bytes as UTF-8 (invalid sequences repaired), starting at a line break when truncated so the
    /// first line is whole.
    var text: String {
        var slice = bytes[...]
        if truncated, let newline = slice.firstIndex(of: UInt8(ascii: "\n")) {
            slice = slice[slice.index(after: newline)...]
        }
        return String(decoding: slice, as: UTF8.self)
    }
}
