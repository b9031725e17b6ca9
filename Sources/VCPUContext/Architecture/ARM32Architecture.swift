/// 32-bit ARM (AArch32) guests: Debian's armmp-lpae kernels.
public struct ARM32Architecture: ArchitectureDescriptor {
    public init() {}
    public var architecture: GuestArchitecture { .arm32 }
    public var wordSize: Int { 4 }
    public var elfMachine: UInt16 { 40 }                   // EM_ARM
    public var kernelStackSize: UInt64 { 8192 }
    /// THREAD_START_SP is THREAD_SIZE - 8.
    public var stackTopPadding: UInt64 { 8 }
    public var textOnlyFromSymbols: Bool { true }
    public func defaultKernelStart(tcr: UInt64?) -> UInt64 { 0xc000_0000 }
    public func kernelImageWindows(guest: Guest) -> [KernelImageWindow] { [lowmemWindow] }
    public func directMap(guest: Guest) -> ClosedRange<UInt64> { 0xc000_0000...0xffff_ffff }
    /// CPSR mode USR (0x10).
    public func isUserEntry(flags: UInt64, cs: UInt64?) -> Bool { flags & 0x1f == 0x10 }
    public var switchFrame: SwitchFrameKind { .cpuContextSave }
    public var entryFrame: EntryFrameKind { .arm32Uregs }
    public var currentTask: CurrentTaskSource { .stackOfSVCStackPointer }
    public var kernelStackUnwinder: KernelStackUnwinder { .ehabi }
    public var frameRecords: FrameRecordShape { .apcs }
    public var framePointerUnwinder: FramePointerUnwinder? { nil }
    public var signsReturnAddresses: Bool { false }
    public var returnAddressNeedsCallCheck: Bool { true }
    public var perCPUFromZero: Bool { false }
    public var mayBePVH: Bool { false }

    public func summary(isPV: Bool, protectedMode: Bool) -> String { "ARM32 (AArch32) guest" }

    public func translation(_ registers: RegisterFile, isPV: Bool) -> Translation {
        guard case .arm(let r) = registers, r.sctlr & 1 != 0 else { return .identity }    // SCTLR.M clear: MMU off
        if r.ttbcr & 0x8000_0000 != 0 { return .armLPAE(ArmLPAE(ttbcr: r.ttbcr, ttbr0: r.ttbr0, ttbr1: r.ttbr1)) }   // TTBCR.EAE
        return .armShort(ArmShortDescriptor(ttbcr: r.ttbcr, ttbr0: r.ttbr0, ttbr1: r.ttbr1))
    }

    /// Xen's own `show_guest_stack` rule: the execution state, then the mode or EL/SPSel.
    public func stackPointer(_ registers: RegisterFile, isPV: Bool, protectedMode: Bool) -> StackPointerChoice {
        guard case .arm(let r) = registers else { return foreignStackPointer(registers) }
        return StackPointerChoice.arm(r)
    }

    public func isUserMode(_ registers: RegisterFile, isPV: Bool) -> Bool {
        guard case .arm(let r) = registers else { return foreignIsUserMode(registers, isPV: isPV) }
        return r.isUserMode
    }
}
