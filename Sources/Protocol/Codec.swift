import Foundation

/// Turns envelopes into ZeroMQ frames and back.
///
/// Frames (after the ROUTER's routing-id frame, which the socket layer strips or adds):
/// `[0] "reelfarm/1"`, `[1]` one kind byte, `[2]` session token (ASCII, may be empty),
/// `[3]` JSON object body (UTF-8, snake_case keys). `docs/PROTOCOL.md` is the normative text.
///
/// `decode` treats its input as hostile: it checks frame count and sizes before parsing,
/// bounds the body, validates every field range and throws a ``DecodeError``; it never traps.
public enum Codec {
    public static func encode(_ envelope: Envelope) -> [[UInt8]] {
        let body: [UInt8]
        do {
            body = try encodeBody(envelope.message)
        } catch {
            // Encoding our own Codable structs cannot fail; keep the frame well-formed regardless.
            body = Array("{}".utf8)
        }
        var frames = [
            WireProtocol.identifier, [envelope.message.kind.rawValue], Array(envelope.session.utf8), body,
        ]
        switch envelope.message {
        case .artifactChunk(let chunk): frames.append(chunk.data)
        case .assetData(let data): frames.append(data.data)
        case .assetPut(let put): frames.append(put.data)
        default: break
        }
        return frames
    }

