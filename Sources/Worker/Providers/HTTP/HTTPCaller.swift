import Foundation
import Logging
import Protocol
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
    ///
    /// Every try first takes a permit of the fleet's budget (``CallContext/gate``). When the calls of this
    /// kind are leased, a rate or concurrency 429 is reported to the coordinator (which lowers or pauses the
    /// budget for every worker) and the call is tried again on a new permit *without* using up a retry, up
    /// to ``maxBudgetRetries`` times; a billing error opens the provider's circuit for the fleet.
    ///
    /// - Parameter units: what one try costs in the budget's unit dimension (tokens, images, characters).
    /// - Parameter usage: reads the units a successful answer says it really used (an LLM reply's
    ///   `usage.total_tokens`); the permit's release reports them so the coordinator replaces the estimate.
    func perform(
        _ request: ProviderRequest,
        service: String,
        context: CallContext,
        units: Int = 1,
        target: ProviderTarget? = nil,
        usage: (@Sendable (ProviderResponse) -> Int?)? = nil
    ) async throws -> ProviderResponse {
        var retries = 0
        var budgetRetries = 0
        var loadingWaited = Duration.zero
        var tries = 0
        let secrets = Self.secrets(in: request.headers)
        // The asset store first: an answer already paid for takes no permit and costs nothing.
        let reuseKey = context.reuse?.isActive == true ? AssetKey.of(request) : nil
        if let key = reuseKey, let answer = await context.reuse?.lookup(key) {
            try Task.checkCancellation()
            context.meter.markReused()
            context.logger.debug(
                "provider answer reused from the asset store",
                metadata: ["service": "\(service)", "key": "\(key.prefix(12))", "bytes": "\(answer.body.count)"]
            )
            var headers = HTTPHeaderFields()
            if let type = answer.contentType { headers.set("content-type", type) }
            return ProviderResponse(status: 200, headers: headers, body: answer.body)
        }
        let leased = context.gate.isLeased(context.kind)
        while true {
            try Task.checkCancellation()
            tries += 1
            let failure: HTTPFailure
            do {
                let response: ProviderResponse
                var sentAt = ContinuousClock.now
                do {
                    response = try await context.withPermit(units: units, teaches: true) {
                        sentAt = ContinuousClock.now
                        let response = try await transport.send(request, timeout: settings.requestTimeout)
                        if let usage, (200..<300).contains(response.status), let used = usage(response) {
                            UsageMeter.current?.record(used)
                        }
                        return response
                    }
                } catch let error as GateError {
                    throw ProviderError(.quotaExceeded, "\(service): \(error)")
                }
                if (200..<300).contains(response.status) {
                    if let key = reuseKey {
                        context.meter.keep(
                            .init(
                                key: key,
                                body: response.body,
                                contentType: response.headers["content-type"],
                                service: service
                            )
                        )
                    }
                    if leased {
                        reportExhausted(response, elapsed: ContinuousClock.now - sentAt, context: context)
                        reportLimits(response, context: context)
                    }
                    return response
                }
                failure = HTTPFailureClassifier.classify(
                    status: response.status,
                    headers: response.headers,
                    body: response.body,
                    now: now(),
                    redacting: secrets
                )
            } catch let error as ProviderError {
                throw error
            } catch let error as HTTPTransportError {
                try Task.checkCancellation()
                failure = HTTPFailureClassifier.classify(error)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                try Task.checkCancellation()
                failure = HTTPFailure(kind: .network, message: String(describing: error))
            }

            if let signal = Self.signal(for: failure, provider: context.kind.rawValue, service: service, target: target)
            {
                context.gate.report(context.kind, signal)
                if leased, signal.kind == .rateLimited || signal.kind == .concurrencyLimited,
                    budgetRetries < Self.maxBudgetRetries
                {
                    budgetRetries += 1
                    var fields = metadata(service, failure, tries: tries)
                    fields["budget_retry"] = "\(budgetRetries)/\(Self.maxBudgetRetries)"
                    context.logger.warning(
                        "provider 429; retrying on a new permit of the fleet budget",
                        metadata: fields
                    )
                    continue
                }
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

    /// Budget retries of one call (leased 429s) before it is handled like any other failure.
    static let maxBudgetRetries = 20

    /// What to tell the fleet about a failure, if anything. The detail names the service and, with a
    /// `target`, the setting to change (it ends up in the coordinator's circuit line).
    static func signal(
        for failure: HTTPFailure,
        provider: String,
        service: String = "",
        target: ProviderTarget? = nil
    ) -> ProviderSignal? {
        let kind: ProviderSignal.Kind
        switch failure.kind {
        case .rateLimit: kind = .rateLimited
        case .concurrencyLimit: kind = .concurrencyLimited
        case .quota: kind = .quotaExceeded
        // Protocol minor 3; the lease client sends `quota_exceeded` to an older coordinator.
        case .auth: kind = ProviderSignal.Kind(rawValue: "auth_failed") ?? .quotaExceeded
        default: return nil
        }
        let hints = failure.hints
        return ProviderSignal(
            provider: provider,
            kind: kind,
            retryAfterMs: hints.retryAfter.map { $0.wholeMilliseconds },
            remaining: hints.remainingRequests,
            resetMs: hints.reset.map { $0.wholeMilliseconds },
            detail: String(detail(failure, service: service, target: target).prefix(400)),
            limitRequests: hints.limitRequests,
            limitUnits: hints.limitTokens,
            remainingUnits: hints.remainingTokens,
            resetUnitsMs: hints.resetTokens.map { $0.wholeMilliseconds },
            maxConcurrent: hints.maximumConcurrentRequests,
            currentConcurrent: hints.currentConcurrentRequests
        ).bounded
    }

    /// The `limits` signal of a successful answer's rate-limit headers (minor 4), `nil` when it has none
    /// that state a limit. Resets are as the provider sent them (the coordinator takes the longest as the
    /// window).
    static func limitsSignal(_ hints: RateLimitHints, provider: String) -> ProviderSignal? {
        guard hints.limitRequests != nil || hints.limitTokens != nil || hints.maximumConcurrentRequests != nil else {
            return nil
        }
        return ProviderSignal(
            provider: provider,
            kind: .limits,
            remaining: hints.remainingRequests,
            resetMs: hints.resetRequests.map { $0.wholeMilliseconds },
            limitRequests: hints.limitRequests,
            limitUnits: hints.limitTokens,
            remainingUnits: hints.remainingTokens,
            resetUnitsMs: hints.resetTokens.map { $0.wholeMilliseconds },
            maxConcurrent: hints.maximumConcurrentRequests,
            currentConcurrent: hints.currentConcurrentRequests
        ).bounded
    }

    /// Tells the fleet the limits a successful answer states (the lease client sends only news).
    private func reportLimits(_ response: ProviderResponse, context: CallContext) {
        let hints = RateLimitHints(headers: response.headers, now: now())
        guard let signal = Self.limitsSignal(hints, provider: context.kind.rawValue) else { return }
        context.gate.report(context.kind, signal)
    }

    private static func detail(_ failure: HTTPFailure, service: String, target: ProviderTarget?) -> String {
        guard failure.kind == .quota || failure.kind == .auth else { return failure.message }
        let text =
            target.map { ProviderDiagnosis.diagnose(ProviderError(failure, service: service), target: $0) }
            .map(\.description) ?? failure.description
        return service.isEmpty ? text : "\(service): \(text)"
    }

    /// A success whose headers say the window is used up pauses the provider until its reset. The provider
    /// computed the reset when the request arrived, so the time the call took is taken off (for a slow
    /// call the window may already be open again).
    private func reportExhausted(_ response: ProviderResponse, elapsed: Duration, context: CallContext) {
        let hints = RateLimitHints(headers: response.headers, now: now())
        guard hints.remainingRequests == 0, let full = hints.resetRequests else { return }
        let reset = full - elapsed
        guard reset > .milliseconds(1) else { return }
        context.gate.report(
            context.kind,
            ProviderSignal(
                provider: context.kind.rawValue,
                kind: .exhausted,
                remaining: 0,
                resetMs: reset.wholeMilliseconds
            )
        )
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

extension ProviderSignal {
    /// The signal with every header value a provider sent clamped into the protocol's ranges (§16), or
    /// dropped when it cannot be (a limit of 0), so that the coordinator never refuses it.
    var bounded: ProviderSignal {
        func clamp(_ value: Int?, _ range: ClosedRange<Int>) -> Int? {
            value.map { min(max($0, range.lowerBound), range.upperBound) }
        }
        var s = self
        s.retryAfterMs = clamp(retryAfterMs, 0...86_400_000)
        s.remaining = clamp(remaining, 0...Int(Int32.max))
        s.resetMs = clamp(resetMs, 0...86_400_000)
        s.limitRequests = limitRequests.flatMap { $0 >= 1 ? min($0, 1_000_000_000) : nil }
        s.limitUnits = limitUnits.flatMap { $0 >= 1 ? min($0, 1_000_000_000_000) : nil }
        s.remainingUnits = clamp(remainingUnits, 0...1_000_000_000_000)
        s.resetUnitsMs = clamp(resetUnitsMs, 0...86_400_000)
        s.maxConcurrent = maxConcurrent.flatMap { $0 >= 1 ? min($0, 100_000) : nil }
        s.currentConcurrent = clamp(currentConcurrent, 0...100_000)
        return s
    }
}
