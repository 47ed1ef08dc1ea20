import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 15 with the real binaries: nothing lost, nothing done twice, also when the operator starts two
/// coordinators on one `--state`, kills one at the worst moment, damages its journal, reuses a batch id or
/// points it at a folder it cannot fill.
@Suite(.serialized) struct OperatorMistakeTests {
    /// Latencies that keep a 6-episode batch busy for a few seconds.
    static let slowSimulation = ["REELFARM_SIM_LATENCY": "llm=300,tts=200,image=400,render=200"]

    func coordinator(_ name: String, _ arguments: [String], in dir: URL, env: [String: String] = [:]) throws -> Child {
        try Child(
            name: name,
            executable: Harness.coordinatorPath,
            arguments: arguments,
            environment: Harness.fastSimulation.merging(env) { _, new in new },
            cwd: dir
        )
    }

    /// `mount -t tmpfs -o OPTIONS tmpfs DIR`; false (and a printed reason) where mounting is not allowed.
    static func mountTmpfs(_ dir: URL, options: String) throws -> Bool {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", options, "tmpfs", dir.path]
        mount.standardOutput = FileHandle.nullDevice
        mount.standardError = FileHandle.nullDevice
        do {
            try mount.run()
            mount.waitUntilExit()
        } catch {
            print("skipped: cannot run mount: \(error)")
            return false
        }
        if mount.terminationStatus != 0 {
            print("skipped: mount -t tmpfs is not permitted here (status \(mount.terminationStatus))")
            return false
        }
        return true
    }

    static func unmount(_ dir: URL) {
        let umount = Process()
        umount.executableURL = URL(fileURLWithPath: "/bin/umount")
        umount.arguments = ["-l", dir.path]
        try? umount.run()
        umount.waitUntilExit()
    }

    // MARK: - Item 1

