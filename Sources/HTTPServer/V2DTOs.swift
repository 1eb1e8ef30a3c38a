import Foundation

// The JSON of the Open Inference Protocol (KServe v2) REST API: https://kserve.github.io/website/ "Open Inference
// Protocol (V2)", and Triton's binary data and classification extensions. Field names are the protocol's.

/// A `parameters` value: the protocol allows strings, numbers and booleans.
enum V2Parameter: Codable, Equatable {
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else { self = .string(try container.decode(String.self)) }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        }
    }

    var int: Int? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value == value.rounded(): return Int(exactly: value)
        default: return nil
        }
    }

    var bool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }
}

/// A tensor's `data`: flat or nested arrays of numbers or strings (or booleans), flattened row-major.
enum V2TensorData: Decodable {
    case numbers([Double])
    case strings([String])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let numbers = try? container.decode([Double].self) { self = .numbers(numbers); return }
        if let strings = try? container.decode([String].self) { self = .strings(strings); return }
        if let bools = try? container.decode([Bool].self) { self = .numbers(bools.map { $0 ? 1 : 0 }); return }
        let nested = try container.decode([V2TensorData].self)
        if nested.allSatisfy({ if case .strings = $0 { return true } else { return false } }), !nested.isEmpty {
            self = .strings(nested.flatMap { if case .strings(let s) = $0 { return s } else { return [] } })
        } else if nested.allSatisfy({ if case .numbers = $0 { return true } else { return false } }) {
            self = .numbers(nested.flatMap { if case .numbers(let n) = $0 { return n } else { return [] } })
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "mixes numbers and strings")
        }
    }
}

struct V2InferRequestDTO: Decodable {
    struct Input: Decodable {
        var name: String
        var shape: [Int]
        var datatype: String
        var parameters: [String: V2Parameter]?
        var data: V2TensorData?
    }

    struct RequestedOutput: Decodable {
        var name: String
        var parameters: [String: V2Parameter]?
    }

    var id: String?
    var parameters: [String: V2Parameter]?
    var inputs: [Input]
    var outputs: [RequestedOutput]?
}

struct V2InferResponseDTO: Encodable {
    struct Output: Encodable {
        var name: String
        var datatype: String
        var shape: [Int]
        var parameters: [String: V2Parameter]?
        var data: V2OutputData?
    }

    var modelName: String
    var modelVersion: String
    var id: String?
    var outputs: [Output]
}

enum V2OutputData: Encodable {
    case floats([Float])
    case strings([String])

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .floats(let values): try container.encode(values)
        case .strings(let values): try container.encode(values)
        }
    }
}

struct V2TensorMetadataDTO: Encodable {
    var name: String
    var datatype: String
    var shape: [Int]
}

struct V2ModelMetadataDTO: Encodable {
    var name: String
    var versions: [String]
    var platform: String
    var inputs: [V2TensorMetadataDTO]
    var outputs: [V2TensorMetadataDTO]
}

struct V2ServerMetadataDTO: Encodable {
    var name: String
    var version: String
    var extensions: [String]
}

/// The protocol's error shape: `{"error": "message"}`.
struct V2ErrorDTO: Encodable {
    var error: String
}
