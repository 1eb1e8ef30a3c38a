import Foundation

public struct Label: Sendable, Equatable {
    public let index: Int
    /// AudioSet machine id (e.g. /m/09x0r), or whatever id the label list carries.
    public let mid: String
    public let name: String

    public init(index: Int, mid: String, name: String) {
        self.index = index
        self.mid = mid
        self.name = name
    }

    /// The ids the demo bundle (`/demo/N`) and the converter's --placeholder-labels (`placeholder/N`) write.
    public static func isPlaceholder(_ label: Label) -> Bool {
        label.mid.hasPrefix("/demo/") || label.mid.hasPrefix("placeholder/")
    }
}

/// labels.csv: a header `index,mid,display_name`, then one row per class in index order. Names may be quoted
/// and contain commas, as in AudioSet's class_labels_indices.csv ("Male speech, man speaking").
public enum LabelsFile {
    public static func parse(_ text: String) throws -> [Label] {
        var rows = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        guard let header = rows.first else { return [] }
        guard splitCSVLine(header).map({ $0.lowercased() }) == ["index", "mid", "display_name"] else {
            throw BundleError.invalidLabels("the header must be index,mid,display_name, found \(header)")
        }
        rows.removeFirst()
        return try rows.enumerated().map { i, line in
            let fields = splitCSVLine(line)
            guard fields.count == 3, let index = Int(fields[0]) else {
                throw BundleError.invalidLabels("row \(i + 2) is not index,mid,display_name: \(line)")
            }
            guard index == i else { throw BundleError.invalidLabels("row \(i + 2) has index \(index), expected \(i)") }
            return Label(index: index, mid: fields[1], name: fields[2])
        }
    }

    public static func format(_ labels: [Label]) -> String {
        func quote(_ s: String) -> String {
            s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        return "index,mid,display_name\n" + labels.map { "\($0.index),\(quote($0.mid)),\(quote($0.name))\n" }.joined()
    }

    static func splitCSVLine(_ line: String) -> [String] {
        var fields = [String](), field = "", quoted = false
        var chars = line.makeIterator()
        while let c = chars.next() {
            if quoted {
                if c == "\"" {
                    if let next = chars.next() {
                        if next == "\"" { field.append("\"") } else { quoted = false; if next == "," { fields.append(field); field = "" } else { field.append(next) } }
                    } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" { quoted = true }
            else if c == "," { fields.append(field); field = "" }
            else if c != "\r" { field.append(c) }
        }
        fields.append(field)
        return fields
    }
}
