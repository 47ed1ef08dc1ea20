import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A stand-alone worker outlives coordinators: started first, it joins when one appears, and after that
/// one exits it reconnects (with backoff, on a fresh socket) and serves the next.
@Suite(.serialized) struct ReconnectTests {
    /// A loopback port that was free a moment ago.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                guard bind(fd, p, len) == 0 else { return -1 }
                return getsockname(fd, p, &len)
            }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    @Test func workerStartedFirstServesTwoCoordinatorsInTurn() async throws {
        let dir = try Harness.tempDir("reconnect")
        let out = dir.appendingPathComponent("output")
        let endpoint = "tcp://127.0.0.1:\(try Self.freePort())"
        let worker = try Child(
            name: "worker",
            executable: Harness.workerPath,
            arguments: ["--connect", endpoint, "--worker-id", "standalone"],
            environment: Harness.fastSimulation,
            cwd: dir
        )
        defer { worker.signal(SIGKILL) }
        for batch in ["first", "second"] {
            let coordinator = try Child(
                name: "coordinator-\(batch)",
                executable: Harness.coordinatorPath,
                arguments: ["--episodes", "4", "--bind", endpoint, "--output", out.path, "--batch-id", batch],
                environment: Harness.fastSimulation,
                cwd: dir
            )
            #expect(await coordinator.wait(timeout: .seconds(90)) == 0, "log:\n\(coordinator.log.suffix(3000))")
            let summary = try Summary.load(out, batch: batch)
            #expect(summary.totals.succeeded == 4)
            #expect(summary.episodes.allSatisfy { $0.worker == "standalone" })
        }
        #expect(worker.log.components(separatedBy: "connected to coordinator").count == 3)
        #expect(worker.log.contains("lost coordinator; reconnecting"))
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(30)) == 0)
    }

    @Test func interruptedCoordinatorWritesItsSummaryAndStopsItsWorkers() async throws {
        let dir = try Harness.tempDir("interrupt")
        let out = dir.appendingPathComponent("output")
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "40", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "interrupted", "--http", "127.0.0.1:0",
            ],
            environment: ["REELFARM_SIM_LATENCY": "llm=200,tts=100,image=300,render=50"],
            cwd: dir
        )
        await coordinator.waitForSucceeded(1)
        coordinator.signal(SIGINT)
        #expect(await coordinator.wait(timeout: .seconds(60)) == 1)
        let summary = try Summary.load(out, batch: "interrupted")
        #expect(summary.status == "interrupted")
        #expect(summary.totals.succeeded >= 1 && summary.totals.succeeded < 40)
        #expect(coordinator.log.contains("Batch interrupted:"))
        // The local workers were stopped with the coordinator.
        #expect(coordinator.log.components(separatedBy: "worker stopped").count == 3)
    }
}
