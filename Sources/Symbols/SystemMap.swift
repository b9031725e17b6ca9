#if canImport(Glibc)
import Glibc
#endif
import SafeFile

/// A kernel symbol table in System.map (or /proc/kallsyms) format.
///
/// Parsing follows upstream xenctx's `read_symbol_table`: `ADDR TYPE NAME`, types U/v/w
/// skipped, absolute symbols (A/a) not inserted but still allowed to set the markers.
/// Unlike upstream the table is sorted once (O(log n) lookup), and a kallsyms `[module]`
/// suffix is split off the name.
///
/// Storage is compact: the addresses in one array, each name as a reference into one byte
/// buffer (a System.map's own bytes, kept as read: names are not copied out line by line).
/// A `Symbol` is made only when one is asked for.
public struct SystemMap: Sendable {
    public struct Symbol: Sendable, Equatable {
        public let address: UInt64
        public let name: String
        /// The module a kallsyms line named (`name [module]`), nil for the kernel image.
        public let module: String?

        public init(address: UInt64, name: String, module: String?) {
            self.address = address
            self.name = name
            self.module = module
        }
    }

    /// Sorted by address; equal addresses keep their order (file order, or kallsyms').
    private(set) var addressList: [UInt64] = []
    /// Each symbol's name: start in `nameBytes` (bits 0–31), length (32–47) and module
    /// (48–63: 0 for the kernel image, else an index + 1 into `moduleNames`).
    private(set) var refs: [UInt64] = []
    private(set) var nameBytes = NameStorage.array([])
    /// Each name's length (low 8 bits) and last byte (high 8 bits), beside `refs`: a name
    /// lookup scans this small array, not the names scattered through the file.
    private(set) var nameKeys: [UInt16] = []
    private(set) var moduleNames: [String] = []

    /// The symbols in address order, made on access.
    public var symbols: Symbols { Symbols(map: self) }

    public struct Symbols: RandomAccessCollection, Sendable {
        let map: SystemMap
        public var startIndex: Int { 0 }
        public var endIndex: Int { map.addressList.count }
        public subscript(i: Int) -> Symbol { map.symbol(at: i) }
    }

    /// The markers upstream reads; 0 when absent (upstream's globals start at 0).
    public private(set) var stext: UInt64 = 0, etext: UInt64 = 0
    public private(set) var sinittext: UInt64 = 0, einittext: UInt64 = 0
    public private(set) var text: UInt64 = 0
    public private(set) var end: UInt64? = nil
    public private(set) var hypercallPage: UInt64 = 0
    /// Lines that were not symbol lines (reported, not fatal: upstream skips them too).
    public private(set) var skippedLines = 0

    /// Which of several symbols at one address names the addresses after it. Upstream's
    /// `lookup_symbol` takes the last in file order; the kernel (`get_symbol_pos`) the
    /// first in kallsyms order, which puts plain names before `__section_start` markers.
    public enum AliasRule: Sendable { case last, first }
    public var aliasRule: AliasRule = .last

    public enum LoadError: Error, CustomStringConvertible, Equatable {
        case cannotRead(path: String, reason: String)
        case noSymbols(path: String)
        case notASymbolTable(path: String, reason: String)
        public var description: String {
            switch self {
            case .cannotRead(let path, let reason): return "cannot read symbol table \(path): \(reason)"
            case .noSymbols(let path): return "\(path) has no symbol lines (expected `ADDRESS TYPE NAME`, as in System.map): is it the right file?"
            case .notASymbolTable(let path, let reason): return "\(path) is not a symbol table: \(reason)"
            }
        }
    }

    /// Where the names' bytes are: built up (kallsyms, an ELF symbol table), or a
    /// System.map's own bytes, mapped and never copied.
    enum NameStorage: @unchecked Sendable {   // immutable; a borrowed buffer's owner keeps it
        case array([UInt8])
        case mapped(ReadOnlyMapping)
        /// Bytes owned elsewhere (an ELF's string table), valid while `owner` lives.
        case borrowed(UnsafeBufferPointer<UInt8>, owner: any Sendable)

