/// Why a guest virtual address could not be read: the level, the entry and the frame.
public struct MemoryFault: Error, CustomStringConvertible, Equatable, Sendable {
    public let address: UInt64
    public let reason: String
    /// When a table entry was not present: the bytes of address space it covers (aligned
    /// to that size), so a scan can skip the whole unmapped region; 0 when unknown.
    public let unmappedSpan: UInt64
    public init(address: UInt64, reason: String, unmappedSpan: UInt64 = 0) {
        self.address = address
        self.reason = reason
        self.unmappedSpan = unmappedSpan
    }
    public var description: String { "cannot read \(hex(address)): \(reason)" }
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
    func entry64(table: UInt64, index: UInt64, level: String, covering: UInt64 = 0) throws(MemoryFault) -> UInt64 {
        let address = table &+ index &* 8
        guard let page = frames.page(address >> 12) else {
            throw MemoryFault(address: va, reason: "the \(level) table (at 0x\(hex(table))) is unreadable: \(frames.whyMissing(address >> 12))",
                              unmappedSpan: covering)
        }
        return page.le64(Int(address & 0xfff) & ~7)
    }

    func entry32(table: UInt64, index: UInt64, level: String, covering: UInt64 = 0) throws(MemoryFault) -> UInt64 {
        let address = table &+ index &* 4
        guard let page = frames.page(address >> 12) else {
            throw MemoryFault(address: va, reason: "the \(level) table (at 0x\(hex(table))) is unreadable: \(frames.whyMissing(address >> 12))",
                              unmappedSpan: covering)
        }
        return UInt64(page.le32(Int(address & 0xfff) & ~3))
    }

    func notPresent(_ level: String, index: UInt64, entry: UInt64, span: UInt64) -> MemoryFault {
        MemoryFault(address: va, reason: "not mapped: \(level) entry \(index) is \(hex(entry, width: 16))", unmappedSpan: span)
    }
}
