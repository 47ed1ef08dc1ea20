import ArgumentParser
import Foundation
import Shared

#if canImport(Glibc)
import Glibc
#endif

/// Entry point. ArgumentParser's own usage errors exit 64; Reelfarm promises 2 for every usage or
/// configuration error, so parsing and configuration errors are mapped here.
@main
enum CoordinatorMain {
    static func main() async {
        do {
            var command = try CoordinatorCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("coordinator: error: \(error.message)\n".utf8))
            exit(2)
        } catch {
            let code = CoordinatorCommand.exitCode(for: error)
            if code == .success || error is ExitCode {
                CoordinatorCommand.exit(withError: error)
            }
            FileHandle.standardError.write(Data((CoordinatorCommand.fullMessage(for: error) + "\n").utf8))
            exit(2)
        }
    }
}
