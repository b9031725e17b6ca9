/// Which stack pointer a vCPU's stack lives at, and why.
///
/// Mirrors Xen's own `show_guest_stack` (xen/arch/arm/traps.c) for ARM, and for x86 uses
/// the privilege level (PV: `VGCF_in_kernel`, since a 64-bit PV kernel runs in ring 3).
public struct StackPointerChoice: Sendable, Equatable, Codable {
    /// The stack pointer's value, or nil where there is none to use (an impossible mode).
    public let address: UInt64?
    /// The register it came from, in the architecture's own name (`sp_svc`, `SP_EL1`, `rsp`, `kernel_sp`).
    public let register: String
    /// The mode evidence, e.g. `CPSR mode SVC` or `EL1h`.
    public let reason: String
    /// False when the vCPU was in user mode: the stack is a user stack (or an empty kernel one).
    public let isKernelStack: Bool
    /// Where the useful stack is elsewhere (Linux's tiny exception stacks), said plainly.
    public let note: String?
    /// For ARM32 exception modes: the SVC stack Linux switches to, which the walk continues on.
    public let fallback: UInt64?

    public init(address: UInt64?, register: String, reason: String, isKernelStack: Bool, note: String? = nil, fallback: UInt64? = nil) {
        self.address = address
        self.register = register
        self.reason = reason
        self.isKernelStack = isKernelStack
        self.note = note
        self.fallback = fallback
    }
}

/// AArch32 processor modes (CPSR[4:0]).
public enum AArch32Mode: UInt64, Sendable {
    case usr = 0x10, fiq = 0x11, irq = 0x12, svc = 0x13, mon = 0x16, abt = 0x17, hyp = 0x1a, und = 0x1b, sys = 0x1f

    public var name: String {
        switch self {
        case .usr: "USR"
        case .fiq: "FIQ"
        case .irq: "IRQ"
        case .svc: "SVC"
        case .mon: "MON"
        case .abt: "ABT"
        case .hyp: "HYP"
        case .und: "UND"
        case .sys: "SYS"
        }
    }
}

extension StackPointerChoice {
    /// The stack pointer of an ARM vCPU, by its current execution state (CPSR bit 4).
    public static func arm(_ r: ArmRegisters) -> StackPointerChoice {
        r.isAArch32State ? aarch32(r) : aarch64(r)
    }

    /// AArch32: the banked r13 of the CPSR mode.
    public static func aarch32(_ r: ArmRegisters) -> StackPointerChoice {
        let bits = r.cpsr & 0x1f
        guard let mode = AArch32Mode(rawValue: bits) else {
            return StackPointerChoice(address: nil, register: "none", reason: "CPSR mode 0x\(hex(bits, width: 2)) is not an AArch32 mode", isKernelStack: false)
        }
        let reason = "CPSR mode \(mode.name)"
        // Linux gives IRQ/ABT/UND/FIQ a 3-4 word per-CPU stack (arch/arm/kernel/setup.c,
        // `struct stack`) and its vectors switch to SVC at once, so the frames are on sp_svc.
        func exception(_ sp: UInt32, _ name: String) -> StackPointerChoice {
            StackPointerChoice(address: UInt64(sp), register: name, reason: reason, isKernelStack: true,
                               note: "Linux's \(mode.name) stack is only a few words per CPU; the interrupted kernel stack is sp_svc \(hex(r.spSVC, width: 8))",
                               fallback: UInt64(r.spSVC))
        }
        switch mode {
        case .svc: return StackPointerChoice(address: UInt64(r.spSVC), register: "sp_svc", reason: reason, isKernelStack: true)
        case .irq: return exception(r.spIRQ, "sp_irq")
        case .abt: return exception(r.spABT, "sp_abt")
        case .und: return exception(r.spUND, "sp_und")
        case .fiq: return exception(r.spFIQ, "sp_fiq")
        case .usr, .sys:
            return StackPointerChoice(address: UInt64(r.spUSR), register: "sp_usr", reason: "\(reason): user mode, no kernel stack", isKernelStack: false)
        case .mon, .hyp:
            return StackPointerChoice(address: nil, register: "none", reason: "\(reason) is impossible for a guest (Xen's show_guest_stack BUG()s)", isKernelStack: false)
        }
    }