    public static func decode(_ frames: [[UInt8]]) throws(DecodeError) -> Envelope {
        guard let proto = frames.first else {
            throw DecodeError(.frameCount, "expected 4 frames, got 0")
        }
        // Frame 0 first: a peer of another major version may use another frame layout, and it must
        // still be told why it is refused.
        guard proto == WireProtocol.identifier else {
            if proto.starts(with: WireProtocol.identifierPrefix), proto.count <= 32 {
                let name = String(decoding: proto, as: UTF8.self)
                throw DecodeError(.unsupportedVersion, "peer speaks \(name), this build speaks reelfarm/1")
            }
            throw DecodeError(.notReelfarm, "frame 0 is not a Reelfarm protocol identifier (\(proto.count) bytes)")
        }
        guard frames.count >= 4, frames.count <= WireProtocol.maxFrames else {
            throw DecodeError(.frameCount, "expected 4 frames, got \(frames.count)")
        }
        let total = frames.reduce(0) { $0 + $1.count }
        guard total <= WireProtocol.maxMessageBytes else {
            throw DecodeError(.oversized, "message of \(total) bytes exceeds \(WireProtocol.maxMessageBytes)")
        }
        guard frames[1].count == 1 else {
            throw DecodeError(.unknownKind, "frame 1 must be one byte, got \(frames[1].count)")
        }
        guard let kind = MessageKind(rawValue: frames[1][0]) else {
            throw DecodeError(.unknownKind, String(format: "unknown message kind 0x%02X", frames[1][0]))
        }
        let sessionBytes = frames[2]
        guard sessionBytes.count <= WireProtocol.maxSessionBytes else {
            throw DecodeError(.badSession, "session token of \(sessionBytes.count) bytes")
        }
        guard sessionBytes.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw DecodeError(.badSession, "session token is not printable ASCII")
        }
        let body = frames[3]
        guard body.count <= WireProtocol.maxBodyBytes else {
            throw DecodeError(.oversized, "body of \(body.count) bytes exceeds \(WireProtocol.maxBodyBytes)")
        }
        let blobs = kind.carriesBlob ? 1 : 0
        guard frames.count == 4 + blobs else {
            throw DecodeError(
                .unexpectedBlobs,
                "\(kind) carries \(blobs == 0 ? "no blob frames" : "exactly one blob frame"), got \(frames.count - 4)"
            )
        }
        var message = try decodeBody(kind, body)
        if kind.carriesBlob {
            guard frames[4].count <= WireProtocol.maxChunkBytes else {
                throw DecodeError(.oversized, "chunk of \(frames[4].count) bytes exceeds \(WireProtocol.maxChunkBytes)")
            }
            switch message {
            case .artifactChunk(var chunk):
                chunk.data = frames[4]
                message = .artifactChunk(chunk)
            case .assetData(var data):
                data.data = frames[4]
                message = .assetData(data)
            case .assetPut(var put):
                put.data = frames[4]
                message = .assetPut(put)
            default: break
            }
        }
        try Validation.validate(message)
        let session = String(decoding: sessionBytes, as: UTF8.self)
        if case .welcome(let welcome) = message, welcome.session != session {
            throw DecodeError(.invalidField, "session in the WELCOME body differs from frame 2")
        }
        return Envelope(session: session, message)
    }

    // MARK: - Body

    private static func encodeBody(_ message: Message) throws -> [UInt8] {
        if let hot = HotMessages.encode(message) { return hot }
        switch message {
        case .hello(let m): return try WireJSONEncoder.encode(m)
        case .welcome(let m): return try WireJSONEncoder.encode(m)
        case .job(let m): return try WireJSONEncoder.encode(m)
        case .progress(let m): return try WireJSONEncoder.encode(m)
        case .result(let m): return try WireJSONEncoder.encode(m)
        case .heartbeat(let m): return try WireJSONEncoder.encode(m)
        case .disconnect(let m): return try WireJSONEncoder.encode(m)
        case .cancel(let m): return try WireJSONEncoder.encode(m)
        case .leaseRequest(let m): return try WireJSONEncoder.encode(m)
        case .leaseGrant(let m): return try WireJSONEncoder.encode(m)
        case .leaseStarted(let m): return try WireJSONEncoder.encode(m)
        case .leaseRelease(let m): return try WireJSONEncoder.encode(m)
        case .leaseCancel(let m): return try WireJSONEncoder.encode(m)
        case .providerSignal(let m): return try WireJSONEncoder.encode(m)
        case .providerPause(let m): return try WireJSONEncoder.encode(m)
        case .artifactFetch(let m): return try WireJSONEncoder.encode(m)
        case .artifactChunk(let m): return try WireJSONEncoder.encode(m)
        case .artifactAck(let m): return try WireJSONEncoder.encode(m)
        case .assetGet(let m): return try WireJSONEncoder.encode(m)
        case .assetData(let m): return try WireJSONEncoder.encode(m)
        case .assetPut(let m): return try WireJSONEncoder.encode(m)
        }
    }

    private static func decodeBody(_ kind: MessageKind, _ data: [UInt8]) throws(DecodeError) -> Message {
        // A body must be a JSON object; reject anything else before handing it to the decoder.
        guard let first = data.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }),
            first == UInt8(ascii: "{")
        else {
            throw DecodeError(.malformedBody, "\(kind) body is not a JSON object")
        }
        let decoder = WireJSONDecoder.self
        let value: JSONValue
        do {
            value = try JSONParser.parse(data)
        } catch {
            throw DecodeError(.malformedBody, "\(kind) body: invalid JSON (\(error.reason) at byte \(error.offset))")
        }
        do {
            if let hot = try HotMessages.decode(kind, value) { return hot }
            switch kind {
            case .hello: return .hello(try decoder.decode(Hello.self, from: value))
            case .welcome: return .welcome(try decoder.decode(Welcome.self, from: value))
            case .job: return .job(try decoder.decode(Job.self, from: value))
            case .progress: return .progress(try decoder.decode(Progress.self, from: value))
            case .result: return .result(try decoder.decode(EpisodeResult.self, from: value))
            case .heartbeat: return .heartbeat(try decoder.decode(Heartbeat.self, from: value))
            case .disconnect: return .disconnect(try decoder.decode(Disconnect.self, from: value))
            case .cancel: return .cancel(try decoder.decode(Cancel.self, from: value))
            case .leaseRequest: return .leaseRequest(try decoder.decode(LeaseRequest.self, from: value))
            case .leaseGrant: return .leaseGrant(try decoder.decode(LeaseGrant.self, from: value))
            case .leaseStarted: return .leaseStarted(try decoder.decode(LeaseStarted.self, from: value))
            case .leaseRelease: return .leaseRelease(try decoder.decode(LeaseRelease.self, from: value))
            case .leaseCancel: return .leaseCancel(try decoder.decode(LeaseCancel.self, from: value))
            case .providerSignal: return .providerSignal(try decoder.decode(ProviderSignal.self, from: value))
            case .providerPause: return .providerPause(try decoder.decode(ProviderPause.self, from: value))
            case .artifactFetch: return .artifactFetch(try decoder.decode(ArtifactFetch.self, from: value))
            case .artifactChunk: return .artifactChunk(try decoder.decode(ArtifactChunk.self, from: value))
            case .artifactAck: return .artifactAck(try decoder.decode(ArtifactAck.self, from: value))
            case .assetGet: return .assetGet(try decoder.decode(AssetGet.self, from: value))
            case .assetData: return .assetData(try decoder.decode(AssetData.self, from: value))
            case .assetPut: return .assetPut(try decoder.decode(AssetPut.self, from: value))
            }
        } catch {
            throw DecodeError(.malformedBody, "\(kind) body: \(Self.describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "invalid JSON" }
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "body" : p
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing key \(key.stringValue)" + (parent == "body" ? "" : " in \(parent)")
        case .typeMismatch(_, let context): return "wrong type at \(path(context))"
        case .valueNotFound(_, let context): return "null at \(path(context))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "invalid JSON" : "invalid value at \(path(context))"
        @unknown default: return "invalid body"
        }
    }
}
