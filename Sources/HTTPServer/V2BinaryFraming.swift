import Foundation

/// Triton's binary tensor data extension: a body is a JSON header of `Inference-Header-Content-Length` bytes
/// followed by the raw tensors, each as long as its `binary_data_size` parameter says, in the order the JSON lists
/// them. Numbers are little-endian; a BYTES tensor is its elements one after another, each a 4-byte little-endian
/// length and then that many bytes. Answers use the same framing.
enum V2BinaryFraming {
    static let headerLengthField = "Inference-Header-Content-Length"

    /// The JSON header and the binary part of a request body.
    static func split(_ body: [UInt8], headerLength: String?) throws -> (json: ArraySlice<UInt8>, binary: ArraySlice<UInt8>) {
        guard let headerLength else { return (body[...], []) }
        guard let length = Int(headerLength.trimmingCharacters(in: .whitespaces)), length >= 0 else {
            throw APIError.badRequest("\(headerLengthField) must be a byte count, got '\(headerLength)'")
        }
        guard length <= body.count else {
            throw APIError.badRequest("\(headerLengthField) is \(length) but the body has only \(body.count) bytes")
        }
        return (body[..<length], body[length...])
    }

    /// Hands out the binary part in order, one tensor at a time.
    struct Reader {
        private var rest: ArraySlice<UInt8>

        init(_ binary: ArraySlice<UInt8>) { rest = binary }

        mutating func take(_ count: Int, for name: String) throws -> ArraySlice<UInt8> {
            guard count >= 0, count <= rest.count else {
                throw APIError.badRequest("input '\(name)' declares binary_data_size \(count) but only \(rest.count) bytes are left")
            }
            defer { rest = rest.dropFirst(count) }
            return rest.prefix(count)
        }

        /// Binary data nobody claimed is a client bug (sizes that do not add up), not something to ignore.
        func finish() throws {
            guard rest.isEmpty else {
                throw APIError.badRequest("\(rest.count) bytes of binary data after the last input's binary_data_size")
            }
        }
    }

    static func floats(_ bytes: ArraySlice<UInt8>) -> [Float] {
        stride(from: bytes.startIndex, to: bytes.endIndex, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }

    static func bytes(_ floats: [Float]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(floats.count * 4)
        for value in floats {
            let bits = value.bitPattern
            out += [UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                    UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24)]
        }
        return out
    }

    /// The elements of a binary BYTES tensor.
    static func elements(_ bytes: ArraySlice<UInt8>, for name: String) throws -> [ArraySlice<UInt8>] {
        var elements = [ArraySlice<UInt8>]()
        var at = bytes.startIndex
        while at < bytes.endIndex {
            guard bytes.endIndex - at >= 4 else {
                throw APIError.badRequest("input '\(name)': a BYTES element needs a 4-byte length, \(bytes.endIndex - at) bytes are left")
            }
            let length = Int(UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24)
            at += 4
            guard length <= bytes.endIndex - at else {
                throw APIError.badRequest("input '\(name)': a BYTES element says \(length) bytes, \(bytes.endIndex - at) are left")
            }
            elements.append(bytes[at..<(at + length)])
            at += length
        }
        return elements
    }

    static func lengthPrefixed(_ strings: [String]) -> [UInt8] {
        var out = [UInt8]()
        for string in strings {
            let utf8 = Array(string.utf8)
            let n = UInt32(utf8.count)
            out += [UInt8(truncatingIfNeeded: n), UInt8(truncatingIfNeeded: n >> 8),
                    UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 24)]
            out += utf8
        }
        return out
    }
}
