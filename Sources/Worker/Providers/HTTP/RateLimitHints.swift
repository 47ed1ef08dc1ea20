import Foundation

/// What a provider's answer says about when to try again and how much budget is left
/// (providers.md §1 rate-limit headers, §2 cold start, §5).
///
/// Durations of zero or less are dropped as no hint (Azure sends `-1`/`0`), as are values that do not
/// parse.
struct RateLimitHints: Sendable, Equatable {
    /// `retry-after-ms`, else `retry-after` (delay-seconds or an HTTP-date).
    var retryAfter: Duration?
    /// `x-ratelimit-reset-requests`: when the request budget is fully refilled (Go duration, `6m0s`).
    var resetRequests: Duration?
    /// `x-ratelimit-reset-tokens`.
    var resetTokens: Duration?
    /// `x-ratelimit-remaining-requests`.
    var remainingRequests: Int?
    /// `x-ratelimit-remaining-tokens`.
    var remainingTokens: Int?
    /// `x-ratelimit-limit-requests`.
    var limitRequests: Int?
    /// `x-ratelimit-limit-tokens`.
    var limitTokens: Int?
    /// Hugging Face's `estimated_time` for a model that is loading (503 body).
    var estimatedTime: Duration?
    /// `x-should-retry`: `true` or `false` overrides the retry rules.
    var shouldRetry: Bool?
    /// ElevenLabs `current-concurrent-requests`.
    var currentConcurrentRequests: Int?
    /// ElevenLabs `maximum-concurrent-requests`.
    var maximumConcurrentRequests: Int?

    init(
        retryAfter: Duration? = nil,
        resetRequests: Duration? = nil,
        resetTokens: Duration? = nil,
        remainingRequests: Int? = nil,
        remainingTokens: Int? = nil,
        limitRequests: Int? = nil,
        limitTokens: Int? = nil,
        estimatedTime: Duration? = nil,
        shouldRetry: Bool? = nil,
        currentConcurrentRequests: Int? = nil,
        maximumConcurrentRequests: Int? = nil
    ) {
        self.retryAfter = retryAfter
        self.resetRequests = resetRequests
        self.resetTokens = resetTokens
        self.remainingRequests = remainingRequests
        self.remainingTokens = remainingTokens
        self.limitRequests = limitRequests
        self.limitTokens = limitTokens
        self.estimatedTime = estimatedTime
        self.shouldRetry = shouldRetry
        self.currentConcurrentRequests = currentConcurrentRequests
        self.maximumConcurrentRequests = maximumConcurrentRequests
    }

    /// Reads the hints from response headers. `now` turns an HTTP-date `retry-after` into a delay.
    init(headers: HTTPHeaderFields, now: Date) {
        self.init()
        retryAfter =
            headers["retry-after-ms"].flatMap(HintParser.milliseconds)
            ?? headers["retry-after"].flatMap { HintParser.retryAfter($0, now: now) }
        resetRequests = headers["x-ratelimit-reset-requests"].flatMap(HintParser.goDuration)
        resetTokens = headers["x-ratelimit-reset-tokens"].flatMap(HintParser.goDuration)
        remainingRequests = headers["x-ratelimit-remaining-requests"].flatMap(HintParser.count)
        remainingTokens = headers["x-ratelimit-remaining-tokens"].flatMap(HintParser.count)
        limitRequests = headers["x-ratelimit-limit-requests"].flatMap(HintParser.count)
        limitTokens = headers["x-ratelimit-limit-tokens"].flatMap(HintParser.count)
        shouldRetry = headers["x-should-retry"].flatMap(HintParser.bool)
        currentConcurrentRequests = headers["current-concurrent-requests"].flatMap(HintParser.count)
        maximumConcurrentRequests = headers["maximum-concurrent-requests"].flatMap(HintParser.count)
    }

    /// When a rate-limited budget is refilled: the reset of each budget that is exhausted
    /// (`remaining` 0), the longest if both are. When neither says 0 the 429 still means one of them is
    /// short (a tokens-per-minute 429 leaves `remaining-tokens` above 0 but below what the request
    /// needs), and the sooner reset is usually the other, healthy budget's: waiting for it (12 ms
    /// instead of 1.2 s) only buys another 429. So the later reset.
    var reset: Duration? {
        let exhausted = [
            remainingRequests == 0 ? resetRequests : nil,
            remainingTokens == 0 ? resetTokens : nil,
        ].compactMap { $0 }
        if let longest = exhausted.max() { return longest }
        return [resetRequests, resetTokens].compactMap { $0 }.max()
    }
}

