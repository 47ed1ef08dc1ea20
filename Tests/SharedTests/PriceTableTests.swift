import Shared
import Testing

@Suite struct PriceTableTests {
    @Test func theDefaultModelsArePriced() {
        let table = PriceTable.defaults
        // 1,200 prompt + 3,400 completion tokens of gpt-6-luna: $0.00012 + $0.0017.
        #expect(table.costMicros(of: .tokens(model: "gpt-6-luna", input: 1200, output: 3400)) == 1820)
        // 40 characters of gpt-4o-mini-tts at $0.015 per 1k: $0.0006.
        #expect(table.costMicros(of: .characters(model: "gpt-4o-mini-tts", count: 40)) == 600)
        // A medium 1024×1024 image: $0.013; 1280×720 is 0.879 of that area.
        #expect(
            table.costMicros(of: .image(model: "gpt-image-2.6-flare", width: 1024, height: 1024, quality: "medium"))
                == 13000
        )
        #expect(
            table.costMicros(of: .image(model: "gpt-image-2.6-flare", width: 1280, height: 720, quality: "high"))
                == 46582
        )
        // A quality without its own price takes `image:`.
        #expect(
            table.costMicros(of: .image(model: "gpt-image-2.6-flare", width: 1024, height: 1024, quality: "auto"))
                == 13000
        )
        #expect(table.costMicros(of: .characters(model: "eleven_multilingual_v2", count: 1000)) == 100_000)
        // Model names match whatever their case.
        #expect(table.costMicros(of: .tokens(model: "GPT-6-Luna", input: 1_000_000, output: 0)) == 100_000)
    }

    @Test func aModelWithoutAPriceForWhatItUsedHasNoCost() {
        let table = PriceTable.defaults
        #expect(table.costMicros(of: .tokens(model: "llama3.1:8b", input: 10, output: 10)) == nil)
        // A voice model has no token price.
        #expect(table.costMicros(of: .tokens(model: "gpt-4o-mini-tts", input: 10, output: 10)) == nil)
        #expect(table.costMicros(of: .characters(model: "gpt-6-luna", count: 10)) == nil)
    }

    @Test func specsAddAndReplaceModels() throws {
        let table = try PriceTable.resolve(specs: [
            ("gpt-6-luna=input:1/1M,output:$2/1M", "test"),
            ("llama3.1:8b=input:0/1M,output:0/1M", "test"),
            ("my-tts=chars:0.2/1k", "test"),
            ("sdxl=image:0.004,high:0.01", "test"),
        ])
        #expect(table.costMicros(of: .tokens(model: "gpt-6-luna", input: 1_000_000, output: 1_000_000)) == 3_000_000)
        #expect(table.costMicros(of: .tokens(model: "llama3.1:8b", input: 500, output: 500)) == 0)
        #expect(table.costMicros(of: .characters(model: "my-tts", count: 5)) == 1000)
        #expect(table.costMicros(of: .image(model: "sdxl", width: 1024, height: 1024, quality: "")) == 4000)
        #expect(table.costMicros(of: .image(model: "sdxl", width: 1024, height: 1024, quality: "high")) == 10000)
        // The defaults of other models stay.
        #expect(table.price(of: "gpt-4o-mini-tts") == PriceTable.defaults.price(of: "gpt-4o-mini-tts"))
    }

    @Test(
        "malformed specs name the source and what is wrong",
        arguments: [
            ("gpt-6-luna", "must be MODEL=KIND:AMOUNT"),
            ("=input:1/1M", "must be MODEL=KIND:AMOUNT"),
            ("m=input:1", "input in the price of m is per 1M"),
            ("m=chars:1/1M", "chars in the price of m is per 1k"),
            ("m=image:1/1k", "is per image"),
            ("m=input:-1/1M", "is not an amount of dollars"),
            ("m=input:nan/1M", "is not an amount of dollars"),
            ("m=input:1/1G", "must be /1M or /1k"),
            ("m=tokens:1/1M", "unknown price kind \"tokens\""),
            ("m=input", "must be KIND:AMOUNT"),
            ("m=", "the price of m is empty"),
        ]
    )
    func malformedSpecs(spec: String, expected: String) {
        do {
            _ = try PriceTable.parse(spec, source: "REELFARM_PRICES")
            Issue.record("\(spec) was accepted")
        } catch {
            #expect(error.message.contains("REELFARM_PRICES"), "\(error.message)")
            #expect(error.message.contains(expected), "\(spec): \(error.message)")
        }
    }

    @Test func dollarsForPeople() {
        #expect(PriceTable.dollars(0) == "$0")
        #expect(PriceTable.dollars(290) == "$0.0003")
        #expect(PriceTable.dollars(13000) == "$0.013")
        #expect(PriceTable.dollars(12_400_000) == "$12.40")
        #expect(PriceTable.micros(.infinity) == 0)
        #expect(PriceTable.micros(-1) == 0)
        #expect(PriceTable.micros(1e9) == 1_000_000_000_000)
    }
}
