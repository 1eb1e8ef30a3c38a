import CLinux
import Glibc
import SystemIntegration

/// An anonymous shared-memory file (memfd): pages both processes reach through a descriptor, never through the
/// file system. Clips go in and decoded windows come out through these, copied once on each side with
/// pread/pwrite; the control channel carries only small messages. Truncating to zero returns the pages.
final class SharedMemoryFile: @unchecked Sendable {
    let descriptor: Int32

    /// A new memfd, closed on exec (a spawned worker gets its own copy through posix_spawn's dup2).
    init(name: String) throws {
        let closeOnExec: UInt32 = 1  // MFD_CLOEXEC, <linux/memfd.h>
        descriptor = try check("memfd_create", memfd_create(name, closeOnExec))
    }

    /// A descriptor inherited from the parent.
    init(adopting descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Bytes the file holds (its size).
    var size: Int {
        var info = stat()
        return fstat(descriptor, &info) == 0 ? Int(info.st_size) : 0
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let written = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if written == -1 && errno == EINTR { continue }
            done += try check("pwrite", written)
        }
    }

    /// Fills `buffer` from `offset`; a file shorter than that is an error (the writer broke the protocol).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < buffer.count {
            let count = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if count == -1 && errno == EINTR { continue }
            guard try check("pread", count) > 0 else {
                throw SystemCallError(call: "pread (\(buffer.count) bytes at \(offset), file ends first)", errno: EIO,
                                      function: #function)
            }
            done += count
        }
    }

    /// The file offset (shared with the worker's copy of the descriptor, and unused by pread/pwrite) is 1 while a
    /// clip is in flight, else 0: /proc/WORKER/fdinfo/4 shows which worker is busy, to an operator or a test.
    var marksClipInFlight: Bool {
        get { lseek(descriptor, 0, SEEK_CUR) == 1 }
        set { lseek(descriptor, newValue ? 1 : 0, SEEK_SET) }
    }

    /// Empties the file, freeing its pages.
    func truncate() throws {
        try check("ftruncate", ftruncate(descriptor, 0))
    }
}
