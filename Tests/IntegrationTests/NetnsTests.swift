import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real hosts: the coordinator and two workers each in their own network namespace (own interfaces and
/// addresses, joined by veth pairs), a batch over TCP with CURVE on, one worker's link cut for longer than
/// the liveness window and restored. Needs root and `ip netns` (CI runs as root); skips, saying why,
/// elsewhere.
@Suite(.serialized) struct NetnsTests {
    /// Runs `ip ARGS`; returns the exit status and output.
    @discardableResult
    static func ip(_ arguments: [String]) -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ipPath ?? "/usr/sbin/ip")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static let ipPath = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Why the test cannot run here, or nil.
    static func unavailable() -> String? {
        guard getuid() == 0 else { return "not root" }
        guard ipPath != nil else { return "no `ip` command (Debian package iproute2)" }
        let probe = "rfprobe\(getpid())"
        let (status, output) = ip(["netns", "add", probe])
        guard status == 0 else {
            return "`ip netns add` failed: \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
        ip(["netns", "del", probe])
        return nil
    }

    @Test("a batch across three network namespaces with CURVE; a worker's link cut past liveness and restored")
    func linkCutBetweenHosts() async throws {
        if let why = Self.unavailable() {
            print("NetnsTests skipped: network namespaces are unavailable here (\(why)); CI runs them as root")
            return
        }
        let dir = try Harness.tempDir("netns")
        let tag = String(format: "%04x", getpid() & 0xFFFF)
        let (nc, n1, n2) = ("rfc\(tag)", "rfw1\(tag)", "rfw2\(tag)")
        defer { for ns in [nc, n1, n2] { Self.ip(["netns", "del", ns]) } }
        for ns in [nc, n1, n2] {
            #expect(Self.ip(["netns", "add", ns]).0 == 0)
            Self.ip(["-n", ns, "link", "set", "lo", "up"])
        }
        // Two point-to-point links: coordinator 10.77.1.1 ↔ worker 1 10.77.1.2, 10.77.2.1 ↔ worker 2 10.77.2.2.
        for (i, ns) in [(1, n1), (2, n2)] {
            let (a, b) = ("rfa\(i)\(tag)", "rfb\(i)\(tag)")
            #expect(Self.ip(["link", "add", a, "netns", nc, "type", "veth", "peer", "name", b, "netns", ns]).0 == 0)
            Self.ip(["-n", nc, "addr", "add", "10.77.\(i).1/24", "dev", a])
            Self.ip(["-n", ns, "addr", "add", "10.77.\(i).2/24", "dev", b])
            Self.ip(["-n", nc, "link", "set", a, "up"])
            Self.ip(["-n", ns, "link", "set", b, "up"])
        }

        let keys = dir.appendingPathComponent("keys")
        let allow = dir.appendingPathComponent("allow")
        try FileManager.default.createDirectory(at: allow, withIntermediateDirectories: true)
        for name in ["coordinator", "w1", "w2"] { try await CurveTests.keygen(name, into: keys) }
        for name in ["w1", "w2"] {
            try FileManager.default.copyItem(
                at: keys.appendingPathComponent("\(name).key"),
                to: allow.appendingPathComponent("\(name).key")
            )
        }
        let out = dir.appendingPathComponent("output")
        let port = 20_000 + Int(getpid() % 20_000)
        let coordinator = try Child(
            name: "coordinator",
            executable: Self.ipPath!,
            arguments: [
                "netns", "exec", nc, Harness.coordinatorPath, "--episodes", "60", "--bind", "tcp://0.0.0.0:\(port)",
                "--output", out.path, "--batch-id", "netns", "--state", dir.appendingPathComponent("state").path,
                "--heartbeat-ms", "500", "--liveness", "3", "--http", "off", "--curve-secret",
                keys.appendingPathComponent("coordinator.key_secret").path, "--allow-workers", allow.path,
            ],
            environment: Harness.fastSimulation,
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        #expect(await coordinator.waitForLog(within: .seconds(30), "the bind") { $0.contains("coordinator listening") })
        func worker(_ name: String, ns: String, address: String, slots: Int, latency: String) throws -> Child {
            try Child(
                name: name,
                executable: Self.ipPath!,
                arguments: [
                    "netns", "exec", ns, Harness.workerPath, "--connect", "tcp://\(address):\(port)", "--worker-id",
                    name,
                    "--max-parallel-episodes", "\(slots)", "--curve-server-key",
                    keys.appendingPathComponent("coordinator.key").path, "--curve-secret",
                    keys.appendingPathComponent("\(name).key_secret").path,
                ],
                environment: ["REELFARM_SIM_LATENCY": latency],
                cwd: dir
            )
        }
        // Worker 1 joins first and takes 2 slow episodes; worker 2 the rest, 4 at a time, faster: about 26 s of
        // work, so the batch is still running when w1 comes back.
        let w1 = try worker(
            "w1",
            ns: n1,
            address: "10.77.1.1",
            slots: 2,
            latency: "llm=8000,tts=100,image=100,render=100"
        )
        defer { w1.signal(SIGKILL) }
        #expect(await coordinator.waitForLog(within: .seconds(30), "w1's jobs") { $0.contains("worker joined") })
        let w2 = try worker(
            "w2",
            ns: n2,
            address: "10.77.2.1",
            slots: 4,
            latency: "llm=1500,tts=100,image=100,render=100"
        )
        defer { w2.signal(SIGKILL) }
        #expect(await w1.waitForLog(within: .seconds(30), "w1's first episode") { $0.contains("Writing script") })

        // Cut w1's link on the coordinator's side for 6 s (liveness: 3 × 500 ms), then restore it.
        let link = "rfa1\(tag)"
        #expect(Self.ip(["-n", nc, "link", "set", link, "down"]).0 == 0)
        #expect(
            await coordinator.waitForLog(within: .seconds(20), "w1 declared lost") {
                $0.contains("worker left") && $0.contains("worker=w1")
            }
        )
        try await Task.sleep(for: .seconds(4))
        #expect(Self.ip(["-n", nc, "link", "set", link, "up"]).0 == 0)
        Self.ip(["-n", nc, "addr", "replace", "10.77.1.1/24", "dev", link])
        // w1 comes back (a new session); its old attempts are fenced: the batch records each episode once.
        #expect(
            await coordinator.waitForLog(within: .seconds(60), "w1 back") {
                $0.components(separatedBy: "worker joined").count - 1 >= 3
            },
            "w1 did not reconnect after its link came back"
        )

        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(4000))")
        let summary = try Summary.load(out, batch: "netns")
        #expect(summary.totals.succeeded == 60 && summary.episodes.count == 60)
        // The episodes w1 held were requeued and finished by w2; each episode succeeded exactly once.
        let left = coordinator.log.split(separator: "\n").first {
            $0.contains("worker left") && $0.contains("worker=w1")
        }
        let requeued =
            left.flatMap { line in
                line.range(of: "episodes=").map { String(line[$0.upperBound...].prefix { $0 != " " }) }
            }?.split(separator: ",").map(String.init) ?? []
        #expect(requeued.count == 2, "\(left ?? "no worker left line")")
        for id in requeued {
            #expect(summary.episodes.first { $0.id == id }?.worker == "w2", "episode \(id) was not redone by w2")
        }
        let events = Process()
        events.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        events.arguments = [
            "python3", "-c",
            "import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); "
                + "print(','.join(f'{e}={n}' for e,n in db.execute(\"SELECT episode_id, COUNT(*) FROM attempt_event WHERE event='succeeded' GROUP BY episode_id\")))",
            dir.appendingPathComponent("state/journal.sqlite").path,
        ]
        let pipe = Pipe()
        events.standardOutput = pipe
        try events.run()
        let counts = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        events.waitUntilExit()
        let perEpisode = counts.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",")
        #expect(perEpisode.count == 60 && perEpisode.allSatisfy { $0.hasSuffix("=1") }, "succeeded events: \(counts)")
        print("netns: w1 cut past liveness; requeued \(requeued) finished on w2; succeeded events \(counts)")
    }
}
