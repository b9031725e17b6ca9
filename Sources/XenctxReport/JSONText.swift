// FoundationEssentials has the same JSONEncoder without ICU: no 30 MB library to load at start.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `--json`: the report model, pretty-printed with sorted keys (stable for diffs).
public enum JSONText {
    public static func render(_ model: ReportModel) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(model) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
