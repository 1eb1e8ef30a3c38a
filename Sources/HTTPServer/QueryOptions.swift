import Serving

/// Query strings to typed options, validated once here so nothing downstream sees a string.
struct QueryReader {
    let query: [String: String]

    /// Every parameter the route accepts; anything else is a 400, so typos do not pass silently.
    func rejectUnknown(allowed: Set<String>) throws {
        if let unknown = query.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError.invalidParameter(unknown, "unknown parameter; accepted: \(allowed.sorted().joined(separator: ", "))")
        }
    }

    func int(_ name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = query[name] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.invalidParameter(name, "expected an integer in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        return number
    }

    func float(_ name: String, in range: ClosedRange<Float>) throws -> Float? {
        guard let text = query[name] else { return nil }
        guard let number = Float(text), range.contains(number) else {
            throw APIError.invalidParameter(name, "expected a number in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        return number
    }

    func bool(_ name: String) throws -> Bool {
        guard let text = query[name] else { return false }
        switch text.lowercased() {
        case "true", "1", "yes", "": return true
        case "false", "0", "no": return false
        default: throw APIError.invalidParameter(name, "expected true or false, got '\(text)'")
        }
    }

    func choice<T: RawRepresentable & CaseIterable>(_ name: String, default value: T) throws -> T where T.RawValue == String {
        guard let text = query[name] else { return value }
        guard let parsed = T(rawValue: text.lowercased()) else {
            throw APIError.invalidParameter(name, "expected one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
        }
        return parsed
    }
}

enum ClipQuery {
    static func classify(_ reader: QueryReader, classes: Int) throws -> ClassifyOptions {
        try reader.rejectUnknown(allowed: ["model", "top_k", "threshold", "modality", "windows", "crops", "aggregate"])
        var options = ClassifyOptions()
        options.topK = try reader.int("top_k", default: 5, in: 1...max(classes, 1))
        options.threshold = try reader.float("threshold", in: 0...1)
        options.modality = try reader.choice("modality", default: ModalityChoice.auto)
        options.timeline = try reader.bool("windows")
        let crops = try reader.int("crops", default: 1, in: 1...4)
        guard let count = CropCount(rawValue: crops) else { throw APIError.invalidParameter("crops", "expected 1 or 4, got \(crops)") }
        options.crops = count
        options.aggregation = try reader.choice("aggregate", default: Aggregation.mean)
        return options
    }

    /// The embed options plus the two presentation choices that stay in the HTTP layer.
    static func embed(_ reader: QueryReader) throws -> (EmbedOptions, FloatEncoding, windows: Bool) {
        try reader.rejectUnknown(allowed: ["model", "modality", "tokens", "encoding", "windows"])
        var options = EmbedOptions()
        options.modality = try reader.choice("modality", default: ModalityChoice.auto)
        options.tokens = try reader.bool("tokens")
        let encoding = try reader.choice("encoding", default: FloatEncoding.json)
        return (options, encoding, try reader.bool("windows") || options.tokens)
    }
}
