import Foundation
import XCTest
import Media

/// Reads a file from Fixtures/ (made by Fixtures/make_fixtures.sh).
func fixture(_ name: String) throws -> [UInt8] {
    let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"), "missing fixture \(name)")
    return try [UInt8](Data(contentsOf: url))
}

/// Decodes and returns the error, failing the test if decoding succeeded.
func decodeError(_ bytes: [UInt8], policy: ClipPolicy = ClipPolicy(), decoder: MediaDecoder = MediaDecoder(),
                 file: StaticString = #filePath, line: UInt = #line) -> MediaError? {
    do {
        _ = try decoder.decode(bytes, policy: policy)
        XCTFail("decoding succeeded, expected an error", file: file, line: line)
        return nil
    } catch {
        return error
    }
}

/// The frequency (Hz, on a 25 Hz grid up to Nyquist) with the most energy, by a plain DFT.
func peakFrequency(_ samples: [Float], sampleRate: Int) -> Int {
    var best = (frequency: 0, power: -1.0)
    for frequency in stride(from: 25, to: sampleRate / 2, by: 25) {
        let w = 2 * Double.pi * Double(frequency) / Double(sampleRate)
        var re = 0.0, im = 0.0
        for (n, x) in samples.enumerated() {
            re += Double(x) * cos(w * Double(n))
            im -= Double(x) * sin(w * Double(n))
        }
        let power = re * re + im * im
        if power > best.power { best = (frequency, power) }
    }
    return best.frequency
}

/// The RGB value at (row, column) of frame `frame` in a [frames, size, size, 3] byte crop, mapped to [-1, 1] as the
/// model maps it.
func pixel(_ crop: [UInt8], frame: Int, row: Int, column: Int, size: Int = 224) -> [Float] {
    let base = ((frame * size + row) * size + column) * 3
    return crop[base..<base + 3].map { Float($0) / 255 * 2 - 1 }
}

func assertColour(_ actual: [Float], _ expected: [Float], tolerance: Float = 0.15, _ message: String = "",
                  file: StaticString = #filePath, line: UInt = #line) {
    for c in 0..<3 where abs(actual[c] - expected[c]) > tolerance {
        XCTFail("colour \(actual) is not \(expected) \(message)", file: file, line: line)
        return
    }
}
