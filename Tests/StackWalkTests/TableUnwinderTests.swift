import Testing
import VCPUContext
@testable import StackWalk

/// Byte-addressed little-endian test memory.
struct ByteMemory: StackMemory {
    var bytes: [UInt64: UInt8] = [:]
    mutating func put(_ address: UInt64, _ value: UInt64, width: Int) {
        for i in 0..<width { bytes[address &+ UInt64(i)] = UInt8((value >> (8 * UInt64(i))) & 0xff) }
    }
    func word(_ address: UInt64, width: Int) throws(MemoryFault) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<width {
            guard let b = bytes[address &+ UInt64(i)] else { throw MemoryFault(address: address, reason: "unmapped in test") }
            v |= UInt64(b) << (8 * UInt64(i))
        }
        return v
    }
}

struct EHABITests {
    /// prel31 of `target` stored at `at`.
    func prel31(_ target: UInt64, at: UInt64) -> UInt64 { (target &- at) & 0x7fff_ffff }

    @Test func compactEntryPopsAndReturns() {
        var m = ByteMemory()
        // index: A at 0x8000 (inline pr0: "pop {r4, lr}" = a8, then finish b0 b0), B at 0x9000 (CANTUNWIND)
        m.put(0x1000, prel31(0x8000, at: 0x1000), width: 4); m.put(0x1004, 0x80a8_b0b0, width: 4)
        m.put(0x1008, prel31(0x9000, at: 0x1008), width: 4); m.put(0x100c, 1, width: 4)
        m.put(0x2000, 0x4444, width: 4); m.put(0x2004, 0x9004, width: 4)      // saved r4, lr
        let u = EHABIUnwinder(tables: .init(start: 0x1000, stop: 0x1010)) { (0x8000..<0xa000).contains($0) }
        var regs = [UInt64](repeating: 0, count: 16)
        regs[13] = 0x2000; regs[15] = 0x8010
        let r = u.unwind(registers: regs, memory: m)
        #expect(r.frames.map(\.ip) == [0x8010, 0x9004])
        #expect(r.frames.last?.sp == 0x2008)
        #expect(r.stop.contains("EXIDX_CANTUNWIND"))
    }

    @Test func extabEntryWithVSPAdjustAndMaskPop() {
        var m = ByteMemory()
        // A at 0x8000 → .ARM.extab entry at 0x3000, personality 1 with one more word:
        //   word0 = 81 01 02 84 (pr1, 1 more word, opcodes 02 84), word1 = 00 b0 b0 b0
        //   opcodes in order: 02 (vsp += 12), 84 00 (pop mask 0x400 from r4: r14), b0 (finish)
        m.put(0x1000, prel31(0x8000, at: 0x1000), width: 4); m.put(0x1004, prel31(0x3000, at: 0x1004), width: 4)
        m.put(0x3000, 0x8101_0284, width: 4)
        m.put(0x3004, 0x00b0_b0b0, width: 4)
        m.put(0x200c, 0x8abc, width: 4)            // lr at sp + 12
        let u = EHABIUnwinder(tables: .init(start: 0x1000, stop: 0x1008)) { (0x8000..<0x9000).contains($0) }
        var regs = [UInt64](repeating: 0, count: 16)
        regs[13] = 0x2000; regs[15] = 0x8020
        let r = u.unwind(registers: regs, memory: m)
        #expect(r.frames.count >= 2)
        #expect(r.frames[1].ip == 0x8abc)
        #expect(r.frames[1].sp == 0x2010)
    }

    @Test func selfReturningFrameStops() {
        var m = ByteMemory()
        // "vsp += 0; finish" with lr == pc: no progress, must stop, not loop.
        m.put(0x1000, prel31(0x8000, at: 0x1000), width: 4); m.put(0x1004, 0x80b0_b0b0, width: 4)
        let u = EHABIUnwinder(tables: .init(start: 0x1000, stop: 0x1008)) { (0x8000..<0x9000).contains($0) }
        var regs = [UInt64](repeating: 0, count: 16)
        regs[13] = 0x2000; regs[14] = 0x8010; regs[15] = 0x8010
        let r = u.unwind(registers: regs, memory: m)
        #expect(r.frames.count == 1)
        #expect(r.stop.contains("no progress"))
    }
}

