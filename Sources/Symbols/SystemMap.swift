/// A kernel symbol table in System.map (or /proc/kallsyms) format.
///
/// Parsing follows upstream xenctx's `read_symbol_table`: `ADDR TYPE NAME`, types U/v/w
/// skipped, absolute symbols (A/a) not inserted but still allowed to set the markers.
/// Unlike upstream the table is an array sorted once (O(log n) lookup), and a kallsyms
/// `[module]` suffix is split off the name.
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

    /// Sorted by address; equal addresses keep file order.
    public private(set) var symbols: [Symbol]
    /// The markers upstream reads; 0 when absent (upstream's globals start at 0).
    public private(set) var stext: UInt64 = 0, etext: UInt64 = 0
    public private(set) var sinittext: UInt64 = 0, einittext: UInt64 = 0
    public private(set) var text: UInt64 = 0
    public private(set) var end: UInt64? = nil
    public private(set) var hypercallPage: UInt64 = 0
    /// Lines that were not symbol lines (reported, not fatal: upstream skips them too).
    public let skippedLines: Int

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

    /// Parses the bytes of a System.map.
    public init(bytes: some Collection<UInt8>, path: String = "System.map") throws(LoadError) {
        var parsed: [Symbol] = []
        var skipped = 0
        var markers: [(String, UInt64)] = []
        let data = Array(bytes)
        parsed.reserveCapacity(data.count / 40)
        var lineStart = 0
        data.withUnsafeBufferPointer { buf in
            let n = buf.count
            while lineStart < n {
                var lineEnd = lineStart
                while lineEnd < n && buf[lineEnd] != 0x0a { lineEnd += 1 }
                if let entry = SystemMap.parseLine(buf, lineStart, lineEnd) {
                    let (address, type, name) = entry
                    switch type {
                    case UInt8(ascii: "U"), UInt8(ascii: "v"), UInt8(ascii: "w"):
                        break
                    default:
                        if type != UInt8(ascii: "A") && type != UInt8(ascii: "a") {
                            parsed.append(SystemMap.symbol(address: address, rawName: name))
                        }
                        if SystemMap.markerNames.contains(name) { markers.append((name, address)) }
                    }
                } else if lineEnd > lineStart {
                    skipped += 1
                }
                lineStart = lineEnd + 1
            }
        }
        guard !parsed.isEmpty else { throw .noSymbols(path: path) }
        self.init(sorting: parsed, markers: markers, skippedLines: skipped)
    }

    /// A table from an ELF symbol table (`--vmlinux`): (address, System.map type letter, name).
    public init(entries: [(address: UInt64, type: Character, name: String)], path: String) throws(LoadError) {
        var parsed: [Symbol] = []
        var markers: [(String, UInt64)] = []
        parsed.reserveCapacity(entries.count)
        var weak: [Bool] = []
        for e in entries {
            if e.type == "U" || e.type == "v" || e.type == "w" { continue }
            if e.type != "A" && e.type != "a" {
                parsed.append(SystemMap.symbol(address: e.address, rawName: e.name))
                weak.append(e.type == "W" || e.type == "V")
            }
            if SystemMap.mayBeMarker(e.name), SystemMap.markerNames.contains(e.name) { markers.append((e.name, e.address)) }
        }
        guard !parsed.isEmpty else { throw .noSymbols(path: path) }
        // Aliases in the order the kernel's kallsyms gives them (scripts/kallsyms.c:
        // strong before weak, fewer leading underscores first), and named by the first, as
        // the kernel names an address: `sys_openat`, not its alias `__se_sys_openat`.
        func underscores(_ n: String) -> Int { n.utf8.prefix { $0 == UInt8(ascii: "_") }.count }
        let order = parsed.indices.sorted {
            (parsed[$0].address, weak[$0] ? 1 : 0, underscores(parsed[$0].name), $0) < (parsed[$1].address, weak[$1] ? 1 : 0, underscores(parsed[$1].name), $1)
        }
        parsed = order.map { parsed[$0] }
        self.init(sorting: parsed, markers: markers, skippedLines: 0)
        aliasRule = .first
    }

    /// A table from parallel arrays (the kernel's kallsyms, decoded): no `[module]`
    /// suffixes to split, the same type rules as a System.map.
    public init(addresses: [UInt64], types: [UInt8], names: [String], path: String) throws(LoadError) {
        var parsed: [Symbol] = []
        parsed.reserveCapacity(names.count)
        var markers: [(String, UInt64)] = []
        for i in 0..<min(addresses.count, types.count, names.count) {
            switch types[i] {
            case UInt8(ascii: "U"), UInt8(ascii: "v"), UInt8(ascii: "w"): continue
            case UInt8(ascii: "A"), UInt8(ascii: "a"): break
            default: parsed.append(Symbol(address: addresses[i], name: names[i], module: nil))
            }
            if SystemMap.mayBeMarker(names[i]), SystemMap.markerNames.contains(names[i]) { markers.append((names[i], addresses[i])) }
        }
        guard !parsed.isEmpty else { throw .noSymbols(path: path) }
        self.init(sorting: parsed, markers: markers, skippedLines: 0)
        aliasRule = .first
    }

    private init(sorting parsed: [Symbol], markers: [(String, UInt64)], skippedLines skipped: Int) {
        var parsed = parsed
        // Stable by address: System.map is sorted already, so this is one cheap pass.
        if !parsed.indices.dropFirst().allSatisfy({ parsed[$0 - 1].address <= parsed[$0].address }) {
            parsed = parsed.enumerated().sorted { ($0.element.address, $0.offset) < ($1.element.address, $1.offset) }.map(\.element)
        }
        symbols = parsed
        skippedLines = skipped
        for (name, address) in markers {
            switch name {
            case "_stext": stext = address
            case "_etext": etext = address
            case "_text": text = address
            case "_end", "__bss_stop": end = address
            case "_sinittext": sinittext = address
            case "_einittext": einittext = address
            case "hypercall_page": hypercallPage = address
            default: break
            }
        }
    }

    static let markerNames: Set<String> = ["_stext", "_etext", "_text", "_end", "__bss_stop", "_sinittext", "_einittext", "hypercall_page"]
    /// A cheap first test before hashing: every marker starts with "_" or "h".
    static func mayBeMarker(_ name: String) -> Bool {
        let first = name.utf8.first
        return first == UInt8(ascii: "_") || first == UInt8(ascii: "h")
    }

    /// `ADDR<space>TYPE<space>NAME`, as upstream's strtoull/isspace/isalpha checks accept it.
    static func parseLine(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> (UInt64, UInt8, String)? {
        var i = start
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0d || c == 0x0b || c == 0x0c }
        while i < end && isSpace(buf[i]) { i += 1 }
        if i + 1 < end && buf[i] == UInt8(ascii: "0") && (buf[i + 1] | 0x20) == UInt8(ascii: "x") { i += 2 }
        var address: UInt64 = 0
        var digits = 0
        while i < end, let d = hexValue(buf[i]) {
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
        let name = String(decoding: UnsafeBufferPointer(rebasing: buf[(i + 3)..<nameEnd]), as: UTF8.self)
        return (address, type, name)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// kallsyms appends `\t[module]`; keep the function name and the module apart.
    static func symbol(address: UInt64, rawName: String) -> Symbol {
        if rawName.utf8.last == UInt8(ascii: "]"), let open = rawName.lastIndex(of: "[") {
            let name = rawName[..<open].trimmingTrailingBlanks
            let module = rawName[rawName.index(after: open)..<rawName.index(before: rawName.endIndex)]
            if !name.isEmpty && !module.isEmpty { return Symbol(address: address, name: String(name), module: String(module)) }
        }
        return Symbol(address: address, name: rawName, module: nil)
    }

    /// The symbol upstream's `lookup_symbol` picks: the first symbol at exactly `address`,
    /// else the last one below it. Nil below the first symbol, and nil where the answer
    /// would be meaningless (see `isPlausible`), where upstream prints `sym+0xhuge`.
    public func lookup(_ address: UInt64) -> (symbol: Symbol, offset: UInt64)? {
        // First index whose address >= address.
        var lo = 0, hi = symbols.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if symbols[mid].address < address { lo = mid + 1 } else { hi = mid }
        }
        if lo < symbols.count && symbols[lo].address == address { return (symbols[lo], 0) }
        guard lo > 0 else { return nil }
        var i = lo - 1
        if aliasRule == .first {
            // Back to the first alias (bounded: aliases are a handful).
            var steps = 0
            while i > 0 && symbols[i - 1].address == symbols[i].address && steps < 64 { i -= 1; steps += 1 }
        }
        let s = symbols[i]
        let offset = address - s.address
        guard isPlausible(address: address, symbol: s, offset: offset) else { return nil }
        return (s, offset)
    }

    /// Whether `symbol+offset` can name `address`: inside the kernel image [_text, _end]
    /// when the map has those markers; for module symbols or maps without markers, within
    /// 1 MiB of the symbol (no function or object in a kernel is larger).
    func isPlausible(address: UInt64, symbol: Symbol, offset: UInt64) -> Bool {
        if symbol.module == nil, text != 0, let end {
            return address >= text && address <= end
        }
        return offset < 0x10_0000
    }
}

