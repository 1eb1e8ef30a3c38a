import Foundation
import Serving

/// An infer request turned into domain terms: a clip (`ClipRequest`) or raw tensors (`TensorRequest`), plus which
/// outputs to send back and how. Every check against the model's signature happens here, on the HTTP thread, so
/// a bad request is a 400 before anything is queued.
struct V2Inference {
    enum Work {
        /// One request per CLIP element, in order.
        case clips([ClipRequest])
        case tensors(TensorRequest)
    }

    struct RequestedOutput {
        var output: V2Signature.Output
        var binary: Bool
        /// Triton's classification extension: the top `k` as "score:index:label" strings.
        var classification: Int?
    }

    var work: Work
    var requestID: String?
    /// Every output of the signature (those the input can give) when the request names none.
    var outputs: [RequestedOutput]?
    var binaryByDefault: Bool

    init(body: [UInt8], headerLength: String?, signature: V2Signature, requestID: String) throws {
        let (jsonBytes, binary) = try V2BinaryFraming.split(body, headerLength: headerLength)
        let dto: V2InferRequestDTO
        do {
            dto = try JSONDecoder().decode(V2InferRequestDTO.self, from: Data(jsonBytes))
        } catch {
            throw APIError.badRequest("the inference request is not valid JSON for the protocol: \(Self.describe(error))")
        }
        self.requestID = dto.id
        let binaryByDefault = dto.parameters?["binary_data_output"]?.bool ?? false
        self.binaryByDefault = binaryByDefault
        let timeout = try Self.timeoutSeconds(dto.parameters)
        let outputs = try dto.outputs.map { try Self.requestedOutputs($0, signature: signature, binaryByDefault: binaryByDefault) }
        self.outputs = outputs
        let wantsEmbeddings = outputs.map { $0.contains { $0.output.embeddingModality != nil } } ?? true

        var reader = V2BinaryFraming.Reader(binary)
        var tensors: [V2Signature.Input: Tensor] = [:]
        for input in dto.inputs {
            guard let name = V2Signature.Input(rawValue: input.name), signature.inputs.contains(name) else {
                throw APIError.badRequest("unknown input '\(input.name)'; this model takes \(Self.list(signature.inputs.map(\.rawValue)))")
            }
            guard tensors[name] == nil else { throw APIError.badRequest("input '\(input.name)' is given twice") }
            tensors[name] = try Self.tensor(input, as: name, signature: signature, reader: &reader)
        }
        try reader.finish()

        if let clip = tensors[.clip] {
            guard tensors.count == 1 else { throw APIError.badRequest("send CLIP alone, or raw tensors without CLIP") }
            var options = OutputOptions()
            options.embeddings = wantsEmbeddings
            work = .clips(clip.files.enumerated().map { index, file in
                ClipRequest(id: clip.files.count == 1 ? requestID : "\(requestID)/\(index)", bytes: file,
                            task: .outputs(options), timeoutSeconds: timeout)
            })
            return
        }
        let batches = Set(tensors.values.map(\.batch))
        guard let batch = batches.first else { throw APIError.badRequest("the request has no inputs") }
        guard batches.count == 1 else {
            throw APIError.badRequest("the inputs' batch sizes differ: \(tensors.map { "\($0.key.rawValue) \($0.value.batch)" }.sorted())")
        }
        work = .tensors(TensorRequest(
            id: requestID, batch: batch, waveform: tensors[.waveform]?.floats, spectrogram: tensors[.spectrogram]?.floats,
            frames: tensors[.frames]?.bytes, embeddings: wantsEmbeddings, timeoutSeconds: timeout))
    }

    /// One input's values, checked against the signature: datatype, shape, and a data length that fits the shape.
    private struct Tensor {
        var batch: Int
        var floats: [Float] = []
        var bytes: [UInt8] = []
        /// CLIP: one file per element.
        var files: [[UInt8]] = []
    }

