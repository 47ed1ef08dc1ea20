import Protocol

extension ProviderBudget {
    /// What one of `n` workers may use on its own: every limit ÷ `n`, at least 1 (the burst never above
    /// the rate). For `--budget-mode local-split` and a worker going on alone without its coordinator.
    public func share(of n: Int) -> ProviderBudget {
        let n = max(1, n)
        var b = self
        b.requests = b.requests.map { max(1, $0 / n) }
        b.burst = b.burst.map { max(1, $0 / n) }
        b.maxConcurrent = b.maxConcurrent.map { max(1, $0 / n) }
        b.units = b.units.map { max(1, $0 / n) }
        if let burst = b.burst, let r = b.requests, burst > r { b.burst = r }
        return b
    }
}
