import CZMQ

/// Typed socket options. Durations are converted to whole milliseconds, rounded up; negative durations count as 0.
/// Set options before `bind`/`connect`: libzmq applies most of them only to connections made afterwards.
extension ZMQSocket {
    /// `ZMQ_LINGER`: how long unsent messages are kept after ``close()``. Always finite here, so closing a socket
    /// or terminating the context never waits forever.
    public func setLinger(_ duration: Duration) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_LINGER, duration.zmqOptionMilliseconds, name: "ZMQ_LINGER")
    }

    /// `ZMQ_SNDHWM`: messages queued per peer before sends would block (DEALER, PUSH) or drop or fail (ROUTER).
    /// libzmq's default is 1000; 0 means no limit.
    public func setSendHighWaterMark(_ messages: Int32) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_SNDHWM, messages, name: "ZMQ_SNDHWM")
    }

    /// `ZMQ_RCVHWM`: messages queued per peer on the receiving side. Default 1000; 0 means no limit.
    public func setReceiveHighWaterMark(_ messages: Int32) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_RCVHWM, messages, name: "ZMQ_RCVHWM")
    }

    /// `ZMQ_ROUTING_ID`: the identity a ROUTER peer sees for this socket. 1–255 bytes, not starting with 0.
    public func setRoutingId(_ bytes: [UInt8]) throws(ZMQError) {
        try zmqCall("zmq_setsockopt", detail: "ZMQ_ROUTING_ID") {
            bytes.withUnsafeBytes { raw in
                zmq_setsockopt(handle, ZMQ_ROUTING_ID, raw.baseAddress, raw.count)
            }
        }
    }

    /// `ZMQ_MAXMSGSIZE`: a peer that sends a larger inbound frame (libzmq checks each frame's size) is disconnected
    /// and the message is never delivered. -1 (libzmq's default) means no limit.
    public func setMaxMessageSize(_ bytes: Int64) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_MAXMSGSIZE, bytes, name: "ZMQ_MAXMSGSIZE")
    }

    /// `ZMQ_RECONNECT_IVL` and `ZMQ_RECONNECT_IVL_MAX`: the first reconnect delay and the cap of its exponential
    /// backoff (`max` of zero means no backoff). libzmq's defaults are 100 ms and 0.
    public func setReconnectInterval(_ interval: Duration, max: Duration) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_RECONNECT_IVL, interval.zmqOptionMilliseconds, name: "ZMQ_RECONNECT_IVL")
        try Self.setOption(handle, ZMQ_RECONNECT_IVL_MAX, max.zmqOptionMilliseconds, name: "ZMQ_RECONNECT_IVL_MAX")
    }

    /// `ZMQ_ROUTER_MANDATORY` (ROUTER only): sending to an unknown routing id fails with
    /// ``ZMQError/Code/hostUnreachable`` (and at the high-water mark with ``ZMQError/Code/wouldBlock``) instead of
    /// being dropped silently.
    public func setRouterMandatory(_ on: Bool) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_ROUTER_MANDATORY, Int32(on ? 1 : 0), name: "ZMQ_ROUTER_MANDATORY")
    }

    /// `ZMQ_ROUTER_HANDOVER` (ROUTER only): a new connection with an already used routing id takes it over instead
    /// of being ignored.
    public func setRouterHandover(_ on: Bool) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_ROUTER_HANDOVER, Int32(on ? 1 : 0), name: "ZMQ_ROUTER_HANDOVER")
    }

    /// `ZMQ_IMMEDIATE`: queue messages only on completed connections, so a send with no peer would block
    /// (``ZMQError/Code/wouldBlock`` with DONTWAIT) instead of waiting in a queue for a connection.
    public func setImmediate(_ on: Bool) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_IMMEDIATE, Int32(on ? 1 : 0), name: "ZMQ_IMMEDIATE")
    }

    /// `ZMQ_HANDSHAKE_IVL`: how long a new connection may take to complete the ZMTP handshake. Default 30 s;
    /// zero disables the limit.
    public func setHandshakeInterval(_ duration: Duration) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_HANDSHAKE_IVL, duration.zmqOptionMilliseconds, name: "ZMQ_HANDSHAKE_IVL")
    }

    /// ZMTP heartbeats: `ZMQ_HEARTBEAT_IVL` (send a PING this often; zero disables), `ZMQ_HEARTBEAT_TIMEOUT` (drop
    /// the connection after this long without traffic) and `ZMQ_HEARTBEAT_TTL` (ask the peer to time us out after
    /// this long; libzmq keeps it in deciseconds, so below 100 ms it has no effect, and above 6553.5 s it is rejected).
    public func setHeartbeat(interval: Duration, timeout: Duration, ttl: Duration) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_HEARTBEAT_IVL, interval.zmqOptionMilliseconds, name: "ZMQ_HEARTBEAT_IVL")
        try Self.setOption(handle, ZMQ_HEARTBEAT_TIMEOUT, timeout.zmqOptionMilliseconds, name: "ZMQ_HEARTBEAT_TIMEOUT")
        try Self.setOption(handle, ZMQ_HEARTBEAT_TTL, ttl.zmqOptionMilliseconds, name: "ZMQ_HEARTBEAT_TTL")
    }

    // MARK: - Raw setters

    /// Sets an `int` option.
    static func setOption(
        _ handle: UnsafeMutableRawPointer,
        _ option: Int32,
        _ value: Int32,
        name: String
    ) throws(ZMQError) {
        var value = value
        try zmqCall("zmq_setsockopt", detail: name) {
            zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size)
        }
    }

    /// Sets an `int64_t` option.
    static func setOption(
        _ handle: UnsafeMutableRawPointer,
        _ option: Int32,
        _ value: Int64,
        name: String
    ) throws(ZMQError) {
        var value = value
        try zmqCall("zmq_setsockopt", detail: name) {
            zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size)
        }
    }
}