    @Test func item1TwoCoordinatorsOnOneStateFolderTheSecondExits2NamingThePIDOfTheFirst() async throws {
        let dir = try Harness.tempDir("two-coordinators")
        let out = dir.appendingPathComponent("output")
        let state = dir.appendingPathComponent("state").path
        let command = [
            // About 30 s of batch, one episode at a time: the first must still run while the second and the
            // `serve` are refused, also when a loaded CI machine takes seconds to start each of them (12 s
            // once ran out before the `serve` was refused).
            "--workers", "1", "--no-check", "--max-parallel-episodes", "1", "--episodes", "30", "--bind",
            "tcp://127.0.0.1:*", "--output", out.path, "--state", state, "--http", "off",
        ]
        let first = try coordinator("coordinator-1", command, in: dir, env: Self.slowSimulation)
        defer { first.signal(SIGKILL) }
        // Ready: it holds the state lock.
        guard await first.ready() != nil, let firstReady = first.readyURL else { return }
        // The same command again, one-shot, while the first runs; even given the first's ready file, the
        // refused one leaves it alone.
        let started = ContinuousClock.now
        let second = try coordinator("coordinator-2", command + ["--ready-file", firstReady.path], in: dir)
        let secondStatus = await second.wait(timeout: .seconds(30))
        let detection = ContinuousClock.now - started
        #expect(secondStatus == 2, "log:\n\(second.log.suffix(3000))")
        #expect(second.log.contains("in use by another coordinator (PID \(first.pid))"), "\(second.log)")
        let kept = try? JSONDecoder().decode(Ready.self, from: Data(contentsOf: firstReady))
        #expect(kept?.pid == first.pid, "the refused coordinator removed the running one's ready file")
        print("item 1: the second coordinator exited \(secondStatus) after \(detection)")
        // And as `serve`.
        let serve = try coordinator(
            "serve",
            ["serve", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--state", state, "--http", "127.0.0.1:0"],
            in: dir
        )
        defer { serve.signal(SIGKILL) }
        #expect(await serve.wait(timeout: .seconds(30)) == 2, "log:\n\(serve.log.suffix(3000))")
        #expect(serve.log.contains("PID \(first.pid)"))
        #expect(first.process.isRunning, "the first coordinator finished before the others were refused")

        #expect(await first.wait(timeout: .seconds(120)) == 0, "log:\n\(first.log.suffix(4000))")
        let batches = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { !$0.hasPrefix(".") }
        #expect(batches.count == 1, "only the first coordinator made a batch: \(batches)")
        if let batch = batches.first {
            let summary = try Summary.load(out, batch: batch)
            #expect(summary.totals.succeeded == 30 && summary.episodes.allSatisfy { $0.attempts == 1 })
        }

        // The lock goes with its holder, SIGKILL included: a killed coordinator's successor starts.
        let killed = try coordinator(
            "serve-killed",
            ["serve", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--state", state, "--http", "127.0.0.1:0"],
            in: dir
        )
        guard await killed.ready() != nil else { return }
        killed.signal(SIGKILL)
        _ = await killed.wait(timeout: .seconds(10))
        let successor = try coordinator(
            "serve-successor",
            ["serve", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--state", state, "--http", "127.0.0.1:0"],
            in: dir
        )
        defer { successor.signal(SIGKILL) }
        #expect(await successor.ready() != nil)
        successor.signal(SIGTERM)
        #expect(await successor.wait(timeout: .seconds(30)) == 0)
    }

    // MARK: - Item 3

    @Test func item3SigkillRightAfterTheJournalSaysCompletedTheSameCommandRewritesTheSummary() async throws {
        let dir = try Harness.tempDir("completed-no-summary")
        let out = dir.appendingPathComponent("output")
        let state = dir.appendingPathComponent("state").path
        let command = [
            "--workers", "1", "--no-check", "--episodes", "3", "--batch-id", "b", "--bind", "tcp://127.0.0.1:*",
            "--output", out.path, "--state", state, "--http", "off",
        ]
        let run = try coordinator("coordinator-1", command, in: dir)
        #expect(await run.wait() == 0, "log:\n\(run.log.suffix(4000))")
        // What a SIGKILL right after the journal's `completed` leaves: the journal records the end before
        // summary.json and report.html are written (CoordinatorService.finish).
        let folder = out.appendingPathComponent("b")
        try FileManager.default.removeItem(at: folder.appendingPathComponent("summary.json"))
        try FileManager.default.removeItem(at: folder.appendingPathComponent("report.html"))

        let again = try coordinator("coordinator-2", command, in: dir)
        #expect(await again.wait(timeout: .seconds(30)) == 0, "log:\n\(again.log.suffix(4000))")
        #expect(again.log.contains("already complete"), "\(again.log)")
        #expect(!again.log.contains("already holds a batch"))
        let summary = try Summary.load(out, batch: "b")
        #expect(summary.totals.succeeded == 3)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report.html").path))

        // `coordinator summary` does the same on demand.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("summary.json"))
        let rewrite = try coordinator("summary", ["summary", "--state", state, "--output", out.path], in: dir)
        #expect(await rewrite.wait(timeout: .seconds(30)) == 0, "log:\n\(rewrite.log)")
        #expect(rewrite.log.contains("b: 3/3 succeeded"), "\(rewrite.log)")
        #expect(try Summary.load(out, batch: "b").totals.succeeded == 3)
        let unknown = try coordinator("summary-unknown", ["summary", "--state", state, "--batch-id", "zz"], in: dir)
        #expect(await unknown.wait(timeout: .seconds(30)) == 2)
    }

    // MARK: - Item 4

    /// A finished episode folder as a worker publishes it: a file and a manifest with its SHA-256.
    static func writeEpisode(_ folder: URL, id: String) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let video = Data("video of \(id)".utf8)
        try video.write(to: folder.appendingPathComponent("episode.mp4"))
        let digest = sha256Hex(video)
        let manifest = """
            {"batch_id": "b", "episode_id": "\(id)", "attempt": 1, "title": "t", "created_at": "2026-01-01T00:00:00.000Z",
             "render": {"provider": "ffmpeg"},
             "assets": [{"item": "episode", "kind": "video", "file": "episode.mp4", "provider": "ffmpeg",
                         "placeholder": false, "sha256": "\(digest)"}]}
            """
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("manifest.json"))
    }

    static func sha256Hex(_ data: Data) -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)")
        try? data.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [file.path]
        process.standardOutput = pipe
        try? process.run()
        process.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return String(text.prefix(64))
    }

    @Test func item4AZeroLengthJournalRefusesToRerunFinishedEpisodesAndRebuildJournalAdoptsThem() async throws {
        let dir = try Harness.tempDir("journal-damage")
        let out = dir.appendingPathComponent("output")
        let stateURL = dir.appendingPathComponent("state")
        let state = stateURL.path
        // Batch b finished two of its three episodes, then its journal was lost: zero bytes, no -wal.
        try FileManager.default.createDirectory(at: stateURL, withIntermediateDirectories: true)
        #expect(
            FileManager.default.createFile(
                atPath: stateURL.appendingPathComponent("journal.sqlite").path,
                contents: nil
            )
        )
        let batch = out.appendingPathComponent("b")
        try Self.writeEpisode(batch.appendingPathComponent("episode_1"), id: "episode_1")
        try Self.writeEpisode(batch.appendingPathComponent("episode_2"), id: "episode_2")
        try Data((stateURL.standardizedFileURL.resolvingSymlinksInPath().path + "\n").utf8)
            .write(to: batch.appendingPathComponent(".reelfarm-state"))
        let base = [
            "--workers", "1", "--no-check", "--episodes", "3", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
            "--state", state, "--http", "off",
        ]
        // The same command without a batch id would start a new batch and redo both: refused.
        let generated = try coordinator("coordinator-generated", base, in: dir)
        #expect(await generated.wait(timeout: .seconds(30)) == 2, "log:\n\(generated.log.suffix(3000))")
        #expect(generated.log.contains("episode_1, episode_2"), "\(generated.log)")
        #expect(generated.log.contains("--batch-id b --rebuild-journal"))
        // The batch by its id: refused too, naming the fix.
        let named = try coordinator("coordinator-named", base + ["--batch-id", "b"], in: dir)
        #expect(await named.wait(timeout: .seconds(30)) == 2, "log:\n\(named.log.suffix(3000))")
        #expect(named.log.contains("--rebuild-journal"))
        #expect(!named.log.contains("✅"))
        // Adopted: only episode_3 runs.
        let rebuilt = try coordinator("coordinator-rebuilt", base + ["--batch-id", "b", "--rebuild-journal"], in: dir)
        #expect(await rebuilt.wait() == 0, "log:\n\(rebuilt.log.suffix(4000))")
        #expect(rebuilt.log.contains("adopted finished episodes"))
        #expect(rebuilt.log.contains("✅ episode_3 completed"))
        #expect(!rebuilt.log.contains("✅ episode_1 completed") && !rebuilt.log.contains("✅ episode_2 completed"))
        let summary = try Summary.load(out, batch: "b")
        #expect(summary.totals.succeeded == 3)
        #expect(
            try Data(contentsOf: batch.appendingPathComponent("episode_1/episode.mp4"))
                == Data("video of episode_1".utf8)
        )
    }

    @Test func item4TheSameBatchIdWithoutStateRefusesToOverwriteTheEarlierBatch() async throws {
        let dir = try Harness.tempDir("same-batch-id")
        let out = dir.appendingPathComponent("output")
        let command = [
            "--workers", "1", "--no-check", "--episodes", "2", "--batch-id", "x", "--bind", "tcp://127.0.0.1:*",
            "--output", out.path, "--http", "off",
        ]
        let first = try coordinator("coordinator-1", command, in: dir)
        #expect(await first.wait() == 0, "log:\n\(first.log.suffix(4000))")
        let before = try Data(contentsOf: out.appendingPathComponent("x/summary.json"))
        let again = try coordinator("coordinator-2", command, in: dir)
        #expect(await again.wait(timeout: .seconds(30)) == 2, "log:\n\(again.log.suffix(3000))")
        #expect(again.log.contains("\(out.appendingPathComponent("x").path) already holds batch x"), "\(again.log)")
        #expect(again.log.contains("--overwrite"))
        #expect(try Data(contentsOf: out.appendingPathComponent("x/summary.json")) == before)
        let overwrite = try coordinator("coordinator-3", command + ["--overwrite"], in: dir)
        #expect(await overwrite.wait() == 0, "log:\n\(overwrite.log.suffix(4000))")
    }

    @Test func item4AJournalThatCannotBeWrittenStopsTheCoordinatorWithExit1() async throws {
        let dir = try Harness.tempDir("journal-full")
        let out = dir.appendingPathComponent("output")
        let state = dir.appendingPathComponent("state")
        guard try Self.mountTmpfs(state, options: "size=2m") else { return }
        defer { Self.unmount(state) }
        let coordinator = try coordinator(
            "coordinator",
            [
                "--workers", "1", "--no-check", "--max-parallel-episodes", "2", "--episodes", "40", "--bind",
                "tcp://127.0.0.1:*", "--output", out.path, "--state", state.path, "--http", "off",
            ],
            in: dir,
            env: Self.slowSimulation
        )
        defer { coordinator.signal(SIGKILL) }
        guard await coordinator.waitForLog("two finished episodes", { $0.components(separatedBy: "✅").count > 2 })
        else { return }
        // The disk of --state fills up.
        let filler = Process()
        filler.executableURL = URL(fileURLWithPath: "/bin/dd")
        filler.arguments = ["if=/dev/zero", "of=\(state.path)/filler", "bs=64k"]
        filler.standardError = FileHandle.nullDevice
        try filler.run()
        filler.waitUntilExit()
        let filled = ContinuousClock.now
        let status = await coordinator.wait(timeout: .seconds(60))
        print("item 4: the coordinator stopped \(ContinuousClock.now - filled) after its journal's disk filled")
        #expect(status == 1, "log:\n\(coordinator.log.suffix(4000))")
        let log = coordinator.log
        #expect(log.components(separatedBy: "cannot write the journal").count == 2, "said once:\n\(log.suffix(4000))")
        #expect(!log.contains("Batch complete: 40/40"))
    }

    // MARK: - Item 5

    @Test func item5AnUnwritableOrFullOutputFolderIsRefusedBeforeDispatch() async throws {
        let dir = try Harness.tempDir("output-full")
        let small = dir.appendingPathComponent("small")
        let readOnly = dir.appendingPathComponent("read-only")
        guard try Self.mountTmpfs(small, options: "size=2m") else { return }
        defer { Self.unmount(small) }
        guard try Self.mountTmpfs(readOnly, options: "size=1m,ro") else { return }
        defer { Self.unmount(readOnly) }
        let base = ["--workers", "1", "--no-check", "--episodes", "2", "--bind", "tcp://127.0.0.1:*", "--http", "off"]

        let full = try coordinator("coordinator-full", base + ["--output", small.path], in: dir)
        #expect(await full.wait(timeout: .seconds(30)) == 2, "log:\n\(full.log.suffix(3000))")
        #expect(full.log.contains("free, less than the minimum of 1.0 GiB"), "\(full.log)")
        #expect(!full.log.contains("worker joined"))

        let unwritable = try coordinator("coordinator-ro", base + ["--output", readOnly.path], in: dir)
        #expect(await unwritable.wait(timeout: .seconds(30)) == 2, "log:\n\(unwritable.log.suffix(3000))")
        #expect(unwritable.log.contains("cannot be written"), "\(unwritable.log)")

        // The minimum is a setting: lowered, the same small folder takes a batch of simulated episodes.
        let lowered = try coordinator(
            "coordinator-lowered",
            base + ["--output", small.path],
            in: dir,
            env: ["REELFARM_MIN_FREE_SPACE": "1MiB"]
        )
        #expect(await lowered.wait() == 0, "log:\n\(lowered.log.suffix(3000))")
    }

    @Test func item5TheOutputDiskFillsMidBatchEpisodesWaitAndFinishOnceSpaceIsBack() async throws {
        let dir = try Harness.tempDir("output-fills")
        let out = dir.appendingPathComponent("output")
        guard try Self.mountTmpfs(out, options: "size=16m") else { return }
        defer { Self.unmount(out) }
        // Real voice and image files from the mock provider; the worker keeps its own folder (another box).
        guard let (mock, env) = try await ArtifactTests.mockEnvironment(in: dir) else { return }
        defer { mock.signal(SIGTERM) }
        let endpoint = "tcp://127.0.0.1:\(try ReconnectTests.freePort())"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--episodes", "6", "--bind", endpoint, "--output", out.path, "--batch-id", "f", "--http",
                "127.0.0.1:0",
            ],
            // A 16 MiB folder is below the default minimum: the start-up check is not what this tests.
            environment: env.merging(["REELFARM_MIN_FREE_SPACE": "0"]) { _, new in new },
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        let worker = try Child(
            name: "worker",
            executable: Harness.workerPath,
            arguments: [
                "--connect", endpoint, "--output", dir.appendingPathComponent("worker-box").path,
                "--max-parallel-episodes", "2",
            ],
            environment: env,
            cwd: dir
        )
        defer { worker.signal(SIGKILL) }
        guard let base = await coordinator.httpBase(),
            await coordinator.waitForLog(within: .seconds(90), "a stored episode", { $0.contains("completed (") })
        else { return }
        // The coordinator's disk fills up.
        let filler = out.appendingPathComponent("filler")
        let dd = Process()
        dd.executableURL = URL(fileURLWithPath: "/bin/dd")
        dd.arguments = ["if=/dev/zero", "of=\(filler.path)", "bs=64k"]
        dd.standardError = FileHandle.nullDevice
        try dd.run()
        dd.waitUntilExit()
        guard
            await coordinator.waitForLog(within: .seconds(90), "the disk-full notice", { $0.contains("disk is full") })
        else { return }
        // The status board is published every 250 ms.
        var status: [String: Any] = [:]
        for _ in 0..<20 where status["disk_full"] == nil {
            status = try await EpisodeFileTests.http("GET", "\(base)api/status?episodes=none")
            if status["disk_full"] == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(status["disk_full"] != nil, "\(status)")
        try await Task.sleep(for: .seconds(6))
        #expect(coordinator.process.isRunning)
        let paused = coordinator.log
        #expect(paused.components(separatedBy: "disk is full").count == 2, "said once")
        #expect(!paused.contains("❌") && !paused.contains("failed; retrying"), "\(paused.suffix(4000))")
        // Space is back: everything is stored and the batch ends well.
        try FileManager.default.removeItem(at: filler)
        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(4000))")
        #expect(coordinator.log.contains("disk space is back"))
        let summary = try Summary.load(out, batch: "f")
        #expect(summary.totals.succeeded == 6 && summary.episodes.allSatisfy { $0.attempts == 1 })
    }
}
