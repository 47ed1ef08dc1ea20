extension Duration {
    /// The duration in seconds as a floating-point number (for logs and JSON).
    public var secondsDouble: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    /// The duration in whole milliseconds, rounded down.
    public var wholeMilliseconds: Int {
        let c = components
        return Int(c.seconds) * 1000 + Int(c.attoseconds / 1_000_000_000_000_000)
    }

    /// Seconds with one decimal, as in the coordinator's log lines: `12.4s`.
    public var shortDescription: String { secondsText(decimals: 1) }

    /// Seconds with two decimals, as in the pipeline's log lines: `12.34s`.
    public var secondsText: String { secondsText(decimals: 2) }

    /// Rounded to `decimals` (1 or 2) with integer arithmetic, so the text never depends on a locale
    /// or on floating-point rounding.
    private func secondsText(decimals: Int) -> String {
        let scale: Int64 = decimals == 2 ? 100 : 10
        let attosPerUnit: Int64 = 1_000_000_000_000_000_000 / scale
        let (seconds, attoseconds) = components
        let half = attoseconds < 0 ? -attosPerUnit / 2 : attosPerUnit / 2
        let units = seconds * scale + (attoseconds + half) / attosPerUnit
        let sign = units < 0 ? "-" : ""
        let magnitude = units.magnitude
        let fraction = String(magnitude % UInt64(scale))
        let padded = String(repeating: "0", count: decimals - fraction.count) + fraction
        return "\(sign)\(magnitude / UInt64(scale)).\(padded)s"
    }
}
