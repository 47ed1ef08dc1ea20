import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Shared
import Synchronization

/// ``HTTPTransport`` over async-http-client.
///
/// Why not `HTTPClient.shared`: its configuration mimics a browser (90 s connect and read timeouts,
/// up to 20 redirects followed). API calls want a short connect timeout and no redirects (a redirect
/// could carry our key to another host). So the process makes its own client, once, lazily, on the
/// first call of ``processWide(connectTimeout:)``, and keeps it for the life of the process (like
/// `HTTPClient.shared`, it is never shut down; a process-lifetime global is never deinitialised).
/// Every provider built from the same ``HTTPCallSettings`` shares it, so there is one client per
/// process, and one connection pool per host.
struct AsyncHTTPClientTransport: HTTPTransport {
    let client: HTTPClient

    /// Uses the given client; the caller owns it (and shuts it down).
    init(client: HTTPClient) {
        self.client = client
    }

    /// The process's client for this connect timeout, created on first use. Every provider normally
    /// passes the same ``HTTPCallSettings/connectTimeout``, so the process has exactly one client.
    static func processWide(
        connectTimeout: Duration = HTTPCallSettings.default.connectTimeout
    )
        -> AsyncHTTPClientTransport
    {
        let client = clients.withLock { clients in
            if let client = clients[connectTimeout] { return client }
            let client = HTTPClient(
                eventLoopGroup: HTTPClient.defaultEventLoopGroup,
                configuration: configuration(connectTimeout: connectTimeout)
            )
            clients[connectTimeout] = client
            return client
        }
        return AsyncHTTPClientTransport(client: client)
    }

    /// Explicit connect timeout, no redirects, no decompression (bodies are bounded as they arrive), no
    /// retrying of failed connection attempts inside the pool.
    static func configuration(connectTimeout: Duration) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: TimeAmount(connectTimeout)),
            decompression: .disabled
        )
        configuration.httpVersion = .automatic
        // A failed connection attempt fails the request at once (as a network error) instead of being
        // retried inside the pool until the request's deadline: the retry loop of ``HTTPCaller`` retries
        // it with backoff, and a provider that is down is seen in seconds, not after `requestTimeout`.
        configuration.connectionPool.retryConnectionEstablishment = false
        // The pool's default of 8 connections per host would queue calls *inside* the client after their
        // permit was taken and reported started, so the provider would see them late and bunched, past
        // the lease manager's margin. Reelfarm bounds concurrency itself (MAX_PARALLEL_API_CALLS,
        // MAX_WORKER_API_CALLS, budgets); the pool must never be the bottleneck.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1024
        return configuration
    }

    private static let clients = Mutex<[Duration: HTTPClient]>([:])

    func send(_ request: ProviderRequest, timeout: Duration) async throws -> ProviderResponse {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for field in request.headers {
            outgoing.headers.add(name: field.name, value: field.value)
        }
        if let body = request.body {
            outgoing.body = .bytes(body)
        }
        let limit = request.maxResponseBytes
        let client = client
        let prepared = outgoing
        do {
            return try await withOverallTimeout(timeout) {
                let response = try await client.execute(prepared, timeout: TimeAmount(timeout))
                let body = try await response.body.collect(upTo: limit)
                var headers = HTTPHeaderFields()
                for (name, value) in response.headers {
                    headers.add(name, value)
                }
                return ProviderResponse(
                    status: Int(response.status.code),
                    headers: headers,
                    body: Data(body.readableBytesView)
                )
            }
        } catch let error as HTTPTransportError {
            throw error
        } catch is NIOTooManyBytesError {
            throw HTTPTransportError.bodyTooLarge(limit: limit)
        } catch {
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            throw Self.map(error)
        }
    }

    /// Sorts async-http-client's and NIO's errors into timeout, invalid request or network.
    static func map(_ error: any Error) -> HTTPTransportError {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout, .socksHandshakeTimeout, .httpProxyHandshakeTimeout:
                return .timeout(error.description)
            case .invalidURL, .emptyHost, .emptyScheme, .missingSocketPath, .alreadyShutdown:
                return .invalidRequest(error.description)
            default:
                if error.shortDescription == "Unsupported scheme" { return .invalidRequest(error.description) }
                return .network(error.description)
            }
        }
        return .network(String(describing: error))
    }
}

extension TimeAmount {
    /// Rounded down to nanoseconds.
    fileprivate init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Runs `operation`, failing with ``HTTPTransportError/timeout(_:)`` if it takes longer than `timeout`.
/// The operation is cancelled then (async-http-client cancels the request).
func withOverallTimeout<T: Sendable>(
    _ timeout: Duration,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            try Task.checkCancellation()
            throw HTTPTransportError.timeout("no complete answer in \(timeout.shortDescription)")
        }
        return value
    }
}
