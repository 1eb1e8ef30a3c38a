import Foundation
import XCTest

/// ?stream=true end to end: a real daemon (demo model, decoding in worker processes as by default), recordings
/// written at test time (an hour is 115 MB: never committed), NDJSON read line by line from a raw socket.
final class StreamingTests: XCTestCase {
    /// An hour streams as 360 window lines in order and a summary, while the daemon and its workers stay within a
    /// fixed memory bound: the whole recording decoded at once would hold its 230 MB waveform on top of the
    /// 115 MB upload. The first line's latency from the end of the upload is printed, not asserted.
    func testOneHourRecordingStreamsInOrderInBoundedMemory() throws {
        let daemon = try RunningDaemon(settings: ["stream_spool_bytes": "\(8 << 20)"])
        let recording = try Self.recording(seconds: 3600)
        defer { try? FileManager.default.removeItem(at: recording) }
        let pid = daemon.process.processIdentifier
        let before = ResidentMemorySampler.treeBytes(pid)
        let sampler = ResidentMemorySampler(pid: pid)
        let client = try StreamingClient(port: daemon.port)
        try client.send(path: "/v1/classify?stream=true&top_k=1", contentType: "audio/wav", bodyFile: recording)
        let response = try client.readResponse()
        let peak = sampler.stop()

        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["content-type"], "application/x-ndjson")
        XCTAssertEqual(response.headers["x-accel-buffering"], "no")
        XCTAssertEqual(response.lines.count, 361, "360 windows of 10 s, then the summary")
        for (index, line) in response.lines.dropLast().enumerated() {
            let json = line.json
            XCTAssertEqual(json["window"] as? Int, index)
            XCTAssertEqual(json["start_seconds"] as? Double, Double(index * 10))
            XCTAssertEqual((json["labels"] as? [Any])?.count, 1)
        }
        let summary = try XCTUnwrap(response.lines.last?.json["summary"] as? [String: Any])
        XCTAssertEqual(summary["windows_used"] as? Int, 360)
        XCTAssertEqual(try XCTUnwrap(summary["duration_seconds"] as? Double), 3600, accuracy: 0.01)
        XCTAssertEqual(summary["modalities"] as? [String], ["audio"])

