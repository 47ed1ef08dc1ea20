import Protocol
import Shared
import Testing

@testable import Coordinator

/// `--budget` specs and the budget modes.
@Suite struct BudgetConfigurationTests {
    @Test func specsParse() throws {
        #expect(
            try BudgetConfiguration.parse("image=10/s", source: "--budget")
                == ProviderBudget(provider: "image", requests: 10, requestWindowMs: 1000)
        )
        #expect(
            try BudgetConfiguration.parse(
                " llm = 500/min , units=200000/min, burst=50, concurrent=8 ",
                source: "--budget"
            )
                == ProviderBudget(
                    provider: "llm",
                    requests: 500,
                    requestWindowMs: 60_000,
                    burst: 50,
                    maxConcurrent: 8,
                    units: 200_000,
                    unitWindowMs: 60_000
                )
        )
        #expect(
            try BudgetConfiguration.parse("tts=concurrent=5", source: "--budget")
                == ProviderBudget(provider: "tts", maxConcurrent: 5)
        )
        #expect(try BudgetConfiguration.parse("image=3/250ms", source: "--budget").requestWindowMs == 250)
    }

    @Test(arguments: [
        ("image", "expected PROVIDER=RATE"),
        ("video=10/s", "unknown provider \"video\""),
        ("image=ten/s", "must look like 10/s"),
        ("image=10/fortnight", "unknown window"),
        ("image=0/s", "must look like 10/s"),
        ("image=10/s,burst=20", "burst needs a rate and must not exceed it"),
        ("image=10/s,speed=3", "unknown key \"speed\""),
        ("image=10/s,5", "is not KEY=VALUE"),
        ("image=concurrent=0", "concurrent must be a positive whole number"),
    ])
    func badSpecsNameTheProblem(spec: String, message: String) {
        do {
            _ = try BudgetConfiguration.parse(spec, source: "--budget")
            Issue.record("\(spec) was accepted")
        } catch {
            #expect(error.description.contains("--budget \"\(spec)\""), "\(error)")
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test func localSplitDividesEveryLimit() async throws {
        let env = try await EnvironmentSettings.load(envFile: "/nonexistent/.env")
        let split = try BudgetConfiguration.resolve(
            flags: ["image=10/s,concurrent=8", "llm=5/s"],
            mode: "local-split",
            localWorkers: 4,
            environment: env,
            file: nil
        )
        #expect(split.mode == .local)
        #expect(split.budgets.map(\.requests) == [1, 2])  // llm first (provider order), then image
        #expect(split.budgets.last?.maxConcurrent == 2)
        #expect(throws: ConfigurationError.self) {
            try BudgetConfiguration.resolve(flags: [], mode: "shared", localWorkers: 1, environment: env, file: nil)
        }
    }

    @Test func limitsAreLearnedByDefaultOnlyWhenLeased() async throws {
        let env = try await EnvironmentSettings.load(envFile: "/nonexistent/.env")
        let none = try BudgetConfiguration.resolve(flags: [], mode: nil, localWorkers: 4, environment: env, file: nil)
        #expect(none.learnLimits && none.isEmpty && none.probeInterval == .milliseconds(20))
        let local = try BudgetConfiguration.resolve(
            flags: ["image=10/s"],
            mode: "local",
            localWorkers: 4,
            environment: env,
            file: nil
        )
        #expect(!local.learnLimits)
    }
}
