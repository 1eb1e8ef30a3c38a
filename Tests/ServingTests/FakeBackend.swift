import AVMAE
import Foundation
import Serving

/// A model stand-in: logits are a fixed function of the input, so answers can be computed by hand.
/// Row logits: class c gets (first waveform sample + first frame value) * (c + 1).
struct FakeBackend: InferenceBackend {
    var info: ModelInfo
    /// Called on the inference thread with each batch's size; lets tests see how requests were grouped.
    var onBatch: @Sendable (Int) -> Void = { _ in }
    var failing = false

    init(classes: Int, modalities: [Modality] = [.audio, .video]) {
        info = ModelInfo(name: "fake", kind: .finetuned, modalities: modalities, labelSet: .audioset,
                         labels: (0..<classes).map { Label(index: $0, mid: "/m/\($0)", name: "c\($0)") },
                         numClasses: classes, clipSeconds: 1, frames: 1, parameterCount: 0, windowSamples: 4,
                         videoRowLength: 2)
    }

    func makeSession() -> InferenceSession { Session(backend: self) }

    func scores(logits: [Float]) -> [Float] { logits.map { 1 / (1 + exp(-$0)) } }

    final class Session: InferenceSession {
        let backend: FakeBackend
        init(backend: FakeBackend) { self.backend = backend }

        struct Failure: Error {}

        func run(_ rows: [BatchRow], kind: InputKind) throws -> [RowOutput] {
            backend.onBatch(rows.count)
            if backend.failing { throw Failure() }
            return rows.map { row in
                let base = (row.waveform?.first ?? 0) + Float(row.frames?.first ?? 0) / 2
                let logits = (0..<backend.info.numClasses).map { base * Float($0 + 1) }
                let tokens = row.keepTokens ? [Modality.audio: TokenMatrix(rows: 1, cols: 2, data: [base, -base])] : [:]
                return RowOutput(logits: logits, tokens: tokens)
            }
        }
    }
}

/// A decoder stand-in: the bytes are the first sample of each window's waveform; video is one crop per
/// requested crop, whose first byte is 1 (which the fake backend reads as 0.5).
struct FakeDecoder: ClipDecoding {
    var hasVideo = false

    func decode(_ bytes: [UInt8], want: Set<Modality>, crops: CropCount) throws -> DecodedWindows {
        guard bytes.first != 0xFF else { throw ServingError.undecodableClip("fake: 0xFF marks a broken clip") }
        let windows = bytes.enumerated().map { index, byte in
            DecodedWindow(index: index, startSeconds: Double(index),
                          waveform: want.contains(.audio) ? [Float(byte), 0, 0, 0] : nil,
                          videoCrops: hasVideo && want.contains(.video)
                              ? Array(repeating: [1, 0], count: crops.rawValue) : [])
        }
        return DecodedWindows(durationSeconds: Double(bytes.count), hasAudio: true, hasVideo: hasVideo,
                              windows: windows)
    }
}
