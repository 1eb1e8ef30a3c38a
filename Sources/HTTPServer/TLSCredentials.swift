import Foundation

/// The certificate chain and private key for HTTPS, as PEM text read once at start-up (`--tls-cert`,
/// `--tls-key`). libmicrohttpd takes them from memory, so the files are read here, where an unreadable or
/// obviously wrong file can be reported by name before the server starts.
public struct TLSCredentials: Sendable {
    public let certificatePEM: String
    public let keyPEM: String

    public enum LoadError: Error, CustomStringConvertible, Equatable {
        case unreadable(setting: String, path: String, String)
        case notPEM(setting: String, path: String, expected: String)

        public var description: String {
            switch self {
            case .unreadable(let setting, let path, let why): return "\(setting) \(path): cannot read it (\(why))"
            case .notPEM(let setting, let path, let expected):
                return "\(setting) \(path): no '-----BEGIN \(expected)' block; expected a PEM file"
            }
        }
    }

    public init(certificateFile: String, keyFile: String) throws {
        certificatePEM = try Self.read(certificateFile, setting: "tls_cert", expected: "CERTIFICATE")
        keyPEM = try Self.read(keyFile, setting: "tls_key", expected: "PRIVATE KEY")
    }

    /// `expected` is matched as a suffix of the PEM label, so "PRIVATE KEY" also accepts "RSA PRIVATE KEY" and
    /// "EC PRIVATE KEY".
    private static func read(_ path: String, setting: String, expected: String) throws -> String {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw LoadError.unreadable(setting: setting, path: path, error.localizedDescription)
        }
        let hasBlock = text.split(separator: "\n").contains {
            $0.hasPrefix("-----BEGIN ") && $0.trimmingCharacters(in: .whitespaces).hasSuffix("\(expected)-----")
        }
        guard hasBlock else { throw LoadError.notPEM(setting: setting, path: path, expected: expected) }
        return text
    }
}
