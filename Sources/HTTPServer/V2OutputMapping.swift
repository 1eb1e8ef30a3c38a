import AVMAE
import Serving

/// `RawOutputs` as the protocol's answer: each requested output as an FP32 tensor [rows, width], or as BYTES
/// "score:index:label" strings [rows, k] under the classification extension; in JSON `data` or, when asked for,
/// as binary data after the JSON header.
struct V2OutputMapping {
    let signature: V2Signature
    let version: String

    func response(_ raw: RawOutputs, for inference: V2Inference) throws -> HTTPResponse {
        let requested = inference.outputs ?? signature.outputs.compactMap { output in
            values(output, raw) == nil ? nil
                : V2Inference.RequestedOutput(output: output, binary: inference.binaryByDefault, classification: nil)
        }
        var tensors: [V2InferResponseDTO.Output] = []
        var blobs: [[UInt8]] = []
        for wanted in requested {
            guard let values = values(wanted.output, raw) else {
                throw APIError.badRequest("output '\(wanted.output.rawValue)' is not available: the input ran only "
                    + "[\(raw.modalities.map(\.rawValue).joined(separator: ", "))]")
            }
            let width = values.count / max(raw.rows, 1)
            var tensor: V2InferResponseDTO.Output
            var blob: [UInt8]
            if let k = wanted.classification {
                let strings = (0..<raw.rows).flatMap { row in
                    classify(Array(values[(row * width)..<((row + 1) * width)]), k: k)
                }
                tensor = .init(name: wanted.output.rawValue, datatype: "BYTES", shape: [raw.rows, k], data: .strings(strings))
                blob = wanted.binary ? V2BinaryFraming.lengthPrefixed(strings) : []
            } else {
                tensor = .init(name: wanted.output.rawValue, datatype: "FP32", shape: [raw.rows, width], data: .floats(values))
                blob = wanted.binary ? V2BinaryFraming.bytes(values) : []
            }
            if wanted.binary {
                tensor.data = nil
                tensor.parameters = ["binary_data_size": .int(blob.count)]
                blobs.append(blob)
            }
            tensors.append(tensor)
        }
        let json = JSON.encode(V2InferResponseDTO(modelName: raw.model, modelVersion: version, id: inference.requestID,
                                                  outputs: tensors))
        var headers = HTTPHeaders()
        guard !blobs.isEmpty else {
            headers.add("Content-Type", "application/json")
            return HTTPResponse(status: 200, headers: headers, body: json)
        }
        headers.add("Content-Type", "application/octet-stream")
        headers.add(V2BinaryFraming.headerLengthField, "\(json.count)")
        return HTTPResponse(status: 200, headers: headers, body: json + blobs.flatMap { $0 })
    }

    private func values(_ output: V2Signature.Output, _ raw: RawOutputs) -> [Float]? {
        switch output {
        case .logits: return raw.logits
        case .probabilities: return raw.probabilities
        case .audioEmbedding, .videoEmbedding: return raw.embeddings[output.embeddingModality!]
        }
    }

    /// The top `k` of one row, best first (ties by index), as Triton writes them: "score:index:label".
    private func classify(_ row: [Float], k: Int) -> [String] {
        ResultAssembly.top(row, k: k, threshold: nil, labels: signature.info.labels).map {
            "\($0.score):\($0.index):\($0.name)"
        }
    }
}
