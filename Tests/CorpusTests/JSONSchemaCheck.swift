import Foundation

/// A small JSON Schema checker for the keywords docs/report.schema.json uses: type,
/// const, enum, required, properties, additionalProperties, items, $ref (#/$defs/…),
/// pattern and minimum. Returns every violation with its path; empty when valid.
struct JSONSchemaCheck {
    let root: [String: Any]

    init(schemaAt url: URL) throws {
        root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    func check(_ value: Any) -> [String] {
        var problems: [String] = []
        check(value, root, "$", &problems)
        return problems
    }

    func resolve(_ schema: [String: Any]) -> [String: Any] {
        guard let ref = schema["$ref"] as? String, ref.hasPrefix("#/$defs/"),
              let defs = root["$defs"] as? [String: Any], let target = defs[String(ref.dropFirst(8))] as? [String: Any] else { return schema }
        return target
    }

    /// JSONSerialization gives booleans as NSNumber on Linux: told apart by their C type.
    static func isBool(_ v: Any) -> Bool {
        if type(of: v) == Bool.self { return true }
        guard let n = v as? NSNumber else { return false }
        return String(cString: n.objCType) == "c"
    }

    static func number(_ v: Any) -> Double? {
        guard !isBool(v) else { return nil }
        if let n = v as? NSNumber { return n.doubleValue }
        return nil
    }

    static func isInteger(_ v: Any) -> Bool { number(v).map { $0 == $0.rounded() } ?? false }

    static func equal(_ a: Any, _ b: Any) -> Bool {
        if let x = a as? String, let y = b as? String { return x == y }
        if isBool(a) || isBool(b) { return isBool(a) && isBool(b) && (a as? NSNumber)?.boolValue == (b as? NSNumber)?.boolValue }
        if let x = number(a), let y = number(b) { return x == y }
        return false
    }

    func check(_ value: Any, _ raw: [String: Any], _ path: String, _ problems: inout [String]) {
        let schema = resolve(raw)
        if let type = schema["type"] as? String {
            let ok: Bool
            switch type {
            case "object": ok = value is [String: Any]
            case "array": ok = value is [Any]
            case "string": ok = value is String
            case "boolean": ok = Self.isBool(value)
            case "integer": ok = Self.isInteger(value)
            case "number": ok = Self.number(value) != nil
            default: ok = false
            }
            if !ok { problems.append("\(path): not \(type)"); return }
        }
        if let c = schema["const"], !Self.equal(value, c) { problems.append("\(path): not \(c)") }
        if let e = schema["enum"] as? [Any], !e.contains(where: { Self.equal(value, $0) }) { problems.append("\(path): \(value) not in \(e)") }
        if let p = schema["pattern"] as? String, let s = value as? String, s.range(of: p, options: .regularExpression) == nil {
            problems.append("\(path): \(s) does not match \(p)")
        }
        if let m = schema["minimum"].flatMap(Self.number), let n = Self.number(value), n < m { problems.append("\(path): below \(m)") }
        if let object = value as? [String: Any] {
            for r in schema["required"] as? [String] ?? [] where object[r] == nil { problems.append("\(path): missing \(r)") }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for (k, v) in object {
                if let p = properties[k] as? [String: Any] {
                    check(v, p, "\(path).\(k)", &problems)
                } else if let extra = schema["additionalProperties"] as? [String: Any] {
                    check(v, extra, "\(path).\(k)", &problems)
                } else if let allowed = schema["additionalProperties"] as? Bool, !allowed {
                    problems.append("\(path): unexpected \(k)")
                }
            }
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (i, v) in array.enumerated() { check(v, items, "\(path)[\(i)]", &problems) }
        }
    }
}
