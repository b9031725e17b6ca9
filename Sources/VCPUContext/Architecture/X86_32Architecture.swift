/// 32-bit x86: PV (PAE) guests, and HVM guests in protected or real mode.
public struct X86_32Architecture: ArchitectureDescriptor {
    public init() {}
    public var architecture: GuestArchitecture { .x86_32 }
    public var wordSize: Int { 4 }
    public var elfMachine: UInt16 { 3 }                    // EM_386
    public var kernelStackSize: UInt64 { 8192 }
    /// TOP_OF_KERNEL_STACK_PADDING, without CONFIG_VM86.
    public var stackTopPadding: UInt64 { 8 }
    public var textOnlyFromSymbols: Bool { false }
    public func defaultKernelStart(tcr: UInt64?) -> UInt64 { 0xc000_0000 }

    public func kernelImageWindows(guest: Guest) -> [KernelImageWindow] {
        var result: [KernelImageWindow] = []
        // The decompressor may move the kernel up to 512 MiB (KASLR; 5.10's 686 was 136 MiB
        // up): follow a vCPU's kernel EIP there, from below the image.
        for v in guest.vcpus where v.isOnline {
            let eip = v.registers.instructionPointer
            if eip >= 0xc000_0000 + (64 << 20), eip < 0x1_0000_0000 {
                let around = eip & ~UInt64((2 << 20) - 1)
                let start = max(0xc000_0000, around &- (32 << 20))
                result.append(KernelImageWindow(start: start, end: min(start + (128 << 20), 0x1_0000_0000), descending: false,
                                                name: "the 128 MiB from 32 MiB below vcpu\(v.id)'s kernel EIP"))
                break
            }
            // Moved less (6.1's 686 ran 32 MiB up): the image is still in the first 64 MiB,
            // but searching them from PAGE_OFFSET reads all the RAM below it first. What is
            // sought (.rodata's kallsyms and BTF, .data, .bss) lies above the text, so start
            // at the EIP's 2 MiB; the whole first 64 MiB remain the fallback.
            if eip >= lowmemWindow.start + (2 << 20), eip < lowmemWindow.end {
                let start = eip & ~UInt64((2 << 20) - 1)
                result.append(KernelImageWindow(start: start, end: start + (64 << 20), descending: false,
                                                name: "the 64 MiB from vcpu\(v.id)'s kernel EIP's 2 MiB"))
                break
            }
        }
        return result + [lowmemWindow]
    }

    public func directMap(guest: Guest) -> ClosedRange<UInt64> { 0xc000_0000...0xffff_ffff }
    public func isUserEntry(flags: UInt64, cs: UInt64?) -> Bool { cs.map { $0 & 3 == 3 } ?? false }
    public var switchFrame: SwitchFrameKind { .inactiveTaskFrame }
    public var entryFrame: EntryFrameKind { .x86PtRegs }
    public var currentTask: CurrentTaskSource { .perCPUVariable }
    /// Debian's 686 kernels have no ORC (UNWINDER_FRAME_POINTER).
    public var kernelStackUnwinder: KernelStackUnwinder { .framePointers }
    public var frameRecords: FrameRecordShape { .framePointerThenReturn }
    public var framePointerUnwinder: FramePointerUnwinder? { .x86 }
    public var signsReturnAddresses: Bool { false }
    public var returnAddressNeedsCallCheck: Bool { false }
    public var perCPUFromZero: Bool { false }
    public var mayBePVH: Bool { true }

    public func summary(isPV: Bool, protectedMode: Bool) -> String {
        if isPV { return "x86_32 PV guest (PAE)" }
        return protectedMode ? "32-bit HVM guest on 64-bit Xen" : "HVM guest in real mode (16-bit)"
    }

    /// PV: the compat context's CR3; HVM: the host-sized context, by CR0.PG and CR4.PAE/PSE.
    public func translation(_ registers: RegisterFile, isPV: Bool) -> Translation {
        switch registers {
        case .x86_32(let r):
            return .x86PAE(root: r.cr3Frame << 12)           // compat CR3 names the PAE L3's machine frame
        case .x86_64(let r):
            let cr0 = r.ctrlreg[0], cr3 = r.ctrlreg[3], cr4 = r.ctrlreg[4]
            if cr0 & 0x8000_0000 == 0 { return .identity }
            if cr4 & 0x20 != 0 { return .x86PAE(root: cr3 & 0xffff_ffe0) }
            return .x86TwoLevel(root: cr3 & 0xffff_f000, pse: cr4 & 0x10 != 0)
        case .arm:
            return .identity
        }
    }

    public func stackPointer(_ registers: RegisterFile, isPV: Bool, protectedMode: Bool) -> StackPointerChoice {
        switch registers {
        case .x86_32(let r): StackPointerChoice.x86_32(r)
        case .x86_64(let r): StackPointerChoice.x86HVM32(r, protectedMode: protectedMode)
        case .arm: foreignStackPointer(registers)
        }
    }

    public func isUserMode(_ registers: RegisterFile, isPV: Bool) -> Bool {
        switch registers {
        case .x86_32(let r): r.isUserMode(isPV: isPV)
        case .x86_64(let r): r.isUserMode(isPV: isPV)   // HVM: the host-sized context
        case .arm: foreignIsUserMode(registers, isPV: isPV)
        }
    }
}

/// PAGE_OFFSET of a 3G/1G split (as Debian builds): the image is at the start of lowmem,
/// which is mapped throughout, so it is searched upwards.
let lowmemWindow = KernelImageWindow(start: 0xc000_0000, end: 0xc000_0000 + (64 << 20), descending: false,
                                     name: "the first 64 MiB of lowmem (PAGE_OFFSET c0000000)")