/// CURVE security and socket monitoring.
extension ZMQSocket {
    /// Makes this socket a CURVE server (`ZMQ_CURVE_SERVER`, `ZMQ_CURVE_SECRETKEY`) whose clients are checked by
    /// the ZAP handler of `zapDomain` (`ZMQ_ZAP_DOMAIN`). Keys are 40-character Z85 text.
    public func setCurveServer(secretKey: String, zapDomain: String) throws(ZMQError) {
        try Self.setOption(handle, ZMQ_CURVE_SERVER, Int32(1), name: "ZMQ_CURVE_SERVER")
        try setString(ZMQ_CURVE_SECRETKEY, secretKey, name: "ZMQ_CURVE_SECRETKEY")
        try setString(ZMQ_ZAP_DOMAIN, zapDomain, name: "ZMQ_ZAP_DOMAIN")
    }

    /// Makes this socket a CURVE client of the server with public key `serverKey`, with its own key pair.
    public func setCurveClient(serverKey: String, publicKey: String, secretKey: String) throws(ZMQError) {
        try setString(ZMQ_CURVE_SERVERKEY, serverKey, name: "ZMQ_CURVE_SERVERKEY")
        try setString(ZMQ_CURVE_PUBLICKEY, publicKey, name: "ZMQ_CURVE_PUBLICKEY")
        try setString(ZMQ_CURVE_SECRETKEY, secretKey, name: "ZMQ_CURVE_SECRETKEY")
    }

    /// `zmq_socket_monitor`: publishes this socket's `events` (a mask of `ZMQ_EVENT_*`) on a PAIR socket bound at
    /// the inproc `endpoint`. Call it on the socket's owning thread, like every other call.
    public func monitor(endpoint: String, events: Int32) throws(ZMQError) {
        try zmqCall("zmq_socket_monitor", detail: endpoint) { zmq_socket_monitor(handle, endpoint, events) }
    }

    private func setString(_ option: Int32, _ value: String, name: String) throws(ZMQError) {
        let bytes = Array(value.utf8)
        try zmqCall("zmq_setsockopt", detail: name) {
            bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        }
    }
}
