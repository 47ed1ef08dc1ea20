import Foundation

/// Header fields in order, looked up without regard to case.
struct HTTPHeaderFields: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence {
    private(set) var fields: [(name: String, value: String)]

    init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    init(dictionaryLiteral elements: (String, String)...) {
        self.fields = elements.map { (name: $0.0, value: $0.1) }
    }

    /// The first value of the field, if any.
    subscript(name: String) -> String? {
        fields.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    mutating func add(_ name: String, _ value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every field of that name with one.
    mutating func set(_ name: String, _ value: String) {
        fields.removeAll { $0.name.caseInsensitiveEquals(name) }
        fields.append((name: name, value: value))
    }

    func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }

    static func == (lhs: HTTPHeaderFields, rhs: HTTPHeaderFields) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }
}

extension String {
    fileprivate func caseInsensitiveEquals(_ other: String) -> Bool {
        utf8.count == other.utf8.count && lowercased() == other.lowercased()
    }
}

/// One request to a provider's API.
struct ProviderRequest: Sendable, Equatable {
    /// `POST` unless told otherwise.
    var method: String
    var url: String
    var headers: HTTPHeaderFields
    var body: Data?
    /// The largest response body read; a larger one fails with ``HTTPTransportError/bodyTooLarge``.
    var maxResponseBytes: Int

    init(
        method: String = "POST",
        url: String,
        headers: HTTPHeaderFields = [:],
        body: Data? = nil,
        maxResponseBytes: Int
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.maxResponseBytes = maxResponseBytes
    }
}

/// A provider's answer, body collected in full.
struct ProviderResponse: Sendable, Equatable {
    var status: Int
    var headers: HTTPHeaderFields
    var body: Data

    init(status: Int, headers: HTTPHeaderFields = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The media type of `Content-Type`, lowercased, without parameters (`audio/wav`).
    var mediaType: String? {
        guard let value = headers["content-type"] else { return nil }
        let type = value.split(separator: ";", maxSplits: 1).first.map(String.init) ?? value
        let trimmed = type.trimmingCharacters(in: .whitespaces).lowercased()
        return trimmed.isEmpty ? nil : trimmed
    }
}

/// Sends requests and collects their answers. ``AsyncHTTPClientTransport`` does it over the network;
/// tests use a fake.
protocol HTTPTransport: Sendable {
    /// Sends the request and collects the whole answer, whatever its status.
    ///
    /// - Parameter timeout: the whole exchange (connect, send, response head and body) must finish in
    ///   this time.
    /// - Throws: ``HTTPTransportError`` when no complete answer came (timeout, network failure, body
    ///   over `request.maxResponseBytes`, an unusable URL); `CancellationError` when the task is cancelled.
    func send(_ request: ProviderRequest, timeout: Duration) async throws -> ProviderResponse
}

/// Why a request got no complete answer.
struct HTTPTransportError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: String, Sendable {
        case timeout
        case network
        case bodyTooLarge = "body_too_large"
        case invalidRequest = "invalid_request"
    }

    private let code: Code
    /// What happened, for logs; never contains request headers.
    var message: String

    private init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// No complete answer within the request timeout (or the client's connect timeout).
    static func timeout(_ message: String = "no answer in time") -> HTTPTransportError {
        HTTPTransportError(.timeout, message)
    }

    /// Connection refused or reset, DNS failure, TLS failure, the server closed the connection.
    static func network(_ message: String) -> HTTPTransportError {
        HTTPTransportError(.network, message)
    }

    /// The body was larger than the request allowed.
    static func bodyTooLarge(limit: Int) -> HTTPTransportError {
        HTTPTransportError(.bodyTooLarge, "response body over \(limit) bytes")
    }

    /// The request could not be sent at all (a malformed URL, an unsupported scheme): a configuration error.
    static func invalidRequest(_ message: String) -> HTTPTransportError {
        HTTPTransportError(.invalidRequest, message)
    }

    var isTimeout: Bool { code == .timeout }
    var isNetwork: Bool { code == .network }
    var isBodyTooLarge: Bool { code == .bodyTooLarge }
    var isInvalidRequest: Bool { code == .invalidRequest }

    var description: String { "\(code.rawValue): \(message)" }
}

// MARK: - URLs

enum ProviderURL {
    /// `base` and `path` joined with exactly one slash between them, whatever slashes either brings:
    /// `join("http://h/v1/", "/audio/speech")` is `http://h/v1/audio/speech`.
    static func join(_ base: String, _ path: String) -> String {
        var base = Substring(base)
        while base.hasSuffix("/") { base = base.dropLast() }
        var path = Substring(path)
        while path.hasPrefix("/") { path = path.dropFirst() }
        return path.isEmpty ? String(base) : "\(base)/\(path)"
    }

    /// A single path segment with everything but unreserved characters percent-encoded (a voice id
    /// can never add a `/` or `?`).
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    /// A path of segments (a Hugging Face model id `org/model`): each segment encoded, slashes kept.
    static func path(_ text: String) -> String {
        text.split(separator: "/", omittingEmptySubsequences: true).map { segment(String($0)) }
            .joined(separator: "/")
    }

    /// RFC 3986 unreserved characters.
    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
}
