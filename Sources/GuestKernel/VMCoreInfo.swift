/// The kernel's description of itself for dump tools (`kernel/crash_core.c`): lines of
/// `KEY=VALUE`, kept in a page of kernel memory (`vmcoreinfo_data`). SYMBOL values are
/// hexadecimal addresses; OFFSET, SIZE and LENGTH decimal; NUMBER decimal (signed) or 0x hex.
public struct VMCoreInfo: Sendable, Equatable {
    public let osRelease: String
    /// The vmlinux's GNU build id, lowercase hex (absent before Linux 5.9).
    public let buildID: String?
    public let pageSize: Int
    /// `KERNELOFFSET`: how far the kernel image was moved from its link address (KASLR).
    public let kernelOffset: UInt64?
    public let symbols: [String: UInt64]
    public let offsets: [String: Int]
    public let sizes: [String: Int]
    public let lengths: [String: Int]
    public let numbers: [String: Int64]
    /// Other keys (`CONFIG_ARM_LPAE=y`, `CRASHTIME=…`), as text.
    public let other: [String: String]
    /// Lines that were not `KEY=VALUE` of a known shape, counted, not fatal.
    public let ignoredLines: Int
    /// True when the text ended mid-line (the last line was dropped).
    public let truncated: Bool

    /// At most a page in every kernel (VMCOREINFO_BYTES is PAGE_SIZE); more is not VMCOREINFO.
    public static let maxBytes = 65536

    public func symbol(_ name: String) -> UInt64? { symbols[name] }
    public func offset(_ path: String) -> Int? { offsets[path] }
    public func size(_ type: String) -> Int? { sizes[type] }

    public init(text bytes: [UInt8]) throws(KernelDataError) {
        guard bytes.count <= Self.maxBytes else { throw KernelDataError("VMCOREINFO", "\(bytes.count) bytes: larger than any kernel writes (\(Self.maxBytes))") }
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        var lines = bytes[..<end].split(separator: 0x0a, omittingEmptySubsequences: false)
        // Text that does not end in a newline was cut: the last line may be partial.
        let truncated = !(lines.last?.isEmpty ?? true)
        lines.removeLast()
        var release: String?, buildID: String?, pageSize: Int?, kernelOffset: UInt64?
        var symbols: [String: UInt64] = [:], offsets: [String: Int] = [:], sizes: [String: Int] = [:]
        var lengths: [String: Int] = [:], numbers: [String: Int64] = [:], other: [String: String] = [:]
        var ignored = 0
        for raw in lines where !raw.isEmpty {
            guard let eq = raw.firstIndex(of: UInt8(ascii: "=")), raw.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else { ignored += 1; continue }
            let key = String(decoding: raw[..<eq], as: UTF8.self)
            let value = String(decoding: raw[(eq + 1)...], as: UTF8.self)
            func inner(_ prefix: String) -> String? {
                guard key.hasPrefix(prefix + "("), key.hasSuffix(")"), key.count > prefix.count + 2 else { return nil }
                return String(key.dropFirst(prefix.count + 1).dropLast())
            }
            var ok = true
            if let name = inner("SYMBOL") {
                if let v = Self.hex(value) { symbols[name] = v } else { ok = false }
            } else if let name = inner("OFFSET") {
                if let v = Self.count(value) { offsets[name] = v } else { ok = false }
            } else if let name = inner("SIZE") {
                if let v = Self.count(value) { sizes[name] = v } else { ok = false }
            } else if let name = inner("LENGTH") {
                if let v = Self.count(value) { lengths[name] = v } else { ok = false }
            } else if let name = inner("NUMBER") {
                if let v = Self.number(value) { numbers[name] = v } else { ok = false }
            } else {
                switch key {
                case "OSRELEASE":
                    ok = !value.isEmpty && value.count <= 64
                    if ok, release == nil { release = value }
                case "BUILD-ID":
                    ok = value.count <= 128 && value.count % 2 == 0 && value.allSatisfy(\.isHexDigit)
                    if ok { buildID = value.lowercased() }
                case "PAGESIZE":
                    let v = Int(value)
                    ok = v.map { $0 >= 4096 && $0 <= 1 << 20 && $0 & ($0 - 1) == 0 } ?? false
                    if ok, pageSize == nil { pageSize = v }
                case "KERNELOFFSET":
                    // KASLR moves the image up, in steps of at least 64 KiB, by less than
                    // 2^47 (arm64's bound, the largest): anything else is not an offset.
                    let v = Self.hex(value)
                    ok = v.map { $0 < 1 << 47 && $0 & 0xffff == 0 } ?? false
                    if ok { kernelOffset = v }
                default: other[key] = value
                }
            }
            if !ok { ignored += 1 }
        }
        guard let release else { throw KernelDataError("VMCOREINFO", truncated && lines.isEmpty ? "cut before its first line ended" : "no OSRELEASE line") }
        guard let pageSize else { throw KernelDataError("VMCOREINFO", "no usable PAGESIZE line\(truncated ? " (the text is cut mid-line)" : "")") }
        self.osRelease = release
        self.buildID = buildID
        self.pageSize = pageSize
        self.kernelOffset = kernelOffset
        self.symbols = symbols
        self.offsets = offsets
        self.sizes = sizes
        self.lengths = lengths
        self.numbers = numbers
        self.other = other
        self.ignoredLines = ignored
        self.truncated = truncated
    }

    static func hex(_ s: String) -> UInt64? {
        var d = Substring(s)
        if d.hasPrefix("0x") { d = d.dropFirst(2) }
        guard !d.isEmpty, d.count <= 16 else { return nil }
        return UInt64(d, radix: 16)
    }

    /// OFFSET/SIZE/LENGTH: small non-negative decimals (no struct the readers use is > 1 GiB).
    static func count(_ s: String) -> Int? {
        guard s.count <= 10, let v = Int(s), v >= 0, v <= 1 << 30 else { return nil }
        return v
    }

    static func number(_ s: String) -> Int64? {
        if s.hasPrefix("0x") { return hex(s).map { Int64(bitPattern: $0) } }
        return s.count <= 20 ? Int64(s) : nil
    }
}

extension VMCoreInfo {
    /// Keys a reader cannot do without: their absence is an error naming the key.
    public func required(symbol name: String, for reader: String) throws(KernelDataError) -> UInt64 {
        guard let v = symbols[name] else { throw KernelDataError(reader, "VMCOREINFO has no SYMBOL(\(name))") }
        return v
    }
    public func required(offset path: String, for reader: String) throws(KernelDataError) -> Int {
        guard let v = offsets[path] else { throw KernelDataError(reader, "VMCOREINFO has no OFFSET(\(path))") }
        return v
    }
    public func required(size type: String, for reader: String) throws(KernelDataError) -> Int {
        guard let v = sizes[type] else { throw KernelDataError(reader, "VMCOREINFO has no SIZE(\(type))") }
        return v
    }
}
