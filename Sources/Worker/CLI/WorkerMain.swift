import ArgumentParser
import Foundation
import Shared

#if canImport(Glibc)
import Glibc
#endif

/// Entry point; usage and configuration errors exit 2 (ArgumentParser's own default is 64).
@main
enum WorkerMain {
    static func main() async {
        do {
            var command = try WorkerCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("worker: error: \(error.message)\n".utf8))
            exit(2)
        } catch {
            let code = WorkerCommand.exitCode(for: error)
            if code == .success || error is ExitCode {
                WorkerCommand.exit(withError: error)
            }
            FileHandle.standardError.write(Data((WorkerCommand.fullMessage(for: error) + "\n").utf8))
            exit(2)
        }
    }
}
