import Glibc

/// The upload as a seekable stream, for the read/seek callbacks through which FFmpeg and libsndfile read
/// memory instead of a file. One cursor per open context: the callbacks move its position.
final class ByteCursor {
    let bytes: [UInt8]
    private(set) var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var count: Int { bytes.count }

    /// Copies up to `buffer.count` bytes from the current position; 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buffer.count, bytes.count - position)
        guard n > 0, let destination = buffer.baseAddress else { return 0 }
        bytes.withUnsafeBytes { source in
            destination.copyMemory(from: source.baseAddress! + position, byteCount: n)
        }
        position += n
        return n
    }

    /// fseek semantics; nil for a target outside the data, which both libraries treat as a failed seek.
    func seek(offset: Int64, whence: Int32) -> Int64? {
        let base: Int64
        switch whence {
        case SEEK_SET: base = 0
        case SEEK_CUR: base = Int64(position)
        case SEEK_END: base = Int64(bytes.count)
        default: return nil
        }
        let (target, overflow) = base.addingReportingOverflow(offset)
        guard !overflow, target >= 0, target <= Int64(bytes.count) else { return nil }
        position = Int(target)
        return target
    }
}
