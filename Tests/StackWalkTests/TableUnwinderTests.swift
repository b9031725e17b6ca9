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
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000, format: .twoBitType), maxFrames: 64) { $0 >> 32 == 0xffff_ffff }
        let r = u.unwind(from: .init(ip: 0xffff_ffff_8100_0010, sp: 0x10_0000, bp: 0, r10: 0, r13: 0, di: 0, dx: 0), memory: m)
        #expect(r.frames.count <= 64)
        #expect(!r.complete)
    }

    @Test func stackThatDoesNotMoveStops() {
        var m = ByteMemory()
        m.put(0x1000, 0xffff_ffff_8100_0000 &- 0x1000, width: 4)
        m.put(0x2000, 0, width: 2); m.put(0x2002, 0, width: 2); m.put(0x2004, 0x0005, width: 2)  // sp += 0
        m.put(0x0f_fff8, 0xffff_ffff_8100_0010, width: 8)
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000, format: .twoBitType)) { $0 >> 32 == 0xffff_ffff }
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
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000, format: .twoBitType)) { $0 >> 32 == 0xffff_ffff }
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
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000, format: .twoBitType)) { $0 >> 32 == 0xffff_ffff }
        let r = u.unwind(from: .init(ip: 0xffff_ffff_8100_0010, sp: 0, bp: 0, r10: 0, r13: 0, di: 0, dx: 0), memory: m)
        #expect(!r.complete)
        #expect(r.frames.count == 1)
    }
}

/// The ORC entry's flags changed meaning in Linux 6.4 (type:2 + end → type:3 + signal); the
/// format is read from the entries' own shape, and a table of neither shape is named.
struct ORCFormatTests {
    /// `count` entries with sp_reg SP (5) and the given type bits, one in 16 a REGS entry.
    static func table(count: Int, call: UInt16, regs: UInt16) -> ByteMemory {
        var m = ByteMemory()
        for i in 0..<count {
            let type = i % 16 == 0 ? regs : call
            m.put(0x2000 + UInt64(i) * 6, 8, width: 2); m.put(0x2002 + UInt64(i) * 6, 0, width: 2)
            m.put(0x2004 + UInt64(i) * 6, UInt64(type << 8 | 5), width: 2)
        }
        return m
    }

    @Test func formatsAreToldApartByTheirShape() throws {
        let old = Self.table(count: 4096, call: 0, regs: 1)
        #expect(try ORCUnwinder.Format.detect(entries: 0x2000, count: 4096, memory: old).get() == .twoBitType)
        let new = Self.table(count: 4096, call: 2, regs: 3)
        #expect(try ORCUnwinder.Format.detect(entries: 0x2000, count: 4096, memory: new).get() == .threeBitType)
        // Half and half: neither format; bits 12-15 set: no known ORC; nothing readable: said.
        var mixed = Self.table(count: 64, call: 0, regs: 2)
        for i in stride(from: 1, to: 64, by: 2) { mixed.put(0x2004 + UInt64(i) * 6, 0x205, width: 2) }
        #expect(throws: ORCUnwinder.FormatUnknown.self) { try ORCUnwinder.Format.detect(entries: 0x2000, count: 64, memory: mixed).get() }
        var high = Self.table(count: 64, call: 0, regs: 1)
        high.put(0x2004, 0x1005, width: 2)
        #expect(throws: ORCUnwinder.FormatUnknown.self) { try ORCUnwinder.Format.detect(entries: 0x2000, count: 64, memory: high).get() }
        #expect(throws: ORCUnwinder.FormatUnknown.self) { try ORCUnwinder.Format.detect(entries: 0x9000, count: 64, memory: old).get() }
    }

    /// One frame read in each format: CALL is 0 before 6.4 and 2 after; END_OF_STACK is the
    /// end bit (10, or 11 in 6.3) before and type 1 after.
    @Test func entriesReadInTheirFormat() {
        let f2 = ORCUnwinder.Format.twoBitType, f3 = ORCUnwinder.Format.threeBitType
        #expect(f2.entry(spOffset: 8, bpOffset: 0, flags: 0x0005).kind == .call)
        #expect(f3.entry(spOffset: 8, bpOffset: 0, flags: 0x0205).kind == .call)
        #expect(f2.entry(spOffset: 8, bpOffset: 0, flags: 0x0205).kind == .regsPartial)
        #expect(f2.entry(spOffset: 0, bpOffset: 0, flags: 0x0400).kind == .endOfStack)   // ≤ 6.2
        #expect(f2.entry(spOffset: 0, bpOffset: 0, flags: 0x0800).kind == .endOfStack)   // 6.3
        #expect(f2.entry(spOffset: 0, bpOffset: 0, flags: 0x0000).kind == .undefined)
        #expect(f3.entry(spOffset: 0, bpOffset: 0, flags: 0x0100).kind == .endOfStack)
        #expect(f3.entry(spOffset: 0, bpOffset: 0, flags: 0x0000).kind == .undefined)
        #expect(f3.entry(spOffset: 0, bpOffset: 0, flags: 0x0305).signal == false)
        #expect(f3.entry(spOffset: 0, bpOffset: 0, flags: 0x0b05).signal == true)
        #expect(f2.entry(spOffset: 0, bpOffset: 0, flags: 0x0105).signal == true)          // REGS implies it before 6.3
        #expect(f3.entry(spOffset: 0, bpOffset: 0, flags: 0x0705).kind == .unknown(7))
    }

