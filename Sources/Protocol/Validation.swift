/// Range checks applied to every decoded message, so that the state machines behind the codec only
/// ever see sane values. Each failure is a ``DecodeError`` with code `invalid_field`.
enum Validation {
    static func validate(_ message: Message) throws(DecodeError) {
        switch message {
        case .hello(let m):
            try identifier(m.workerId, "worker_id")
            try identifier(m.instance, "instance")
            try text(m.host, "host", allowEmpty: false)
            try range(m.pid, 0...Int(Int32.max), "pid")
            try range(m.capacity.episodes, 1...1024, "capacity.episodes")
            try range(m.capacity.apiCalls, 1...1024, "capacity.api_calls")
            try text(m.softwareVersion, "software_version", allowEmpty: false)
            try range(m.protocolMinor, 0...1000, "protocol_minor")
            try jobRefs(m.running, "running")
            guard m.recentCalls.count <= 16 else { throw invalid("recent_calls", "more than 16 providers") }
            // (Duplicate providers in the list are merged on decoding.)
            for (provider, ages) in m.recentCalls {
                try identifier(provider, "recent_calls")
                guard ages.count <= 100_000 else {
                    throw invalid("recent_calls.\(provider)", "more than 100000 entries")
                }
                for age in ages { try range(age, 0...86_400_000, "recent_calls.\(provider)") }
            }
        case .welcome(let m):
            try sessionToken(m.session, "session")
            try range(m.protocolMinor, 0...1000, "protocol_minor")
            try range(m.heartbeatIntervalMs, 10...60_000, "heartbeat_interval_ms")
            try range(m.liveness, 1...100, "liveness")
            try range(m.maxMessageBytes, 1024...(1 << 30), "max_message_bytes")
            try text(m.softwareVersion, "software_version", allowEmpty: false)
            guard m.budgets.count <= 16 else { throw invalid("budgets", "more than 16 providers") }
            for b in m.budgets { try budget(b) }
            try range(m.fleetWorkers, 1...1_000_000, "fleet_workers")
        case .job(let m):
            try identifier(m.batchId, "batch_id")
            try identifier(m.episodeId, "episode_id")
            try range(m.attempt, 1...1_000_000, "attempt")
            try spec(m.spec)
            if let allowance = m.spendAllowanceMicros {
                try range(allowance, 0...TraceEvent.maxCostMicros, "spend_allowance_micros")
            }
        case .progress(let m):
            try identifier(m.episodeId, "episode_id")
            try range(m.attempt, 1...1_000_000, "attempt")
            try range(m.total, 0...100_000, "total")
            try range(m.succeeded, 0...m.total, "succeeded")
        case .result(let m):
            try identifier(m.episodeId, "episode_id")
            try range(m.attempt, 1...1_000_000, "attempt")
            if let error = m.error { try text(error, "error", allowEmpty: true) }
            try range(m.durationMs, 0...(30 * 24 * 3_600_000), "duration_ms")
            try range(m.apiCalls, 0...1_000_000, "api_calls")
            guard m.placeholders.count <= 10_000 else { throw invalid("placeholders", "more than 10000 entries") }
            for p in m.placeholders {
                try text(p.item, "placeholders.item", allowEmpty: false)
                try text(p.reason, "placeholders.reason", allowEmpty: true)
            }
            guard m.trace.count <= 100_000 else { throw invalid("trace", "more than 100000 events") }
            for e in m.trace {
                try text(e.name, "trace.name", allowEmpty: false)
                if let cost = e.costMicros { try range(cost, 0...TraceEvent.maxCostMicros, "trace.cost_micros") }
                if let saved = e.savedMicros { try range(saved, 0...TraceEvent.maxCostMicros, "trace.saved_micros") }
            }
            guard m.artifacts.count <= WireProtocol.maxArtifacts else {
                throw invalid("artifacts", "more than \(WireProtocol.maxArtifacts) files")
            }
            var names = Set<String>()
            for file in m.artifacts {
                try artifactName(file.name, "artifacts.name")
                guard names.insert(file.name).inserted else {
                    throw invalid("artifacts.name", "\(file.name) is listed twice")
                }
                try range(file.size, 0...WireProtocol.maxArtifactBytes, "artifacts.size")
                try sha256(file.sha256, "artifacts.sha256")
            }
            if !m.artifacts.isEmpty, m.status != .succeeded {
                throw invalid("artifacts", "are offered only with status succeeded")
            }
        case .heartbeat(let m):
            try jobRefs(m.running, "running")
        case .disconnect(let m):
            try text(m.detail, "detail", allowEmpty: true)
        case .cancel(let m):
            try identifier(m.episodeId, "episode_id")
            try range(m.attempt, 1...1_000_000, "attempt")
        case .leaseRequest(let m):
            try identifier(m.requestId, "request_id")
            try identifier(m.provider, "provider")
            try range(m.calls, 1...1000, "calls")
            try range(m.units, 0...100_000_000, "units")
            if let episode = m.episodeId { try identifier(episode, "episode_id") }
        case .leaseGrant(let m):
            try identifier(m.requestId, "request_id")
            try identifier(m.provider, "provider")
            try text(m.detail, "detail", allowEmpty: true)
            if m.refused == nil {
                try identifier(m.leaseId, "lease_id")
                try range(m.calls, 1...1000, "calls")
                try range(m.useWithinMs, 1...3_600_000, "use_within_ms")
                try range(m.queuedMs, 0...86_400_000, "queued_ms")
            } else {
                try range(m.calls, 0...0, "calls")
            }
        case .leaseStarted(let m):
            try identifier(m.leaseId, "lease_id")
            try range(m.calls, 1...1000, "calls")
        case .leaseRelease(let m):
            try identifier(m.leaseId, "lease_id")
            try range(m.finished, 0...1000, "finished")
            try range(m.returned, 0...1000, "returned")
            guard m.finished + m.returned > 0 else { throw invalid("finished", "and returned are both 0") }
            if let v = m.usedUnits {
                try range(v, 0...1_000_000_000, "used_units")
                guard m.finished > 0 else { throw invalid("used_units", "comes only with finished calls") }
            }
        case .leaseCancel(let m):
            try identifier(m.requestId, "request_id")
        case .providerSignal(let m):
            try identifier(m.provider, "provider")
            if let v = m.retryAfterMs { try range(v, 0...86_400_000, "retry_after_ms") }
            if let v = m.remaining { try range(v, 0...Int(Int32.max), "remaining") }
            if let v = m.resetMs { try range(v, 0...86_400_000, "reset_ms") }
            try text(m.detail, "detail", allowEmpty: true)
            if let v = m.limitRequests { try range(v, 1...1_000_000_000, "limit_requests") }
            if let v = m.limitUnits { try range(v, 1...1_000_000_000_000, "limit_units") }
            if let v = m.remainingUnits { try range(v, 0...1_000_000_000_000, "remaining_units") }
            if let v = m.resetUnitsMs { try range(v, 0...86_400_000, "reset_units_ms") }
            if let v = m.maxConcurrent { try range(v, 1...100_000, "max_concurrent") }
            if let v = m.currentConcurrent { try range(v, 0...100_000, "current_concurrent") }
        case .providerPause(let m):
            try identifier(m.provider, "provider")
            try range(m.pauseMs, 0...86_400_000, "pause_ms")
            try text(m.reason, "reason", allowEmpty: true)
        case .artifactFetch(let m):
            try identifier(m.episodeId, "episode_id")
            try range(m.attempt, 1...1_000_000, "attempt")
            try artifactName(m.name, "name")
            try range(m.offset, 0...WireProtocol.maxArtifactBytes, "offset")
            try range(m.length, 0...WireProtocol.maxChunkBytes, "length")
        case .artifactChunk(let m):
            try identifier(m.episodeId, "episode_id")
            try range(m.attempt, 1...1_000_000, "attempt")
            try artifactName(m.name, "name")
            try range(m.offset, 0...WireProtocol.maxArtifactBytes, "offset")
            if let error = m.error {
                try text(error, "error", allowEmpty: false)
                guard m.data.isEmpty else { throw invalid("error", "comes with an empty frame 4") }
            }
        case .artifactAck(let m):
            try identifier(m.episodeId, "episode_id")
            try range(m.attempt, 1...1_000_000, "attempt")
        case .assetGet(let m):
            try range(m.requestId, 0...Int(UInt32.max), "request_id")
            try sha256(m.key, "key")
            try range(m.offset, 0...WireProtocol.maxAssetBytes, "offset")
            try range(m.length, 1...WireProtocol.maxChunkBytes, "length")
        case .assetData(let m):
            try range(m.requestId, 0...Int(UInt32.max), "request_id")
            try sha256(m.key, "key")
            try range(m.size, 0...WireProtocol.maxAssetBytes, "size")
            try range(m.offset, 0...m.size, "offset")
            if m.found {
                guard let sha = m.sha256 else { throw invalid("sha256", "is required when found") }
                try sha256(sha, "sha256")
                guard m.data.count <= m.size - m.offset else { throw invalid("data", "runs past size") }
            } else {
                guard m.data.isEmpty, m.size == 0 else {
                    throw invalid("found", "false comes with size 0 and no bytes")
                }
            }
            if let type = m.contentType { try mediaType(type, "content_type") }
        case .assetPut(let m):
            try sha256(m.key, "key")
            try range(m.size, 1...WireProtocol.maxAssetBytes, "size")
            try sha256(m.sha256, "sha256")
            try range(m.offset, 0...(m.size - 1), "offset")
            guard !m.data.isEmpty, m.data.count <= m.size - m.offset else {
                throw invalid("data", "must hold 1…size-offset bytes")
            }
            if let type = m.contentType { try mediaType(type, "content_type") }
            try text(m.service, "service", allowEmpty: false)
            guard m.service.utf8.count <= 64 else { throw invalid("service", "longer than 64 bytes") }
        }
    }

