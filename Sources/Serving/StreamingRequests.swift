import AVMAE
import Foundation
import Media

/// A long recording to answer window by window. Built by the HTTP layer; the source may be a spooled file.
public struct StreamRequest: Sendable {
    public var id: String
    public var source: MediaSource
    public var task: ClipTask

    public init(id: String, source: MediaSource, task: ClipTask) {
        self.id = id
        self.source = source
        self.task = task
    }
}

/// One window's answer, sent as soon as it is computed: its labels (classify) or pooled embeddings (embed).
public struct StreamedWindow: Sendable {
    public var index: Int
    public var startSeconds: Double
    public var labels: [LabelScore]?
    public var pooled: [Modality: [Float]]?
    /// Every class's probability, kept for the aggregate and not sent. // (C)
    var scores: [Float]?

    init(index: Int, startSeconds: Double) {
        self.index = index
        self.startSeconds = startSeconds
    }
}

/// What a stream says, in order: windows, then exactly one `finished` or `failed`.
public enum StreamEvent: Sendable {
    case window(StreamedWindow)
    /// The whole recording's answer, as the non-streamed request would give it (without the timeline or the
    /// per-window embeddings, which went out as windows).
    case finished(ClipResult, windows: Int)
    /// The stream stopped at window `window` (that many windows were sent before it).
    case failed(ServingError, window: Int)
}

/// Set by the side that reads the stream when it no longer wants it (the client went away, shutdown); the
/// stream stops decoding and queueing at its next window.
public final class StreamCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var reason: ServingError?  // guarded by lock

    public init() {}

    public func cancel(_ why: ServingError) {
        lock.withLock { if reason == nil { reason = why } }
    }

    public var cancelledBecause: ServingError? { lock.withLock { reason } }
}
