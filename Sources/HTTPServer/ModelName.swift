/// What a model may be called: it appears in URLs (/v2/models/NAME), query strings and metric labels.
public enum ModelName {
    public static let rule = "a model name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"

    public static func isValid(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64 else { return false }
        func allowed(_ c: Unicode.Scalar) -> Bool {
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "." || c == "_" || c == "-")
        }
        return allowed(first) && first != "." && first != "_" && first != "-" && name.unicodeScalars.allSatisfy(allowed)
    }
}
