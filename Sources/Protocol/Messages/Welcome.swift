/// WELCOME (coordinator → worker): the answer to HELLO. Carries the session token that every
/// later message in both directions repeats in frame 2, and the timing both sides use.
public struct Welcome: Codable, Sendable, Equatable {
    /// Session token (also in frame 2). A coordinator restart or a dropped registration makes it unknown.
    public var session: String
    /// Heartbeat interval both sides use, in milliseconds.
    public var heartbeatIntervalMs: Int
    /// Missed intervals after which a peer counts as dead.
    public var liveness: Int
    /// Largest message the coordinator accepts, in bytes.
    public var maxMessageBytes: Int
    /// Coordinator software version.
    public var softwareVersion: String
    /// Highest protocol minor version the coordinator speaks; a worker sends no kind of a later minor.
    public var protocolMinor: Int
    /// Minor 1: the rate-limit budgets of the fleet. A worker starts no call to a provider listed here
    /// without a permit (``BudgetMode/leased``), or enforces the budget itself (``BudgetMode/local``).
    /// Providers not listed are not limited.
    public var budgets: [ProviderBudget]
    public var budgetMode: BudgetMode
    /// Minor 1: workers connected to the coordinator, this one included, when it joined. A worker that
    /// loses the coordinator and is configured to go on alone uses budget ÷ this.
    public var fleetWorkers: Int
    /// Minor 5: the coordinator keeps an asset store (§18): the worker may ask it for answers before calling
    /// a provider (ASSET_GET) and offer the answers it paid for (ASSET_PUT). Absent means `false`.
    public var assetReuse: Bool

    public init(
        session: String,
        heartbeatIntervalMs: Int,
        liveness: Int,
        maxMessageBytes: Int,
        softwareVersion: String,
        protocolMinor: Int = WireProtocol.minorVersion,
        budgets: [ProviderBudget] = [],
        budgetMode: BudgetMode = .leased,
        fleetWorkers: Int = 1,
        assetReuse: Bool = false
    ) {
        self.session = session
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.liveness = liveness
        self.maxMessageBytes = maxMessageBytes
        self.softwareVersion = softwareVersion
        self.protocolMinor = protocolMinor
        self.budgets = budgets
        self.budgetMode = budgetMode
        self.fleetWorkers = fleetWorkers
        self.assetReuse = assetReuse
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        session = try c.decode(String.self, forKey: .session)
        heartbeatIntervalMs = try c.decode(Int.self, forKey: .heartbeatIntervalMs)
        liveness = try c.decode(Int.self, forKey: .liveness)
        maxMessageBytes = try c.decode(Int.self, forKey: .maxMessageBytes)
        softwareVersion = try c.decode(String.self, forKey: .softwareVersion)
        protocolMinor = try c.decodeIfPresent(Int.self, forKey: .protocolMinor) ?? 0
        budgets = try c.decodeIfPresent([ProviderBudget].self, forKey: .budgets) ?? []
        budgetMode = try c.decodeIfPresent(BudgetMode.self, forKey: .budgetMode) ?? .leased
        fleetWorkers = try c.decodeIfPresent(Int.self, forKey: .fleetWorkers) ?? 1
        assetReuse = try c.decodeIfPresent(Bool.self, forKey: .assetReuse) ?? false
    }

    enum CodingKeys: String, CodingKey {
        case session, heartbeatIntervalMs, liveness, maxMessageBytes, softwareVersion, protocolMinor, budgets
        case budgetMode, fleetWorkers, assetReuse
    }

    /// Minor-1 keys are written only when they differ from their defaults (no budgets), so a WELCOME to a worker of minor 0 carries
    /// only the keys of v1.0 (§11).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(session, forKey: .session)
        try c.encode(heartbeatIntervalMs, forKey: .heartbeatIntervalMs)
        try c.encode(liveness, forKey: .liveness)
        try c.encode(maxMessageBytes, forKey: .maxMessageBytes)
        try c.encode(softwareVersion, forKey: .softwareVersion)
        try c.encode(protocolMinor, forKey: .protocolMinor)
        if !budgets.isEmpty || budgetMode != .leased || fleetWorkers != 1 {
            try c.encode(budgets, forKey: .budgets)
            try c.encode(budgetMode, forKey: .budgetMode)
            try c.encode(fleetWorkers, forKey: .fleetWorkers)
        }
        if assetReuse { try c.encode(true, forKey: .assetReuse) }
    }
}
