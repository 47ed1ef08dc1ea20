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
        for gate in [TickGate(), nil] {
            let (inputs, continuation) = AsyncStream.makeStream(of: Int.self)
            await withTaskGroup(of: Void.self) { group in
                thread.feed(continuation, in: &group, wrap: { _ in 0 }, tick: 1, every: .milliseconds(5), gate: gate)
                // The loop is busy for 30 intervals and reads nothing.
                try? await Task.sleep(for: .milliseconds(150))
                group.cancelAll()
            }
            continuation.finish()
            var ticks = 0
            for await input in inputs where input == 1 { ticks += 1 }
            if gate != nil {
                #expect(ticks == 1)
            } else {
                #expect(ticks > 5)
            }
        }
        await thread.close()
        context.shutdown()
    }
}
