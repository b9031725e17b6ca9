/// Why a guest virtual address could not be read: the level, the entry and the frame.
public struct MemoryFault: Error, CustomStringConvertible, Equatable, Sendable {
    public let address: UInt64
    /// When a table entry was not present: the bytes of address space it covers (aligned
    /// to that size), so a scan can skip the whole unmapped region; 0 when unknown.
    public let unmappedSpan: UInt64
    /// Why, kept as its parts: a search by content over a window of missing or unmapped
    /// pages faults on each, and most faults are never printed.
    let why: Why

    enum Why: Sendable {
        case text(String)
        /// A page (or the `table` of a walk's `level`) that the source lacks.
        case missing(frame: UInt64, source: any FrameSource, table: (level: String, at: UInt64)?)
        /// A walk's `level` entry `index`, not present.
        case notPresent(level: String, index: UInt64, entry: UInt64)
    }

    public init(address: UInt64, reason: String, unmappedSpan: UInt64 = 0) {
        self.init(address: address, why: .text(reason), unmappedSpan: unmappedSpan)
    }

    init(address: UInt64, why: Why, unmappedSpan: UInt64 = 0) {
        self.address = address
        self.why = why
        self.unmappedSpan = unmappedSpan
    }

    public var reason: String {
        switch why {
        case .text(let text): return text
        case .missing(let frame, let source, nil): return source.whyMissing(frame)
        case .missing(let frame, let source, let table?): return "the \(table.level) table (at 0x\(hex(table.at))) is unreadable: \(source.whyMissing(frame))"
        case .notPresent(let level, let index, let entry): return "not mapped: \(level) entry \(index) is \(hex(entry, width: 16))"
        }
    }

    public var description: String { "cannot read \(hex(address)): \(reason)" }

    public static func == (a: MemoryFault, b: MemoryFault) -> Bool {
        a.address == b.address && a.unmappedSpan == b.unmappedSpan && a.reason == b.reason
    }
}

/// How a vCPU maps virtual to physical (in the frame numbering of the guest's source:
/// machine addresses for PV guests, guest-physical otherwise). One case per walker.
public enum Translation: Sendable, Equatable {
    /// MMU off (ARM SCTLR.M clear, x86 CR0.PG clear): virtual = physical.
    case identity
    case x86LongMode(root: UInt64)
    case x86PAE(root: UInt64)
    case x86TwoLevel(root: UInt64, pse: Bool)
    case armShort(ArmShortDescriptor)
    case armLPAE(ArmLPAE)
    case aarch64(AArch64Translation)

    /// Walks the tables for `va`. Every walk has a fixed maximum depth, so a table that
    /// points to itself ends like any other: at the last level.
    public func translate(_ va: UInt64, frames: any FrameSource) throws(MemoryFault) -> UInt64 {
        let tables = TableReader(frames: frames, va: va)
        switch self {
        case .identity: return va
        case .x86LongMode(let root): return try X86Walk.longMode(va, root: root, tables)
        case .x86PAE(let root): return try X86Walk.pae(va, root: root, tables)
        case .x86TwoLevel(let root, let pse): return try X86Walk.twoLevel(va, root: root, pse: pse, tables)
        case .armShort(let t): return try t.translate(va, tables)
        case .armLPAE(let t): return try t.translate(va, tables)
        case .aarch64(let t): return try t.translate(va, tables)
        }
    }
}

/// Reads table entries for one walk, naming the frame when one is missing.
struct TableReader {
    let frames: any FrameSource
    let va: UInt64

    /// `covering`: the address space the table maps, all of it unreadable when the table
    /// is missing (0 when not known), so scans can skip it whole.
    /// `level` names the table in a fault, made only then: walks run for every page a
    /// search probes.
    func entry64(table: UInt64, index: UInt64, level: @autoclosure () -> String, covering: UInt64 = 0) throws(MemoryFault) -> UInt64 {
        let address = table &+ index &* 8
        guard let page = frames.page(address >> 12) else {
            throw MemoryFault(address: va, why: .missing(frame: address >> 12, source: frames, table: (level(), table)), unmappedSpan: covering)
        }
        return page.le64(Int(address & 0xfff) & ~7)
    }

    func entry32(table: UInt64, index: UInt64, level: @autoclosure () -> String, covering: UInt64 = 0) throws(MemoryFault) -> UInt64 {
        let address = table &+ index &* 4
        guard let page = frames.page(address >> 12) else {
            throw MemoryFault(address: va, why: .missing(frame: address >> 12, source: frames, table: (level(), table)), unmappedSpan: covering)
        }
        return UInt64(page.le32(Int(address & 0xfff) & ~3))
    }

    func notPresent(_ level: String, index: UInt64, entry: UInt64, span: UInt64) -> MemoryFault {
        MemoryFault(address: va, why: .notPresent(level: level, index: index, entry: entry), unmappedSpan: span)
    }
}
