/// DWARF CFI unwinding supplied by a debug-info provider (elfutils in `ELFSymbols`).
public protocol CFIUnwinder: Sendable {
    /// `registers` in DWARF numbering for the guest's architecture; `read` reads a guest
    /// word. Returns the pcs, innermost first, and why the unwind stopped ("" if it ended).
    func unwindCFI(registers: [UInt64], pc: UInt64, maxFrames: Int, read: @escaping (UInt64) -> UInt64?) -> (pcs: [UInt64], stop: String)
}
