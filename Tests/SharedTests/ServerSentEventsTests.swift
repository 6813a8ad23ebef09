import Testing

@testable import Shared

/// The `text/event-stream` format, both ways.
@Suite struct ServerSentEventsTests {
    @Test func aMessageIsItsFieldsThenABlankLineAndDataKeepsItsLines() {
        #expect(ServerSentEvents.encode(id: "7", data: #"{"a":1}"#) == "id: 7\ndata: {\"a\":1}\n\n")
        #expect(ServerSentEvents.encode(event: "end", data: "one\ntwo") == "event: end\ndata: one\ndata: two\n\n")
    }

    /// Text split anywhere, CRLF and LF, comments, a message without an
    /// id (it keeps the last one), fields without a space, unknown fields.
    @Test func theParserTakesMessagesAsTheyComplete() {
        var parser = ServerSentEvents.Parser()
        let text =
            "retry: 2000\n\n: keepalive\n\nid: 1\ndata: {\"seq\":1}\n\nid:2\r\ndata: a\r\ndata: b\r\n\r\n"
            + "event: job\nfoo: bar\ndata: {}\n\nevent: end\ndata\n\n"
        var messages: [ServerSentEvents.Message] = []
        for chunk in stride(from: 0, to: text.count, by: 5).map({
            String(text.dropFirst($0).prefix(5))
        }) {
            messages += parser.feed(chunk)
        }
        #expect(
            messages == [
                .init(id: "1", data: #"{"seq":1}"#), .init(id: "2", data: "a\nb"),
                .init(id: "2", event: "job", data: "{}"), .init(id: "2", event: "end", data: ""),
            ])
        #expect(parser.lastEventID == "2")
        #expect(parser.feed("id: 3\ndata: x") == [])
        #expect(parser.feed("\n\n") == [.init(id: "3", data: "x")])
    }
}
