import Testing
import VCPUContext
@testable import XenctxReport
import Symbols

/// The 32-bit x86 register layouts, which no lab case exercises. Expected lines are
/// written from upstream's printf formats (`print_ctx_32`, `print_ctx_32on64`, xenctx.c)
/// and its real-mode example (commit 701ce4a698, quoted in xenctx.md §2.2).
struct X86_32ShapeTests {
    let text = RegisterText(classifier: KernelAddressClassifier(symbols: nil, kernelStart: 0xc000_0000, kernelStartSet: false, defaultEnd: 0xffff_ffff),
                            allRegisters: false)

    @Test func realModeExampleFromUpstream() {
        var b = [UInt8](repeating: 0, count: 5168)
        func put64(_ off: Int, _ v: UInt64) { b.replaceSubrange(off..<(off + 8), with: withUnsafeBytes(of: v.littleEndian, Array.init)) }
        func put16(_ off: Int, _ v: UInt16) { b.replaceSubrange(off..<(off + 2), with: withUnsafeBytes(of: v.littleEndian, Array.init)) }
        put64(648, 0xd61b); put16(656, 0xf000); put64(664, 0x2); put64(672, 0x1fee); put16(680, 0)
        put64(600, 0xffc2); put64(560, 0x49); put64(608, 0x49); put64(616, 0xffff_ffff)
        put64(624, 0); put64(632, 0x10); put64(552, 0x1ff0)
        put16(696, 0xe000); put16(688, 0x0040)
        let out = text.x86_32on64(X86_64Registers(LittleEndianBytes(b)))
        #expect(out == """
        cs:eip: f000:0000d61b
        flags: 00000002 nz
        ss:esp: 0000:00001fee
        eax: 0000ffc2\tebx: 00000049\tecx: 00000049\tedx: ffffffff
        esi: 00000000\tedi: 00000010\tebp: 00001ff0
         ds:     e000\t es:     0040\t fs:     0000\t gs:     0000

        """)
    }

    @Test func pv32WithControlRegisters() {
        var b = [UInt8](repeating: 0, count: 5168)
        func put32(_ off: Int, _ v: UInt32) { b.replaceSubrange(off..<(off + 4), with: withUnsafeBytes(of: v.littleEndian, Array.init)) }
        put32(548, 0xc010_2030); b[552] = 0x61; b[553] = 0xe0; put32(556, 0x246); put32(560, 0xc1ff_fe00); b[564] = 0x69; b[565] = 0xe0
        put32(2716, 0x8005_003b); put32(2724, 0xb7f0_0000); put32(2728, 0x0012_3000); put32(2732, 0x6f0)
        let all = RegisterText(classifier: text.classifier, allRegisters: true)
        let out = all.x86_32(X86_32Registers(LittleEndianBytes(b)))
        #expect(out.hasPrefix("cs:eip: e061:c0102030\nflags: 00000246 i z p\nss:esp: e069:c1fffe00\n"))
        #expect(out.contains("\ncr0: 8005003b\ncr2: b7f00000\ncr3: 00123000\ncr4: 000006f0\n"))
        #expect(out.contains("\ndr6: 00000000\ndr7: 00000000\n"))
    }
}
