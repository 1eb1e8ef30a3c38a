import CGnuTLS
import Foundation

/// SHA-256 through GnuTLS (already linked for HTTPS; SHA-NI where the CPU has it). The project's one GnuTLS
/// wrapper: clip fingerprints in failure logs and model versions both come through here.
public struct SHA256: ~Copyable {
    private var state: gnutls_hash_hd_t?

    public init() {
        // Fails only without memory or with SHA-256 disabled by FIPS policy, neither of which we can serve around.
        precondition(gnutls_hash_init(&state, GNUTLS_DIG_SHA256) == 0, "GnuTLS refused to start a SHA-256")
    }

    deinit { gnutls_hash_deinit(state, nil) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        _ = gnutls_hash(state, bytes.baseAddress, bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Reads `file` in 4 MiB blocks, so a 2.4 GB model never sits in memory for hashing.
    public mutating func update(contentsOf file: URL) throws {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        while let block = try handle.read(upToCount: 4 << 20), !block.isEmpty {
            block.withUnsafeBytes { update($0) }
        }
    }

    /// The digest as lower-case hex; the hash cannot be used afterwards.
    public consuming func hex() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        gnutls_hash_output(state, &digest)
        return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    public static func hex(of bytes: [UInt8]) -> String {
        var hash = SHA256()
        hash.update(bytes)
        return hash.hex()
    }
}
