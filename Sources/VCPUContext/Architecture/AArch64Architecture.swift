/// AArch64 guests: 4 KiB and 16 KiB pages, VA sizes from TCR_EL1.
public struct AArch64Architecture: ArchitectureDescriptor {
    public init() {}
    public var architecture: GuestArchitecture { .aarch64 }
    public var wordSize: Int { 8 }
    public var elfMachine: UInt16 { 183 }                  // EM_AARCH64
    public var kernelStackSize: UInt64 { 16384 }
    public var stackTopPadding: UInt64 { 0 }
    public var textOnlyFromSymbols: Bool { true }

    /// The bottom of the TTBR1 half that TCR_EL1.T1SZ defines (48-bit VA: 0xffff000000000000);
    /// upstream's 0xffffff8000000000 is the 2012 39-bit layout and misses every 48-bit kernel.
    public func defaultKernelStart(tcr: UInt64?) -> UInt64 {
        let t1sz = tcr.map { ($0 >> 16) & 0x3f } ?? 0
        // T1SZ outside 12...48 is not a usable configuration (or the MMU is off).
        guard (12...48).contains(t1sz) else { return 0xffff_0000_0000_0000 }
        return ~((UInt64(1) << (64 - t1sz)) - 1)
    }

    public func kernelImageWindows(guest: Guest) -> [KernelImageWindow] {
        // KIMAGE_VADDR = the end of the 128 MiB module area at the start of the kernel half.
        let vaBits = UInt64(min(max(guest.kernelVABits, 36), 48))
        let base = (~UInt64(0) << (vaBits - 1)) &+ (128 << 20)
        var result: [KernelImageWindow] = []
        // With KASLR the image is elsewhere in vmalloc space: follow a kernel PC there.
        for v in guest.vcpus where v.isOnline {
            if case .arm(let r) = v.registers, !r.isAArch32State, r.pc >> (vaBits - 1) == ~UInt64(0) >> (vaBits - 1),
               r.pc < base || r.pc >= base + (256 << 20) {
                let around = r.pc & ~UInt64((2 << 20) - 1)
                result.append(KernelImageWindow(start: around &- (128 << 20), end: around &+ (128 << 20), descending: true, name: "around vcpu\(v.id)'s kernel PC"))
                break
            }
        }
        result.append(KernelImageWindow(start: base, end: base + (256 << 20), descending: true, name: "the arm64 kernel image (KIMAGE_VADDR)"))
        return result
    }

    /// The linear map, below PAGE_END.
    public func directMap(guest: Guest) -> ClosedRange<UInt64> {
        let vaBits = UInt64(min(max(guest.kernelVABits, 36), 52))
        return (~UInt64(0) << vaBits)...((~UInt64(0) << (vaBits - 1)) - 1)
    }

    /// PSTATE.M: EL0t is 0; AArch32 user (compat) is 0x10.
    public func isUserEntry(flags: UInt64, cs: UInt64?) -> Bool { flags & 0x1f == 0 || flags & 0x1f == 0x10 }
    public var switchFrame: SwitchFrameKind { .cpuContext }
    public var entryFrame: EntryFrameKind { .arm64PtRegs }
    public var currentTask: CurrentTaskSource { .spEL0 }
    public var kernelStackUnwinder: KernelStackUnwinder { .frameRecords }
    public var frameRecords: FrameRecordShape { .framePointerThenReturn }
    public var framePointerUnwinder: FramePointerUnwinder? { .frameRecords }
    public var signsReturnAddresses: Bool { true }
    public var returnAddressNeedsCallCheck: Bool { true }
    public var perCPUFromZero: Bool { false }
    public var mayBePVH: Bool { false }

    public func summary(isPV: Bool, protectedMode: Bool) -> String { "AArch64 guest" }

    public func translation(_ registers: RegisterFile, isPV: Bool) -> Translation {
        guard case .arm(let r) = registers, r.sctlr & 1 != 0 else { return .identity }    // SCTLR_EL1.M clear: MMU off
        return .aarch64(AArch64Translation(tcr: r.ttbcr, ttbr0: r.ttbr0, ttbr1: r.ttbr1))
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
