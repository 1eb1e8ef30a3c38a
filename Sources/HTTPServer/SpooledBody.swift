import Foundation
import Media

/// An upload too large to hold in memory, written to an unlinked temporary file as its chunks arrive: the name
/// is removed at once, so the file goes away with its last descriptor, whatever happens to the request.
final class SpooledBody {
    enum Failure: Error, CustomStringConvertible {
        case create(directory: String, errno: Int32)
        case write(errno: Int32)

        var description: String {
            switch self {
            case .create(let directory, let code):
                return "cannot create a temporary file in \(directory) (\(String(cString: strerror(code)))); set TMPDIR to a writable directory"
            case .write(let code):
                return "cannot write the upload to its temporary file (\(String(cString: strerror(code))))"
            }
        }
    }

    private let descriptor: Int32
    private(set) var size = 0

    init() throws {
        let directory = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((directory + "/avmae-upload-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw Failure.create(directory: directory, errno: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)  // not inherited by the decode workers we spawn
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        descriptor = fd
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if written == -1 && errno == EINTR { continue }
            guard written > 0 else { throw Failure.write(errno: errno) }
            done += written
        }
        size += bytes.count
    }

    /// The finished upload, for the decoder; it owns a descriptor of its own from here on.
    func file() throws -> MediaFile {
        let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw Failure.write(errno: errno) }
        return MediaFile(adopting: copy, size: size)
    }
}
