import Protocol

extension String {
    /// The string cut to at most `maxBytes` UTF-8 bytes on a character boundary, with "…" when cut.
    func truncated(toUTF8Bytes maxBytes: Int) -> String {
        guard utf8.count > maxBytes else { return self }
        let ellipsis = "…"
        let budget = max(0, maxBytes - ellipsis.utf8.count)
        var used = 0
        var end = startIndex
        for index in indices {
            let size = self[index].utf8.count
            if used + size > budget { break }
            used += size
            end = self.index(after: index)
        }
        return String(self[..<end]) + ellipsis
    }
}

enum FailureReason {
    /// Reasons and errors go on the wire (`WireProtocol.maxTextBytes`) and into logs; a provider's
    /// error may carry a whole HTTP body, so keep them short.
    static let maxBytes = min(1_024, WireProtocol.maxTextBytes)

    /// A short human-readable reason for a failed call.
    static func describe(_ error: any Error) -> String {
        let text: String
        switch error {
        case let error as ProviderError:
            text = error.message.isEmpty ? error.kind.description : error.message
        case is CancellationError:
            text = "cancelled"
        default:
            let described = String(describing: error)
            text = described.isEmpty ? "\(type(of: error))" : described
        }
        return text.truncated(toUTF8Bytes: maxBytes)
    }
}
