import Crypto
import Foundation
import Shared

/// The asset store's key of one provider request (PROTOCOL §18.1): the lowercase hex SHA-256 of
///
///     "reelfarm-asset/1\n" + METHOD + "\n" + URL + "\n" + Accept + "\n" + body
///
/// The URL and body hold what decides the answer (provider host and endpoint, model, voice, size,
/// quality, the exact input text), `Accept` the format asked for. Credentials are left out, so every key
/// of one account (and of another) finds the same answer; so is anything that varies between tries of
/// one request. Two requests share a key exactly when their bytes agree: one changed line of a script
/// changes that line's voice request only.
enum AssetKey {
    static func of(_ request: ProviderRequest) -> String {
        var hasher = SHA256()
        hasher.update(data: Data("reelfarm-asset/1\n\(request.method)\n\(request.url)\n".utf8))
        hasher.update(data: Data("\(request.headers["accept"] ?? "")\n".utf8))
        if let body = request.body { hasher.update(data: body) }
        return DurableFiles.hex(hasher.finalize())
    }
}