        func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
            switch self {
            case .array(let a): return try a.withUnsafeBufferPointer(body)
            case .mapped(let m): return try body(m.bytes)
            case .borrowed(let b, _): return try body(b)
            }
        }

        var array: [UInt8] {
            switch self {
            case .array(let a): return a
            case .mapped(let m): return Array(m.bytes)
            case .borrowed(let b, _): return Array(b)
            }
        }
    }

    // MARK: - Building

    /// Collects symbols, then sorts them once (only when they are out of order).
    struct Builder {
        var addresses: [UInt64] = []
        var refs: [UInt64] = []
        var keys: [UInt16] = []
        var bytes: [UInt8]
        var modules: [String] = []
        var moduleIndex: [String: Int] = [:]
        var markers: [(UInt8, UInt64)] = []   // (marker id, address)
        var inOrder = true
        /// The marker names, held here: a static read per line costs a `swift_once` call.
        let markerNames = SystemMap.markers

        init(bytes: [UInt8] = [], capacity: Int = 0) {
            self.bytes = bytes
            addresses.reserveCapacity(capacity)
            refs.reserveCapacity(capacity)
            keys.reserveCapacity(capacity)
        }

        mutating func add(address: UInt64, nameStart: Int, nameLength: Int, lastByte: UInt8, module: Int) {
            if let last = addresses.last, address < last { inOrder = false }
            addresses.append(address)
            refs.append(UInt64(UInt32(truncatingIfNeeded: nameStart)) | UInt64(min(nameLength, 0xffff)) << 32 | UInt64(module) << 48)
            keys.append(SystemMap.nameKey(count: nameLength, last: lastByte))
        }

        /// A name that is not in `bytes` yet: appended.
        mutating func add(address: UInt64, name: some Collection<UInt8>, module: String? = nil) {
            let start = bytes.count
            bytes.append(contentsOf: name)
            add(address: address, nameStart: start, nameLength: bytes.count - start, lastByte: bytes.last ?? 0, module: moduleID(module))
        }

        mutating func moduleID(_ module: String?) -> Int {
            guard let module else { return 0 }
            if let i = moduleIndex[module] { return i + 1 }
            guard modules.count < 0xfffe else { return 0 }
            modules.append(module)
            moduleIndex[module] = modules.count - 1
            return modules.count
        }

        mutating func marker(_ name: UnsafeBufferPointer<UInt8>, _ address: UInt64) {
            if let id = SystemMap.markerID(name, markers: markerNames) { markers.append((id, address)) }
        }
    }

    init(_ b: Builder, skippedLines: Int) {
        var b = b
        if !b.inOrder {
            // Stable by address: equal addresses keep their order.
            let order = RadixOrder.stable(b.addresses)
            b.addresses = order.map { b.addresses[Int($0)] }
            b.refs = order.map { b.refs[Int($0)] }
            b.keys = order.map { b.keys[Int($0)] }
        }
        addressList = b.addresses
        refs = b.refs
        nameKeys = b.keys
        nameBytes = .array(b.bytes)
        moduleNames = b.modules
        self.skippedLines = skippedLines
        for (id, address) in b.markers {
            switch id {
            case 0: stext = address
            case 1: etext = address
            case 2: text = address
            case 3, 4: end = address
            case 5: sinittext = address
            case 6: einittext = address
            case 7: hypercallPage = address
            default: break
            }
        }
    }

    /// Parses the bytes of a System.map in one pass, keeping them as the name storage.
    public init(bytes: some Collection<UInt8>, path: String = "System.map") throws(LoadError) {
        let data = bytes as? [UInt8] ?? Array(bytes)
        var b = Builder(bytes: data, capacity: data.count / 40)
        let skipped = data.withUnsafeBufferPointer { SystemMap.parse($0, into: &b) }
        guard !b.addresses.isEmpty else { throw .noSymbols(path: path) }
        self.init(b, skippedLines: skipped)
    }

    /// Parses a mapped System.map in place: its names stay in the mapping.
    init(mapping: ReadOnlyMapping, path: String) throws(LoadError) {
        var b = Builder(capacity: mapping.bytes.count / 40)
        let skipped = SystemMap.parse(mapping.bytes, into: &b)
        guard !b.addresses.isEmpty else { throw .noSymbols(path: path) }
        self.init(b, skippedLines: skipped)
        nameBytes = .mapped(mapping)
    }

    /// One pass over a System.map's lines; the names are recorded as ranges of `buf`.
    /// Returns the lines that were not symbol lines.
    static func parse(_ buf: UnsafeBufferPointer<UInt8>, into b: inout Builder) -> Int {
        guard let base = buf.baseAddress else { return 0 }
        var skipped = 0
        let n = buf.count
        SystemMap.hexDigits.withUnsafeBufferPointer { hexTable in
            let hex = hexTable.baseAddress!   // 256 entries: any byte indexes it
            var lineStart = 0
            var lastModule: (range: Range<Int>, id: Int)? = nil
            while lineStart < n {
                let address: UInt64, type: UInt8, nameStart: Int, lineEnd: Int
                let p = base + lineStart
                // The shape of almost every line, `<16 hex digits> T name\n`, read without
                // bounds checks per byte: the digits in one unrolled pass, then the newline.
                if n - lineStart > 19, p[16] == 0x20, p[18] == 0x20, case let t = p[17], (t | 0x20) &- 0x61 < 26,
                   let a = SystemMap.hex16(p, hex) {
                    address = a; type = t; nameStart = lineStart + 19
                    lineEnd = SystemMap.newline(base, from: nameStart, to: n)
                } else {
                    lineEnd = SystemMap.newline(base, from: lineStart, to: n)
                    guard let (a, t, s, _) = SystemMap.parseLine(buf, lineStart, lineEnd, hex: hexTable) else {
                        if lineEnd > lineStart { skipped += 1 }
                        lineStart = lineEnd + 1
                        continue
                    }
                    address = a; type = t; nameStart = s
                }
                var nameEnd = lineEnd
                if nameEnd > nameStart && base[nameEnd - 1] == 0x0d { nameEnd -= 1 }
                if nameEnd <= nameStart {   // as parseLine: a line with no name is not a symbol line
                    skipped += 1
                    lineStart = lineEnd + 1
                    continue
                }
                switch type {
                case UInt8(ascii: "U"), UInt8(ascii: "v"), UInt8(ascii: "w"):
                    break
                default:
                    if type != UInt8(ascii: "A") && type != UInt8(ascii: "a") {
                        var end = nameEnd, module = 0
                        if base[nameEnd - 1] == UInt8(ascii: "]"), let (e, m) = SystemMap.moduleSuffix(buf, nameStart, nameEnd) {
                            end = e
                            // kallsyms lists a module's symbols together: the last module's
                            // id is reused while the name is the same (no String per line).
                            if let last = lastModule, last.range.count == m.count,
                               memcmp(base + last.range.lowerBound, base + m.lowerBound, m.count) == 0 {
                                module = last.id
                            } else {
                                module = b.moduleID(String(decoding: UnsafeBufferPointer(rebasing: buf[m]), as: UTF8.self))
                                lastModule = (m, module)
                            }
                        }
                        b.add(address: address, nameStart: nameStart, nameLength: end - nameStart, lastByte: end > nameStart ? base[end - 1] : 0, module: module)
                    }
                    b.marker(UnsafeBufferPointer(start: base + nameStart, count: nameEnd - nameStart), address)
                }
                lineStart = lineEnd + 1
            }
        }
        return skipped
    }

    /// Sixteen hex digits at `p` (which has at least 16 readable bytes), nil if any is not one.
    @inline(__always)
    static func hex16(_ p: UnsafePointer<UInt8>, _ hex: UnsafePointer<UInt8>) -> UInt64? {
        // Validity by table (sixteen independent loads); the value eight digits at a time.
        var bad: UInt8 = 0
        for k in 0..<16 { bad |= hex[Int(p[k])] }
        guard bad & 0xf0 == 0 else { return nil }
        let raw = UnsafeRawPointer(p)
        return hex8(UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))) << 32
            | hex8(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }

    /// Eight valid hex digits, the first in the low byte, as their 32-bit value.
    @inline(__always)
    static func hex8(_ x: UInt64) -> UInt64 {
        // '0'–'9' are 0x30–0x39, 'a'–'f' and 'A'–'F' 0x61–0x66 and 0x41–0x46: the low
        // nibble, plus 9 where bit 6 marks a letter.
        let v = (x & 0x0f0f_0f0f_0f0f_0f0f) &+ ((x >> 6) & 0x0101_0101_0101_0101) &* 9
        // Pack the nibbles, first digit most significant: pairs, then quads, then the eight.
        let pairs = ((v << 4) | (v >> 8)) & 0x00ff_00ff_00ff_00ff
        let quads = ((pairs << 8) | (pairs >> 16)) & 0x0000_ffff_0000_ffff
        return ((quads << 16) | (quads >> 32)) & 0xffff_ffff
    }

    /// The index of the next newline in [from, to), else `to`. Names are short: a
    /// byte loop beats a memchr call per line.
    @inline(__always)
    static func newline(_ base: UnsafePointer<UInt8>, from: Int, to: Int) -> Int {
        var i = from
        // Eight bytes at a time while they fit: a word with no 0x0a byte is passed over whole.
        while i + 8 <= to {
            let w = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)) ^ 0x0a0a_0a0a_0a0a_0a0a
            let zero = (w &- 0x0101_0101_0101_0101) & ~w & 0x8080_8080_8080_8080
            if zero != 0 { return i + zero.trailingZeroBitCount >> 3 }
            i += 8
        }
        while i < to && base[i] != 0x0a { i += 1 }
        return i
    }

    /// A table from an ELF symbol table (`--vmlinux`) read in place: `symbol(i)` gives the
    /// address, the System.map type letter and the name's bytes (valid for the call) of
    /// entry i, or nil. Types U/v/w are skipped and A/a only set markers, as in a System.map.
    /// With `strings` (where every name lies, kept alive by its owner) names are referred
    /// to where they are, else copied.
    public init(count: Int, path: String, strings: (bytes: UnsafeBufferPointer<UInt8>, owner: any Sendable)? = nil,
                symbol: (Int) -> (address: UInt64, type: UInt8, name: UnsafeBufferPointer<UInt8>)?) throws(LoadError) {
        var b = Builder(capacity: 0)
        var addresses: [UInt64] = [], refs: [UInt64] = [], keys: [UInt16] = []
        var minor: [UInt16] = []   // weak (bit 8) | leading underscores
        addresses.reserveCapacity(count); refs.reserveCapacity(count); keys.reserveCapacity(count); minor.reserveCapacity(count)
        // The strings' bounds out of the loop: the optional tuple (with an existential) would be
        // copied, retained and released per symbol.
        let borrowing = strings != nil
        let stringsBase = strings?.bytes.baseAddress, stringsCount = strings?.bytes.count ?? 0
        if !borrowing { b.bytes.reserveCapacity(count * 24) }
        for i in 0..<max(0, count) {
            guard let e = symbol(i) else { continue }
            if e.type == UInt8(ascii: "U") || e.type == UInt8(ascii: "v") || e.type == UInt8(ascii: "w") { continue }
            b.marker(e.name, e.address)
            guard e.type != UInt8(ascii: "A") && e.type != UInt8(ascii: "a") else { continue }
            let start: Int
            if borrowing {
                guard let p = e.name.baseAddress, let base = stringsBase, p >= base,
                      e.name.count <= stringsCount - (p - base) else { continue }   // not where promised: dropped
                start = p - base
            } else {
                start = b.bytes.count
                b.bytes.append(contentsOf: e.name)
            }
            guard start <= Int(UInt32.max) else { continue }
            let underscores = min(255, e.name.prefix { $0 == UInt8(ascii: "_") }.count)
            let weak: UInt16 = e.type == UInt8(ascii: "W") || e.type == UInt8(ascii: "V") ? 256 : 0
            addresses.append(e.address)
            minor.append(weak | UInt16(underscores))
            refs.append(UInt64(start) | UInt64(min(e.name.count, 0xffff)) << 32)
            keys.append(SystemMap.nameKey(count: e.name.count, last: e.name.last ?? 0))
        }
        guard !addresses.isEmpty else { throw .noSymbols(path: path) }
        // Aliases in the order the kernel's kallsyms gives them (scripts/kallsyms.c:
        // strong before weak, fewer leading underscores first), and named by the first, as
        // the kernel names an address: `sys_openat`, not its alias `__se_sys_openat`.
        let order = RadixOrder.stable(addresses, from: RadixOrder.stable(small: minor))
        b.addresses = order.map { addresses[Int($0)] }
        b.refs = order.map { refs[Int($0)] }
        b.keys = order.map { keys[Int($0)] }
        self.init(b, skippedLines: 0)
        if let strings { nameBytes = .borrowed(strings.bytes, owner: strings.owner) }
        aliasRule = .first
    }

    /// A table from parallel arrays (the kernel's kallsyms, decoded): name i is
    /// `nameBytes[nameEnds[i-1] ..< nameEnds[i]]` (kept as the name storage, not copied);
    /// no `[module]` suffixes to split, the same type rules as a System.map.
    public init(addresses: [UInt64], types: [UInt8], nameBytes: [UInt8], nameEnds: [Int32], path: String) throws(LoadError) {
        let count = min(addresses.count, types.count, nameEnds.count)
        var b = Builder(bytes: nameBytes, capacity: count)
        var start = 0
        nameBytes.withUnsafeBufferPointer { bytes in
            for i in 0..<count {
                let end = Int(nameEnds[i])
                guard end >= start, end <= bytes.count else { break }   // ends must ascend within the bytes
                defer { start = end }
                switch types[i] {
                case UInt8(ascii: "U"), UInt8(ascii: "v"), UInt8(ascii: "w"): continue
                case UInt8(ascii: "A"), UInt8(ascii: "a"): break
                default: b.add(address: addresses[i], nameStart: start, nameLength: end - start, lastByte: end > start ? bytes[end - 1] : 0, module: 0)
                }
                b.marker(UnsafeBufferPointer(rebasing: bytes[start..<end]), addresses[i])
            }
        }
        guard !b.addresses.isEmpty else { throw .noSymbols(path: path) }
        self.init(b, skippedLines: 0)
        aliasRule = .first
    }

    /// The markers, by id: _stext _etext _text _end __bss_stop _sinittext _einittext hypercall_page.
    static let markers: [[UInt8]] = ["_stext", "_etext", "_text", "_end", "__bss_stop", "_sinittext", "_einittext", "hypercall_page"].map { Array($0.utf8) }

    static func markerID(_ name: UnsafeBufferPointer<UInt8>, markers: [[UInt8]]) -> UInt8? {
        // Every marker starts with "_" or "h", most names fail at the first byte,
        // and is 4, 5, 6, 10 or 14 bytes long.
        guard name.count <= 14, (1 << name.count) & 0b100_0100_0111_0000 != 0,
              let first = name.first, first == UInt8(ascii: "_") || first == UInt8(ascii: "h") else { return nil }
        for (i, m) in markers.enumerated() where m.count == name.count && m.elementsEqual(name) { return UInt8(i) }
        return nil
    }

    /// `ADDR<space>TYPE<space>NAME`, as upstream's strtoull/isspace/isalpha checks accept
    /// it; the name as a range of `buf`. `hex` is `hexDigits`, passed in so that the
    /// per-digit lookup does not go through the static's lazy initialisation check.
    static func parseLine(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, hex: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt8, Int, Int)? {
        var i = start
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0d || c == 0x0b || c == 0x0c }
        while i < end && isSpace(buf[i]) { i += 1 }
        if i + 1 < end && buf[i] == UInt8(ascii: "0") && (buf[i + 1] | 0x20) == UInt8(ascii: "x") { i += 2 }
        var address: UInt64 = 0
        var digits = 0
        while i < end, case let d = hex[Int(buf[i])], d != 0xff {
            if digits < 16 { address = address << 4 | UInt64(d) } else { address = ~0 }  // strtoull saturates
            digits += 1
            i += 1
        }
        guard digits > 0, i + 2 < end, isSpace(buf[i]) else { return nil }
        let type = buf[i + 1]
        let isAlpha = (type | 0x20) >= UInt8(ascii: "a") && (type | 0x20) <= UInt8(ascii: "z")
        guard isAlpha || type == UInt8(ascii: "?"), isSpace(buf[i + 2]) else { return nil }
        var nameEnd = end
        if nameEnd > i + 3 && buf[nameEnd - 1] == 0x0d { nameEnd -= 1 }
        guard nameEnd > i + 3 else { return nil }
        return (address, type, i + 3, nameEnd)
    }

    /// Each byte's value as a hex digit, 0xff for a byte that is none.
    static let hexDigits: [UInt8] = (0..<256).map { c -> UInt8 in
        switch UInt8(c) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt8(c) - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt8(c) - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt8(c) - UInt8(ascii: "A") + 10
        default: return 0xff
        }
    }

    /// kallsyms appends `\t[module]`: where the function name ends, and where the module's
    /// name is in `buf`; nil when the line has no such suffix.
    static func moduleSuffix(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> (Int, Range<Int>)? {
        guard end - start >= 3, buf[end - 1] == UInt8(ascii: "]") else { return nil }
        var open = end - 2
        while open > start && buf[open] != UInt8(ascii: "[") { open -= 1 }
        guard buf[open] == UInt8(ascii: "["), open + 1 < end - 1 else { return nil }
        var nameEnd = open
        while nameEnd > start && (buf[nameEnd - 1] == 0x20 || buf[nameEnd - 1] == 0x09) { nameEnd -= 1 }
        guard nameEnd > start else { return nil }
        return (nameEnd, (open + 1)..<(end - 1))
    }

    // MARK: - Reading

    func nameRange(_ i: Int) -> Range<Int> {
        let r = refs[i]
        let start = Int(r & 0xffff_ffff)
        return start..<(start + Int((r >> 32) & 0xffff))
    }

    func moduleName(_ i: Int) -> String? {
        let m = Int(refs[i] >> 48)
        return m == 0 ? nil : moduleNames[m - 1]
    }

    func symbol(at i: Int) -> Symbol {
        let name = nameBytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[nameRange(i)]), as: UTF8.self) }
        return Symbol(address: addressList[i], name: name, module: moduleName(i))
    }

    /// The symbol upstream's `lookup_symbol` picks: the first symbol at exactly `address`,
    /// else the last one below it. Nil below the first symbol, and nil where the answer
    /// would be meaningless (see `isPlausible`), where upstream prints `sym+0xhuge`.
    public func lookup(_ address: UInt64) -> (symbol: Symbol, offset: UInt64)? {
        // First index whose address >= address.
        var lo = 0, hi = addressList.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if addressList[mid] < address { lo = mid + 1 } else { hi = mid }
        }
        if lo < addressList.count && addressList[lo] == address { return (symbol(at: lo), 0) }
        guard lo > 0 else { return nil }
        var i = lo - 1
        // A module's symbols come from its own table, where the kernel names an address by
        // the first symbol at it (`test_lockup_init`, not its alias `init_module`), whatever
        // rule the map the table was merged into follows.
        if aliasRule == .first || refs[i] >> 48 != 0 {
            // Back to the first alias (bounded: aliases are a handful).
            var steps = 0
            while i > 0 && addressList[i - 1] == addressList[i] && steps < 64 { i -= 1; steps += 1 }
        }
        let offset = address - addressList[i]
        guard isPlausible(address: address, isModule: refs[i] >> 48 != 0, offset: offset) else { return nil }
        return (symbol(at: i), offset)
    }

    /// Whether `symbol+offset` can name `address`: inside the kernel image [_text, _end]
    /// when the map has those markers; for module symbols or maps without markers, within
    /// 1 MiB of the symbol (no function or object in a kernel is larger).
    func isPlausible(address: UInt64, isModule: Bool, offset: UInt64) -> Bool {
        if !isModule, text != 0, let end {
            return address >= text && address <= end
        }
        return offset < 0x10_0000
    }
}

