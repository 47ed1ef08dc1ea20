/// Request and response bodies of the OpenAI-compatible endpoints (only the fields the mock reads or writes).
enum OpenAI {
    // MARK: Chat

    struct ChatRequest: Decodable {
        struct ResponseFormat: Decodable {
            var type: String
        }

        var model: String?
        var messages: [ChatMessage]
        var responseFormat: ResponseFormat?
        var maxTokens: Int?
        var maxCompletionTokens: Int?
        var temperature: Double?

        private enum CodingKeys: String, CodingKey {
            case model, messages, temperature
            case responseFormat = "response_format"
            case maxTokens = "max_tokens"
            case maxCompletionTokens = "max_completion_tokens"
        }

        /// JSON mode or structured output: the reply is a script.
        var wantsJSON: Bool {
            responseFormat?.type == "json_object" || responseFormat?.type == "json_schema"
        }

        /// The text the script is built from: the last user message, else the last message.
        var prompt: String {
            (messages.last { $0.role == "user" } ?? messages.last)?.text ?? ""
        }

        /// A rough count: one token per four characters of every message.
        var promptTokens: Int {
            max(1, messages.reduce(0) { $0 + $1.text.count } / 4)
        }
    }

    struct ChatMessage: Decodable {
        var role: String
        /// The content as text; content parts (`[{"type":"text","text":…}]`) are joined with newlines.
        var text: String

        private enum CodingKeys: String, CodingKey {
            case role, content
        }

        private struct Part: Decodable {
            var text: String?
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            role = try container.decode(String.self, forKey: .role)
            if let text = try? container.decodeIfPresent(String.self, forKey: .content) {
                self.text = text
            } else if let parts = try container.decodeIfPresent([Part].self, forKey: .content) {
                text = parts.compactMap(\.text).joined(separator: "\n")
            } else {
                text = ""
            }
        }
    }

    /// The shape of `openai/chat_success`: the message carries `refusal: null` and `annotations`, the usage its
    /// token details.
    struct ChatCompletion: Encodable {
        struct Choice: Encodable {
            var index: Int
            var message: Message
            var finishReason: String

            private enum CodingKeys: String, CodingKey {
                case index, message, logprobs
                case finishReason = "finish_reason"
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(index, forKey: .index)
                try container.encode(message, forKey: .message)
                try container.encodeNil(forKey: .logprobs)
                try container.encode(finishReason, forKey: .finishReason)
            }
        }

        struct Message: Encodable {
            var role: String
            var content: String
            /// Always null: the mock never refuses (force the `openai/chat_refusal` fixture for that).
            var refusal: String?
            var annotations: [String] = []

            init(role: String, content: String) {
                self.role = role
                self.content = content
            }

            private enum CodingKeys: String, CodingKey {
                case role, content, refusal, annotations
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(role, forKey: .role)
                try container.encode(content, forKey: .content)
                try container.encode(refusal, forKey: .refusal)
                try container.encode(annotations, forKey: .annotations)
            }
        }

        struct Usage: Encodable {
            struct PromptDetails: Encodable {
                var cachedTokens = 0
                var audioTokens = 0

                private enum CodingKeys: String, CodingKey {
                    case cachedTokens = "cached_tokens"
                    case audioTokens = "audio_tokens"
                }
            }

            struct CompletionDetails: Encodable {
                var reasoningTokens = 0
                var audioTokens = 0
                var acceptedPredictionTokens = 0
                var rejectedPredictionTokens = 0

                private enum CodingKeys: String, CodingKey {
                    case reasoningTokens = "reasoning_tokens"
                    case audioTokens = "audio_tokens"
                    case acceptedPredictionTokens = "accepted_prediction_tokens"
                    case rejectedPredictionTokens = "rejected_prediction_tokens"
                }
            }

            var promptTokens: Int
            var completionTokens: Int
            var totalTokens: Int
            var promptTokensDetails = PromptDetails()
            var completionTokensDetails = CompletionDetails()

            init(promptTokens: Int, completionTokens: Int, totalTokens: Int) {
                self.promptTokens = promptTokens
                self.completionTokens = completionTokens
                self.totalTokens = totalTokens
            }

            private enum CodingKeys: String, CodingKey {
                case promptTokens = "prompt_tokens"
                case completionTokens = "completion_tokens"
                case totalTokens = "total_tokens"
                case promptTokensDetails = "prompt_tokens_details"
                case completionTokensDetails = "completion_tokens_details"
            }
        }

        var id: String
        var object = "chat.completion"
        var created: Int
        var model: String
        var choices: [Choice]
        var usage: Usage
        var serviceTier = "default"
        var systemFingerprint = "fp_mock"

        private enum CodingKeys: String, CodingKey {
            case id, object, created, model, choices, usage
            case serviceTier = "service_tier"
            case systemFingerprint = "system_fingerprint"
        }
    }

    // MARK: Speech

    struct SpeechRequest: Decodable {
        var model: String?
        var input: String
        var voice: String?
        var responseFormat: String?

        private enum CodingKeys: String, CodingKey {
            case model, input, voice
            case responseFormat = "response_format"
        }
    }

    // MARK: Images

    struct ImageRequest: Decodable {
        var model: String?
        var prompt: String
        var n: Int?
        var size: String?
        var responseFormat: String?

        private enum CodingKeys: String, CodingKey {
            case model, prompt, n, size
            case responseFormat = "response_format"
        }
    }

    struct ImagesResponse: Encodable {
        struct Image: Encodable {
            var b64JSON: String
            var revisedPrompt: String

            private enum CodingKeys: String, CodingKey {
                case b64JSON = "b64_json"
                case revisedPrompt = "revised_prompt"
            }
        }

        var created: Int
        var data: [Image]
    }
}
