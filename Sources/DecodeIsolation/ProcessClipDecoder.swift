import AVMAE
import Media
import Serving

/// `ClipDecoding` in worker processes: the same policy and error translation as in-process decoding
/// (`MediaClipDecoder`), with `Media.MediaDecoder` running in a sandboxed worker from `pool`. A worker that
/// crashes, is killed or exceeds its limits fails this clip with undecodable_clip and a message saying so.
public struct ProcessClipDecoder: ClipDecoding {
    private let pool: DecodeWorkerPool
    private let plan: MediaClipDecoder

    public init(pool: DecodeWorkerPool, config: ModelConfig, limits: MediaLimits, streamLimits: MediaLimits? = nil,
                hopSeconds: Double?) {
        self.pool = pool
        self.plan = MediaClipDecoder(config: config, limits: limits, streamLimits: streamLimits, hopSeconds: hopSeconds)
    }

    public func openStream(_ source: MediaSource, want: Set<Modality>, crops: CropCount) throws -> WindowSource {
        try WorkerWindowSource(source, policy: plan.policy(want: want, crops: crops), limits: plan.streamLimits, pool: pool)
    }

    public func decode(_ bytes: [UInt8], want: Set<Modality>, crops: CropCount) throws -> DecodedWindows {
        let outcome: WorkerProcess.Outcome
        do {
            outcome = try pool.decode(bytes, policy: plan.policy(want: want, crops: crops), limits: plan.limits)
        } catch let failure as WorkerFailure {
            throw ServingError.undecodableClip(failure.message)
        } catch {
            throw ServingError.inferenceFailed("could not start a decode worker: \(error)")
        }
        switch outcome {
        case .refused(let error):
            return try MediaClipDecoder.windows(refusedWith: error)
        case .decoded(let summary, let windows):
            return DecodedWindows(durationSeconds: summary.durationSeconds, hasAudio: summary.hasAudio,
                                  hasVideo: summary.hasVideo, windows: windows)
        }
    }
}
