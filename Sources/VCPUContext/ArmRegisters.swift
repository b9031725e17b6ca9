/// The register file of an ARM `vcpu_guest_context` (public arch-arm.h), for 32- and
/// 64-bit guests alike: Xen stores AArch32 registers in the low halves of the x-register
/// slots using the architectural AArch32↔AArch64 mapping, so one type serves both and
/// the AArch32 names below are views onto `x`.
public struct ArmRegisters: Sendable, Equatable, Codable {
    /// `flags`: only `VGCF_online` (bit 0) exists on ARM.
    public var flags: UInt32
    /// x0...x30.
    public var x: [UInt64]
    public var pc: UInt64
    public var cpsr: UInt64
    public var spsrEL1: UInt64
    public var spsrFIQ: UInt32, spsrIRQ: UInt32, spsrUND: UInt32, spsrABT: UInt32
    public var spEL0: UInt64, spEL1: UInt64, elrEL1: UInt64
    public var sctlr: UInt64, ttbcr: UInt64, ttbr0: UInt64, ttbr1: UInt64

    /// Decodes one `.xen_prstatus` entry of `entrySize` 352 (Xen ≥ 4.16), 344 (4.4–4.15)
    /// or 336 (≤ 4.3); the layouts differ only after `pc64` (format note §3.4).
    public init?(_ b: LittleEndianBytes, entrySize: Int) {
        flags = b.u32(0)
        x = (0..<31).map { b.u64(8 + 8 * $0) }
        pc = b.u64(256)
        switch entrySize {
        case 352:
            cpsr = b.u64(264); spsrEL1 = b.u64(272)
            spsrFIQ = b.u32(280); spsrIRQ = b.u32(284); spsrUND = b.u32(288); spsrABT = b.u32(292)
            spEL0 = b.u64(296); spEL1 = b.u64(304); elrEL1 = b.u64(312)
            sctlr = b.u64(320); ttbcr = b.u64(328); ttbr0 = b.u64(336); ttbr1 = b.u64(344)
        case 344:
            cpsr = UInt64(b.u32(264)); spsrEL1 = UInt64(b.u32(268))
            spsrFIQ = b.u32(272); spsrIRQ = b.u32(276); spsrUND = b.u32(280); spsrABT = b.u32(284)
            spEL0 = b.u64(288); spEL1 = b.u64(296); elrEL1 = b.u64(304)
            sctlr = b.u64(312); ttbcr = b.u64(320); ttbr0 = b.u64(328); ttbr1 = b.u64(336)
        case 336:
            cpsr = UInt64(b.u32(264)); spsrEL1 = UInt64(b.u32(268))
            spsrFIQ = b.u32(272); spsrIRQ = b.u32(276); spsrUND = b.u32(280); spsrABT = b.u32(284)
            spEL0 = b.u64(288); spEL1 = b.u64(296); elrEL1 = b.u64(304)
            sctlr = UInt64(b.u32(312)); ttbcr = UInt64(b.u32(316)); ttbr0 = b.u64(320); ttbr1 = b.u64(328)
        default:
            return nil
        }
    }

    public var isOnline: Bool { flags & 1 != 0 }

    /// CPSR bit 4: the vCPU was executing in AArch32 state.
    public var isAArch32State: Bool { cpsr & 0x10 != 0 }
    /// AArch32 USR mode or AArch64 EL0 (an AArch64 guest may run AArch32 user code).
    public var isUserMode: Bool { isAArch32State ? cpsr & 0x1f == 0x10 : (cpsr >> 2) & 3 == 0 }
    public var thumb: Bool { cpsr & 0x20 != 0 }

    // AArch32 views (architectural mapping, arch-arm.h `__DECL_REG`).
    public func r(_ i: Int) -> UInt32 { UInt32(truncatingIfNeeded: x[i]) }
    public var pc32: UInt32 { UInt32(truncatingIfNeeded: pc) }
    public var spUSR: UInt32 { r(13) }
    public var lrUSR: UInt32 { r(14) }
    public var lrIRQ: UInt32 { r(16) }
    public var spIRQ: UInt32 { r(17) }
    public var lrSVC: UInt32 { r(18) }
    public var spSVC: UInt32 { r(19) }
    public var lrABT: UInt32 { r(20) }
    public var spABT: UInt32 { r(21) }
    public var lrUND: UInt32 { r(22) }
    public var spUND: UInt32 { r(23) }
    public func rFIQ(_ i: Int) -> UInt32 { r(24 + i - 8) }  // r8_fiq...r12_fiq
    public var spFIQ: UInt32 { r(29) }
    public var lrFIQ: UInt32 { r(30) }
    public var spsrSVC: UInt32 { UInt32(truncatingIfNeeded: spsrEL1) }

    /// The banked stack pointer and link register of an AArch32 mode (USR and SYS share
    /// theirs); nil for MON and HYP, which a guest never runs in.
    public func banked(_ mode: AArch32Mode) -> (sp: UInt32, lr: UInt32)? {
        switch mode {
        case .usr, .sys: (spUSR, lrUSR)
        case .svc: (spSVC, lrSVC)
        case .irq: (spIRQ, lrIRQ)
        case .abt: (spABT, lrABT)
        case .und: (spUND, lrUND)
        case .fiq: (spFIQ, lrFIQ)
        case .mon, .hyp: nil
        }
    }

    /// The link register the kernel was running with, where it is one: AArch32's banked
    /// LR of a privileged mode (CPSR.M), AArch64's x30 at EL1; nil in user mode.
    public var kernelLinkRegister: UInt64? {
        if !isAArch32State { return (cpsr >> 2) & 3 == 1 ? x[30] : nil }
        guard let mode = AArch32Mode(rawValue: cpsr & 0x1f), mode != .usr, let pair = banked(mode) else { return nil }
        return UInt64(pair.lr)
    }
}
