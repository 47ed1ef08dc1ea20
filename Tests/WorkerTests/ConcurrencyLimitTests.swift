import Protocol
import Testing

@testable import Worker

/// Replays trace events by `seq` to prove the limits held. Latencies are small but nonzero so calls
/// really overlap; nothing is asserted about durations.
@Suite struct ConcurrencyLimitTests {
    private let jobs = (1...4).map { makeJob("episode_\($0)", topic: "topic number \($0)", scenes: 6) }

    @Test func atMostFiveCallsOfOneEpisodeInFlight() async throws {
        let pipeline = makePipeline(smallLatencies(), limits: WorkerLimits(apiCallsPerEpisode: 5, renders: 4))
        let results = await runConcurrently(jobs, pipeline)

        for result in results {
            #expect(result.status == .succeeded)
            let most = maxInFlight(result.trace, start: .callStart, end: .callEnd)
            #expect(most <= 5, "\(result.episodeId): \(most) calls in flight")
            #expect(most > 1, "\(result.episodeId): calls never overlapped")
        }
        // Episodes ran side by side: across the worker more than five calls were in flight at some point.
        let all = results.flatMap(\.trace)
        #expect(Set(all.map(\.seq)).count == all.count, "seq is unique across the worker")
        #expect(maxInFlight(all, start: .episodeStart, end: .episodeEnd) > 1)
    }

    @Test func oneCallAtATimeWhenTheLimitIsOne() async throws {
        let pipeline = makePipeline(smallLatencies(), limits: WorkerLimits(apiCallsPerEpisode: 1, renders: 4))
        let results = await runConcurrently(Array(jobs.prefix(3)), pipeline)

        for result in results {
            #expect(result.status == .succeeded)
            let calls = result.trace.filter { $0.event == .callStart || $0.event == .callEnd }
            // Strictly alternating start/end of the same call.
            for (index, event) in calls.enumerated() {
                #expect(
                    event.event == (index.isMultiple(of: 2) ? .callStart : .callEnd),
                    "\(result.episodeId) #\(index)"
                )
                if index.isMultiple(of: 2), index + 1 < calls.count {
                    #expect(calls[index + 1].name == event.name)
                }
            }
            #expect(maxInFlight(result.trace, start: .callStart, end: .callEnd) == 1)
        }
    }

    @Test func rendersNeverExceedTheRenderSemaphore() async throws {
        let renders = AsyncSemaphore(permits: 2)
        let pipeline = makePipeline(
            smallLatencies(render: 5),
            limits: WorkerLimits(apiCallsPerEpisode: 5, renders: renders)
        )
        let sixJobs = (1...6).map { makeJob("episode_\($0)", topic: "topic \($0)", scenes: 2) }
        let results = await runConcurrently(sixJobs, pipeline)

        #expect(results.allSatisfy { $0.status == .succeeded })
        let all = results.flatMap(\.trace)
        #expect(names(all, .renderStart).count == 6)
        let most = maxInFlight(all, start: .renderStart, end: .renderEnd)
        #expect(most >= 1 && most <= 2, "\(most) renders in flight")
        #expect(renders.availablePermits == 2)
    }

    @Test func theWorkerWideCapHoldsAcrossEpisodes() async throws {
        let workerCalls = AsyncSemaphore(permits: 3)
        let limits = WorkerLimits(
            apiCallsPerEpisode: 5,
            renders: AsyncSemaphore(permits: 2),
            workerAPICalls: workerCalls
        )
        let pipeline = makePipeline(smallLatencies(), limits: limits)
        let results = await runConcurrently(Array(jobs.prefix(3)), pipeline)

        #expect(results.allSatisfy { $0.status == .succeeded })
        let most = maxInFlight(results.flatMap(\.trace), start: .callStart, end: .callEnd)
        #expect(most <= 3, "\(most) calls in flight across the worker")
        #expect(most > 1)
        #expect(workerCalls.availablePermits == 3)
    }
}
