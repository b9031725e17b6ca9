import Testing
@testable import VCPUContext

/// One test per mode/EL, mirroring Xen's show_guest_stack table (xenctx.md §8.2).
struct StackPointerTests {
    /// An ARM context whose banked SPs are distinct, recognisable values.
    func arm(cpsr: UInt64) -> ArmRegisters {
        var b = [UInt8](repeating: 0, count: 352)
        func put(_ off: Int, _ v: UInt64) { b.replaceSubrange(off..<(off + 8), with: le64(v)) }
        put(0, 1)                                      // VGCF_online
        put(8 + 8 * 13, 0xbe00_0013)                   // sp_usr (x13)
        put(8 + 8 * 17, 0xc000_0017)                   // sp_irq (x17)
        put(8 + 8 * 19, 0xc800_0019)                   // sp_svc (x19)
        put(8 + 8 * 21, 0xc000_0021)                   // sp_abt (x21)
        put(8 + 8 * 23, 0xc000_0023)                   // sp_und (x23)
        put(8 + 8 * 29, 0xc000_0029)                   // sp_fiq (x29)
        put(264, cpsr)
        put(296, 0xffff_0000_0000_0e10)                // sp_el0
        put(304, 0xffff_8000_0000_0e11)                // sp_el1
        return ArmRegisters(LittleEndianBytes(b), entrySize: 352)!
    }

    @Test(arguments: [
        (UInt64(0x600d_0193), "sp_svc", UInt64(0xc800_0019), true),   // SVC (the lab's a32 crash)
        (0x1d2, "sp_irq", 0xc000_0017, true),
        (0x1d7, "sp_abt", 0xc000_0021, true),
        (0x1db, "sp_und", 0xc000_0023, true),
        (0x1d1, "sp_fiq", 0xc000_0029, true),
        (0x10, "sp_usr", 0xbe00_0013, false),
        (0x1f, "sp_usr", 0xbe00_0013, false),
        (0x600003c5, "SP_EL1", 0xffff_8000_0000_0e11, true),            // EL1h
        (0x3c4, "SP_EL0", 0xffff_0000_0000_0e10, true),                 // EL1t
        (0x0, "SP_EL0", 0xffff_0000_0000_0e10, false),                  // EL0t
    ])
    func armModes(cpsr: UInt64, register: String, value: UInt64, kernel: Bool) {
        let choice = StackPointerChoice.arm(arm(cpsr: cpsr))
        #expect(choice.register == register)
        #expect(choice.address == value)
        #expect(choice.isKernelStack == kernel)
    }

    @Test func exceptionModesPointAtTheSVCStack() {
        for cpsr: UInt64 in [0x1d2, 0x1d7, 0x1db, 0x1d1] {
            let choice = StackPointerChoice.arm(arm(cpsr: cpsr))
            #expect(choice.fallback == 0xc800_0019)
            #expect(choice.note?.contains("sp_svc c8000019") == true)
        }
        #expect(StackPointerChoice.arm(arm(cpsr: 0x1d3)).fallback == nil)
    }

    @Test func impossibleModesHaveNoStack() {
        for cpsr: UInt64 in [0x1d6, 0x1da, 0x3c9, 0x3cd, 0x1d5] {     // MON, HYP, EL2h, EL3h, invalid AArch32
            let choice = StackPointerChoice.arm(arm(cpsr: cpsr))
            #expect(choice.address == nil, "cpsr \(cpsr)")
        }
    }

    func x86_64(inKernel: Bool) -> X86_64Registers {
        var b = [UInt8](repeating: 0, count: 5168)
        b.replaceSubrange(512..<520, with: le64(inKernel ? 0x24 : 0x20))
        b.replaceSubrange(672..<680, with: le64(0xffff_c900_0000_1000))   // rsp
        b.replaceSubrange(4976..<4984, with: le64(0xffff_c900_0000_4000)) // kernel_sp
        return X86_64Registers(LittleEndianBytes(b))
    }

    @Test func x86_64PVKernelAndUser() {
        let k = StackPointerChoice.x86_64(x86_64(inKernel: true), pv: true)
        #expect(k.register == "rsp" && k.address == 0xffff_c900_0000_1000 && k.isKernelStack)
        let u = StackPointerChoice.x86_64(x86_64(inKernel: false), pv: true)
        #expect(u.register == "kernel_sp" && u.address == 0xffff_c900_0000_4000 && !u.isKernelStack)
    }

    @Test func x86_32PVByRing() {
        var b = [UInt8](repeating: 0, count: 5168)
        b.replaceSubrange(560..<564, with: le32(0xc100_0000))           // esp
        b.replaceSubrange(552..<554, with: le16(0xe019))                // cs, ring 1
        b.replaceSubrange(2712..<2716, with: le32(0xc200_0000))         // kernel_sp
        #expect(StackPointerChoice.x86_32(X86_32Registers(LittleEndianBytes(b))).register == "esp")
        b.replaceSubrange(552..<554, with: le16(0xe023))                // ring 3
        let user = StackPointerChoice.x86_32(X86_32Registers(LittleEndianBytes(b)))
        #expect(user.register == "kernel_sp" && user.address == 0xc200_0000)
    }

    @Test func compatCR3IsRotated() {
        var b = [UInt8](repeating: 0, count: 5168)
        let mfn: UInt32 = 0x12_3456
        b.replaceSubrange(2728..<2732, with: le32((mfn << 12) | (mfn >> 20)))
        #expect(X86_32Registers(LittleEndianBytes(b)).cr3Frame == UInt64(mfn))
    }

    @Test func kernelStartByGuestArchitecture() {
        #expect(KernelStart.defaultValue(for: .x86_32, tcr: nil) == 0xc000_0000)
        #expect(KernelStart.defaultValue(for: .arm32, tcr: nil) == 0xc000_0000)
        #expect(KernelStart.defaultValue(for: .x86_64, tcr: nil) == 0xffff_ffff_8000_0000)
        #expect(KernelStart.defaultValue(for: .aarch64, tcr: 0x0050_0074_b550_3510) == 0xffff_0000_0000_0000)  // T1SZ 16: the lab's arm64 guest
        #expect(KernelStart.defaultValue(for: .aarch64, tcr: 25 << 16) == 0xffff_ff80_0000_0000)              // 39-bit
        #expect(KernelStart.defaultValue(for: .aarch64, tcr: 12 << 16) == 0xfff0_0000_0000_0000)              // 52-bit
    }
}
