import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 15, item 11: the local workers of a coordinator killed with SIGKILL do not run forever (and join
/// whatever binds the port next): they notice their coordinator process is gone and exit after the grace.
@Suite(.serialized) struct OrphanWorkerTests {
    /// Whether `pid` still runs (a zombie nobody reaped has exited).
    static func isRunning(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        let state = stat.split(separator: ")").last?.split(separator: " ").first
        return state != "Z" && state != "X"
    }

    @Test func item11LocalWorkersOfAKilledCoordinatorExitAfterTheGrace() async throws {
        let dir = try Harness.tempDir("orphans")
        var env = Harness.fastSimulation
        // Episodes of about 4 s: the workers hold running attempts when the coordinator dies.
        env["REELFARM_SIM_LATENCY"] = "llm=1000,tts=1000,image=1500,render=500"
        env["REELFARM_ORPHAN_GRACE"] = "3"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "20", "--bind", "tcp://127.0.0.1:*", "--http", "off",
                "--output", dir.appendingPathComponent("out").path, "--batch-id", "orphans",
            ],
            environment: env,
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        guard
            await coordinator.waitForLog(
                within: .seconds(60),
                "two local workers with jobs",
                {
                    $0.components(separatedBy: "local worker started").count >= 3 && $0.contains("dispatched")
                        || $0.components(separatedBy: "local worker started").count >= 3
                            && $0.components(separatedBy: "connected to coordinator").count >= 3
                }
            )
        else { return }
        let pids = coordinator.log.split(separator: "\n").filter { $0.contains("local worker started") }.compactMap {
            line -> Int32? in
            guard let range = line.range(of: "pid=") else { return nil }
            return Int32(line[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(pids.count == 2, "\(coordinator.log.suffix(3000))")
        try await Task.sleep(for: .seconds(1))
        #expect(pids.allSatisfy(Self.isRunning))
        coordinator.signal(SIGKILL)
        _ = await coordinator.wait(timeout: .seconds(10))
        let killed = ContinuousClock.now
        // Grace 3 s, then they hand back and exit; a few seconds of margin for a loaded machine.
        while pids.contains(where: Self.isRunning), ContinuousClock.now - killed < .seconds(15) {
            try await Task.sleep(for: .milliseconds(100))
        }
        let took = ContinuousClock.now - killed
        print("item11: local workers exited \(took) after their coordinator was killed (grace 3 s)")
        #expect(!pids.contains(where: Self.isRunning), "orphaned workers still running after \(took)")
        #expect(took < .seconds(8))
        for pid in pids where Self.isRunning(pid) { kill(pid, SIGKILL) }
        #expect(coordinator.log.contains("the coordinator that started this worker is gone"))
    }
}
