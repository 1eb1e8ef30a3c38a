import Foundation

/// The bearer tokens a client may present (`Authorization: Bearer <key>`), read once at start-up from
/// `--api-key-file`: one key per line; blank lines and lines starting with '#' are ignored.
///
/// Checking a token takes the same time whether it matches a key early, late or not at all: every key is
/// compared, each over all its bytes, with no early exit, so response timing does not leak how much of a
/// guess was right. (Timing still depends on the keys' lengths, which is not secret enough to matter.)
public struct APIKeys: Sendable {
    private let keys: [[UInt8]]

    public enum LoadError: Error, CustomStringConvertible, Equatable {
        case unreadable(path: String, String)
        case empty(path: String)
        case whitespace(path: String, line: Int)

        public var description: String {
            switch self {
            case .unreadable(let path, let why): return "api key file \(path): cannot read it (\(why))"
            case .empty(let path):
                return "api key file \(path) has no keys (one per line; blank lines and #comments are ignored)"
            case .whitespace(let path, let line):
                return "api key file \(path), line \(line): a key cannot contain spaces or tabs"
            }
        }
    }

    public init(keys: [String]) {
        self.keys = keys.map { Array($0.utf8) }
    }

    public init(file path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw LoadError.unreadable(path: path, error.localizedDescription)
        }
        var keys: [String] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let key = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if key.isEmpty || key.hasPrefix("#") { continue }
            guard !key.contains(where: { $0 == " " || $0 == "\t" }) else {
                throw LoadError.whitespace(path: path, line: number + 1)
            }
            keys.append(key)
        }
        guard !keys.isEmpty else { throw LoadError.empty(path: path) }
        self.init(keys: keys)
    }

    public var count: Int { keys.count }

    /// Whether an `Authorization` header value carries one of the keys as a bearer token.
    public func accepts(authorization: String?) -> Bool {
        guard let authorization else { return false }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let token = Array(parts[1].trimmingCharacters(in: .whitespaces).utf8)
        var matched: UInt8 = 0
        for key in keys { matched |= Self.equal(token, key) }
        return matched == 1
    }

    /// 1 if `token` equals `key`, else 0, in time that depends only on `key`'s length.
    private static func equal(_ token: [UInt8], _ key: [UInt8]) -> UInt8 {
        var difference: UInt8 = token.count == key.count ? 0 : 1
        for index in 0..<key.count {
            difference |= (index < token.count ? token[index] : 0) ^ key[index]
        }
        return difference == 0 ? 1 : 0
    }
}