extension SystemMap {
    /// The same table with every address moved by `offset` (a KASLR load offset).
    public func shifted(by offset: UInt64) -> SystemMap {
        guard offset != 0 else { return self }
        var copy = self
        copy.addressList = addressList.map { $0 &+ offset }
        func move(_ a: UInt64) -> UInt64 { a == 0 ? 0 : a &+ offset }
        copy.stext = move(stext); copy.etext = move(etext)
        copy.sinittext = move(sinittext); copy.einittext = move(einittext)
        copy.text = move(text); copy.end = end.map(move); copy.hypercallPage = move(hypercallPage)
        return copy
    }

    /// The table with `extra` symbols (a module's, read from guest memory) added in order.
    public func merging(_ extra: [Symbol]) -> SystemMap {
        guard !extra.isEmpty else { return self }
        // One merge pass: the table is sorted, the extra few are sorted first (stably).
        let added = extra.enumerated().sorted { ($0.element.address, $0.offset) < ($1.element.address, $1.offset) }.map(\.element)
        var b = Builder(bytes: nameBytes.array, capacity: addressList.count + added.count)
        b.modules = moduleNames
        for (i, m) in moduleNames.enumerated() { b.moduleIndex[m] = i }
        var i = 0, j = 0
        while i < addressList.count || j < added.count {
            if j == added.count || (i < addressList.count && addressList[i] <= added[j].address) {
                b.addresses.append(addressList[i]); b.refs.append(refs[i]); b.keys.append(nameKeys[i]); i += 1
            } else {
                b.add(address: added[j].address, name: added[j].name.utf8, module: added[j].module); j += 1
            }
        }
        var copy = self
        copy.addressList = b.addresses
        copy.refs = b.refs
        copy.nameKeys = b.keys
        copy.nameBytes = .array(b.bytes)
        copy.moduleNames = b.modules
        return copy
    }

