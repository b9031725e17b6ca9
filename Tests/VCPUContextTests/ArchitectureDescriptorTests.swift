import Testing
@testable import VCPUContext

/// What each architecture's descriptor decides from a vCPU's own registers: its translation
/// regime and its guest summary. (Stack pointers: StackPointerTests; the page-table walks
/// themselves: PageTableTests.)
struct ArchitectureDescriptorTests {
    func x86(cr0: UInt64, cr3: UInt64, cr4: UInt64) -> RegisterFile {
        var r = X86_64Registers(LittleEndianBytes([UInt8](repeating: 0, count: 5168)))
        r.ctrlreg[0] = cr0; r.ctrlreg[3] = cr3; r.ctrlreg[4] = cr4
        return .x86_64(r)
    }

    func arm(sctlr: UInt64, ttbcr: UInt64) -> RegisterFile {
        var r = ArmRegisters(LittleEndianBytes([UInt8](repeating: 0, count: 352)), entrySize: 352)!
        r.sctlr = sctlr; r.ttbcr = ttbcr; r.ttbr1 = 0x4000_0000
        return .arm(r)
    }

    /// x86_64: PV's CR3 is the L4's machine address as it is; HVM's has its flag bits cut,
    /// and paging off is no translation.
    @Test func x86_64ByPagingAndPV() {
        let d = X86_64Architecture()
        #expect(d.translation(x86(cr0: 0x8000_0011, cr3: 0x1234_5fff, cr4: 0x20), isPV: true) == .x86LongMode(root: 0x1234_5fff))
        #expect(d.translation(x86(cr0: 0x8000_0011, cr3: 0x1234_5fff, cr4: 0x20), isPV: false) == .x86LongMode(root: 0x1234_5000))
        #expect(d.translation(x86(cr0: 0x11, cr3: 0x1234_5000, cr4: 0), isPV: false) == .identity)
    }

    /// A 32-bit HVM guest's host-sized context: CR4.PAE picks PAE (a 32-byte aligned L3),
    /// else two levels with CR4.PSE's large pages; CR0.PG clear, no translation.
    @Test func x86_32HVMByCR4() {
        let d = X86_32Architecture()
        #expect(d.translation(x86(cr0: 0x8000_0011, cr3: 0x0123_45ff, cr4: 0x20), isPV: false) == .x86PAE(root: 0x0123_45e0))
        #expect(d.translation(x86(cr0: 0x8000_0011, cr3: 0x0123_4fff, cr4: 0x10), isPV: false) == .x86TwoLevel(root: 0x0123_4000, pse: true))
        #expect(d.translation(x86(cr0: 0x8000_0011, cr3: 0x0123_4000, cr4: 0), isPV: false) == .x86TwoLevel(root: 0x0123_4000, pse: false))
        #expect(d.translation(x86(cr0: 0x11, cr3: 0x0123_4000, cr4: 0x20), isPV: false) == .identity)
    }

    /// ARM32: TTBCR.EAE picks LPAE over the short descriptors; SCTLR.M clear, none.
    /// AArch64: its own walker whenever the MMU is on.
    @Test func armBySCTLRAndTTBCR() {
        let a32 = ARM32Architecture(), a64 = AArch64Architecture()
        #expect(a32.translation(arm(sctlr: 0, ttbcr: 0x8000_0000), isPV: false) == .identity)
        guard case .armLPAE = a32.translation(arm(sctlr: 1, ttbcr: 0x8000_0000), isPV: false) else { Issue.record("not LPAE"); return }
        guard case .armShort = a32.translation(arm(sctlr: 1, ttbcr: 0), isPV: false) else { Issue.record("not short descriptors"); return }
        #expect(a64.translation(arm(sctlr: 0, ttbcr: 0x10_0010), isPV: false) == .identity)
        guard case .aarch64 = a64.translation(arm(sctlr: 1, ttbcr: 0x10_0010), isPV: false) else { Issue.record("not AArch64"); return }
    }

    /// The words the header gives each kind of guest, and that only x86 HVM may be PVH.
    @Test func summaries() {
        #expect(X86_64Architecture().summary(isPV: true, protectedMode: true) == "x86_64 PV guest")
        #expect(X86_64Architecture().summary(isPV: false, protectedMode: true) == "x86_64 HVM guest (64-bit mode)")
        #expect(X86_32Architecture().summary(isPV: true, protectedMode: true) == "x86_32 PV guest (PAE)")
        #expect(X86_32Architecture().summary(isPV: false, protectedMode: true) == "32-bit HVM guest on 64-bit Xen")
        #expect(X86_32Architecture().summary(isPV: false, protectedMode: false) == "HVM guest in real mode (16-bit)")
        #expect(ARM32Architecture().summary(isPV: false, protectedMode: true) == "ARM32 (AArch32) guest")
        #expect(AArch64Architecture().summary(isPV: false, protectedMode: true) == "AArch64 guest")
        #expect(Set(GuestArchitecture.allCases.filter { $0.descriptor.mayBePVH }) == [.x86_64, .x86_32])
    }
}

/// The LR a kernel ran with: AArch32's banked LR of the CPSR mode (each exception mode its
/// own, none in user mode), AArch64's x30 at EL1 only.
@Test func kernelLinkRegisterFollowsTheMode() {
    var r = ArmRegisters(LittleEndianBytes([UInt8](repeating: 0, count: 352)), entrySize: 352)!
    for i in 0..<31 { r.x[i] = 0xc000_0000 + UInt64(i) }
    let expected: [(UInt64, UInt64?)] = [(0x13, 0xc000_0012), (0x12, 0xc000_0010), (0x17, 0xc000_0014), (0x1b, 0xc000_0016),
                                         (0x11, 0xc000_001e), (0x10, nil), (0x1f, 0xc000_000e), (0x16, nil)]
    for (mode, lr) in expected {
        r.cpsr = mode
        #expect(r.kernelLinkRegister == lr, "mode \(String(mode, radix: 16))")
    }
    r.cpsr = 0x3c5                       // EL1h
    #expect(r.kernelLinkRegister == 0xc000_001e)
    r.cpsr = 0x0                         // EL0t
    #expect(r.kernelLinkRegister == nil)
    #expect(r.banked(.irq)! == (0xc000_0011, 0xc000_0010) && r.banked(.hyp) == nil)
}
