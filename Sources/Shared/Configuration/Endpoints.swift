/// Whether an address stays on this machine: what decides if CURVE keys or an HTTP token are required.
public enum Endpoints {
    /// `ipc://` and `inproc://` endpoints, and `tcp://` on a loopback address or the `lo` interface.
    public static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = String(endpoint.dropFirst("tcp://".count))
        if let semicolon = host.firstIndex(of: ";") { host = String(host[host.index(after: semicolon)...]) }
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix { $0 != "]" })
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        return isLoopback(host: host) || host == "lo"
    }

    /// `localhost`, `127.x.y.z` and `::1`.
    public static func isLoopback(host: String) -> Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h == "[::1]" || h.hasPrefix("127.")
    }
}
