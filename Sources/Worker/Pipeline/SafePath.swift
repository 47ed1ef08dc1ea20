/// Checks names that become path components (batch and episode ids) before they touch the file system.
///
/// The wire protocol already validates ids; this is the second line of defence where ids turn into
/// folders, so a bad id can never climb out of the output folder or hide a file.
enum SafePath {
    /// The longest component accepted, in UTF-8 bytes: file systems allow 255, and an id may have 128
    /// bytes before `-attempt-N` is added (a 128-byte id must not fail every attempt).
    static let maxComponentBytes = 200

    /// Why a name cannot be a path component.
    struct UnsafeComponent: Error, Sendable, Equatable, CustomStringConvertible {
        var name: String
        var reason: String

        var description: String {
            "'\(name.truncated(toUTF8Bytes: 64).debugEscaped)' cannot be a file name: \(reason)"
        }
    }

    /// `name` itself if it is safe as one path component: non-empty, at most ``maxComponentBytes`` UTF-8
    /// bytes, no `/`, `\`, NUL or other control or format characters, no `..`, and not starting with a
    /// dot (no `.`, `..` or hidden names).
    static func component(_ name: String) throws(UnsafeComponent) -> String {
        func reject(_ reason: String) -> UnsafeComponent { UnsafeComponent(name: name, reason: reason) }
        guard !name.isEmpty else { throw reject("it is empty") }
        guard name.utf8.count <= maxComponentBytes else { throw reject("it is longer than \(maxComponentBytes) bytes") }
        guard !name.hasPrefix(".") else { throw reject("it starts with a dot") }
        guard !name.contains("..") else { throw reject("it contains '..'") }
        for scalar in name.unicodeScalars {
            switch scalar {
            case "/", "\\": throw reject("it contains a path separator")
            case "\0": throw reject("it contains NUL")
            default: break
            }
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .unassigned:
                throw reject("it contains a control character")
            default: break
            }
        }
        return name
    }
}

extension String {
    /// Control characters shown as escapes, for error messages.
    fileprivate var debugEscaped: String {
        String(String(reflecting: self).dropFirst().dropLast())
    }
}
