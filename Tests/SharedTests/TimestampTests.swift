import Foundation
import Shared
import Testing

@Suite struct TimestampTests {
    @Test(arguments: [0.0, 1_795_758_799.903, 951_782_400.5, 1_234_567_890.999, 4_102_444_799.001])
    func matchesISO8601DateFormatter(_ seconds: Double) {
        let date = Date(timeIntervalSince1970: seconds)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        #expect(Timestamp.string(from: date) == formatter.string(from: date))
    }

    @Test func nowIsTodayInUTC() throws {
        let text = Timestamp.now()
        #expect(text.utf8.count == 24 && text.hasSuffix("Z"))
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let parsed = try #require(formatter.date(from: text))
        #expect(abs(parsed.timeIntervalSinceNow) < 60)
    }
}
