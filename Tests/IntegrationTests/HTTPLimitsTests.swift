import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 15, item 9: idle connections to the coordinator's HTTP port are closed after the idle timeout,
/// `/health` answers while hundreds of them are open, and a connection cap bounds the descriptors they take.
@Suite(.serialized) struct HTTPLimitsTests {
    /// An open TCP connection to 127.0.0.1:`port` (blocking connect), or -1.
    static func connect(_ port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if ok != 0 {
            close(fd)
            return -1
        }
        return fd
    }

    /// Waits up to `timeout` for `fd` to become readable; returns what `recv` says (0: closed by the peer).
    static func read(_ fd: Int32, timeout: Duration) -> Int? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ms = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&p, 1, ms) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        return recv(fd, &buffer, buffer.count, 0)
    }

    /// `GET /health` on a new connection: the time to the first byte of the answer, or nil after `timeout`.
    static func health(_ port: UInt16, timeout: Duration) -> (Duration, String)? {
        let started = ContinuousClock.now
        let fd = connect(port)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let request = Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { return nil }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ms = Int32(timeout.components.seconds * 1000)
        guard poll(&p, 1, ms) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        return (ContinuousClock.now - started, String(decoding: buffer[..<n], as: UTF8.self))
    }

    static func port(_ base: String) -> UInt16 {
        UInt16(base.split(separator: ":").last?.split(separator: "/").first ?? "") ?? 0
    }

    static func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }

    @Test func item9IdleConnectionsAreClosedAndHealthStillAnswers() async throws {
        let dir = try Harness.tempDir("http-idle")
        // No workers: the batch waits, the HTTP side is all there is to look at.
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--episodes", "3", "--bind", "tcp://127.0.0.1:*", "--output", dir.appendingPathComponent("out").path,
                "--batch-id", "idle", "--http", "127.0.0.1:0",
            ],
            environment: ["REELFARM_HTTP_IDLE_TIMEOUT": "2"],
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        guard let base = await coordinator.httpBase() else { return }
        let port = Self.port(base)
        // 300 clients connect and send nothing.
        var idle: [Int32] = []
        for _ in 0..<300 { idle.append(Self.connect(port)) }
        defer { for fd in idle where fd >= 0 { close(fd) } }
        #expect(idle.allSatisfy { $0 >= 0 })
        try await Task.sleep(for: .milliseconds(200))
        let answer = Self.health(port, timeout: .seconds(2))
        #expect(
            answer?.1.hasPrefix("HTTP/1.1 200") == true,
            "/health with 300 idle connections: \(String(describing: answer))"
        )
        print("item9: /health with 300 idle connections answered in \(answer.map { $0.0.shortText } ?? "-")")
        // After the idle timeout (2 s here) the server has closed them.
        try await Task.sleep(for: .seconds(3))
        let closed = idle.filter { Self.read($0, timeout: .milliseconds(10)) == 0 }.count
        #expect(closed == 300, "idle connections closed by the server after the idle timeout: \(closed) of 300")
        // Trickling a request head byte by byte does not extend it: the head must be whole in time.
        let slow = Self.connect(port)
        defer { close(slow) }
        let started = ContinuousClock.now
        var closedAfter: Duration?
        for byte in Array("GET /health HTTP/1.1\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 60) {
            if send(slow, [byte], 1, Int32(MSG_NOSIGNAL)) != 1 || Self.read(slow, timeout: .milliseconds(100)) == 0 {
                closedAfter = ContinuousClock.now - started
                break
            }
        }
        #expect(
            closedAfter.map { $0 < .seconds(4) } == true,
            "a trickled head was cut at \(String(describing: closedAfter))"
        )
    }

    @Test func item9ConnectionCapBoundsDescriptors() async throws {
        let dir = try Harness.tempDir("http-cap")
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--episodes", "3", "--bind", "tcp://127.0.0.1:*", "--output", dir.appendingPathComponent("out").path,
                "--batch-id", "cap", "--http", "127.0.0.1:0",
            ],
            environment: ["REELFARM_HTTP_IDLE_TIMEOUT": "2", "REELFARM_HTTP_MAX_CONNECTIONS": "50"],
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        guard let base = await coordinator.httpBase() else { return }
        let port = Self.port(base)
        let before = Self.openDescriptors(coordinator.pid)
        var idle: [Int32] = []
        for _ in 0..<150 { idle.append(Self.connect(port)) }
        defer { for fd in idle where fd >= 0 { close(fd) } }
        try await Task.sleep(for: .milliseconds(500))
        let during = Self.openDescriptors(coordinator.pid)
        #expect(
            during - before <= 55,
            "the coordinator holds \(during - before) more descriptors with 150 clients, cap 50"
        )
        // The ones beyond the cap wait in the listen backlog and are served as idle ones time out.
        let answer = Self.health(port, timeout: .seconds(15))
        #expect(answer?.1.hasPrefix("HTTP/1.1 200") == true)
        print(
            "item9: /health behind 150 idle connections with a cap of 50 answered in \(answer.map { $0.0.shortText } ?? "-")"
        )
    }
}

extension Duration {
    fileprivate var shortText: String {
        String(format: "%.3f s", Double(components.seconds) + Double(components.attoseconds) / 1e18)
    }
}
