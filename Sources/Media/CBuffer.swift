import Glibc

/// Memory that FFmpeg or libsndfile writes into. Every buffer handed to a C library for writing is one of these.
///
/// FFmpeg's SIMD code writes whole vectors, so it may write past the last element it was asked for: swscale wrote
/// 8-byte words up to 16 bytes past a `width * 3 * height` Swift array (361x203 RGB24), which corrupted the heap and
/// aborted the daemon. FFmpeg's own allocators give 64-byte alignment (AVX-512) and 64 bytes of padding
/// (`AV_INPUT_BUFFER_PADDING_SIZE`); so does this type.
///
/// With `AVMAE_GUARD_PAGES=1` in the environment, the padding ends exactly where an inaccessible page begins, so a
/// write past what the library was given faults at once (valgrind has no AVX-512 and cannot see the widest paths).
final class CBuffer<Element: BitwiseCopyable> {
    let count: Int
    let pointer: UnsafeMutablePointer<Element>
    private let allocation: UnsafeMutableRawPointer
    private let mappedBytes: Int?

    init(count: Int) throws(MediaError) {
        precondition(count >= 0, "negative buffer size")
        self.count = count
        let bytes = (count * MemoryLayout<Element>.stride + GuardPages.padding + GuardPages.alignment - 1)
            & ~(GuardPages.alignment - 1)
        if GuardPages.enabled {
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let body = (bytes + page - 1) / page * page
            let base = mmap(nil, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let base, base != MAP_FAILED else {
                throw MediaError.corrupt("out of memory for a \(bytes)-byte guarded buffer (errno \(errno))")
            }
            guard mprotect(base + body, page, PROT_NONE) == 0 else {
                munmap(base, body + page)
                throw MediaError.corrupt("cannot protect the guard page of a \(bytes)-byte buffer (errno \(errno))")
            }
            allocation = base
            mappedBytes = body + page
            pointer = (base + (body - bytes)).bindMemory(to: Element.self, capacity: count)
        } else {
            var base: UnsafeMutableRawPointer?
            guard posix_memalign(&base, GuardPages.alignment, bytes) == 0, let base else {
                throw MediaError.corrupt("out of memory for a \(bytes)-byte buffer")
            }
            allocation = base
            mappedBytes = nil
            pointer = base.bindMemory(to: Element.self, capacity: count)
        }
    }

    deinit {
        if let mappedBytes { munmap(allocation, mappedBytes) } else { free(allocation) }
    }

    /// The first `count` elements (at most `self.count`), for reading in Swift.
    func withElements<R>(_ count: Int, _ body: (Span<Element>) -> R) -> R {
        body(UnsafeBufferPointer(start: pointer, count: min(count, self.count)).span)
    }

    func append(first count: Int, to array: inout [Element]) {
        array.append(contentsOf: UnsafeBufferPointer(start: pointer, count: min(count, self.count)))
    }
}

/// Where C-bound buffers come from: the alignment and padding FFmpeg's own allocators give, and the test mode that
/// puts a guard page after each one.
enum GuardPages {
    static let alignment = 64
    static let padding = 64
    static let enabled = getenv("AVMAE_GUARD_PAGES").map { String(cString: $0) == "1" } ?? false
}