    static func budget(_ b: ProviderBudget) throws(DecodeError) {
        try identifier(b.provider, "budgets.provider")
        if let v = b.requests { try range(v, 1...10_000_000, "budgets.requests") }
        try range(b.requestWindowMs, 1...86_400_000, "budgets.request_window_ms")
        if let v = b.burst { try range(v, 1...10_000_000, "budgets.burst") }
        if let v = b.maxConcurrent { try range(v, 1...100_000, "budgets.max_concurrent") }
        if let v = b.units { try range(v, 1...1_000_000_000, "budgets.units") }
        try range(b.unitWindowMs, 1...86_400_000, "budgets.unit_window_ms")
    }

    static func spec(_ s: EpisodeSpec) throws(DecodeError) {
        try text(s.topic, "spec.topic", allowEmpty: false)
        if let id = s.id { try identifier(id, "spec.id") }
        if let scenes = s.scenes { try range(scenes, 1...EpisodeSpec.maxScenes, "spec.scenes") }
        if let characters = s.characters {
            guard characters.count <= EpisodeSpec.maxCharacters else {
                throw invalid("spec.characters", "more than \(EpisodeSpec.maxCharacters) characters")
            }
            for c in characters { try identifier(c, "spec.characters") }
        }
        if let style = s.style { try text(style, "spec.style", allowEmpty: true) }
    }

