import CLinux
import Foundation
import Glibc
import Media
import Serving
import SystemIntegration

/// One decode worker as the daemon sees it: the sandboxed child, its control channel, the clip memory (clip
/// bytes in), the window memory (decoded windows out), and the read end of its stderr. Used by one request at
/// a time (the pool hands it out); after a `WorkerFailure` it is dead and must not be used again.
final class WorkerProcess: @unchecked Sendable {
    struct Limits: Sendable {
        var memoryBytes: Int
        var cpuSecondsPerClip: Int
        /// Windows in flight between worker and daemon, and slots in the window memory.
        var windowCredit = 2

        /// The daemon's own bound: generous against CPU time (a busy machine shares the cores), there for a
        /// worker that waits instead of computing or has raised its own CPU limit.
        var wallSeconds: Double { Double(cpuSecondsPerClip) * 3 + 5 }
    }

    /// What a clip came to: windows, or the decoder's own refusal (bad file, over a limit).
    enum Outcome {
        case decoded(ClipSummary, [DecodedWindow])
        case refused(MediaError)
    }

    let process: ChildProcess
    private let limits: Limits
    private let channel: MessageChannel
    private let clipMemory: SharedMemoryFile
    private let windowMemory: SharedMemoryFile
    private let stderr: Int32

    /// Starts `executable decode-worker`, its stdout and stderr into a pipe the daemon reads when it fails.
    init(executable: String, limits: Limits) throws {
        self.limits = limits
        let (ours, theirs) = try MessageChannel.pair()
        channel = ours
        clipMemory = try SharedMemoryFile(name: "avmae-clip")
        windowMemory = try SharedMemoryFile(name: "avmae-windows")
        var errorPipe: [Int32] = [-1, -1]
        try check("pipe2", pipe2(&errorPipe, O_CLOEXEC | O_NONBLOCK))
        defer { close(errorPipe[1]) }
        stderr = errorPipe[0]
        do {
            process = try ChildProcess(
                executable: executable,
                arguments: ["avmae-serve", "decode-worker", "--memory-bytes", "\(limits.memoryBytes)"],
                environment: Self.environment,
                descriptors: [1: errorPipe[1], 2: errorPipe[1], DecodeWorker.Descriptor.channel: theirs.descriptor,
                              DecodeWorker.Descriptor.clipMemory: clipMemory.descriptor,
                              DecodeWorker.Descriptor.windowMemory: windowMemory.descriptor])
        } catch {
            close(stderr)
            throw error
        }
    }

    /// Shared memory kept between clips: a 10 s phone video; two slots of a 1-crop 32-frame window and its audio.
    private static let retainedClipBytes = 16 << 20
    private static let retainedWindowBytes = 48 << 20

    /// No BLAS thread pool; no Swift backtracer (it would try to start a program, which the filter forbids).
    /// glibc keeps freed memory for the next clip rather than giving it back after each one (blocks up to its
    /// 32 MiB ceiling come from the heap, which is not trimmed): first touches of fresh pages are most of what a
    /// worker adds to a decode. RLIMIT_DATA bounds the heap all the same.
    private static let environment = [
        "OPENBLAS_NUM_THREADS=1", "SWIFT_BACKTRACE=enable=no",
        "MALLOC_MMAP_THRESHOLD_=\(32 << 20)", "MALLOC_TRIM_THRESHOLD_=\(1 << 40)",
    ]

    deinit {
        process.kill()
        process.wait()
        close(stderr)
    }

