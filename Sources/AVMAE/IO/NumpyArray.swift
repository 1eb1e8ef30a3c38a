import Foundation

/// Reads and writes .npy files (NumPy format 1.0-3.0, C order), so anyone can feed the model from Python.
/// float32 and float64 load as Float; uint8 keeps its bytes (video frames are converted as upstream does).
public enum NumpyArray {
    public enum Contents {
        case float(Tensor)
        case uint8(shape: [Int], bytes: [UInt8])
    }

    public static func read(_ url: URL) throws -> Contents {
        let name = url.lastPathComponent
        func bad(_ why: String) -> BundleError { .invalidInput("\(name): \(why)") }
        let data = try Data(contentsOf: url)
        guard data.count >= 10, data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else { throw bad("not a .npy file") }
        let major = data[6]
        let headerStart = major == 1 ? 10 : 12
        guard data.count >= headerStart else { throw bad("truncated header") }
        let headerLength = major == 1
            ? Int(data[8]) | Int(data[9]) << 8
            : Int(data[8]) | Int(data[9]) << 8 | Int(data[10]) << 16 | Int(data[11]) << 24
        guard data.count >= headerStart + headerLength,
              let header = String(data: data[headerStart..<(headerStart + headerLength)], encoding: .utf8)
        else { throw bad("truncated header") }
        guard !header.contains("'fortran_order': True") else { throw bad("Fortran-order arrays are not supported; use np.ascontiguousarray") }
        guard let descr = field(header, "descr"), let shapeText = field(header, "shape") else { throw bad("header lacks descr or shape") }
        let shape = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "()"))
            .split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let body = data[(headerStart + headerLength)...]
        let width = ["<f4": 4, "<f8": 8, "|u1": 1][descr]
        guard let width else { throw bad("dtype \(descr) is not supported (use float32, float64 or uint8)") }
        guard body.count == count * width else { throw bad("holds \(body.count) data bytes, shape \(shape) needs \(count * width)") }
        let bytes = [UInt8](body)
        switch descr {
        case "|u1": return .uint8(shape: shape, bytes: bytes)
        case "<f4": return .float(Tensor(shape: shape, data: bytes.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }))
        default: return .float(Tensor(shape: shape, data: bytes.withUnsafeBytes { raw in (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) } }))
        }
    }

    public static func write(_ tensor: Tensor, to url: URL) throws {
        try encode(tensor).write(to: url)
    }

    /// The .npy file's bytes (format 1.0, little-endian float32), for callers that write them their own way.
    public static func encode(_ tensor: Tensor) -> Data {
        let shape = tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (10 + header.count + 1) % 64) % 64) + "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        out.append(Data(header.utf8))
        tensor.data.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    private static func field(_ header: String, _ key: String) -> String? {
        guard let range = header.range(of: "'\(key)':") else { return nil }
        let rest = header[range.upperBound...].trimmingCharacters(in: .whitespaces)
        if rest.hasPrefix("'") { return rest.dropFirst().split(separator: "'").first.map(String.init) }
        if rest.hasPrefix("(") { return rest.split(separator: ")").first.map { String($0) + ")" } }
        return nil
    }
}
