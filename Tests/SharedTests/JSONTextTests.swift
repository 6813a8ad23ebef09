import Foundation
import Testing

@testable import Shared

/// JSONValue's own parser and writer, judged against Foundation's coders:
/// what one accepts the other accepts with the same tree, and what one
/// writes the other writes byte for byte.
@Suite struct JSONTextTests {
    static let documents = [
        #"null"#, #"true"#, #"false"#, #"0"#, #"-0"#, #"3"#, #"-12"#, #"1.5"#, #"-0.25"#, #"1e3"#, #"2.5E-3"#,
        #"1E+2"#, #"123456789012"#, #"0.1"#, #""""#, #""plain""#, #""a\"b\\c\/d""#, #""\b\f\n\r\t""#,
        #""\u00e9\u4e2d\ud83d\ude00""#, #""é中😀""#, #"[]"#, #"{}"#, #" [ 1 , [ 2 , { } ] , "x" ] "#,
        #"{"b":1,"a":{"c":[true,false,null]},"é":"ü"}"#, "\n\t{\"k\" :\r\n\"v\"}\n",
        #"{"events":{"items":[{"seq":1,"time":"2026-12-05T17:56:18.000Z","deadline":null}],"total":1000}}"#,
    ]

    @Test(arguments: documents) func parsesAsFoundationDoes(_ text: String) throws {
        let ours = try JSONValue(parsing: Array(text.utf8))
        let foundations = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == foundations)
    }

    @Test(arguments: documents) func writesAsFoundationDoes(_ text: String) throws {
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let expected = try encoder.encode(value)
        #expect(String(decoding: value.jsonBytes, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        #expect(try JSONValue(parsing: value.jsonBytes) == value)
    }

    @Test func controlCharactersAreEscapedAndReadBack() throws {
        let value = JSONValue.string("bell\u{07} nul\u{00} esc\u{1B} del\u{7F}")
        #expect(value.jsonText == #""bell\u0007 nul\u0000 esc\u001b del\#u{7F}""#)
        #expect(try JSONValue(parsing: value.jsonBytes) == value)
    }

    @Test func wholeNumbersHaveNoFractionAndOthersRoundTrip() throws {
        #expect(JSONValue.number(3).jsonText == "3")
        #expect(JSONValue.number(-9e14).jsonText == "-900000000000000")
        #expect(JSONValue.number(1.0e16).jsonText == "1e+16")
        #expect(JSONValue.number(.infinity).jsonText == "null")
        for number in [0.1, 1.0 / 3, 1_796_110_410.123, -2.5e-7, 6.02e23] {
            #expect(try JSONValue(parsing: JSONValue.number(number).jsonBytes) == .number(number))
        }
    }

    @Test func aRepeatedKeyKeepsItsLastValue() throws {
        #expect(try JSONValue(parsing: Array(#"{"a":1,"a":2}"#.utf8)) == .object(["a": .number(2)]))
    }

    static let invalid: [(String, String)] = [
        ("", "unexpected end of text"), ("   ", "unexpected end of text"), ("nul", "unexpected end of text"),
        ("nulL", "unexpected character"), ("tru", "unexpected end of text"), ("[1,]", "unexpected character"),
        ("[1 2]", "expected ',' or ']'"), (#"{"a" 1}"#, "expected ':'"), (#"{"a":1,}"#, "expected a key"),
        ("{'a':1}", "expected a key"), (#"{"a":1"#, "unexpected end of text"),
        ("01", "unexpected text after the value"),
        ("-", "a number without digits"), ("1.", "a fraction without digits"), ("1e", "an exponent without digits"),
        ("+1", "unexpected character"), (".5", "unexpected character"), ("1e999", "a number out of range"),
        ("NaN", "unexpected character"), (#""abc"#, "unterminated string"),
        ("\"a\nb\"", "a control character in a string"),
        (#""\x""#, "an invalid escape"), (#""\u12""#, "an invalid \\u escape"), (#""\u12G4""#, "an invalid \\u escape"),
        (#""\ud83d""#, "a high surrogate without its low surrogate"),
        (#""\ud83d\u0041""#, "a high surrogate without its low surrogate"),
        (#""\ude00""#, "a low surrogate without its high surrogate"), ("1 2", "unexpected text after the value"),
        (String(repeating: "[", count: 600) + String(repeating: "]", count: 600), "nested deeper than 512 levels"),
    ]

    @Test(arguments: invalid) func refusesWhatJSONDoesNotAllow(_ text: String, reason: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: Array(text.utf8)) }
        do {
            _ = try JSONValue(parsing: Array(text.utf8))
        } catch {
            #expect(error.reason == reason, "\(text)")
        }
        // Foundation's decoder forgives a trailing comma; RFC 8259 does not.
        if !["[1,]", #"{"a":1,}"#].contains(text) {
            #expect(
                (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) == nil, "Foundation accepts \(text)")
        }
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: JSONSyntaxError(offset: 1, reason: "a string is not valid UTF-8")) {
            try JSONValue(parsing: [0x22, 0xC3, 0x28, 0x22])
        }
        #expect(throws: JSONSyntaxError(offset: 1, reason: "a string is not valid UTF-8")) {
            try JSONValue(parsing: [0x22, 0x5C, 0x6E, 0xFF, 0x22])
        }
    }

    @Test func nestingJustWithinTheLimitIsRead() throws {
        let text = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        var value = try JSONValue(parsing: Array(text.utf8))
        var depth = 0
        while case let .array(items) = value, let first = items.first {
            depth += 1
            value = first
        }
        #expect(depth == 511)
    }
}
