import Serving

// The lines of a streamed answer (application/x-ndjson, openapi.yaml's StreamLine): one object per line.

/// One window, as soon as it is computed.
struct WindowLineDTO: Encodable {
    var window: Int
    var startSeconds: Double
    var labels: [LabelDTO]?
    var embeddings: [String: FloatsDTO]?

    init(_ window: StreamedWindow, encoding: FloatEncoding) {
        self.window = window.index
        startSeconds = window.startSeconds
        labels = window.labels?.map(LabelDTO.init)
        embeddings = window.pooled.map { pooled in
            Dictionary(uniqueKeysWithValues: pooled.map { ($0.key.rawValue, FloatsDTO(values: $0.value, encoding: encoding)) })
        }
    }
}

/// The last line of a stream that went to its end: the answer a non-streamed request gets, without the
/// per-window parts that went out as lines.
struct SummaryLineDTO<Summary: Encodable>: Encodable {
    var summary: Summary
}

/// The last line of a stream that stopped: what went wrong, and at which window (that many windows were sent).
struct ErrorLineDTO: Encodable {
    struct Detail: Encodable { var code: String; var message: String; var window: Int }
    var error: Detail
}

enum NDJSON {
    static func line<T: Encodable>(_ value: T) -> [UInt8] {
        JSON.encode(value) + [UInt8(ascii: "\n")]
    }
}
