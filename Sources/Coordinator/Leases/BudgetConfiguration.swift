import Protocol
import Shared

/// Reads the fleet's rate-limit budgets from `--budget` flags, `REELFARM_BUDGETS` and the `budgets:` /
/// `leases:` sections of the settings file (flags win per provider, then the environment, then the file).
///
/// A budget spec is `PROVIDER=RATE[,burst=N][,concurrent=N][,units=RATE]` with a rate written `N/s`,
/// `N/min` or `N/<milliseconds>ms`, e.g. `image=10/s`, `llm=500/min,units=200000/min`, `tts=concurrent=5`
/// (only a concurrency limit). Providers are the call kinds: `llm`, `tts`, `image`.
enum BudgetConfiguration {
    static let providers = ["llm", "tts", "image"]

    /// `--budget-mode`: how the budgets are enforced.
    enum Mode: String, CaseIterable, Sendable {
        /// The coordinator leases permits (the default).
        case leased
        /// Every worker enforces the full budget on its own, like the single-machine predecessor run on
        /// several boxes (comparison mode: the fleet exceeds the limits).
        case local
        /// Every local worker enforces budget ÷ `--workers` (the manual workaround of per-process limiters).
        case localSplit = "local-split"
    }

    static func resolve(
        flags: [String],
        mode modeFlag: String?,
        localWorkers: Int,
        environment: EnvironmentSettings,
        file: ConfigFile?
    ) throws(ConfigurationError) -> LeaseSettings {
        var byProvider: [String: ProviderBudget] = [:]
        if let file {
            for provider in providers {
                if let budget = try fromFile(file, provider: provider) { byProvider[provider] = budget }
            }
        }
        if let env = environment.value("REELFARM_BUDGETS")?.value {
            for spec in env.split(separator: ";").map(String.init) where !spec.trimmed.isEmpty {
                let budget = try parse(spec, source: "REELFARM_BUDGETS")
                byProvider[budget.provider] = budget
            }
        }
        for spec in flags {
            let budget = try parse(spec, source: "--budget")
            byProvider[budget.provider] = budget
        }

        var settings = LeaseSettings()
        let modeText =
            modeFlag ?? environment.value("REELFARM_BUDGET_MODE")?.value ?? file?.string("leases.mode") ?? "leased"
        guard let mode = Mode(rawValue: modeText.trimmed) else {
            throw ConfigurationError(
                "budget mode must be \(Mode.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(modeText)\""
            )
        }
        var budgets = providers.compactMap { byProvider[$0] }
        switch mode {
        case .leased:
            settings.mode = .leased
        case .local:
            settings.mode = .local
        case .localSplit:
            settings.mode = .local
            let n = max(1, localWorkers)
            budgets = budgets.map { $0.share(of: n) }
        }
        settings.budgets = budgets
        if let v = try milliseconds(file, "leases.margin_ms", range: 0...60_000) { settings.margin = v }
        if let v = try milliseconds(file, "leases.use_within_ms", range: 10...3_600_000) { settings.useWithin = v }
        if let v = try milliseconds(file, "leases.slot_ttl_ms", range: 100...3_600_000) { settings.slotTTL = v }
        let learnText = environment.value("REELFARM_LEARN_LIMITS")?.value ?? file?.string("leases.learn_limits")
        switch learnText?.trimmed.lowercased() {
        case nil, "1", "true", "yes", "on": settings.learnLimits = settings.mode == .leased
        case "0", "false", "no", "off": settings.learnLimits = false
        case let other?:
            throw ConfigurationError(
                "REELFARM_LEARN_LIMITS / leases.learn_limits must be true or false, got \"\(other)\""
            )
        }
        if let v = try milliseconds(file, "leases.probe_interval_ms", range: 0...1000) { settings.probeInterval = v }
        if let text = file?.string("leases.admission_windows") {
            guard let v = Double(text), v >= 0, v <= 1000 else {
                throw ConfigurationError("leases.admission_windows must be a number from 0 to 1000, got \"\(text)\"")
            }
            settings.admissionWindows = v
        }
        return settings
    }

