import Foundation
import Logging
import Shared

/// Sends one provider request with retries: the I/O shell around ``RetryPolicy`` and
/// ``HTTPFailureClassifier``. Shared by every HTTP provider.
struct HTTPCaller: Sendable {
    var transport: any HTTPTransport
    var settings: HTTPCallSettings
    var policy: RetryPolicy
    /// What retries wait on. The default is `Task.sleep`; tests record the delays instead.
    var sleep: @Sendable (Duration) async throws -> Void
    /// The wall clock, for HTTP-date `retry-after` values.
    var now: @Sendable () -> Date

    init(
        transport: any HTTPTransport,
        settings: HTTPCallSettings = .default,
        policy: RetryPolicy? = nil,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.transport = transport
        self.settings = settings
        self.policy = policy ?? RetryPolicy(settings)
        self.sleep = sleep
        self.now = now
    }

    /// Sends `request` until it succeeds (2xx) or the policy gives up, sleeping between tries.
    ///
    /// Each retry is logged at warning on the context's logger with the failure kind, status and delay;
    /// headers are never logged (they hold the key).
    ///
    /// - Parameter service: names the call in logs and errors, e.g. `openai speech`.
    /// - Returns: the 2xx answer (its content is for the caller to check).
    /// - Throws: ``ProviderError`` with the classification of the last failure; `CancellationError`
    ///   when the task is cancelled (also during a sleep).
    func perform(_ request: ProviderRequest, service: String, context: CallContext) async throws -> ProviderResponse {
        var retries = 0
        var loadingWaited = Duration.zero
        var tries = 0
        let secrets = Self.secrets(in: request.headers)
        while true {
            try Task.checkCancellation()
            tries += 1
            let failure: HTTPFailure
            do {
                let response = try await transport.send(request, timeout: settings.requestTimeout)
                if (200..<300).contains(response.status) { return response }
                failure = HTTPFailureClassifier.classify(
                    status: response.status,
                    headers: response.headers,
                    body: response.body,
                    now: now(),
                    redacting: secrets
                )
            } catch let error as HTTPTransportError {
                try Task.checkCancellation()
                failure = HTTPFailureClassifier.classify(error)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                try Task.checkCancellation()
                failure = HTTPFailure(kind: .network, message: String(describing: error))
            }

            let decision = policy.decide(failure, retries: retries, loadingWaited: loadingWaited)
            switch decision {
            case .giveUp(let why):
                context.logger.debug(
                    "provider call failed",
                    metadata: metadata(service, failure, tries: tries).merging(["give_up": "\(why.rawValue)"]) {
                        $1
                    }
                )
                throw ProviderError(failure, service: service)
            case .retry(let delay, let reason):
                if reason == .modelLoading {
                    loadingWaited += delay
                } else {
                    retries += 1
                }
                var fields = metadata(service, failure, tries: tries)
                fields["retry.in.s"] = "\(delay.shortDescription)"
                fields["retry.reason"] = "\(reason.rawValue)"
                fields["retry"] = "\(retries)/\(policy.maxRetries)"
                context.logger.warning("provider call retrying", metadata: fields)
                try await sleep(delay)
            }
        }
    }

    /// The credentials a request carries (the values of `Authorization`, `xi-api-key`, `api-key`), so
    /// that a server echoing them in an error message does not put them in logs or errors.
    static func secrets(in headers: HTTPHeaderFields) -> [String] {
        let names: Set<String> = ["authorization", "xi-api-key", "api-key", "x-api-key"]
        return headers.filter { names.contains($0.name.lowercased()) }.flatMap { field -> [String] in
            let value = field.value.trimmingCharacters(in: .whitespaces)
            let parts = value.split(separator: " ", maxSplits: 1).map(String.init)
            // "Bearer sk-…": the token alone too.
            return parts.count == 2 ? [value, parts[1]] : [value]
        }.filter { $0.count >= 4 }
    }

    private func metadata(_ service: String, _ failure: HTTPFailure, tries: Int) -> Logger.Metadata {
        var fields: Logger.Metadata = [
            "service": "\(service)",
            "failure": "\(failure.kind.rawValue)",
            "tries": "\(tries)",
        ]
        if let status = failure.status { fields["http.status"] = "\(status)" }
        if let code = failure.code { fields["error.code"] = "\(code)" }
        if !failure.message.isEmpty { fields["error.message"] = "\(failure.message)" }
        return fields
    }
}
