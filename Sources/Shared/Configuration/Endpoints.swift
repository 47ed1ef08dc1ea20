import Protocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// Checks an endpoint to connect to, once at start, for what can never work: a scheme other than
    /// `tcp://` or `ipc://`, a missing or out-of-range port (1…65535), a malformed address, or a host name
    /// that does not resolve (`getaddrinfo`). Throws a ``ConfigurationError`` naming `flag`; returns a
    /// warning when the name could not be resolved *for now* (`EAI_AGAIN`, a DNS server that did not
    /// answer): libzmq retries, and the name may resolve later.
    public static func checkConnect(_ endpoint: String, flag: String) throws(ConfigurationError) -> String? {
        let shown = DisplayText.quoted(endpoint)
        if endpoint.hasPrefix("ipc://") {
            guard endpoint.count > "ipc://".count else { throw ConfigurationError("\(flag) \(shown) has no path") }
            return nil
        }
        guard endpoint.hasPrefix("tcp://") else {
            throw ConfigurationError("\(flag) \(shown) must be tcp://HOST:PORT or ipc://PATH")
        }
        var address = String(endpoint.dropFirst("tcp://".count))
        // libzmq's `tcp://SOURCE;HOST:PORT` connects from a source address: the destination is what counts.
        if let semicolon = address.firstIndex(of: ";") { address = String(address[address.index(after: semicolon)...]) }
        let host: String
        let port: Substring
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]"),
                address[address.index(after: close)...].hasPrefix(":")
            else {
                throw ConfigurationError("\(flag) \(shown) is not tcp://[IPv6]:PORT")
            }
            host = String(address[address.index(after: address.startIndex)..<close])
            port = address[address.index(close, offsetBy: 2)...]
        } else {
            guard let colon = address.lastIndex(of: ":") else {
                throw ConfigurationError("\(flag) \(shown) has no port: give tcp://HOST:PORT")
            }
            host = String(address[..<colon])
            port = address[address.index(after: colon)...]
        }
        guard !port.isEmpty, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber), port.count <= 5,
            let number = Int(port), (1...65535).contains(number)
        else {
            throw ConfigurationError(
                "\(flag) \(shown): the port must be a number from 1 to 65535, got \(DisplayText.quoted(String(port)))"
            )
        }
        guard !host.isEmpty, host != "*" else {
            throw ConfigurationError("\(flag) \(shown) has no host: give tcp://HOST:PORT")
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &result)
        if let result { freeaddrinfo(result) }
        switch status {
        case 0:
            return nil
        case EAI_AGAIN:
            return
                "the host \(DisplayText.quoted(host)) of \(flag) could not be resolved for now (\(String(cString: gai_strerror(status)))); retrying"
        default:
            throw ConfigurationError(
                "\(flag) \(shown): the host \(DisplayText.quoted(host)) does not resolve (\(String(cString: gai_strerror(status))))"
            )
        }
    }
}