    /// Parses one spec, e.g. `image=10/s,burst=5,concurrent=4`.
    static func parse(_ spec: String, source: String) throws(ConfigurationError) -> ProviderBudget {
        let trimmed = spec.trimmed
        guard let eq = trimmed.firstIndex(of: "=") else {
            throw ConfigurationError("\(source) \"\(spec)\": expected PROVIDER=RATE, e.g. image=10/s")
        }
        let provider = String(trimmed[..<eq]).trimmed
        guard providers.contains(provider) else {
            throw ConfigurationError(
                "\(source) \"\(spec)\": unknown provider \"\(provider)\" (budgets cover \(providers.joined(separator: ", ")))"
            )
        }
        var budget = ProviderBudget(provider: provider)
        let parts = trimmed[trimmed.index(after: eq)...].split(separator: ",").map { String($0).trimmed }
        for (index, part) in parts.enumerated() {
            if let kv = part.firstIndex(of: "=") {
                let key = String(part[..<kv]).trimmed
                let value = String(part[part.index(after: kv)...]).trimmed
                switch key {
                case "burst":
                    budget.burst = try positive(value, "\(source) \"\(spec)\": burst")
                case "concurrent", "max_concurrent":
                    budget.maxConcurrent = try positive(value, "\(source) \"\(spec)\": concurrent")
                case "units":
                    let (n, window) = try rate(value, "\(source) \"\(spec)\": units")
                    budget.units = n
                    budget.unitWindowMs = window
                default:
                    throw ConfigurationError(
                        "\(source) \"\(spec)\": unknown key \"\(key)\" (keys: burst, concurrent, units)"
                    )
                }
            } else if index == 0 {
                let (n, window) = try rate(part, "\(source) \"\(spec)\": rate")
                budget.requests = n
                budget.requestWindowMs = window
            } else {
                throw ConfigurationError("\(source) \"\(spec)\": \"\(part)\" is not KEY=VALUE")
            }
        }
        guard budget.requests != nil || budget.maxConcurrent != nil || budget.units != nil else {
            throw ConfigurationError("\(source) \"\(spec)\": sets no limit")
        }
        if let burst = budget.burst, budget.requests == nil || burst > budget.requests! {
            throw ConfigurationError("\(source) \"\(spec)\": burst needs a rate and must not exceed it")
        }
        return budget
    }

    /// `10/s`, `500/min`, `3/250ms` → (count, window in ms).
    static func rate(_ text: String, _ what: String) throws(ConfigurationError) -> (Int, Int) {
        let pieces = text.split(separator: "/", maxSplits: 1).map { String($0).trimmed }
        guard pieces.count == 2, let n = Int(pieces[0]), n >= 1, n <= 1_000_000_000 else {
            throw ConfigurationError("\(what) must look like 10/s, 500/min or 3/250ms, got \"\(text)\"")
        }
        let unit = pieces[1].lowercased()
        let window: Int
        switch unit {
        case "s", "sec", "second": window = 1000
        case "m", "min", "minute": window = 60_000
        case "h", "hour": window = 3_600_000
        default:
            guard unit.hasSuffix("ms"), let ms = Int(unit.dropLast(2)), (1...86_400_000).contains(ms) else {
                throw ConfigurationError("\(what): unknown window \"\(pieces[1])\" (s, min, h or <N>ms)")
            }
            window = ms
        }
        return (n, window)
    }

    private static func fromFile(_ file: ConfigFile, provider: String) throws(ConfigurationError) -> ProviderBudget? {
        let prefix = "budgets.\(provider)."
        var budget = ProviderBudget(provider: provider)
        var any = false
        func int(_ key: String) throws(ConfigurationError) -> Int? {
            guard let text = file.string(prefix + key) else { return nil }
            any = true
            return try positive(text, "\(file.path): \(prefix)\(key)")
        }
        if let v = try int("requests_per_second") { (budget.requests, budget.requestWindowMs) = (v, 1000) }
        if let v = try int("requests_per_minute") {
            if budget.requests != nil {
                throw ConfigurationError(
                    "\(file.path): \(prefix) sets both requests_per_second and requests_per_minute"
                )
            }
            (budget.requests, budget.requestWindowMs) = (v, 60_000)
        }
        budget.burst = try int("burst")
        budget.maxConcurrent = try int("max_concurrent")
        if let v = try int("units_per_second") { (budget.units, budget.unitWindowMs) = (v, 1000) }
        if let v = try int("units_per_minute") {
            if budget.units != nil {
                throw ConfigurationError("\(file.path): \(prefix) sets both units_per_second and units_per_minute")
            }
            (budget.units, budget.unitWindowMs) = (v, 60_000)
        }
        guard any else { return nil }
        if let burst = budget.burst, budget.requests == nil || burst > budget.requests! {
            throw ConfigurationError("\(file.path): \(prefix)burst needs a request rate and must not exceed it")
        }
        return budget
    }

    private static func milliseconds(
        _ file: ConfigFile?,
        _ key: String,
        range: ClosedRange<Int>
    ) throws(ConfigurationError) -> Duration? {
        guard let text = file?.string(key) else { return nil }
        guard let v = Int(text), range.contains(v) else {
            throw ConfigurationError(
                "\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\""
            )
        }
        return .milliseconds(v)
    }

    private static func positive(_ text: String, _ what: String) throws(ConfigurationError) -> Int {
        guard let v = Int(text.trimmed), v >= 1, v <= 1_000_000_000 else {
            throw ConfigurationError("\(what) must be a positive whole number, got \"\(text)\"")
        }
        return v
    }

}

extension String {
    fileprivate var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