struct ORCHostileTests {
    /// Every address maps to one entry: sp_reg SP, offset 8, CALL — with every stack word
    /// pointing back into the function, the walk climbs the stack and stops at the cap.
    @Test func loopingTablesAreCapped() {
        var m = ByteMemory()
        m.put(0x1000, 0xffff_ffff_8100_0000 &- 0x1000, width: 4)       // one ip entry: 0xffffffff81000000 (truncated rel)
        m.put(0x2000, 8, width: 2); m.put(0x2002, 0, width: 2); m.put(0x2004, 0x0005, width: 2)  // sp_reg 5, CALL
        for a in stride(from: UInt64(0x10_0000), to: 0x11_0000, by: 8) { m.put(a, 0xffff_ffff_8100_0010, width: 8) }
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000), maxFrames: 64) { $0 >> 32 == 0xffff_ffff }
        let r = u.unwind(from: .init(ip: 0xffff_ffff_8100_0010, sp: 0x10_0000, bp: 0, r10: 0, r13: 0, di: 0, dx: 0), memory: m)
        #expect(r.frames.count <= 64)
        #expect(!r.complete)
    }

    @Test func stackThatDoesNotMoveStops() {
        var m = ByteMemory()
        m.put(0x1000, 0xffff_ffff_8100_0000 &- 0x1000, width: 4)
        m.put(0x2000, 0, width: 2); m.put(0x2002, 0, width: 2); m.put(0x2004, 0x0005, width: 2)  // sp += 0
        m.put(0x0f_fff8, 0xffff_ffff_8100_0010, width: 8)
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000)) { $0 >> 32 == 0xffff_ffff }
        let r = u.unwind(from: .init(ip: 0xffff_ffff_8100_0010, sp: 0x10_0000, bp: 0, r10: 0, r13: 0, di: 0, dx: 0), memory: m)
        #expect(r.stop.contains("did not move up"))
    }

    /// An IRQ stack's saved pointer leads down to the task stack (the HVM guest of
    /// x86-run7-hvm64-boot); guest data that leads back to a stack already left is a loop.
    @Test func stacksAreLeftOnceEach() {
        var m = ByteMemory()
        m.put(0x1000, 0xffff_ffff_8100_0000 &- 0x1000, width: 4)
        m.put(0x2000, 0, width: 2); m.put(0x2002, 0, width: 2); m.put(0x2004, 0x0009, width: 2)  // sp_reg SP_INDIRECT, CALL
        // Stack A (0x10_0000) → B (0xf_8000, below: allowed) → A again: stopped.
        m.put(0x10_0000, 0xf_8000, width: 8); m.put(0xf_7ff8, 0xffff_ffff_8100_0010, width: 8)
        m.put(0xf_8000, 0x10_0100, width: 8); m.put(0x10_00f8, 0xffff_ffff_8100_0010, width: 8)
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000)) { $0 >> 32 == 0xffff_ffff }
        let r = u.unwind(from: .init(ip: 0xffff_ffff_8100_0010, sp: 0x10_0000, bp: 0, r10: 0, r13: 0, di: 0, dx: 0), memory: m)
        #expect(r.frames.count == 3, "\(r.frames)")
        #expect(r.stop.contains("returns to a stack it left"), "\(r.stop)")
    }

    /// Fuzzing finding (Scripts/fuzz.sh, unwind target): a pt_regs frame whose stack pointer
    /// lies at the top of the address space made `newSP + offsetof(pt_regs, ip)` trap on
    /// overflow. Addresses wrap now, and the walk ends at the unreadable word instead.
    @Test func ptRegsFrameAtTheTopOfTheAddressSpaceEnds() {
        var m = ByteMemory()
        m.put(0x1000, 0xffff_ffff_8100_0000 &- 0x1000, width: 4)
        // sp_reg SP with offset -0x10 (from sp 0: the top 16 bytes), type REGS (1 << 8).
        m.put(0x2000, 0xfff0, width: 2); m.put(0x2002, 0, width: 2); m.put(0x2004, 0x0105, width: 2)
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000)) { $0 >> 32 == 0xffff_ffff }
        let r = u.unwind(from: .init(ip: 0xffff_ffff_8100_0010, sp: 0, bp: 0, r10: 0, r13: 0, di: 0, dx: 0), memory: m)
        #expect(!r.complete)
        #expect(r.frames.count == 1)
    }
}
