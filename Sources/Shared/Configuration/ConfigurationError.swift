/// A setting is missing, malformed or out of range. The executables print the message and exit 2.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