    /// Decodes one clip in the worker. Throws `WorkerFailure` when the worker died, hung or broke the protocol;
    /// it has then been killed and reaped.
    func decode(_ bytes: [UInt8], policy: ClipPolicy, limits mediaLimits: MediaLimits) throws -> Outcome {
        let deadline = Date(timeIntervalSinceNow: limits.wallSeconds)
        _ = readStderr()  // left over from earlier clips, which succeeded: not this clip's story
        clipMemory.marksClipInFlight = true
        defer {
            clipMemory.marksClipInFlight = false
            // Both files keep their pages for the next clip (first touches of fresh pages are most of what a
            // worker adds to a decode), unless a large clip grew them past what is worth keeping.
            if clipMemory.size > Self.retainedClipBytes { try? clipMemory.truncate() }
            if windowMemory.size > Self.retainedWindowBytes { try? windowMemory.truncate() }
        }
        return try guarded {
            try bytes.withUnsafeBytes { try clipMemory.write($0, at: 0) }
            try channel.send(WorkerRequest.decode(DecodeJob(
                policy: policy, limits: mediaLimits, clipBytes: bytes.count, credit: limits.windowCredit,
                cpuSeconds: limits.cpuSecondsPerClip)))
            let summary: ClipSummary
            switch try receive(until: deadline) {
            case .decoded(let decoded): summary = decoded
            case .failed(let error) where Self.ranOutOfMemory(error):
                throw failure(after: "\(error)", reason: .memoryLimit)
            case .failed(let error): return .refused(error)
            case .window, .opened, .ended: throw ProtocolViolation.unexpected("a stream's message before the clip's summary")
            }
            var windows: [DecodedWindow] = []
            windows.reserveCapacity(summary.windows)
            var granted = min(limits.windowCredit, summary.windows)
            while windows.count < summary.windows {
                guard case .window(let layout) = try receive(until: deadline), layout.index == windows.count else {
                    throw ProtocolViolation.unexpected("a message other than window \(windows.count)")
                }
                windows.append(try WindowPayload.read(layout, from: windowMemory))
                if granted < summary.windows {
                    try channel.send(WorkerRequest.credit(1))
                    granted += 1
                }
            }
            return .decoded(summary, windows)
        }
    }

    enum StreamStart {
        /// With these of the wanted tracks.
        case opened(hasAudio: Bool, hasVideo: Bool)
        case refused(MediaError)
    }

    /// Hands a recording to the worker to decode window by window (`WorkerRequest.stream`). Throws
    /// `WorkerFailure` as `decode` does.
    func startStream(_ source: MediaSource, policy: ClipPolicy, limits mediaLimits: MediaLimits) throws -> StreamStart {
        try guarded {
            try copyIntoClipMemory(source)
            try channel.send(WorkerRequest.stream(DecodeJob(
                policy: policy, limits: mediaLimits, clipBytes: source.count, credit: limits.windowCredit,
                cpuSeconds: limits.cpuSecondsPerClip)))
            switch try receive(until: Date(timeIntervalSinceNow: limits.wallSeconds)) {
            case .opened(let hasAudio, let hasVideo): return .opened(hasAudio: hasAudio, hasVideo: hasVideo)
            case .failed(let error): return .refused(error)
            default: throw ProtocolViolation.unexpected("a message other than opened or failed")
            }
        }
    }

    enum Streamed {
        case window(DecodedWindow)
        case ended(decodedSeconds: Double)
        case failed(MediaError)
    }

    /// A streaming worker's next message. Reading a window grants credit for one more, so the worker decodes
    /// ahead by `windowCredit` windows and no further.
    func nextStreamed() throws -> Streamed {
        try guarded {
            switch try receive(until: Date(timeIntervalSinceNow: limits.wallSeconds)) {
            case .window(let layout):
                let window = try WindowPayload.read(layout, from: windowMemory)
                try channel.send(WorkerRequest.credit(1))
                return .window(window)
            case .ended(let seconds): return .ended(decodedSeconds: seconds)
            case .failed(let error) where Self.ranOutOfMemory(error):
                throw failure(after: "\(error)", reason: .memoryLimit)
            case .failed(let error): return .failed(error)
            default: throw ProtocolViolation.unexpected("a message other than a window, ended or failed")
            }
        }
    }