    /// AArch64: EL and SPSel from CPSR[3:0] (M[3:0]).
    public static func aarch64(_ r: ArmRegisters) -> StackPointerChoice {
        switch r.cpsr & 0xf {
        case 0x0:
            return StackPointerChoice(address: r.spEL0, register: "SP_EL0", reason: "EL0t: user mode, no kernel stack", isKernelStack: false,
                                      note: "SP_EL1 \(hex(r.spEL1, width: 16)) is the top of the task's kernel stack")
        case 0x4:
            return StackPointerChoice(address: r.spEL0, register: "SP_EL0", reason: "EL1t", isKernelStack: true)
        case 0x5:
            return StackPointerChoice(address: r.spEL1, register: "SP_EL1", reason: "EL1h", isKernelStack: true)
        case let m:
            return StackPointerChoice(address: nil, register: "none", reason: "CPSR M[3:0] = 0x\(hex(m)) (EL2/EL3) is impossible for a guest", isKernelStack: false)
        }
    }

    /// 64-bit x86. PV kernels run in ring 3, so only `VGCF_in_kernel` tells kernel from user.
    public static func x86_64(_ r: X86_64Registers, pv: Bool) -> StackPointerChoice {
        if pv {
            if r.inKernel { return StackPointerChoice(address: r.rsp, register: "rsp", reason: "kernel mode (VGCF_in_kernel set)", isKernelStack: true) }
            return StackPointerChoice(address: r.kernelSP, register: "kernel_sp", reason: "user mode (VGCF_in_kernel clear), user rsp \(hex(r.rsp, width: 16))", isKernelStack: false,
                                      note: "kernel_sp is the top of the kernel stack Xen switches to on the next kernel entry; it holds no frames now")
        }
        let cpl = r.cs & 3
        return StackPointerChoice(address: r.rsp, register: "rsp", reason: cpl == 0 ? "CPL 0 (cs \(hex(r.cs, width: 4)))" : "CPL \(cpl) (cs \(hex(r.cs, width: 4))): user mode", isKernelStack: cpl == 0)
    }

    /// 32-bit PV: the kernel runs in ring 1.
    public static func x86_32(_ r: X86_32Registers) -> StackPointerChoice {
        let kernel = r.inKernel || r.cs & 3 == 1
        if kernel { return StackPointerChoice(address: UInt64(r.esp), register: "esp", reason: "kernel mode (cs \(hex(r.cs, width: 4)), ring \(r.cs & 3))", isKernelStack: true) }
        return StackPointerChoice(address: UInt64(r.kernelSP), register: "kernel_sp", reason: "user mode (cs \(hex(r.cs, width: 4))), user esp \(hex(r.esp, width: 8))", isKernelStack: false,
                                  note: "kernel_sp is the top of the kernel stack Xen switches to on the next kernel entry; it holds no frames now")
    }

    /// 32-bit or real-mode HVM, from the host-sized context.
    public static func x86HVM32(_ r: X86_64Registers, protectedMode: Bool) -> StackPointerChoice {
        if !protectedMode {
            return StackPointerChoice(address: (UInt64(r.ss) << 4) &+ (r.rsp & 0xffff), register: "ss:sp", reason: "real mode (CR0.PE clear)", isKernelStack: true)
        }
        let cpl = r.cs & 3
        return StackPointerChoice(address: r.rsp & 0xffff_ffff, register: "esp", reason: cpl == 0 ? "CPL 0" : "CPL \(cpl): user mode", isKernelStack: cpl == 0)
    }

    /// The choice for any vCPU of a guest.
    public static func choose(_ regs: RegisterFile, guest: GuestDescription) -> StackPointerChoice {
        guest.architecture.descriptor.stackPointer(regs, isPV: guest.isPV, protectedMode: guest.protectedMode)
    }
}