    private static func tensor(_ input: V2InferRequestDTO.Input, as name: V2Signature.Input, signature: V2Signature,
                               reader: inout V2BinaryFraming.Reader) throws -> Tensor {
        let datatype = signature.datatype(name)
        guard input.datatype == datatype else {
            throw APIError.badRequest("input '\(input.name)' must be \(datatype), got \(input.datatype)")
        }
        let expected = signature.rowShape(name)
        let batch: Int
        if name == .clip {
            // [B], one file per element; [B, 1] as some clients shape a batch of scalars.
            guard let first = input.shape.first, first > 0, input.shape.dropFirst().allSatisfy({ $0 == 1 }) else {
                throw APIError.badRequest("input 'CLIP' holds one file per element: its shape is [B] (B >= 1), got \(input.shape)")
            }
            guard first <= Self.maxClips else {
                throw APIError.badRequest("input 'CLIP' holds \(first) files; one request takes at most \(Self.maxClips)")
            }
            batch = first
        } else {
            // A spectrogram may carry upstream's trailing channel of 1.
            let shape = name == .spectrogram && input.shape.count == expected.count + 2 && input.shape.last == 1
                ? Array(input.shape.dropLast()) : input.shape
            guard shape.count == expected.count + 1, Array(shape.dropFirst()) == expected, shape[0] > 0 else {
                throw APIError.badRequest("input '\(input.name)' must have shape \(signature.shape(name)), got \(input.shape)")
            }
            batch = shape[0]
        }
        let count = batch * expected.reduce(1, *)
        var tensor = Tensor(batch: batch)
        if let size = input.parameters?["binary_data_size"] {
            guard let size = size.int else { throw APIError.badRequest("input '\(input.name)': binary_data_size must be an integer") }
            let data = try reader.take(size, for: input.name)
            switch name {
            case .clip:
                let elements = try V2BinaryFraming.elements(data, for: input.name)
                guard elements.count == batch else {
                    throw APIError.badRequest("input 'CLIP': shape \(input.shape) needs \(batch) BYTES elements, got \(elements.count)")
                }
                tensor.files = elements.map { Array($0) }
            case .waveform, .spectrogram:
                guard size == count * 4 else {
                    throw APIError.badRequest("input '\(input.name)': shape \(input.shape) needs \(count * 4) bytes of FP32, binary_data_size is \(size)")
                }
                tensor.floats = V2BinaryFraming.floats(data)
            case .frames:
                guard size == count else {
                    throw APIError.badRequest("input '\(input.name)': shape \(input.shape) needs \(count) bytes of UINT8, binary_data_size is \(size)")
                }
                tensor.bytes = Array(data)
            }
            return tensor
        }
        switch (name, input.data) {
        case (_, nil):
            throw APIError.badRequest("input '\(input.name)' has neither data nor a binary_data_size parameter")
        case (.clip, .strings(let strings)?) where strings.count == batch:
            tensor.files = strings.map { Array($0.utf8) }
        case (.waveform, .numbers(let values)?), (.spectrogram, .numbers(let values)?):
            guard values.count == count else {
                throw APIError.badRequest("input '\(input.name)': shape \(input.shape) needs \(count) values, data has \(values.count)")
            }
            tensor.floats = values.map { Float($0) }
        case (.frames, .numbers(let values)?):
            guard values.count == count else {
                throw APIError.badRequest("input '\(input.name)': shape \(input.shape) needs \(count) values, data has \(values.count)")
            }
            guard values.allSatisfy({ $0 >= 0 && $0 <= 255 && $0 == $0.rounded() }) else {
                throw APIError.badRequest("input 'FRAMES' is UINT8: every value must be a whole number from 0 to 255")
            }
            tensor.bytes = values.map { UInt8($0) }
        default:
            throw APIError.badRequest("input '\(input.name)': data does not match datatype \(datatype) and shape \(input.shape)")
        }
        return tensor
    }

    /// Files one request may carry: each is a request of its own to the service (and its admission), so this
    /// only bounds the work one HTTP request can start.
    static let maxClips = 64

    private static func requestedOutputs(_ requested: [V2InferRequestDTO.RequestedOutput], signature: V2Signature,
                                         binaryByDefault: Bool) throws -> [RequestedOutput] {
        var seen = Set<V2Signature.Output>()
        return try requested.map { dto in
            guard let output = V2Signature.Output(rawValue: dto.name), signature.outputs.contains(output) else {
                throw APIError.badRequest("unknown output '\(dto.name)'; this model gives \(list(signature.outputs.map(\.rawValue)))")
            }
            guard seen.insert(output).inserted else { throw APIError.badRequest("output '\(dto.name)' is asked for twice") }
            var classification: Int?
            if let k = dto.parameters?["classification"] {
                guard let k = k.int, k > 0 else {
                    throw APIError.badRequest("output '\(dto.name)': classification must be a positive integer")
                }
                guard output.embeddingModality == nil else {
                    throw APIError.badRequest("output '\(dto.name)' is an embedding; classification applies to LOGITS and PROBABILITIES")
                }
                classification = min(k, signature.width(output))
            }
            return RequestedOutput(output: output, binary: dto.parameters?["binary_data"]?.bool ?? binaryByDefault,
                                   classification: classification)
        }
    }

    /// The protocol's `parameters.timeout`, in microseconds as Triton and tritonclient send it.
    private static func timeoutSeconds(_ parameters: [String: V2Parameter]?) throws -> Double? {
        guard let value = parameters?["timeout"] else { return nil }
        guard let microseconds = value.int, microseconds > 0 else {
            throw APIError.badRequest("parameters.timeout must be a positive number of microseconds")
        }
        return Double(microseconds) / 1e6
    }

    private static func list(_ names: [String]) -> String { names.joined(separator: ", ") }

    private static func describe(_ error: Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "'\(path)': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
