import AVMAE
import Foundation
import Serving

// The JSON shapes of openapi.yaml, one struct per schema. Keys are snake_case through the encoder's strategy.

struct ErrorBody: Encodable {
    struct Detail: Encodable { var code: String; var message: String }
    var error: Detail
}

struct LabelDTO: Encodable {
    var index: Int
    var id: String
    var name: String
    var score: Float

    init(_ label: LabelScore) {
        self.init(index: label.index, id: label.mid, name: label.name, score: label.score)
    }
    init(index: Int, id: String, name: String, score: Float) {
        self.index = index; self.id = id; self.name = name; self.score = score
    }
}

struct TimingsDTO: Encodable {
    var decode: Double, queue: Double, inference: Double, total: Double

    /// Milliseconds, rounded to microseconds so the JSON stays readable.
    init(_ timings: Timings) {
        func ms(_ seconds: Double) -> Double { (seconds * 1e6).rounded() / 1e3 }
        decode = ms(timings.decode); queue = ms(timings.queue)
        inference = ms(timings.inference); total = ms(timings.total)
    }
}

struct WindowLabelsDTO: Encodable {
    var index: Int
    var startSeconds: Double
    var labels: [LabelDTO]
}

struct ClassifyResponse: Encodable {
    var requestId: String
    var model: String
    var modelVersion: String
    var labelSet: String
    var modalities: [String]
    var durationSeconds: Double
    var windowsUsed: Int
    var aggregation: String
    var labels: [LabelDTO]
    var timeline: [WindowLabelsDTO]?
    var timingsMs: TimingsDTO

    init(requestID: String, _ result: ClassifyResult) {
        requestId = requestID
        model = result.model
        modelVersion = result.modelVersion
        labelSet = result.labelSet.rawValue
        modalities = result.modalities.map(\.rawValue)
        durationSeconds = result.durationSeconds
        windowsUsed = result.windowsUsed
        aggregation = result.aggregation.rawValue
        labels = result.labels.map(LabelDTO.init)
        timeline = result.timeline?.map {
            WindowLabelsDTO(index: $0.index, startSeconds: $0.startSeconds, labels: $0.labels.map(LabelDTO.init))
        }
        timingsMs = TimingsDTO(result.timings)
    }
}

/// How float vectors travel: JSON numbers, or base64 of little-endian float32 (4 bytes per value).
enum FloatEncoding: String, CaseIterable {
    case json, base64
}

struct FloatsDTO: Encodable {
    var values: [Float]
    var encoding: FloatEncoding

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch encoding {
        case .json: try container.encode(values)
        case .base64:
            let bytes = values.flatMap { value -> [UInt8] in
                withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
            }
            try container.encode(Data(bytes).base64EncodedString())
        }
    }
}

struct TokensDTO: Encodable {
    var shape: [Int]
    var data: FloatsDTO
}

struct WindowEmbeddingDTO: Encodable {
    var index: Int
    var startSeconds: Double
    var embeddings: [String: FloatsDTO]
    var tokens: [String: TokensDTO]?
}

struct EmbedResponse: Encodable {
    var requestId: String
    var model: String
    var modelVersion: String
    var modalities: [String]
    var durationSeconds: Double
    var windowsUsed: Int
    var encoding: String
    var dim: Int
    var embeddings: [String: FloatsDTO]
    var windows: [WindowEmbeddingDTO]?
    var timingsMs: TimingsDTO

    init(requestID: String, _ result: EmbedResult, encoding: FloatEncoding, includeWindows: Bool) {
        func keyed(_ vectors: [Modality: [Float]]) -> [String: FloatsDTO] {
            Dictionary(uniqueKeysWithValues: vectors.map { ($0.key.rawValue, FloatsDTO(values: $0.value, encoding: encoding)) })
        }
        requestId = requestID
        model = result.model
        modelVersion = result.modelVersion
        modalities = result.modalities.map(\.rawValue)
        durationSeconds = result.durationSeconds
        windowsUsed = result.windows.count
        self.encoding = encoding.rawValue
        dim = result.pooled.values.first?.count ?? 0
        embeddings = keyed(result.pooled)
        windows = includeWindows ? result.windows.map { window in
            WindowEmbeddingDTO(
                index: window.index, startSeconds: window.startSeconds, embeddings: keyed(window.pooled),
                tokens: window.tokens.map { tokens in
                    Dictionary(uniqueKeysWithValues: tokens.map {
                        ($0.key.rawValue, TokensDTO(shape: [$0.value.rows, $0.value.cols],
                                                    data: FloatsDTO(values: $0.value.data, encoding: encoding)))
                    })
                })
        } : nil
        timingsMs = TimingsDTO(result.timings)
    }
}

/// One model of /v1/models. What the bundle says is there once it has loaded; before that, name and state only.
struct ModelDTO: Encodable {
    var name: String
    var state: String
    /// Why the model failed to load, or why its last reload was refused (it then still serves).
    var error: String?
    var version: String?
    var kind: String?
    var modalities: [String]?
    var labelSet: String?
    var placeholderLabels: Bool?
    var classes: Int?
    var clipSeconds: Double?
    var frames: Int?
    var parameters: Int?
    var compute: String?

    init(_ status: ModelStatus) {
        name = status.name
        state = status.state.name
        if case .failed(let why) = status.state { error = why } else { error = status.reloadError }
        guard let info = status.info else { return }
        version = info.version
        kind = info.kind.rawValue
        modalities = info.modalities.map(\.rawValue)
        labelSet = info.labelSet.rawValue
        placeholderLabels = info.placeholderLabels
        classes = info.numClasses
        clipSeconds = info.clipSeconds
        frames = info.frames
        parameters = info.parameterCount
        compute = info.compute
    }
}

struct ModelsResponse: Encodable {
    var models: [ModelDTO]
}

struct StatusResponse: Encodable {
    var status: String
    var reason: String?
    /// Why loading failed, so an operator sees it without reading logs.
    var message: String?
}

enum JSON {
    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A NaN score would be a model bug, but it must still come out as valid JSON, not a 500.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            return Array(try encoder.encode(value))
        } catch {
            return Array(#"{"error":{"code":"internal_error","message":"response encoding failed"}}"#.utf8)
        }
    }
}
