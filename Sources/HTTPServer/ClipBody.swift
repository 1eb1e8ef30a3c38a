import Foundation

/// Which Content-Types carry a clip, and how to get the clip's bytes out of the body.
enum ClipBody {
    static func isAccepted(contentType: String?) -> Bool {
        guard let type = mediaType(contentType) else { return false }
        return type.hasPrefix("audio/") || type.hasPrefix("video/") || type == "application/octet-stream"
            || type == "multipart/form-data"
    }

    /// The body is the clip itself, not a form around it.
    static func isRaw(contentType: String?) -> Bool {
        isAccepted(contentType: contentType) && mediaType(contentType) != "multipart/form-data"
    }

    /// The raw clip: the body itself, or the `file` part of a multipart form.
    static func clipBytes(body: [UInt8], contentType: String?) throws -> [UInt8] {
        guard isAccepted(contentType: contentType), let contentType else {
            throw APIError.unsupportedMediaType(contentType)
        }
        var bytes = body
        if mediaType(contentType) == "multipart/form-data" {
            do {
                let boundary = try Multipart.boundary(fromContentType: contentType)
                let parts = try Multipart.parts(of: body, boundary: boundary)
                guard let file = parts.first(where: { $0.name == "file" }) else {
                    throw APIError.badRequest("the multipart form has no part named 'file' (parts: \(parts.compactMap(\.name)))")
                }
                bytes = Array(file.body)
            } catch let error as Multipart.ParseError {
                throw APIError.badRequest("malformed multipart body: \(error)")
            }
        }
        guard !bytes.isEmpty else { throw APIError.badRequest("the clip is empty; upload the file's bytes as the body") }
        return bytes
    }

    /// "Audio/WAV; codecs=1" -> "audio/wav".
    private static func mediaType(_ contentType: String?) -> String? {
        contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
    }
}
