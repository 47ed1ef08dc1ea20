/// Frame 1 of every message: one byte naming the message kind.
///
/// Ranges are reserved so later protocol minors can add kinds without renumbering:
/// `0x01…0x0F` session and jobs, `0x10…0x1F` rate-limit leases, `0x20…0x2F` artifacts.
public enum MessageKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case hello = 0x01
    case welcome = 0x02
    case job = 0x03
    case progress = 0x04
    case result = 0x05
    case heartbeat = 0x06
    case disconnect = 0x07
    case cancel = 0x08
    case leaseRequest = 0x10
    case leaseGrant = 0x11
    case leaseStarted = 0x12
    case leaseRelease = 0x13
    case leaseCancel = 0x14
    case providerSignal = 0x15
    case providerPause = 0x16
    case artifactFetch = 0x20
    case artifactChunk = 0x21
    case artifactAck = 0x22
    case assetGet = 0x30
    case assetData = 0x31
    case assetPut = 0x32

    /// Range of rate-limit lease messages (minor 1 uses 0x10…0x16).
    public static let leaseRange: ClosedRange<UInt8> = 0x10...0x1F
    /// Range of artifact transfer messages (minor 2 uses 0x20…0x22).
    public static let artifactRange: ClosedRange<UInt8> = 0x20...0x2F
    /// Range of asset store messages (minor 5 uses 0x30…0x32).
    public static let assetRange: ClosedRange<UInt8> = 0x30...0x3F

    /// Whether messages of this kind carry one blob frame (F4): ARTIFACT_CHUNK, ASSET_DATA and ASSET_PUT.
    public var carriesBlob: Bool { self == .artifactChunk || self == .assetData || self == .assetPut }

    public var description: String {
        switch self {
        case .hello: "HELLO"
        case .welcome: "WELCOME"
        case .job: "JOB"
        case .progress: "PROGRESS"
        case .result: "RESULT"
        case .heartbeat: "HEARTBEAT"
        case .disconnect: "DISCONNECT"
        case .cancel: "CANCEL"
        case .leaseRequest: "LEASE_REQUEST"
        case .leaseGrant: "LEASE_GRANT"
        case .leaseStarted: "LEASE_STARTED"
        case .leaseRelease: "LEASE_RELEASE"
        case .leaseCancel: "LEASE_CANCEL"
        case .providerSignal: "PROVIDER_SIGNAL"
        case .providerPause: "PROVIDER_PAUSE"
        case .artifactFetch: "ARTIFACT_FETCH"
        case .artifactChunk: "ARTIFACT_CHUNK"
        case .artifactAck: "ARTIFACT_ACK"
        case .assetGet: "ASSET_GET"
        case .assetData: "ASSET_DATA"
        case .assetPut: "ASSET_PUT"
        }
    }
}
