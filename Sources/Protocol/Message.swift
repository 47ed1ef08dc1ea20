/// A decoded protocol message: its kind (frame 1) and typed body (frame 3).
public enum Message: Sendable, Equatable {
    case hello(Hello)
    case welcome(Welcome)
    case job(Job)
    case progress(Progress)
    case result(EpisodeResult)
    case heartbeat(Heartbeat)
    case disconnect(Disconnect)
    case cancel(Cancel)
    case leaseRequest(LeaseRequest)
    case leaseGrant(LeaseGrant)
    case leaseStarted(LeaseStarted)
    case leaseRelease(LeaseRelease)
    case leaseCancel(LeaseCancel)
    case providerSignal(ProviderSignal)
    case providerPause(ProviderPause)
    case artifactFetch(ArtifactFetch)
    case artifactChunk(ArtifactChunk)
    case artifactAck(ArtifactAck)
    case assetGet(AssetGet)
    case assetData(AssetData)
    case assetPut(AssetPut)

    public var kind: MessageKind {
        switch self {
        case .hello: .hello
        case .welcome: .welcome
        case .job: .job
        case .progress: .progress
        case .result: .result
        case .heartbeat: .heartbeat
        case .disconnect: .disconnect
        case .cancel: .cancel
        case .leaseRequest: .leaseRequest
        case .leaseGrant: .leaseGrant
        case .leaseStarted: .leaseStarted
        case .leaseRelease: .leaseRelease
        case .leaseCancel: .leaseCancel
        case .providerSignal: .providerSignal
        case .providerPause: .providerPause
        case .artifactFetch: .artifactFetch
        case .artifactChunk: .artifactChunk
        case .artifactAck: .artifactAck
        case .assetGet: .assetGet
        case .assetData: .assetData
        case .assetPut: .assetPut
        }
    }
}

/// One message as it travels: the session token of frame 2 and the message.
public struct Envelope: Sendable, Equatable {
    /// Empty in HELLO (and in a DISCONNECT answering a message that had no valid session).
    public var session: String
    public var message: Message

    public init(session: String = "", _ message: Message) {
        self.session = session
        self.message = message
    }
}
