/// Upstream xenctx's `kernel_addr()`: whether a word is kernel text, kernel data or
/// neither, which decides what gets a symbol and what appears in a call trace.
public struct KernelAddressClassifier: Sendable {
    public enum Kind: Int, Comparable, Sendable {
        case notKernel = 0, data, text
        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }

    public let symbols: SystemMap?
    public let kernelStart: UInt64
    /// Whether `-k` was given: upstream then treats everything above it as text.
    public let kernelStartSet: Bool
    public let kernelEnd: UInt64
    /// With a symbol table and no -k, upstream counts all of [kernel_start, _end] as text.
    /// That suits x86_64 (kernel_start is the image mapping) but not ARM, whose
    /// kernel_start is the whole kernel half (arm64: the linear map too); there only the
    /// map's text ranges count.
    public let textOnlyFromSymbols: Bool

    /// `defaultEnd` is the top of the guest's address space; a map's `_end` overrides it.
    public init(symbols: SystemMap?, kernelStart: UInt64, kernelStartSet: Bool, defaultEnd: UInt64, textOnlyFromSymbols: Bool = false) {
        self.textOnlyFromSymbols = textOnlyFromSymbols
        self.symbols = symbols
        self.kernelStart = kernelStart
        self.kernelStartSet = kernelStartSet
        self.kernelEnd = symbols?.end ?? defaultEnd
    }

    /// Text outside the image: loaded modules' core text, read from guest memory.
    public var moduleText: [Range<UInt64>] = []

    public func classify(_ addr: UInt64) -> Kind {
        guard let s = symbols else { return addr > kernelStart ? .text : .notKernel }
        if !moduleText.isEmpty, moduleText.contains(where: { $0.contains(addr) }) { return .text }
        if addr >= s.stext && addr <= s.etext { return .text }
        if s.hypercallPage != 0 && addr >= s.hypercallPage && addr <= s.hypercallPage &+ 4096 { return .text }
        if addr >= s.sinittext && addr <= s.einittext { return .text }
        if kernelStartSet {
            if addr > kernelStart { return .text }
        } else {
            if addr >= s.text && addr <= kernelEnd { return .data }
            if !textOnlyFromSymbols && addr >= kernelStart && addr <= kernelEnd { return .text }
        }
        return .notKernel
    }

    /// The symbol `addr` is in, when it is at least `kind` and has a plausible one.
    public func symbol(_ addr: UInt64, kind: Kind) -> SymbolRef? {
        guard let s = symbols, classify(addr) >= kind, let (symbol, offset) = s.lookup(addr) else { return nil }
        return SymbolRef(name: symbol.name, offset: offset, module: symbol.module)
    }

    /// A return address as the kernel's `%pB` names it: by the call before it (address - 1),
    /// since a call to a noreturn function is the last instruction of its caller; the
    /// offset is still the return address's. Other addresses as `symbol(_:kind: .text)`.
    public func returnAddressSymbol(_ addr: UInt64) -> SymbolRef? {
        guard addr > 0, let s = symbols, classify(addr &- 1) >= .text, let (symbol, offset) = s.lookup(addr &- 1) else {
            return self.symbol(addr, kind: .text)
        }
        return SymbolRef(name: symbol.name, offset: offset &+ 1, module: symbol.module)
    }

    /// ` name` or ` name+0xoff` as upstream's `print_symbol`, or "" when `addr` is not at
    /// least `kind` or has no plausible symbol. Names are escaped for the terminal.
    public func symbolSuffix(_ addr: UInt64, kind: Kind) -> String {
        symbol(addr, kind: kind).map { " " + $0.text } ?? ""
    }

    /// `returnAddressSymbol` as upstream's text shows a symbol.
    public func returnAddressSuffix(_ addr: UInt64) -> String {
        returnAddressSymbol(addr).map { " " + $0.text } ?? ""
    }
}

/// A symbol as a value: an address's function (or object), its offset in it, and the module
/// it belongs to (nil: the kernel image). Names are as the guest or file gave them; `text`
/// is the escaped form every printer shows.
public struct SymbolRef: Sendable, Equatable {
    public let name: String
    public let offset: UInt64
    public let module: String?

    public init(name: String, offset: UInt64, module: String?) {
        self.name = name
        self.offset = offset
        self.module = module
    }

    /// As the kernel prints it: `func+0x12 [module]` (offset 0: just `func`), escaped.
    public var text: String {
        let name = TerminalSafe.escape(self.name)
        return (offset == 0 ? name : "\(name)+0x\(String(offset, radix: 16))") + (module.map { " [\(TerminalSafe.escape($0))]" } ?? "")
    }

    /// The function a compiler's part belongs to: `__handle_sysrq.cold`, `foo.isra.0` → the
    /// name before the first dot (escaped).
    public var function: String { TerminalSafe.escape(String(name.prefix { $0 != "." })) }
}

/// Makes text from files or guest memory safe to print: control characters and invalid
/// bytes become `\xNN`, so a hostile string cannot drive the terminal.
/// Text such as the kernel log keeps its tabs (`allowTab`), which move the cursor only.
public enum TerminalSafe {
    public static func escape(_ s: String, allowTab: Bool = false, allowNewline: Bool = false) -> String {
        func unsafe(_ v: UInt32) -> Bool {
            (v < 0x20 && !(allowTab && v == 0x09) && !(allowNewline && v == 0x0a)) || v == 0x7f || (0x80...0x9f).contains(v)
        }
        if !s.unicodeScalars.contains(where: { unsafe($0.value) }) { return s }
        var out = ""
        for scalar in s.unicodeScalars {
            if unsafe(scalar.value) {
                let h = String(scalar.value, radix: 16)
                out += "\\x" + (h.count < 2 ? "0" + h : h)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
