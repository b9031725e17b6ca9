/// x86_64: PV, HVM and PVH guests in long mode.
public struct X86_64Architecture: ArchitectureDescriptor {
    public init() {}
    public var architecture: GuestArchitecture { .x86_64 }
    public var wordSize: Int { 8 }
    public var elfMachine: UInt16 { 62 }                   // EM_X86_64
    public var kernelStackSize: UInt64 { 16384 }
    public var stackTopPadding: UInt64 { 0 }
    public var textOnlyFromSymbols: Bool { false }
    public func defaultKernelStart(tcr: UInt64?) -> UInt64 { 0xffff_ffff_8000_0000 }

    public func kernelImageWindows(guest: Guest) -> [KernelImageWindow] {
        // __START_KERNEL_map + KERNEL_IMAGE_SIZE (1 GiB): the image and its KASLR range.
        [KernelImageWindow(start: 0xffff_ffff_8000_0000, end: 0xffff_ffff_c000_0000, descending: true, name: "the x86_64 kernel image map")]
    }

    /// The direct map with its KASLR range.
    public func directMap(guest: Guest) -> ClosedRange<UInt64> { 0xffff_8800_0000_0000...0xffff_c87f_ffff_ffff }

    public func isUserEntry(flags: UInt64, cs: UInt64?) -> Bool { cs.map { $0 & 3 == 3 } ?? false }
    public var switchFrame: SwitchFrameKind { .inactiveTaskFrame }
    public var entryFrame: EntryFrameKind { .x86PtRegs }
    public var currentTask: CurrentTaskSource { .perCPUVariable }
    public var kernelStackUnwinder: KernelStackUnwinder { .orc }
    public var frameRecords: FrameRecordShape { .framePointerThenReturn }
    public var framePointerUnwinder: FramePointerUnwinder? { .x86 }
    public var signsReturnAddresses: Bool { false }
    public var returnAddressNeedsCallCheck: Bool { false }
    public var perCPUFromZero: Bool { true }
    public var mayBePVH: Bool { true }

    public func summary(isPV: Bool, protectedMode: Bool) -> String {
        isPV ? "x86_64 PV guest" : "x86_64 HVM guest (64-bit mode)"
    }

    public func translation(_ registers: RegisterFile, isPV: Bool) -> Translation {
        guard case .x86_64(let r) = registers else { return .identity }
        if isPV { return .x86LongMode(root: r.ctrlreg[3]) }         // machine address of the L4
        if r.ctrlreg[0] & 0x8000_0000 == 0 { return .identity }      // CR0.PG clear
        return .x86LongMode(root: r.ctrlreg[3] & ~0xfff)
    }

    public func stackPointer(_ registers: RegisterFile, isPV: Bool, protectedMode: Bool) -> StackPointerChoice {
        guard case .x86_64(let r) = registers else { return foreignStackPointer(registers) }
        return StackPointerChoice.x86_64(r, pv: isPV)
    }

    public func isUserMode(_ registers: RegisterFile, isPV: Bool) -> Bool {
        guard case .x86_64(let r) = registers else { return foreignIsUserMode(registers, isPV: isPV) }
        return r.isUserMode(isPV: isPV)
    }
}
