import HTTPTypes
import NIOCore

/// Reads the rest of an HTTP/1.1 upstream response nobody will see (a try that is being
/// retried), then gives the connection back to the pool instead of closing it, so a partial
/// outage does not also churn connections. The stream holds it, as its delegate, until the
/// response is over.
final class ResponseDrainer: UpstreamResponseDelegate {
    private let stream: any UpstreamStream
    private let requestComplete: Bool

    private init(stream: any UpstreamStream, requestComplete: Bool) {
        self.stream = stream
        self.requestComplete = requestComplete
    }

    /// Drains `stream`'s response; `requestComplete` says whether the whole request was sent
    /// (otherwise the connection cannot serve another one and closes when the response ends).
    static func drain(_ stream: any UpstreamStream, requestComplete: Bool) {
        stream.delegate = ResponseDrainer(stream: stream, requestComplete: requestComplete)
        stream.resumeReads()
    }

    func upstreamResponseHead(_ response: consuming HTTPResponse) {}
    func upstreamResponseBody(_ body: ByteBuffer) {}
    func upstreamReadComplete() {}
    func upstreamWritabilityChanged() {}

    func upstreamResponseEnd(_ trailers: HTTPFields?) {
        stream.delegate = nil
        stream.finished(requestComplete: requestComplete)
    }

    func upstreamFailed(_ error: UpstreamFailure) {
        stream.delegate = nil
    }
}
