/// `%0*llx`: lowercase hex, zero-padded to `width` digits (never truncated).
public func hex<T: BinaryInteger>(_ value: T, width: Int = 0) -> String {
    let digits = String(value, radix: 16)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}
