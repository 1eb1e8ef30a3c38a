import Glibc
import Media
import SystemIntegration

/// The worker's side: the loop a `decode-worker` process runs inside its sandbox, one clip after another, until
/// the daemon closes the channel. Decoding itself is `Media.MediaDecoder`, the same code in-process decoding runs.
public enum DecodeWorker {
    /// Descriptor numbers the parent hands over (see `WorkerProcess`).
    enum Descriptor {
        static let channel: Int32 = 3
        static let clipMemory: Int32 = 4
        static let windowMemory: Int32 = 5
    }

    /// Enters the sandbox, then serves clips until the parent goes away. Returns only then (exit status 0);
    /// a broken channel or shared memory throws.
    public static func run(memoryBytes: Int) throws {
        let channel = MessageChannel(adopting: Descriptor.channel)
        let clipMemory = SharedMemoryFile(adopting: Descriptor.clipMemory)
        let windowMemory = SharedMemoryFile(adopting: Descriptor.windowMemory)
        try WorkerSandbox.enter(.init(memoryBytes: memoryBytes))
        while case .message(let request) = try channel.receive(WorkerRequest.self) {
            let goOn: Bool
            switch request {
            case .decode(let job): goOn = try serve(job, channel: channel, clipMemory: clipMemory, windowMemory: windowMemory)
            case .stream(let job): goOn = try stream(job, channel: channel, clipMemory: clipMemory, windowMemory: windowMemory)
            case .credit: continue  // stray: nothing to send
            }
            guard goOn else { return }
        }
    }

    /// Decodes a recording window by window (`Media.ClipWindowStream`), each window sent as credit allows, so
    /// the worker holds a window or two whatever the recording's length. Returns false when the stream is over:
    /// the parent ends a streaming worker after its recording (see `WorkerRequest`).
    private static func stream(_ job: DecodeJob, channel: MessageChannel, clipMemory: SharedMemoryFile,
                               windowMemory: SharedMemoryFile) throws -> Bool {
        try WorkerSandbox.limitCPU(seconds: job.cpuSeconds)
        // The recording is read where it lies, through its own descriptor (MediaFile closes that one, not ours).
        let descriptor = try check("fcntl(F_DUPFD_CLOEXEC)", fcntl(clipMemory.descriptor, F_DUPFD_CLOEXEC, 0))
        let windows: ClipWindowStream
        do {
            windows = try ClipWindowStream(source: .file(MediaFile(adopting: descriptor, size: job.clipBytes)),
                                           policy: job.policy, limits: job.limits)
        } catch {
            try channel.send(WorkerReply.failed(error))
            return try awaitEnd(channel)
        }
        try channel.send(WorkerReply.opened(hasAudio: windows.hasAudio, hasVideo: windows.hasVideo))
        var credit = job.credit
        while true {
            let window: ClipWindow?
            do {
                window = try windows.next()
            } catch {
                try channel.send(WorkerReply.failed(error))
                return try awaitEnd(channel)
            }
            guard let window else {
                try channel.send(WorkerReply.ended(decodedSeconds: windows.decodedSeconds))
                return try awaitEnd(channel)
            }
            while credit == 0 {
                switch try channel.receive(WorkerRequest.self) {
                case .message(.credit(let more)): credit += more
                case .message(.decode), .message(.stream), .closed, .timedOut: return false
                }
            }
            try WorkerSandbox.limitCPU(seconds: job.cpuSeconds)
            let slotBytes = WindowPayload.layout(of: window, offset: 0).byteCount
            let layout = WindowPayload.layout(of: window, offset: (window.index % job.credit) * slotBytes)
            try WindowPayload.write(window, as: layout, to: windowMemory)
            try channel.send(WorkerReply.window(layout))
            credit -= 1
        }
    }

    /// After a stream's last message the parent still grants credit for the windows it read, and writing to a
    /// worker that already left would fail its read; so the worker waits, dropping the credit, until the parent
    /// ends it. Returns false: a streaming worker serves one recording.
    private static func awaitEnd(_ channel: MessageChannel) throws -> Bool {
        while case .message = try channel.receive(WorkerRequest.self) {}
        return false
    }

    /// Decodes one clip and sends its windows as credit allows. Returns false when the parent went away.
    private static func serve(_ job: DecodeJob, channel: MessageChannel, clipMemory: SharedMemoryFile,
                              windowMemory: SharedMemoryFile) throws -> Bool {
        try WorkerSandbox.limitCPU(seconds: job.cpuSeconds)
        let bytes = try [UInt8](unsafeUninitializedCapacity: job.clipBytes) { buffer, count in
            try clipMemory.read(into: UnsafeMutableRawBufferPointer(buffer), at: 0)
            count = job.clipBytes
        }
        let clip: DecodedClip
        do {
            clip = try MediaDecoder(limits: job.limits).decode(bytes, policy: job.policy)
        } catch {
            try channel.send(WorkerReply.failed(error))
            return true
        }
        try channel.send(WorkerReply.decoded(ClipSummary(
            durationSeconds: clip.info.durationSeconds, hasAudio: clip.hasAudio, hasVideo: clip.hasVideo,
            windows: clip.windows.count)))
        let slotBytes = clip.windows.map { WindowPayload.layout(of: $0, offset: 0).byteCount }.max() ?? 0
        var credit = job.credit
        for window in clip.windows {
            while credit == 0 {
                switch try channel.receive(WorkerRequest.self) {
                case .message(.credit(let more)): credit += more
                case .message(.decode), .message(.stream): return false  // the parent broke the protocol; start afresh
                case .closed, .timedOut: return false
                }
            }
            let layout = WindowPayload.layout(of: window, offset: (window.index % job.credit) * slotBytes)
            try WindowPayload.write(window, as: layout, to: windowMemory)
            try channel.send(WorkerReply.window(layout))
            credit -= 1
        }
        return true
    }
}
