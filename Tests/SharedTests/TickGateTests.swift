import Shared
import Testing

/// A loop that falls behind finds one tick waiting, not one per interval it missed.
@Suite("TickGate")
struct TickGateTests {
    @Test("one tick at a time: open until consumed")
    func openUntilConsumed() {
        let gate = TickGate()
        #expect(gate.open())
        #expect(!gate.open() && !gate.open())
        gate.consumed()
        #expect(gate.open())
    }

    @Test("feed with a gate leaves one tick in a stream nobody reads; without, they pile up")
    func ticksDoNotPileUp() async throws {
        let context = try ZMQContext()
        let thread = try await makeRouterThread(context)
        // Ungated, a tick piling up needs the feed task to have run twice while the loop slept; on a machine
        // loaded by parallel builds one 3 s window once saw a single tick, so up to three windows are tried.
        for (gate, windows) in [(TickGate(), 1), (nil, 3)] {
            var ticks = 0
            for _ in 0..<windows {
                let (inputs, continuation) = AsyncStream.makeStream(of: Int.self)
                await withTaskGroup(of: Void.self) { group in
                    thread.feed(
                        continuation,
                        in: &group,
                        wrap: { _ in 0 },
                        tick: 1,
                        every: .milliseconds(5),
                        gate: gate
                    )
                    // The loop is busy for 600 intervals and reads nothing (a wide window: in the suite's parallel
                    // phase the cooperative pool is shared with hundreds of tests, and a 5 ms sleep can take far longer).
                    try? await Task.sleep(for: .seconds(3))
                    group.cancelAll()
                }
                continuation.finish()
                ticks = 0
                for await input in inputs where input == 1 { ticks += 1 }
                if ticks > 1 { break }
            }
            if gate != nil {
                #expect(ticks <= 1, "a gated feed queues at most one tick")
            } else {
                #expect(ticks > 1, "without the gate every interval's tick waits in the stream")
            }
        }
        await thread.close()
        context.shutdown()
    }
}
