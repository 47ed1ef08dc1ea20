/// What the mock would have charged for: the units a real provider bills, summed over every reply it made
/// (`GET /stats/billed`). A client that counts its own spend can be checked against it.
///
/// Chat replies bill their `usage` tokens, speech its input characters, images their count and pixels as
/// requested (before `image_max_side` shrinks what is drawn).
struct BilledUnits: Codable, Equatable, Sendable {
    var promptTokens = 0
    var completionTokens = 0
    var characters = 0
    var images = 0
    /// Width × height of every image, as requested.
    var imagePixels = 0

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case characters, images
        case imagePixels = "image_pixels"
    }
}

/// The body of `GET /stats/billed`.
struct BillingSnapshot: Codable, Equatable, Sendable {
    var openai: BilledUnits
    var huggingface: BilledUnits
    var elevenlabs: BilledUnits
}