    private static func jobRefs(_ refs: [JobRef], _ field: String) throws(DecodeError) {
        guard refs.count <= 1024 else { throw invalid(field, "more than 1024 entries") }
        for r in refs {
            try identifier(r.episodeId, "\(field).episode_id")
            try range(r.attempt, 1...1_000_000, "\(field).attempt")
        }
    }

    /// Identifiers: 1…128 bytes of printable characters, no control characters or slashes
    /// (they become file and folder names).
    static func identifier(_ value: String, _ field: String) throws(DecodeError) {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= WireProtocol.maxIdentifierBytes else {
            throw invalid(field, "must be 1…\(WireProtocol.maxIdentifierBytes) bytes, got \(bytes.count)")
        }
        guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "/" || $0 == "\\" }),
            value != ".", value != ".."
        else {
            throw invalid(field, "contains a control character, a slash or is a dot path")
        }
    }

    /// Artifact names: 1…128 bytes of `A-Z a-z 0-9 . _ -`, not starting with a dot. They become file
    /// names inside the episode folder, so no folders, no hidden files, nothing to escape.
    static func artifactName(_ value: String, _ field: String) throws(DecodeError) {
        let bytes = Array(value.utf8)
        guard !bytes.isEmpty, bytes.count <= 128, bytes[0] != UInt8(ascii: "."),
            bytes.allSatisfy({ b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E
                    || b == 0x5F || b == 0x2D
            })
        else {
            throw invalid(field, "must be 1…128 characters of A-Z a-z 0-9 . _ - and not start with a dot")
        }
    }

    /// A SHA-256 in lowercase hex: 64 characters of 0-9 a-f.
    static func sha256(_ value: String, _ field: String) throws(DecodeError) {
        let bytes = value.utf8
        guard bytes.count == 64, bytes.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw invalid(field, "must be 64 lowercase hex characters")
        }
    }

    /// A `Content-Type` value: 1…128 bytes of printable ASCII (0x20…0x7E).
    static func mediaType(_ value: String, _ field: String) throws(DecodeError) {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= 128, bytes.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else {
            throw invalid(field, "must be 1…128 bytes of printable ASCII")
        }
    }

    /// Session tokens: 1…64 bytes of printable ASCII without spaces (0x21…0x7E), as in frame 2.
    static func sessionToken(_ value: String, _ field: String) throws(DecodeError) {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= WireProtocol.maxSessionBytes,
            bytes.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E })
        else {
            throw invalid(field, "must be 1…\(WireProtocol.maxSessionBytes) bytes of printable ASCII without spaces")
        }
    }

    static func text(_ value: String, _ field: String, allowEmpty: Bool) throws(DecodeError) {
        let count = value.utf8.count
        guard count <= WireProtocol.maxTextBytes else {
            throw invalid(field, "longer than \(WireProtocol.maxTextBytes) bytes")
        }
        guard allowEmpty || count > 0 else { throw invalid(field, "must not be empty") }
    }

    private static func range(_ value: Int, _ allowed: ClosedRange<Int>, _ field: String) throws(DecodeError) {
        guard allowed.contains(value) else {
            throw invalid(field, "\(value) is outside \(allowed.lowerBound)…\(allowed.upperBound)")
        }
    }

    private static func invalid(_ field: String, _ why: String) -> DecodeError {
        DecodeError(.invalidField, "\(field) \(why)")
    }
}

extension EpisodeSpec {
    /// Checks a spec from a batch file with the same rules as the wire, so a bad batch is refused
    /// before anything is dispatched, and its id with ``BatchNames`` (it becomes a folder name). Throws a
    /// ``DecodeError`` naming the field.
    public func validate() throws(DecodeError) {
        try Validation.spec(self)
        if let id { try BatchNames.check(id, field: "spec.id") }
    }
}
