import Foundation
import Protocol
import Testing

/// `JSONValue`, the one JSON tree of Reelfarm (the codec, provider replies, the mock's configuration and
/// fixtures), through its public API only.
@Suite struct JSONValueTests {
    private func parse(_ text: String) throws(JSONTextError) -> JSONValue {
        try JSONValue(parsing: Array(text.utf8))
    }

    @Test func parsesEveryKindAndKeepsMemberOrder() throws {
        let value = try parse(#" {"z": [1, -2.5e3, "x\ny", true, false, null], "a": {"b": {}}} "#)
        #expect(value.members?.map(\.key) == ["z", "a"])
        let items = try #require(value["z"]?.array)
        #expect(items.count == 6)
        #expect(items[0].integer == 1)
        #expect(items[1].double == -2_500)
        #expect(items[1].integer == -2_500)
        #expect(items[2].string == "x\ny")
        #expect(items[3].bool == true && items[4].bool == false)
        #expect(items[5].isNull)
        #expect(value["a"]?["b"] == .object([:]))
        #expect(value["missing"] == nil)
        #expect(value["z"]?["not an object"] == nil)
        #expect(value.kindName == "an object" && items[2].kindName == "a string")
    }

    @Test func numbersKeepTheirTextAndCompareByValue() throws {
        let big = try parse("[9007199254740993, 18446744073709551615, 1.5, 1e400]")
        let items = try #require(big.array)
        // Above 2^53 a Double would lose the last digit; the text keeps it.
        #expect(items[0] == .number("9007199254740993"))
        #expect(items[0].integer == 9_007_199_254_740_993)
        #expect(items[0] != .number("9007199254740992"))
        #expect(items[1].integer == nil)  // does not fit in Int64
        #expect(items[2].integer == nil)
        #expect(items[2].double == 1.5)
        #expect(items[3].integer == nil)
        #expect(try parse("1") == parse("1.0"))
        #expect(try parse("1") == parse("1e0"))
        #expect(try parse("100") == .integer(100))
        #expect(try parse("1") != parse("1.5"))
        #expect(JSONValue.double(2) == .number("2"))
        #expect(JSONValue.double(7.5) == .number("7.5"))
        #expect(JSONValue.double(.nan) == .null)
    }

    @Test func objectsCompareWithoutOrderAndRepeatedKeysKeepTheLast() throws {
        #expect(try parse(#"{"a":1,"b":2}"#) == parse(#"{"b":2,"a":1}"#))
        #expect(try parse(#"{"a":1,"b":2}"#) != parse(#"{"a":1}"#))
        #expect(try parse(#"{"a":1,"b":2}"#) != parse(#"{"a":1,"b":3}"#))
        let repeated = try parse(#"{"a":1,"b":2,"a":3}"#)
        #expect(repeated.members?.count == 2)
        #expect(repeated["a"] == .integer(3))
        #expect(try parse("[1,2]") != parse("[2,1]"))
    }

    @Test func membersAreSetReplacedAndRemoved() {
        var value = JSONValue.object(["b": .integer(1), "a": .string("x")])
        #expect(value.members?.map(\.key) == ["a", "b"])  // a dictionary's members come sorted
        value["c"] = .bool(true)
        value["a"] = .string("y")
        value["b"] = nil
        #expect(value.members?.map(\.key) == ["a", "c"])
        #expect(value["a"] == .string("y"))
        var array = JSONValue.array([])
        array["a"] = .null
        #expect(array == .array([]))
        let renamed = JSONValue.object(["k": .array([.string("old model")])]).mappingStrings {
            $0.replacingOccurrences(of: "old", with: "new")
        }
        #expect(renamed["k"] == .array([.string("new model")]))
    }

    @Test(
        "round trip through its own text",
        arguments: [
            #"{"a":[1,2.5,-3e-7,"\"quoted\" \\ / é 🎬 \u0001",true,false,null],"b":{},"c":[]}"#,
            #"[]"#, #""plain""#, #"0"#, #"null"#,
            #"{"nested":{"deeper":{"deepest":[[[{"x":-0}]]]}}}"#,
        ]
    )
    func roundTrip(_ text: String) throws {
        let value = try parse(text)
        #expect(try JSONValue(parsing: value.encoded()) == value)
        #expect(try JSONValue(parsing: value.encoded(sortedKeys: true)) == value)
        #expect(JSONValue(data: value.data) == value)
    }

    @Test func writesCompactTextInOrderOrSorted() throws {
        let value = try parse(#"{ "b" : [ 1.50 , "a/b" ], "a" : null }"#)
        #expect(String(decoding: value.encoded(), as: UTF8.self) == #"{"b":[1.50,"a/b"],"a":null}"#)
        #expect(String(decoding: value.data, as: UTF8.self) == #"{"a":null,"b":[1.50,"a/b"]}"#)
        #expect(String(decoding: JSONValue.string("\u{1}\t\"").encoded(), as: UTF8.self) == #""\u0001\t\"""#)
    }

    @Test func roundTripThroughFoundation() throws {
        let value = try parse(#"{"a":[1,-2,2.5,"s",true,null,{"k":"v"}],"big":18446744073709551615}"#)
        let encoded = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: encoded) == value)
        // Foundation reads what it writes itself, and so does the parser.
        #expect(JSONValue(data: encoded) == value)
        let nested: [String: JSONValue] = ["outer": value, "list": .array([value, .null])]
        let wrapped = try JSONDecoder().decode([String: JSONValue].self, from: JSONEncoder().encode(nested))
        #expect(wrapped == nested)
    }

    @Test(
        "malformed input is refused with the offset",
        arguments: [
            ("", 0), ("{", 1), (#"{"a":}"#, 5), (#"{"a" 1}"#, 5), ("[1 2]", 3), ("01", 1), ("1.", 2),
            (#""abc"#, 4), ("nul", 0), ("{} {}", 3), (#""\ud83c""#, 7),
        ]
    )
    func malformed(_ text: String, _ offset: Int) {
        do {
            _ = try parse(text)
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.offset == offset, "\(text): \(error)")
        }
    }

    @Test func dataIsBoundedAndMayStartWithAByteOrderMark() {
        let text = Data(#"{"a":1}"#.utf8)
        #expect(JSONValue(data: text)?["a"] == .integer(1))
        #expect(JSONValue(data: text, limit: text.count - 1) == nil)
        #expect(JSONValue(data: Data([0xEF, 0xBB, 0xBF]) + text)?["a"] == .integer(1))
        #expect(JSONValue(data: Data()) == nil)
        #expect(JSONValue(data: Data("{".utf8)) == nil)
        #expect(JSONValue(data: Data([0x22, 0xFF, 0x22])) == nil)  // not UTF-8
        let deep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(JSONValue(data: Data(deep.utf8)) == nil)
    }
}
