import Glibc

/// The upload as a seekable stream, for the read/seek callbacks through which FFmpeg and libsndfile read
/// memory or a spooled file. One cursor per open context: the callbacks move its position.
final class ByteCursor {
    let source: MediaSource
    let count: Int
    private(set) var position = 0
    /// Whether a read has asked for bytes past the end: a parser that fails after that ran out of data.
    private(set) var reachedEnd = false

    init(_ source: MediaSource) {
        self.source = source
        self.count = source.count
    }

    /// Copies up to `buffer.count` bytes from the current position; 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buffer.count, count - position)
        if n < buffer.count { reachedEnd = true }
        guard n > 0, let destination = buffer.baseAddress else { return 0 }
        switch source {
        case .bytes(let bytes):
            bytes.withUnsafeBytes { source in
                destination.copyMemory(from: source.baseAddress! + position, byteCount: n)
            }
            position += n
            return n
        case .file(let file):
            let got = file.read(into: UnsafeMutableRawBufferPointer(start: destination, count: n), at: position)
            position += got
            return got
        }
    }

    /// fseek semantics; nil for a target outside the data, which both libraries treat as a failed seek.
    func seek(offset: Int64, whence: Int32) -> Int64? {
        let base: Int64
        switch whence {
        case SEEK_SET: base = 0
        case SEEK_CUR: base = Int64(position)
        case SEEK_END: base = Int64(count)
        default: return nil
        }
        let (target, overflow) = base.addingReportingOverflow(offset)
        guard !overflow, target >= 0, target <= Int64(count) else { return nil }
        position = Int(target)
        return target
    }
}
