import Testing
import VCPUContext
@testable import StackWalk

/// Linux's x86 frame-pointer walk on hand-built 32-bit stacks (8 KiB task stacks at
/// 0xc2000000, an IRQ stack at 0xc3000000, kernel text at 0xc1000000..0xc1800000).
struct X86FrameUnwinderTests {
    let text: Range<UInt64> = 0xc100_0000..<0xc180_0000
    var unwinder: X86FrameUnwinder { X86FrameUnwinder(width: 4) { [text] in text.contains($0) } }
    let task: UInt64 = 0xc200_0000
    /// The syscall pt_regs of the task stack (THREAD_SIZE 8192, padding 8, 68-byte regs).
    var syscallRegs: UInt64 { task + 8192 - 8 - 68 }

    func frame(_ m: inout ByteMemory, at bp: UInt64, next: UInt64, ret: UInt64) {
        m.put(bp, next, width: 4); m.put(bp + 4, ret, width: 4)
    }
    func regs(_ m: inout ByteMemory, at base: UInt64, bp: UInt64, ip: UInt64, cs: UInt64, sp: UInt64) {
        m.put(base + 20, bp, width: 4); m.put(base + 48, ip, width: 4); m.put(base + 52, cs, width: 4)
        m.put(base + 56, 0x246, width: 4); m.put(base + 60, sp, width: 4)
    }

    @Test func chainToTheSyscallRegistersIsComplete() {
        var m = ByteMemory()
        let last = syscallRegs - 8
        frame(&m, at: task + 0x1e00, next: task + 0x1f00, ret: 0xc100_1000)
        frame(&m, at: task + 0x1f00, next: last, ret: 0xc100_2000)
        frame(&m, at: last, next: 0xbf80_0000, ret: 0xc100_3000)     // user bp above it: never followed
        regs(&m, at: syscallRegs, bp: 0xbf80_0000, ip: 0x0804_8000, cs: 0x73, sp: 0xbf80_0100)
        let r = unwinder.unwind(ip: 0xc100_0100, sp: task + 0x1d00, bp: task + 0x1e00, memory: m)
        #expect(r.frames.map(\.ip) == [0xc100_0100, 0xc100_1000, 0xc100_2000, 0xc100_3000])
        #expect(r.frames.dropFirst().allSatisfy { $0.trust == .framePointer })
        #expect(r.complete && r.stop.contains("user mode"), "\(r.stop)")
    }

    /// An interrupt from kernel mode: bp holds the pt_regs address with bit 31 cleared.
    @Test func encodedFramePointerLeadsThroughTheInterruptedRegisters() {
        var m = ByteMemory()
        let irq: UInt64 = 0xc300_0000
        let base = task + 0x1000
        frame(&m, at: irq + 0x1f00, next: base & 0x7fff_ffff, ret: 0xc100_1000)
        regs(&m, at: base, bp: task + 0x1100, ip: 0xc100_4000, cs: 0x60, sp: base + 68)
        frame(&m, at: task + 0x1100, next: 0, ret: 0xc100_5000)
        let r = unwinder.unwind(ip: 0xc100_0100, sp: irq + 0x1e00, bp: irq + 0x1f00, memory: m)
        #expect(r.frames.map(\.ip) == [0xc100_0100, 0xc100_1000, 0xc100_4000, 0xc100_5000])
        #expect(r.frames[2].trust == .exceptionRegs && r.frames[2].slot == base + 48)
        #expect(r.complete, "\(r.stop)")
    }

    @Test func encodedUserRegistersEndTheWalk() {
        var m = ByteMemory()
        let base = syscallRegs
        frame(&m, at: task + 0x1e00, next: base & 0x7fff_ffff, ret: 0xc100_1000)
        regs(&m, at: base, bp: 0, ip: 0x0804_8000, cs: 0x73, sp: 0xbf80_0100)
        let r = unwinder.unwind(ip: 0xc100_0100, sp: task + 0x1d00, bp: task + 0x1e00, memory: m)
        #expect(r.frames.map(\.ip) == [0xc100_0100, 0xc100_1000])
        #expect(r.complete && r.stop.contains("user mode"))
    }