    /// Whether symbol `i`'s name is `name` (compared in place).
    func nameEquals(_ i: Int, _ name: [UInt8]) -> Bool {
        let r = nameRange(i)
        guard r.count == name.count else { return false }
        return nameBytes.withUnsafeBufferPointer { $0[r].elementsEqual(name) }
    }

    public func address(of name: String) -> UInt64? {
        let wanted = Array(name.utf8)
        return addressList.indices.first { nameEquals($0, wanted) }.map { addressList[$0] }
    }

    /// A name's lookup key: its length (low 8 bits) and last byte.
    static func nameKey(count: Int, last: UInt8) -> UInt16 { UInt16(truncatingIfNeeded: count) | UInt16(last) << 8 }

    /// The first address of each of `names`, in one pass over the table.
    public func addresses(of names: Set<String>) -> [String: UInt64] {
        var found: [String: UInt64] = [:]
        // Keys (length and last byte) first, one bit each in a table: almost every symbol is
        // passed over on its 2-byte key, the few that match are compared whole (first bytes
        // would not sort them out: "_" starts a third of a kernel's names).
        let wanted = names.map { Array($0.utf8) }.filter { !$0.isEmpty && $0.count < 256 }
        let wantedKeys = wanted.map { SystemMap.nameKey(count: $0.count, last: $0.last!) }
        var bits = [UInt64](repeating: 0, count: 1024)
        for h in wantedKeys { bits[Int(h) >> 6] |= 1 << UInt64(h & 63) }
        var remaining = wanted.count
        nameBytes.withUnsafeBufferPointer { bytes in nameKeys.withUnsafeBufferPointer { keys in bits.withUnsafeBufferPointer { bits in
            for i in 0..<keys.count where remaining > 0 {
                let h = keys[i]
                guard bits[Int(h) >> 6] & (1 << UInt64(h & 63)) != 0 else { continue }
                // A few dozen names at most are asked for: a scan of their keys, no hashing.
                let name = UnsafeBufferPointer(rebasing: bytes[nameRange(i)])
                for k in wantedKeys.indices where wantedKeys[k] == h && name.elementsEqual(wanted[k]) {
                    let name = String(decoding: wanted[k], as: UTF8.self)
                    if found[name] == nil { found[name] = addressList[i]; remaining -= 1 }
                }
            }
        } } }
        return found
    }
}