extension Substring {
    var trimmingTrailingBlanks: Substring {
        var s = self
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return s
    }
}

extension SystemMap {
    /// The same table with every address moved by `offset` (a KASLR load offset).
    public func shifted(by offset: UInt64) -> SystemMap {
        guard offset != 0 else { return self }
        var copy = self
        copy.symbols = symbols.map { Symbol(address: $0.address &+ offset, name: $0.name, module: $0.module) }
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
        var merged: [Symbol] = []
        merged.reserveCapacity(symbols.count + added.count)
        var i = 0, j = 0
        while i < symbols.count || j < added.count {
            if j == added.count || (i < symbols.count && symbols[i].address <= added[j].address) {
                merged.append(symbols[i]); i += 1
            } else {
                merged.append(added[j]); j += 1
            }
        }
        var copy = self
        copy.symbols = merged
        return copy
    }

    public func address(of name: String) -> UInt64? { symbols.first { $0.name == name }?.address }

    /// The first address of each of `names`, in one pass over the table.
    public func addresses(of names: Set<String>) -> [String: UInt64] {
        var found: [String: UInt64] = [:]
        // Compare first bytes before hashing whole names: most symbols fail there.
        var firsts = [Bool](repeating: false, count: 256)
        for n in names { if let b = n.utf8.first { firsts[Int(b)] = true } }
        for s in symbols where found.count < names.count {
            guard let b = s.name.utf8.first, firsts[Int(b)], names.contains(s.name), found[s.name] == nil else { continue }
            found[s.name] = s.address
        }
        return found
    }
}
