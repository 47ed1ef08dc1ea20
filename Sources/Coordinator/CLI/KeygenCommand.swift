import ArgumentParser
import Foundation
import Shared

/// `coordinator keygen`: a CURVE key pair for the coordinator or for a worker.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair: NAME.key (public) and NAME.key_secret (secret, mode 0600).",
        discussion: """
            Make one pair for the coordinator and one per worker box. The coordinator runs with \
            --curve-secret coordinator.key_secret and --allow-workers DIR, a folder holding every worker's \
            NAME.key (or a file with one public key per line); a worker runs with --curve-server-key \
            coordinator.key and --curve-secret NAME.key_secret. A key added to the folder is let in without \
            restarting the coordinator.

            Examples:
              coordinator keygen --name coordinator --out /etc/reelfarm
              coordinator keygen --name render-b --out keys/     # then copy keys/render-b.key to the allow-list
            """
    )

    @Option(help: "The key pair's name: the files' names, and the worker's name in the coordinator's logs.")
    var name: String = "coordinator"

    @Option(help: "The folder to write into.")
    var out: String = "."

    func validate() throws {
        guard !name.isEmpty, name.count <= 64,
            name.unicodeScalars.allSatisfy({
                CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)
            }),
            !name.hasPrefix(".")
        else {
            throw ValidationError("--name must be 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'")
        }
    }

    func run() throws {
        let pair = try CurveKeyPair.generate()
        let (publicFile, secretFile) = try pair.write(folder: URL(fileURLWithPath: out), name: name)
        print("public key:  \(pair.publicKey)")
        print("wrote \(publicFile.path) (public: copy it where it is needed)")
        print("wrote \(secretFile.path) (secret, mode 0600: keep it on this box)")
    }
}
