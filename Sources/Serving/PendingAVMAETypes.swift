// TEMPORARY, deleted when branch `main` lands the real AVMAE types: verbatim copies of the four AVMAE value
// types Serving uses, so this branch compiles and tests before the model module is merged.

public enum Modality: String, Codable, Sendable, CaseIterable {
    case audio, video
}

public enum ModelKind: String, Codable, Sendable {
    case pretrained, finetuned
}

public enum LabelSet: String, Codable, Sendable {
    case audioset, vggsound, none
}

public struct Label: Sendable, Equatable {
    public let index: Int
    public let mid: String
    public let name: String

    public init(index: Int, mid: String, name: String) {
        self.index = index
        self.mid = mid
        self.name = name
    }
}
