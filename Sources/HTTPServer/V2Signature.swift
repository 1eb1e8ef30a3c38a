import AVMAE
import Serving

/// The tensors a model takes and gives under /v2, derived from `ModelInfo`: what the metadata lists and what
/// requests are checked against. -1 is the batch dimension.
struct V2Signature {
    enum Input: String, CaseIterable {
        case clip = "CLIP"
        case waveform = "WAVEFORM"
        case spectrogram = "SPECTROGRAM"
        case frames = "FRAMES"
    }

    enum Output: String, CaseIterable {
        case logits = "LOGITS"
        case probabilities = "PROBABILITIES"
        case audioEmbedding = "AUDIO_EMBEDDING"
        case videoEmbedding = "VIDEO_EMBEDDING"

        var embeddingModality: Modality? {
            switch self {
            case .audioEmbedding: return .audio
            case .videoEmbedding: return .video
            case .logits, .probabilities: return nil
            }
        }
    }

    let info: ModelInfo

    var inputs: [Input] {
        Input.allCases.filter {
            switch $0 {
            case .clip: return true
            case .waveform, .spectrogram: return info.modalities.contains(.audio)
            case .frames: return info.modalities.contains(.video)
            }
        }
    }

    var outputs: [Output] {
        Output.allCases.filter {
            guard let modality = $0.embeddingModality else { return info.hasHead }
            return info.modalities.contains(modality)
        }
    }

    func datatype(_ input: Input) -> String {
        switch input {
        case .clip: return "BYTES"
        case .waveform, .spectrogram: return "FP32"
        case .frames: return "UINT8"
        }
    }

    /// The shape after the batch dimension; a CLIP element is one whole file.
    func rowShape(_ input: Input) -> [Int] {
        switch input {
        case .clip: return []
        case .waveform: return [info.windowSamples]
        case .spectrogram: return info.spectrogramShape
        case .frames: return [info.frames, ModelBackend.cropSize, ModelBackend.cropSize, 3]
        }
    }

    func shape(_ input: Input) -> [Int] {
        [-1] + rowShape(input)
    }

    func width(_ output: Output) -> Int {
        output.embeddingModality == nil ? info.numClasses : info.hiddenSize
    }

    func metadata(version: String) -> V2ModelMetadataDTO {
        V2ModelMetadataDTO(
            name: info.name, versions: [version], platform: "avmae",
            inputs: inputs.map { V2TensorMetadataDTO(name: $0.rawValue, datatype: datatype($0), shape: shape($0)) },
            outputs: outputs.map { V2TensorMetadataDTO(name: $0.rawValue, datatype: "FP32", shape: [-1, width($0)]) })
    }
}
