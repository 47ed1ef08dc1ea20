import Foundation
import Hummingbird
import HummingbirdTesting
import Protocol
import Testing

@testable import MockProvider

/// A few hundred concurrent requests over real sockets, one connection each.
@Suite(.serialized) struct LoadTests {
    private static let requests: [(uri: String, body: String)] = (0..<300).map { index in
        switch index % 5 {
        case 0, 1:
            (
                "/v1/chat/completions",
                #"{"messages": [{"role": "user", "content": "Episode \#(index)\nScenes: 3"}], "response_format": {"type": "json_object"}}"#
            )
        case 2: ("/v1/audio/speech", #"{"input": "line number \#(index)", "response_format": "wav"}"#)
        case 3: ("/hf/models/org/model", #"{"inputs": "picture \#(index)"}"#)
        default: ("/elevenlabs/v1/text-to-speech/voice", #"{"text": "line \#(index)"}"#)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func threeHundredConcurrentRequestsAllGetAnAnswerAndStatsAddUp() async throws {
        let limits = try config(
            """
            {"openai": {"request_limit": 60, "window_ms": 60000, "max_concurrent": 40, "latency_ms": 30},
             "huggingface": {"max_concurrent": 10, "latency_ms": 30},
             "elevenlabs": {"max_concurrent": 5, "latency_ms": 30}}
            """
        )
        try await withMockApp(limits, setup: .live) { client, engine in
            let port = try #require(client.port)
            let statuses = try await withThrowingTaskGroup(of: (Endpoint, HTTPResponse.Status).self) { group in
                for request in Self.requests {
                    group.addTask {
                        try await TestClient.withClient(
                            host: "localhost",
                            port: port,
                            configuration: .init(timeout: .seconds(60))
                        ) { connection in
                            let response = try await connection.post(
                                request.uri,
                                headers: [.contentType: "application/json"],
                                body: ByteBuffer(string: request.body)
                            )
                            return (Self.endpoint(for: request.uri), response.status)
                        }
                    }
                }
                var all: [(Endpoint, HTTPResponse.Status)] = []
                for try await result in group {
                    all.append(result)
                }
                return all
            }
            #expect(statuses.count == 300)
            #expect(statuses.allSatisfy { $0.1 == .ok || $0.1 == .tooManyRequests })

            let stats = try await client.stats()
            for endpoint in Endpoint.allCases {
                let answered = statuses.filter { $0.0 == endpoint }
                let counters = stats[endpoint]
                #expect(counters.requests == answered.count, "\(endpoint)")
                #expect(counters.accepted == answered.filter { $0.1 == .ok }.count, "\(endpoint)")
                #expect(counters.rejectedTotal == answered.filter { $0.1 == .tooManyRequests }.count, "\(endpoint)")
                #expect(counters.inFlight == 0)
            }
            for provider in Provider.allCases {
                let total = stats[provider].total
                #expect(total.requests == total.accepted + total.rejectedTotal + total.badRequest)
                #expect(
                    total.rejectedTotal == (total.rejected["rate_limit"] ?? 0) + (total.rejected["concurrency"] ?? 0)
                )
                #expect(total.accepted >= 1)
            }
            #expect(stats.openai.total.requests == 180)
            #expect(stats.openai.total.accepted <= 60)
            #expect(stats.openai.total.rejectedTotal >= 120)
            #expect(stats.openai.total.maxAcceptedInWindow <= 60)
            #expect(stats.openai.total.maxAcceptedInWindow == stats.openai.total.accepted)
            #expect(stats.openai.total.maxInFlight <= 40)
            #expect(stats.huggingface.total.maxInFlight <= 10)
            #expect(stats.elevenlabs.total.maxInFlight <= 5)
            #expect(engine.stats() == stats)
        }
    }

    private static func endpoint(for uri: String) -> Endpoint {
        if uri.hasPrefix("/v1/chat") { return .chatCompletions }
        if uri.hasPrefix("/v1/audio") { return .audioSpeech }
        if uri.hasPrefix("/hf/") { return .textToImage }
        return .textToSpeech
    }
}