/// Parsers for header values; each returns `nil` for anything it does not understand.
enum HintParser {
    /// `retry-after-ms`: a non-negative number of milliseconds (fractions allowed).
    static func milliseconds(_ text: String) -> Duration? {
        guard let value = decimal(text) else { return nil }
        return positive(.milliseconds(value))
    }

    /// `retry-after`: delay-seconds (fractions tolerated) or an HTTP-date (RFC 9110 §10.2.3), relative
    /// to `now`. A date in the past gives `nil`.
    static func retryAfter(_ text: String, now: Date) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = decimal(trimmed) { return positive(.seconds(seconds)) }
        guard let date = httpDate(trimmed) else { return nil }
        let seconds = date.timeIntervalSince(now)
        guard seconds.isFinite, seconds > 0 else { return nil }
        return .milliseconds((seconds * 1000).rounded(.up))
    }

    /// A Go `time.Duration` string as OpenAI sends in `x-ratelimit-reset-*`: `12ms`, `1s`, `6m0s`,
    /// `1m30.5s`, `1h2m`, `250us`/`250µs`, `40ns`. A bare number is taken as seconds (lenient: some
    /// compatible servers send that). Negative values, unknown units and stray characters give `nil`.
    static func goDuration(_ text: String) -> Duration? {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let seconds = decimal(text) { return positive(.seconds(seconds)) }
        var rest = Substring(text)
        var total = Duration.zero
        var parts = 0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = decimal(String(number)) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
            rest = rest.dropFirst(unit.count)
            guard let scale = goUnits[String(unit)] else { return nil }
            total += scale * value
            parts += 1
        }
        return parts > 0 ? positive(total) : nil
    }

    /// A non-negative whole number (`x-ratelimit-remaining-*`).
    static func count(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(trimmed)
    }

    /// `true`/`false`, any case.
    static func bool(_ text: String) -> Bool? {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true": true
        case "false": false
        default: nil
        }
    }

    /// An HTTP-date in any of RFC 9110's three forms: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
    /// RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) or asctime (`Sun Nov  6 08:49:37 1994`); always UTC.
    /// Parsed by hand: no locale, no formatter.
    static func httpDate(_ text: String) -> Date? {
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" }).map(String.init)
        guard (5...6).contains(tokens.count) else { return nil }
        var month: Int?
        var time: (Int, Int, Int)?
        var numbers: [String] = []
        for token in tokens {
            if let index = monthNames.firstIndex(of: token.lowercased()) {
                guard month == nil else { return nil }
                month = index + 1
            } else if token.contains(":") {
                let parts = token.split(separator: ":", omittingEmptySubsequences: false).compactMap {
                    count(String($0))
                }
                guard parts.count == 3, time == nil else { return nil }
                time = (parts[0], parts[1], parts[2])
            } else if count(token) != nil {
                numbers.append(token)
            } else if token != "GMT" && !dayNames.contains(where: { token.lowercased().hasPrefix($0) }) {
                return nil
            }
        }
        guard let month, let time, numbers.count == 2, let day = Int(numbers[0]), var year = Int(numbers[1]) else {
            return nil
        }
        let (hour, minute, second) = time
        if numbers[1].count == 2 { year += year < 70 ? 2000 : 1900 }
        guard (1...31).contains(day), hour < 24, minute < 60, second < 61, (1900...9999).contains(year) else {
            return nil
        }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    // MARK: - Helpers

    /// A plain non-negative decimal (`12`, `0.5`): digits with at most one dot, nothing else.
    private static func decimal(_ text: String) -> Double? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            text.filter({ $0 == "." }).count <= 1, text != "."
        else { return nil }
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }

    private static func positive(_ duration: Duration) -> Duration? {
        duration > .zero ? duration : nil
    }

    private static let goUnits: [String: Duration] = [
        "ns": .nanoseconds(1), "us": .microseconds(1), "µs": .microseconds(1), "μs": .microseconds(1),
        "ms": .milliseconds(1), "s": .seconds(1), "m": .seconds(60), "h": .seconds(3_600),
    ]

    private static let monthNames = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    private static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
