import Foundation

/// What the paid models cost, per model name, in US dollars.
///
/// A price is written as a spec, one per model (`REELFARM_PRICES`, specs separated by `;`, or the
/// `prices:` list of the settings file):
///
/// ```
/// gpt-6-luna=input:0.10/1M,output:0.50/1M        per million prompt / completion tokens
/// gpt-4o-mini-tts=chars:0.015/1k                 per thousand characters of speech
/// gpt-image-2.6-flare=image:0.013,low:0.006,high:0.053
///                                                per image of 1024×1024 (scaled by area), by quality
/// stabilityai/stable-diffusion-xl-base-1.0=image:0.002
/// ```
///
/// `image:` is the price of a quality not listed on its own. Costs are kept in micro-dollars (integers),
/// so that sums over thousands of calls are exact.
public struct PriceTable: Sendable, Equatable {
    /// One model's prices; every field is optional (a chat model has token prices, a voice model a
    /// character price, an image model image prices).
    public struct Price: Sendable, Equatable {
        /// Dollars per million prompt tokens.
        public var inputPerMillionTokens: Double?
        /// Dollars per million completion tokens.
        public var outputPerMillionTokens: Double?
        /// Dollars per thousand characters of input text (speech).
        public var perThousandCharacters: Double?
        /// Dollars per 1024×1024 image, by quality (`low`, `medium`, …).
        public var perImageByQuality: [String: Double]
        /// Dollars per 1024×1024 image of a quality not in ``perImageByQuality``.
        public var perImage: Double?

        public init(
            inputPerMillionTokens: Double? = nil,
            outputPerMillionTokens: Double? = nil,
            perThousandCharacters: Double? = nil,
            perImageByQuality: [String: Double] = [:],
            perImage: Double? = nil
        ) {
            self.inputPerMillionTokens = inputPerMillionTokens
            self.outputPerMillionTokens = outputPerMillionTokens
            self.perThousandCharacters = perThousandCharacters
            self.perImageByQuality = perImageByQuality
            self.perImage = perImage
        }
    }

    /// What one provider call used, as the price table needs it.
    public enum Usage: Sendable, Equatable {
        /// A chat completion: the tokens its `usage` reported (or were estimated when it reported none).
        case tokens(model: String, input: Int, output: Int)
        /// Speech from `characters` characters of text.
        case characters(model: String, count: Int)
        /// One image of `width`×`height` at `quality` (empty when the model has no quality setting).
        case image(model: String, width: Int, height: Int, quality: String)

        public var model: String {
            switch self {
            case .tokens(let model, _, _), .characters(let model, _), .image(let model, _, _, _): model
            }
        }
    }

    /// Prices by model name (exact match, case-insensitive).
    public private(set) var prices: [String: Price]