    /// The recording into the clip memory, a spooled file a block at a time (it is never whole in our memory).
    private func copyIntoClipMemory(_ source: MediaSource) throws {
        switch source {
        case .bytes(let bytes):
            try bytes.withUnsafeBytes { try clipMemory.write($0, at: 0) }
        case .file(let file):
            var block = [UInt8](repeating: 0, count: 1 << 20)
            var offset = 0
            while offset < file.size {
                let count = block.withUnsafeMutableBytes { file.read(into: $0, at: offset) }
                guard count > 0 else {
                    throw SystemCallError(call: "pread (upload file ends at \(offset) of \(file.size) bytes)", errno: EIO,
                                          function: #function)
                }
                try block.withUnsafeBytes { try clipMemory.write(UnsafeRawBufferPointer(rebasing: $0[..<count]), at: offset) }
                offset += count
            }
        }
    }

    /// Runs one exchange with the worker; whatever breaks it becomes a `WorkerFailure`, the worker killed.
    private func guarded<T>(_ exchange: () throws -> T) throws -> T {
        do {
            return try exchange()
        } catch let failure as WorkerFailure {
            throw failure
        } catch let error where error is ProtocolViolation || error is DecodingError {
            throw failure(after: "\(error)", reason: .protocolError)
        } catch {
            // Mostly EPIPE: it died before or while taking the clip. How it ended says why.
            throw failure(after: "\(error)", reason: nil)
        }
    }

    /// Whether the worker still waits for a clip. An idle worker sends nothing, so anything readable on its
    /// channel is the end-of-file of one that died (killed between clips).
    var isAlive: Bool {
        var poller = pollfd(fd: channel.descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) == 0
    }

    /// FFmpeg's ENOMEM arrives as a corrupt file ("Cannot allocate memory", strerror's text); under the worker's
    /// memory limit that is the limit speaking, not the file.
    private static func ranOutOfMemory(_ error: MediaError) -> Bool {
        if case .corrupt(let detail) = error { return detail.hasPrefix("Cannot allocate memory") }
        return false
    }

    private enum ProtocolViolation: Error {
        case unexpected(String)
    }

    private func receive(until deadline: Date) throws -> WorkerReply {
        switch try channel.receive(WorkerReply.self, timeout: deadline.timeIntervalSinceNow) {
        case .message(let reply): return reply
        case .closed: throw failure(after: "the worker closed its channel", reason: nil)
        case .timedOut: throw failure(after: "no answer in \(limits.wallSeconds) s", reason: .timeout)
        }
    }

    /// Kills (if need be) and reaps the worker and says why it failed, from how it ended and what it printed.
    private func failure(after event: String, reason known: WorkerFailure.Reason?) -> WorkerFailure {
        process.kill()
        let termination = process.wait()
        let printed = readStderr()
        let reason: WorkerFailure.Reason
        if let known {
            reason = known
        } else if printed.contains("failed to allocate") || printed.contains("allocate memory") {
            // What the Swift runtime prints before SIGABRT when RLIMIT_DATA refuses an allocation ("Fatal error:
            // failed to allocate N bytes of memory"; older runtimes "Could not allocate memory").
            reason = .memoryLimit
        } else {
            switch termination {
            case .signalled(SIGXCPU): reason = .cpuLimit
            case .signalled(SIGSYS): reason = .forbiddenCall
            case .signalled(SIGKILL): reason = .killed
            default: reason = .crashed
            }
        }
        return WorkerFailure(reason: reason, message: message(for: reason, termination: termination),
                             termination: "\(event); \(termination)" + (printed.isEmpty ? "" : "; stderr: \(printed)"))
    }

    private func message(for reason: WorkerFailure.Reason, termination: ChildProcess.Termination) -> String {
        switch reason {
        case .memoryLimit:
            return "the decoder ran out of its \(limits.memoryBytes >> 20) MiB memory limit on this clip"
        case .cpuLimit:
            return "the decoder used up its \(limits.cpuSecondsPerClip) s of CPU time on this clip"
        case .timeout:
            return "the decoder did not finish this clip within \(Int(limits.wallSeconds)) s"
        case .crashed, .killed, .forbiddenCall, .protocolError:
            return "the decoder failed on this clip (its process was \(termination))"
        }
    }

    /// The tail of what the worker printed (the pipe is non-blocking: this takes what is there).
    private func readStderr() -> String {
        var collected: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(stderr, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            collected += chunk[..<count]
        }
        return String(decoding: collected.suffix(2048), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