    /// The same one-entry walk as `ORCHostileTests` in the 6.4 format, and with no format:
    /// a table whose format is unknown gives no trace past the registers, and says why.
    @Test func walksInTheNewFormatAndStopsWithoutOne() {
        var m = ByteMemory()
        m.put(0x1000, 0xffff_ffff_8100_0000 &- 0x1000, width: 4)
        m.put(0x2000, 8, width: 2); m.put(0x2002, 0, width: 2); m.put(0x2004, 0x0205, width: 2)  // SP+8, CALL (6.4+)
        m.put(0x10_0000, 0xffff_ffff_8100_0020, width: 8); m.put(0x10_0008, 0xffff_ffff_8100_0020, width: 8)
        let start = ORCUnwinder.Registers(ip: 0xffff_ffff_8100_0010, sp: 0x10_0000, bp: 0, r10: 0, r13: 0, di: 0, dx: 0)
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000, format: .threeBitType), maxFrames: 3) { $0 >> 32 == 0xffff_ffff }
        let r = u.unwind(from: start, memory: m)
        #expect(r.frames.count == 3 && r.frames[1].trust == .orc && r.frames[1].ip == 0xffff_ffff_8100_0020, "\(r.frames)")
        let none = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000, format: nil, unformatted: "test")) { $0 >> 32 == 0xffff_ffff }
        let n = none.unwind(from: start, memory: m)
        #expect(n.frames.count == 1 && !n.complete && n.stop.contains("format"), "\(n.stop)")
    }
}

/// A vCPU stopped in code without ORC entries (a PV guest's hypercall page, filled by Xen):
/// the caller is taken from the stack only when its call instruction targets the function
/// the vCPU is in.
struct ORCLeafCallSiteTests {
    static let stub: UInt64 = 0xffff_ffff_8100_2000      // the function without unwind entries
    static let caller: UInt64 = 0xffff_ffff_8100_0100    // code that calls it

    /// ORC: one entry at 0xffffffff81000000 (SP+8, CALL, for the caller) and one undefined at the stub.
    static func memory(callTarget: UInt64) -> ByteMemory {
        var m = ByteMemory()
        m.put(0x1000, 0xffff_ffff_8100_0000 &- 0x1000, width: 4)
        m.put(0x1004, stub &- 0x1004, width: 4)
        m.put(0x2000, 8, width: 2); m.put(0x2002, 0, width: 2); m.put(0x2004, 0x0005, width: 2)
        m.put(0x2006, 0, width: 2); m.put(0x2008, 0, width: 2); m.put(0x200a, 0x0000, width: 2)
        // The caller's `call rel32` to callTarget, returning to caller.
        m.put(caller &- 5, 0xe8, width: 1); m.put(caller &- 4, callTarget &- caller, width: 4)
        // The stub pushed two words; the return address above them; the caller's return above that.
        m.put(0x10_0000, 0x1111, width: 8); m.put(0x10_0008, 0x2222, width: 8)
        m.put(0x10_0010, caller, width: 8); m.put(0x10_0018, 0x1234, width: 8)
        return m
    }

    static func unwind(_ m: ByteMemory) -> Unwind {
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1008, entries: 0x2000, format: .twoBitType),
                            functionStart: { $0 >= stub && $0 < stub + 32 ? stub : nil }) { $0 >> 32 == 0xffff_ffff }
        return u.unwind(from: .init(ip: stub + 0xa, sp: 0x10_0000, bp: 0, r10: 0, r13: 0, di: 0, dx: 0), memory: m)
    }

    @Test func callerProvenByItsCallInstruction() {
        let r = Self.unwind(Self.memory(callTarget: Self.stub))
        #expect(r.frames.count >= 2 && r.frames[1].ip == Self.caller && r.frames[1].trust == .callSite && r.frames[1].slot == 0x10_0010, "\(r.frames)")
    }

    @Test func aCallElsewhereProvesNothing() {
        let r = Self.unwind(Self.memory(callTarget: Self.stub + 0x100))
        #expect(r.frames.count == 1 && !r.complete && r.stop.contains("without an end marker"), "\(r.frames) \(r.stop)")
    }
}

/// A return address in the kernel's half that no symbols name is not "user mode".
struct ORCUnnamedKernelTextTests {
    @Test func kernelHalfIsNotUserMode() {
        var m = ByteMemory()
        m.put(0x1000, 0xffff_ffff_8100_0000 &- 0x1000, width: 4)
        m.put(0x2000, 8, width: 2); m.put(0x2002, 0, width: 2); m.put(0x2004, 0x0005, width: 2)
        m.put(0x10_0000, 0xffff_ffff_c020_1a49, width: 8)      // a module's address, no module listed
        let u = ORCUnwinder(tables: .init(ipTable: 0x1000, stopIPTable: 0x1004, entries: 0x2000, format: .twoBitType)) { $0 >> 32 == 0xffff_ffff && $0 < 0xffff_ffff_c000_0000 }
        let r = u.unwind(from: .init(ip: 0xffff_ffff_8100_0010, sp: 0x10_0000, bp: 0, r10: 0, r13: 0, di: 0, dx: 0), memory: m)
        #expect(!r.complete && r.stop.contains("kernel's half") && !r.stop.contains("user mode"), "\(r.stop)")
    }
}
