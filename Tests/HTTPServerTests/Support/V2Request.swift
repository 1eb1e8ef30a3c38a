import Foundation

/// An Open Inference Protocol infer body built by hand, as Triton's binary data extension frames it: the JSON
/// header, then each binary input's bytes in order. `headerLength` goes in Inference-Header-Content-Length.
struct V2Request {
    var inputs: [[String: Any]] = []
    var outputs: [[String: Any]]?
    var parameters: [String: Any] = [:]
    private var binary = Data()

    mutating func binaryInput(_ name: String, datatype: String, shape: [Int], bytes: Data) {
        inputs.append(["name": name, "datatype": datatype, "shape": shape, "parameters": ["binary_data_size": bytes.count]])
        binary.append(bytes)
    }

    mutating func floats(_ name: String, shape: [Int], _ values: [Float]) {
        binaryInput(name, datatype: "FP32", shape: shape, bytes: Self.littleEndian(values))
    }

    /// One BYTES element: a 4-byte little-endian length, then the bytes.
    mutating func clip(_ file: URL) throws {
        let bytes = try Data(contentsOf: file)
        binaryInput("CLIP", datatype: "BYTES", shape: [1], bytes: Self.littleEndian(UInt32(bytes.count)) + bytes)
    }

    func write() throws -> (file: URL, headerLength: Int) {
        var header: [String: Any] = ["inputs": inputs, "parameters": parameters]
        if let outputs { header["outputs"] = outputs }
        let json = try JSONSerialization.data(withJSONObject: header)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("v2-\(UUID().uuidString).bin")
        try (json + binary).write(to: url)
        return (url, json.count)
    }

    static func littleEndian(_ values: [Float]) -> Data {
        var data = Data(capacity: values.count * 4)
        for value in values { data.append(littleEndian(value.bitPattern)) }
        return data
    }

    static func littleEndian(_ value: UInt32) -> Data {
        Data([UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8),
              UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 24)])
    }
}

/// An infer answer split back into its JSON header and its outputs, binary or JSON.
struct V2Answer {
    let json: [String: Any]
    let outputs: [String: [String: Any]]
    private let binary: [String: Data]

    init(_ response: Curl.Response) throws {
        var body = response.body
        var header = body
        if let length = response.headers["inference-header-content-length"].flatMap({ Int($0) }) {
            header = body.prefix(length)
            body = body.dropFirst(length)
        } else {
            body = Data()
        }
        json = try XCTUnwrapDictionary(JSONSerialization.jsonObject(with: header))
        let list = (json["outputs"] as? [[String: Any]]) ?? []
        outputs = Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as? String ?? "", $0) })
        var blobs: [String: Data] = [:]
        var offset = body.startIndex
        for output in list {
            guard let size = (output["parameters"] as? [String: Any])?["binary_data_size"] as? Int else { continue }
            blobs[output["name"] as? String ?? ""] = body[offset..<(offset + size)]
            offset += size
        }
        binary = blobs
    }

    private static func uint32(_ data: Data, at i: Data.Index) -> UInt32 {
        var value: UInt32 = 0
        for k in 0..<4 { value |= UInt32(data[i + k]) << (8 * UInt32(k)) }
        return value
    }

    func shape(_ name: String) -> [Int]? { outputs[name]?["shape"] as? [Int] }

    func floats(_ name: String) -> [Float]? {
        if let data = binary[name] {
            return stride(from: data.startIndex, to: data.endIndex, by: 4).map { i -> Float in
                Float(bitPattern: Self.uint32(data, at: i))
            }
        }
        return (outputs[name]?["data"] as? [Double])?.map(Float.init)
    }

    func strings(_ name: String) -> [String]? {
        guard let data = binary[name] else { return outputs[name]?["data"] as? [String] }
        var strings = [String]()
        var i = data.startIndex
        while i < data.endIndex {
            let n = Int(Self.uint32(data, at: i))
            strings.append(String(decoding: data[(i + 4)..<(i + 4 + n)], as: UTF8.self))
            i += 4 + n
        }
        return strings
    }
}

private func XCTUnwrapDictionary(_ value: Any) throws -> [String: Any] {
    guard let dictionary = value as? [String: Any] else { throw V2AnswerError.notAnObject }
    return dictionary
}

enum V2AnswerError: Error { case notAnObject }