    @Test func hostileChainsStopWithAReason() {
        var m = ByteMemory()
        // A cycle, a frame that moves down, a return to a stack already left, a misaligned
        // pointer, a return address outside text, a pointer into unmapped memory.
        frame(&m, at: task + 0x1000, next: task + 0x1000, ret: 0xc100_1000)
        #expect(unwinder.unwind(ip: 0xc100_0100, sp: task, bp: task + 0x1000, memory: m).stop.contains("does not move up"))
        frame(&m, at: task + 0x1100, next: task + 0x1000, ret: 0xc100_1000)
        #expect(unwinder.unwind(ip: 0xc100_0100, sp: task, bp: task + 0x1100, memory: m).stop.contains("does not move up"))
        let irq: UInt64 = 0xc300_0000
        frame(&m, at: task + 0x1200, next: irq + 0x100, ret: 0xc100_1000)
        frame(&m, at: irq + 0x100, next: task + 0x1300, ret: 0xc100_1000)
        let back = unwinder.unwind(ip: 0xc100_0100, sp: task, bp: task + 0x1200, memory: m)
        #expect(back.stop.contains("already left") && !back.complete, "\(back.stop)")
        frame(&m, at: task + 0x1400, next: task + 0x1502, ret: 0xc100_1000)
        #expect(unwinder.unwind(ip: 0xc100_0100, sp: task, bp: task + 0x1400, memory: m).stop.contains("misaligned"))
        frame(&m, at: task + 0x1600, next: task + 0x1700, ret: 0x1234)
        #expect(unwinder.unwind(ip: 0xc100_0100, sp: task, bp: task + 0x1600, memory: m).stop.contains("not kernel text"))
        let wild = unwinder.unwind(ip: 0xc100_0100, sp: task, bp: 0xc500_0000, memory: m)
        #expect(!wild.complete && wild.frames.count == 1)
    }

    /// Early boot (32-bit PVH entry, before the kernel runs at PAGE_OFFSET): ebp is a
    /// physical address, which looks encoded but names no readable pt_regs.
    @Test func physicalFramePointerOfEarlyBootIsAPlainFrame() {
        var m = ByteMemory()
        frame(&m, at: 0x01df_e448, next: 0, ret: 0xc100_0337)
        let r = unwinder.unwind(ip: 0xc1da_b93b, sp: 0x01df_e42c, bp: 0x01df_e448, memory: m)
        #expect(r.frames.map(\.ip) == [0xc1da_b93b, 0xc100_0337])
        #expect(r.frames[1].trust == .framePointer && r.complete, "\(r.stop)")
    }

    /// A long, valid-looking chain still ends at the frame cap.
    @Test func framesAreCapped() {
        var m = ByteMemory()
        let capped = X86FrameUnwinder(width: 4, maxFrames: 8) { [text] in text.contains($0) }
        for i in 0..<100 { frame(&m, at: task + UInt64(i) * 16, next: task + UInt64(i + 1) * 16, ret: 0xc100_1000) }
        let r = capped.unwind(ip: 0xc100_0100, sp: task, bp: task, memory: m)
        #expect(r.frames.count == 8 && r.stop.contains("after 8 frames"))
    }

    /// x86_64: bit 0 marks an encoded frame pointer, pt_regs is 168 bytes.
    @Test func sixtyFourBitEncodingIsBitZero() {
        var m = ByteMemory()
        let u = X86FrameUnwinder(width: 8) { $0 >= 0xffff_ffff_8100_0000 && $0 < 0xffff_ffff_8200_0000 }
        let stack: UInt64 = 0xffff_c900_0000_0000
        let base = stack + 0x2000
        m.put(stack + 0x1000, base | 1, width: 8); m.put(stack + 0x1008, 0xffff_ffff_8100_1000, width: 8)
        m.put(base + 32, 0, width: 8); m.put(base + 128, 0xffff_ffff_8100_2000, width: 8)
        m.put(base + 136, 0x10, width: 8); m.put(base + 152, base + 168, width: 8)
        let r = u.unwind(ip: 0xffff_ffff_8100_0100, sp: stack + 0xf00, bp: stack + 0x1000, memory: m)
        #expect(r.frames.map(\.ip) == [0xffff_ffff_8100_0100, 0xffff_ffff_8100_1000, 0xffff_ffff_8100_2000])
        #expect(r.frames[2].trust == .exceptionRegs && r.complete, "\(r.stop)")
    }
}
