import Synchronization
import Testing

@testable import Worker

@Suite struct AsyncSemaphoreTests {
    @Test func grantsUpToItsPermitsWithoutWaiting() async throws {
        let semaphore = AsyncSemaphore(permits: 2)
        try await semaphore.acquire()
        try await semaphore.acquire()
        #expect(semaphore.availablePermits == 0)
        semaphore.release()
        semaphore.release()
        #expect(semaphore.availablePermits == 2)
    }

    @Test func servesWaitersInFIFOOrder() async throws {
        let semaphore = AsyncSemaphore(permits: 0)
        let order = Collected<Int>()
        var tasks: [Task<Void, any Error>] = []
        for id in 1...6 {
            tasks.append(
                Task {
                    try await semaphore.acquire()
                    order.append(id)
                }
            )
            // Each waiter joins the queue before the next one starts.
            try await eventually("waiter \(id) queued") { semaphore.waiterCount == id }
        }
        for granted in 1...6 {
            semaphore.release()
            try await eventually("grant \(granted)") { order.count == granted }
        }
        for task in tasks { try await task.value }
        #expect(order.all == [1, 2, 3, 4, 5, 6])
        #expect(semaphore.availablePermits == 0)
    }

    @Test func aNewcomerDoesNotOvertakeTheQueue() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let order = Collected<String>()
        let waiter = Task {
            try await semaphore.acquire()
            order.append("waiter")
            semaphore.release()
        }
        try await eventually("waiter queued") { semaphore.waiterCount == 1 }
        semaphore.release()  // handed straight to the waiter
        try await semaphore.acquire()  // the newcomer queues behind it
        order.append("newcomer")
        semaphore.release()
        try await waiter.value
        #expect(order.all == ["waiter", "newcomer"])
        #expect(semaphore.availablePermits == 1)
    }

    @Test func aCancelledWaiterLeavesTheQueueAndTakesNoPermit() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let cancelled = Task { try await semaphore.acquire() }
        try await eventually("first waiter queued") { semaphore.waiterCount == 1 }
        let second = Task {
            try await semaphore.acquire()
            semaphore.release()
        }
        try await eventually("second waiter queued") { semaphore.waiterCount == 2 }

        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(semaphore.waiterCount == 1)

        // The released permit goes to the second waiter, not to the cancelled one.
        semaphore.release()
        try await second.value
        #expect(semaphore.availablePermits == 1)
        #expect(semaphore.waiterCount == 0)
    }

    @Test func acquireInACancelledTaskThrowsWithoutTakingAPermit() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await semaphore.acquire()
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(semaphore.availablePermits == 1)
    }

    @Test func withPermitReleasesWhenTheBodyThrows() async throws {
        struct Boom: Error {}
        let semaphore = AsyncSemaphore(permits: 1)
        await #expect(throws: Boom.self) {
            try await semaphore.withPermit { throw Boom() }
        }
        #expect(semaphore.availablePermits == 1)
        let value = try await semaphore.withPermit { 42 }
        #expect(value == 42)
        #expect(semaphore.availablePermits == 1)
    }

    /// Many tasks, a third of them cancelled at various points: the holders never exceed the permits,
    /// and every permit comes back.
    @Test func permitsAreConservedUnderCancellation() async throws {
        let permits = 3
        let semaphore = AsyncSemaphore(permits: permits)
        final class Counters: Sendable {
            let holders = Mutex((current: 0, most: 0))
            let cancelled = Mutex(0)
        }
        let counters = Counters()

        await withTaskGroup(of: Void.self) { group in
            var tasks: [Task<Void, Never>] = []
            for index in 0..<300 {
                let task = Task {
                    do {
                        try await semaphore.withPermit {
                            counters.holders.withLock {
                                $0.current += 1
                                $0.most = max($0.most, $0.current)
                            }
                            await Task.yield()
                            counters.holders.withLock { $0.current -= 1 }
                        }
                    } catch {
                        counters.cancelled.withLock { $0 += 1 }
                    }
                }
                tasks.append(task)
                if index % 3 == 2 { tasks[index - 1].cancel() }
            }
            for task in tasks { group.addTask { await task.value } }
        }

        #expect(counters.holders.withLock { $0.most } <= permits)
        #expect(counters.holders.withLock { $0.current } == 0)
        #expect(semaphore.availablePermits == permits)
        #expect(semaphore.waiterCount == 0)
        #expect(counters.cancelled.withLock { $0 } <= 100)
    }
}