    public init(_ prices: [String: Price] = [:]) {
        self.prices = Dictionary(prices.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
    }

    /// The prices shipped for the default models (list prices as published in November 2026; override them
    /// with your own contract's):
    /// - `gpt-6-luna`: $0.10 / $0.50 per million input / output tokens (OpenAI pricing, 2026-09-22).
    /// - `gpt-4o-mini-tts`: $0.015 per thousand characters (OpenAI's estimate of $0.015 a minute of speech,
    ///   about a thousand characters).
    /// - `gpt-image-2.6-flare` (token prices of 2.5, per 1024×1024 image): low $0.006, medium $0.013,
    ///   high $0.053, xhigh $0.094, max $0.211.
    /// - ElevenLabs `eleven_multilingual_v2` $0.10 and `eleven_flash_v2_5` $0.05 per thousand characters.
    /// - The Hugging Face default `stabilityai/stable-diffusion-xl-base-1.0`: $0.002 an image (compute time
    ///   on serverless inference; it depends on the hardware).
    public static let defaults = PriceTable([
        "gpt-6-luna": Price(inputPerMillionTokens: 0.10, outputPerMillionTokens: 0.50),
        "gpt-4o-mini-tts": Price(perThousandCharacters: 0.015),
        "gpt-image-2.6-flare": Price(
            perImageByQuality: ["low": 0.006, "medium": 0.013, "high": 0.053, "xhigh": 0.094, "max": 0.211],
            perImage: 0.013
        ),
        "eleven_multilingual_v2": Price(perThousandCharacters: 0.10),
        "eleven_flash_v2_5": Price(perThousandCharacters: 0.05),
        "stabilityai/stable-diffusion-xl-base-1.0": Price(perImage: 0.002),
    ])

    /// The price of `model`, if the table has one.
    public func price(of model: String) -> Price? { prices[model.lowercased()] }

    /// This table with `other`'s models added or replaced (a spec replaces a model's whole price).
    public func merging(_ other: PriceTable) -> PriceTable {
        var merged = self
        for (model, price) in other.prices { merged.prices[model] = price }
        return merged
    }

    /// What a call cost in micro-dollars, or `nil` when its model has no price for what it used.
    public func costMicros(of usage: Usage) -> Int? {
        guard let price = price(of: usage.model) else { return nil }
        let dollars: Double
        switch usage {
        case .tokens(_, let input, let output):
            guard price.inputPerMillionTokens != nil || price.outputPerMillionTokens != nil else { return nil }
            dollars =
                Double(max(0, input)) * (price.inputPerMillionTokens ?? 0) / 1_000_000
                + Double(max(0, output)) * (price.outputPerMillionTokens ?? 0) / 1_000_000
        case .characters(_, let count):
            guard let perK = price.perThousandCharacters else { return nil }
            dollars = Double(max(0, count)) * perK / 1000
        case .image(_, let width, let height, let quality):
            guard let perImage = price.perImageByQuality[quality.lowercased()] ?? price.perImage else { return nil }
            let area = width > 0 && height > 0 ? Double(width) * Double(height) / (1024 * 1024) : 1
            dollars = perImage * area
        }
        return Self.micros(dollars)
    }

    /// Dollars as micro-dollars, rounded to the nearest; never negative, at most 10¹² (a million dollars).
    public static func micros(_ dollars: Double) -> Int {
        guard dollars.isFinite, dollars > 0 else { return 0 }
        return Int(min(dollars * 1_000_000, 1e12).rounded())
    }

    /// Micro-dollars as a dollar amount for people: `$0.0132`, `$12.40`.
    public static func dollars(_ micros: Int) -> String {
        let value = Double(micros) / 1_000_000
        if micros == 0 { return "$0" }
        if value < 1 {
            var text = String(format: "%.4f", value)
            while text.hasSuffix("0") { text.removeLast() }
            return "$" + text
        }
        return "$" + String(format: "%.2f", value)
    }

    /// An amount of dollars given by a person (`5`, `0.50`, `$12`) as micro-dollars; more than 0 and at most
    /// a million dollars.
    public static func parseDollars(_ raw: String, source: String) throws(ConfigurationError) -> Int {
        var text = raw.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("$") { text.removeFirst() }
        guard let amount = Double(text), amount.isFinite, amount > 0, amount <= 1_000_000 else {
            throw ConfigurationError(
                "\(source) must be an amount of US dollars above 0 (e.g. 5 or 0.50), got \"\(raw.prefix(80))\""
            )
        }
        return micros(amount)
    }

    // MARK: - Specs

    /// Parses one spec, `MODEL=KIND:AMOUNT[/UNIT],…` (see the type's documentation).
    /// - Parameter source: where the spec came from, for the error (`REELFARM_PRICES`, the settings file).
    public static func parse(
        _ spec: String,
        source: String
    ) throws(ConfigurationError) -> (model: String, price: Price) {
        let text = spec.trimmingCharacters(in: .whitespaces)
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw ConfigurationError(
                "\(source): price \"\(spec.prefix(80))\" must be MODEL=KIND:AMOUNT,… (e.g. gpt-6-luna=input:0.10/1M,output:0.50/1M)"
            )
        }
        let model = text[..<equals].trimmingCharacters(in: .whitespaces)
        guard model.count <= 200, !model.contains(where: { $0.isWhitespace || $0 == ";" }) else {
            throw ConfigurationError("\(source): \"\(model.prefix(80))\" is not a model name")
        }
        var price = Price()
        let parts = text[text.index(after: equals)...].split(separator: ",")
        guard !parts.isEmpty else { throw ConfigurationError("\(source): the price of \(model) is empty") }
        for part in parts {
            let fields = part.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 2 else {
                throw ConfigurationError("\(source): \"\(part)\" in the price of \(model) must be KIND:AMOUNT")
            }
            let kind = fields[0].lowercased()
            let (amount, unit) = try amountAndUnit(fields[1], model: model, source: source)
            func require(_ expected: String, _ divisor: Double) throws(ConfigurationError) -> Double {
                guard unit == expected else {
                    throw ConfigurationError(
                        "\(source): \(kind) in the price of \(model) is per \(expected.isEmpty ? "image" : expected), e.g. \(kind):\(fields[1].split(separator: "/").first ?? "")\(expected.isEmpty ? "" : "/" + expected)"
                    )
                }
                return amount / divisor
            }
            switch kind {
            case "input": price.inputPerMillionTokens = try require("1M", 1)
            case "output": price.outputPerMillionTokens = try require("1M", 1)
            case "chars", "characters": price.perThousandCharacters = try require("1k", 1)
            case "image": price.perImage = try require("", 1)
            case "low", "medium", "high", "xhigh", "max", "standard", "hd", "auto":
                price.perImageByQuality[kind] = try require("", 1)
            default:
                throw ConfigurationError(
                    "\(source): unknown price kind \"\(kind)\" for \(model); use input, output, chars, image or an image quality (low, medium, high, xhigh, max, standard, hd)"
                )
            }
        }
        return (model, price)
    }

    private static func amountAndUnit(
        _ text: String,
        model: String,
        source: String
    ) throws(ConfigurationError) -> (Double, String) {
        let pieces = text.split(separator: "/", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        let number = pieces[0].hasPrefix("$") ? String(pieces[0].dropFirst()) : pieces[0]
        guard let amount = Double(number), amount.isFinite, amount >= 0, amount <= 1_000_000 else {
            throw ConfigurationError("\(source): \"\(text)\" in the price of \(model) is not an amount of dollars")
        }
        let unit = pieces.count > 1 ? pieces[1] : ""
        switch unit.lowercased() {
        case "1m", "m", "1000000": return (amount, "1M")
        case "1k", "k", "1000": return (amount, "1k")
        case "": return (amount, "")
        default:
            throw ConfigurationError("\(source): unit \"/\(unit)\" in the price of \(model) must be /1M or /1k")
        }
    }

    /// The shipped defaults with the specs of `specs` (settings file first, then the environment, then
    /// flags: later ones replace a model's whole price).
    public static func resolve(
        specs: [(spec: String, source: String)]
    ) throws(ConfigurationError) -> PriceTable {
        var table = defaults
        for (spec, source) in specs where !spec.trimmingCharacters(in: .whitespaces).isEmpty {
            let (model, price) = try parse(spec, source: source)
            table.prices[model.lowercased()] = price
        }
        return table
    }
}
