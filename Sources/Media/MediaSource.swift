import Glibc

/// Where an upload's bytes are: in memory, or in a file (a long recording spooled to disk as it arrived).
/// Decoders read either through the same seekable cursor, so a spooled upload is never loaded whole.
public enum MediaSource: Sendable {
    case bytes([UInt8])
    case file(MediaFile)

    public var count: Int {
        switch self {
        case .bytes(let bytes): return bytes.count
        case .file(let file): return file.size
        }
    }

    /// The first `count` bytes (fewer when the source is shorter): enough to recognise a container.
    func prefix(_ count: Int) -> [UInt8] {
        switch self {
        case .bytes(let bytes): return Array(bytes.prefix(count))
        case .file(let file):
            var head = [UInt8](repeating: 0, count: min(count, file.size))
            let got = head.withUnsafeMutableBytes { file.read(into: $0, at: 0) }
            return Array(head.prefix(got))
        }
    }
}

/// A read-only view of an open file of known size, read with pread (no shared file position, so any number of
/// cursors can read it at once). It owns the descriptor and closes it when the last reference goes.
public final class MediaFile: Sendable {
    public let descriptor: Int32
    public let size: Int

    public init(adopting descriptor: Int32, size: Int) {
        self.descriptor = descriptor
        self.size = size
    }

    /// The file at `path`, opened read-only; nil when it cannot be opened.
    public convenience init?(path: String) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            close(descriptor)
            return nil
        }
        self.init(adopting: descriptor, size: Int(status.st_size))
    }

    deinit { close(descriptor) }

    /// Copies up to `buffer.count` bytes from `offset`; fewer only at the end of the file or on a read error.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        var done = 0
        while done < buffer.count {
            let got = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if got == -1 && errno == EINTR { continue }
            guard got > 0 else { break }
            done += got
        }
        return done
    }
}