        let mib = { (bytes: Int) in (Double(bytes) / 1048576 * 10).rounded() / 10 }
        let first = response.lines[0].seconds, last = response.lines[response.lines.count - 1].seconds
        print("streaming 1 h (demo model, decode in a worker): first line \(first * 1000) ms after the upload, "
              + "last \(last) s; RSS of daemon and workers \(mib(before)) MiB before, peak \(mib(peak)) MiB")
        XCTAssertLessThan(peak - before, 128 << 20, "memory grew by \(mib(peak - before)) MiB while streaming an hour")
    }

    /// Before the first window an error is an ordinary response (status, JSON body); after it, the last line,
    /// naming the window the stream stopped at. Shutdown is such an error: it cuts a running stream off at its
    /// next window, and the daemon still exits cleanly.
    func testErrorsBeforeTheFirstWindowGetAStatusAndAfterItALine() throws {
        let daemon = try RunningDaemon(settings: ["max_batch": "1"])
        let garbage = try Fixture.garbage(4096)
        let refused = try Curl.run(port: daemon.port, path: "/v1/classify?stream=true", headers: ["Content-Type": "audio/wav"],
                                   bodyFile: garbage)
        XCTAssertEqual(refused.status, 422)
        XCTAssertEqual(refused.errorCode, "undecodable_clip")
        let tokens = try Curl.run(port: daemon.port, path: "/v1/embed?stream=true&tokens=true",
                                  headers: ["Content-Type": "audio/wav"], bodyFile: Fixture.tone)
        XCTAssertEqual(tokens.status, 400)
        XCTAssertEqual(tokens.errorCode, "invalid_parameter")

        let recording = try Self.recording(seconds: 1800)
        defer { try? FileManager.default.removeItem(at: recording) }
        let client = try StreamingClient(port: daemon.port)
        try client.send(path: "/v1/classify?stream=true", contentType: "audio/wav", bodyFile: recording)
        var terminated = false
        let response = try client.readResponse { _ in
            if !terminated { daemon.process.terminate() }  // SIGTERM once the first line is in
            terminated = true
            return true
        }
        XCTAssertEqual(response.status, 200)
        let windows = response.lines.dropLast().map { $0.json["window"] as? Int }
        XCTAssertEqual(windows, (0..<windows.count).map { Optional($0) }, "windows in order up to the cut")
        XCTAssertLessThan(windows.count, 180, "the stream was cut off, not finished")
        let error = try XCTUnwrap(response.lines.last?.json["error"] as? [String: Any], "\(response.lines.last?.text ?? "")")
        XCTAssertEqual(error["code"] as? String, "not_ready")
        XCTAssertEqual(error["window"] as? Int, windows.count)
        daemon.process.waitUntilExit()
        XCTAssertEqual(daemon.process.terminationStatus, 0, daemon.log)
    }

    /// A client that hangs up after the first line stops the work: the model runs only the few windows that were
    /// already in flight, not the remaining ones.
    func testClientGoingAwayStopsTheWork() throws {
        let daemon = try RunningDaemon(settings: ["max_batch": "1"])
        let recording = try Self.recording(seconds: 1800)
        defer { try? FileManager.default.removeItem(at: recording) }
        let batchesBefore = try daemon.metric("avmae_batch_size_count")
        // The client hangs up (its socket closes) as soon as the first line is in.
        let response: StreamingClient.Response = try {
            let client = try StreamingClient(port: daemon.port)
            try client.send(path: "/v1/embed?stream=true", contentType: "audio/wav", bodyFile: recording)
            return try client.readResponse { _ in false }
        }()
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.lines.count, 1)
        // The stream notices at its next line or two, then finishes what is in flight; wait until it is quiet.
        var batches = try daemon.metric("avmae_batch_size_count")
        for _ in 0..<50 {
            Thread.sleep(forTimeInterval: 0.2)
            let now = try daemon.metric("avmae_batch_size_count")
            if now == batches { break }
            batches = now
        }
        XCTAssertLessThan(batches - batchesBefore, 40, "of 180 windows, the model ran \(batches - batchesBefore)")
    }

    /// A video streams its sound and pictures window by window, and each window line scores as that window of the
    /// whole request's timeline, four crops averaged, whether the decoding runs in a worker process or in the
    /// daemon. The summary is the whole request's answer.
    func testVideoStreamsWindowByWindowLikeTheWholeRequest() throws {
        for isolation in ["process", "none"] {
            let daemon = try RunningDaemon(settings: ["decode_isolation": isolation])
            let query = "top_k=3&crops=4&modality=audiovisual"
            let whole = try Curl.run(port: daemon.port, path: "/v1/classify?\(query)&windows=true",
                                     headers: ["Content-Type": "video/mp4"], bodyFile: Fixture.longVideo)
            XCTAssertEqual(whole.status, 200, isolation)
            let timeline = try XCTUnwrap(whole.json["timeline"] as? [[String: Any]], isolation)
            XCTAssertEqual(timeline.count, 3, isolation)

            let client = try StreamingClient(port: daemon.port)
            try client.send(path: "/v1/classify?\(query)&stream=true", contentType: "video/mp4", bodyFile: Fixture.longVideo)
            let response = try client.readResponse()
            XCTAssertEqual(response.status, 200, isolation)
            XCTAssertEqual(response.lines.count, 4, "\(isolation): 3 windows, then the summary")
            for (line, expected) in zip(response.lines, timeline) {
                XCTAssertEqual(line.json["window"] as? Int, expected["index"] as? Int, isolation)
                XCTAssertEqual(line.json["start_seconds"] as? Double, expected["start_seconds"] as? Double, isolation)
                Self.assertSameLabels(line.json["labels"], expected["labels"], "\(isolation) window \(expected["index"] ?? "?")")
            }
            let summary = try XCTUnwrap(response.lines.last?.json["summary"] as? [String: Any], isolation)
            XCTAssertEqual(summary["modalities"] as? [String], ["audio", "video"], isolation)
            XCTAssertEqual(summary["windows_used"] as? Int, 3, isolation)
            Self.assertSameLabels(summary["labels"], whole.json["labels"], "\(isolation) summary")
        }
    }

    /// A stream that asks for pictures from a sound file is refused before any line, as the whole request is.
    func testPicturesFromASoundFileAreRefusedBeforeTheFirstLine() throws {
        let daemon = try RunningDaemon()
        let refused = try Curl.run(port: daemon.port, path: "/v1/classify?stream=true&modality=video",
                                   headers: ["Content-Type": "audio/flac"], bodyFile: Fixture.long)
        let whole = try Curl.run(port: daemon.port, path: "/v1/classify?modality=video",
                                 headers: ["Content-Type": "audio/flac"], bodyFile: Fixture.long)
        XCTAssertEqual(refused.status, whole.status)
        XCTAssertEqual(refused.errorCode, "modality_unavailable")
        XCTAssertEqual(whole.errorCode, "modality_unavailable")
    }

    private static func assertSameLabels(_ streamed: Any?, _ whole: Any?, _ label: String,
                                         file: StaticString = #filePath, line: UInt = #line) {
        guard let streamed = streamed as? [[String: Any]], let whole = whole as? [[String: Any]] else {
            return XCTFail("\(label): labels missing", file: file, line: line)
        }
        XCTAssertEqual(streamed.map { $0["index"] as? Int }, whole.map { $0["index"] as? Int }, label, file: file, line: line)
        for (a, b) in zip(streamed, whole) {
            XCTAssertEqual(a["score"] as? Double ?? -1, b["score"] as? Double ?? 1, accuracy: 1e-5, label, file: file, line: line)
        }
    }

    /// A 16 kHz mono 16-bit WAV whose tone steps up every minute.
    static func recording(seconds: Int) throws -> URL {
        let rate = 16000
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("recording-\(UUID().uuidString).wav")
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        let file = try FileHandle(forWritingTo: url)
        defer { try? file.close() }
        let dataBytes = UInt32(seconds * rate * 2)
        var header = Data("RIFF".utf8)
        func le<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) } }
        le(UInt32(36) + dataBytes)
        header.append(contentsOf: Array("WAVEfmt ".utf8))
        le(UInt32(16)); le(UInt16(1)); le(UInt16(1)); le(UInt32(rate)); le(UInt32(rate * 2)); le(UInt16(2)); le(UInt16(16))
        header.append(contentsOf: Array("data".utf8))
        le(dataBytes)
        file.write(header)
        var second = [Int16](repeating: 0, count: rate)
        for s in 0..<seconds {
            let frequency = 220.0 * Double(1 + (s / 60) % 8)
            for i in 0..<rate {
                second[i] = Int16(8000 * sin(2 * .pi * frequency * Double(s * rate + i) / Double(rate)))
            }
            file.write(second.withUnsafeBytes { Data($0) })
        }
        return url
    }
}
