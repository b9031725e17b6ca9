import Symbols

/// `SYMBOL` or `SYMBOL+OFFSET` (offset hexadecimal, with or without 0x).
func parseSymbolExpression(_ s: String) -> (name: String, offset: UInt64)? {
    let parts = s.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false)
    let name = String(parts[0])
    func letter(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") }
    func digit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    guard let first = name.utf8.first, letter(first), name.utf8.allSatisfy({ letter($0) || digit($0) || $0 == UInt8(ascii: "$") }),
          name.utf8.count <= 512 else { return nil }
    guard parts.count == 2 else { return (name, 0) }
    guard let offset = parseHexAddress(String(parts[1])) else { return nil }
    return (name, offset)
}

func parseHexAddress(_ s: String) -> UInt64? {
    var digits = Substring(s)
    if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
    guard !digits.isEmpty, digits.count <= 16 else { return nil }
    return UInt64(digits, radix: 16)
}
