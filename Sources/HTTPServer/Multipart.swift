import Foundation

/// Just enough of multipart/form-data (RFC 7578) to pull out one named file part without copying the rest.
enum Multipart {
    struct Part {
        var name: String?
        var contentType: String?
        var body: ArraySlice<UInt8>
    }

    enum ParseError: Error, Equatable, CustomStringConvertible {
        case missingBoundary
        case malformed(String)

        var description: String {
            switch self {
            case .missingBoundary: return "the Content-Type has no boundary parameter"
            case .malformed(let why): return why
            }
        }
    }

    /// The boundary parameter of a multipart Content-Type, unquoted.
    static func boundary(fromContentType contentType: String) throws -> String {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "boundary" {
                let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                if !value.isEmpty { return value }
            }
        }
        throw ParseError.missingBoundary
    }

    static func parts(of body: [UInt8], boundary: String) throws -> [Part] {
        let delimiter = Array("--\(boundary)".utf8)
        var starts = positions(of: delimiter, in: body[...])
        guard starts.count >= 2 else { throw ParseError.malformed("fewer than two '--\(boundary)' delimiters") }
        var parts: [Part] = []
        while starts.count >= 2 {
            let open = starts.removeFirst()
            // A part runs from after the delimiter's CRLF to the CRLF before the next delimiter.
            var from = open + delimiter.count
            guard body[from...].starts(with: [13, 10]) else { break }  // "--" here marks the closing delimiter
            from += 2
            var to = starts[0]
            if to >= from + 2, body[to - 2] == 13, body[to - 1] == 10 { to -= 2 }
            parts.append(try part(body[from..<to]))
        }
        return parts
    }

    private static func part(_ bytes: ArraySlice<UInt8>) throws -> Part {
        guard let split = positions(of: [13, 10, 13, 10], in: bytes).first else {
            throw ParseError.malformed("a part has no blank line after its headers")
        }
        let headerText = String(decoding: bytes[bytes.startIndex..<split], as: UTF8.self)
        var result = Part(name: nil, contentType: nil, body: bytes[(split + 4)...])
        for line in headerText.split(separator: "\r\n") {
            let pair = line.split(separator: ":", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let value = pair[1].trimmingCharacters(in: .whitespaces)
            switch pair[0].lowercased() {
            case "content-disposition": result.name = parameter("name", in: value)
            case "content-type": result.contentType = value
            default: break
            }
        }
        return result
    }

    private static func parameter(_ key: String, in header: String) -> String? {
        for piece in header.split(separator: ";") {
            let pair = piece.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == key {
                return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
        }
        return nil
    }

    /// Start indices of every occurrence of `needle` (non-overlapping).
    private static func positions(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> [Int] {
        var found: [Int] = []
        guard let first = needle.first, haystack.count >= needle.count else { return found }
        var i = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while i <= last {
            if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) {
                found.append(i)
                i += needle.count
            } else {
                i += 1
            }
        }
        return found
    }
}
