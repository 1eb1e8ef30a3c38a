// libFuzzer entry over MediaDecoder.decode, compiled together with Sources/Media by run.sh (not part of the
// package build: it needs -sanitize=fuzzer). Any outcome but a crash, a sanitizer report or a hang is fine:
// the decoder must turn every input into a clip or a MediaError.

/// Small windows and few frames keep each input cheap, so the fuzzer explores more of the parsers.
private let policies = [
    ClipPolicy(windowSeconds: 2, frames: 4, stride: 2, resizeShort: 224),
    ClipPolicy(windowSeconds: 1, hopSeconds: 0.5, frames: 2, stride: 3, resizeShort: 256, crops: 4),
]
private let decoders = [
    MediaDecoder(limits: MediaLimits(maxBytes: 1 << 20, maxDurationSeconds: 60, maxPixels: 1920 * 1080)),
    MediaDecoder(limits: MediaLimits(maxBytes: 1 << 20, maxDurationSeconds: 60, maxPixels: 1920 * 1080), preferSndfile: false),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecode(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // The first byte picks the configuration, so one corpus covers both audio paths and both policies.
    let pick = Int(bytes.first ?? 0)
    _ = try? decoders[pick & 1].decode(bytes, policy: policies[(pick >> 1) & 1])
    return 0
}
