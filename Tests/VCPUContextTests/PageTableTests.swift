import Testing
@testable import VCPUContext

/// Guest frames built in memory, for walkers.
final class TestFrames: FrameSource, @unchecked Sendable {
    var pages: [UInt64: [UInt8]] = [:]
    func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        guard let p = pages[frame] else { return nil }
        return p.withUnsafeBytes { UnsafeRawBufferPointer(start: $0.baseAddress, count: $0.count) }
    }
    func whyMissing(_ frame: UInt64) -> String { "frame 0x\(String(frame, radix: 16)) is not in the test memory" }
    func set64(_ pa: UInt64, _ v: UInt64) { write(pa, le64(v)) }
    func set32(_ pa: UInt64, _ v: UInt32) { write(pa, le32(v)) }
    func write(_ pa: UInt64, _ bytes: [UInt8]) {
        var p = pages[pa >> 12] ?? [UInt8](repeating: 0, count: 4096)
        p.replaceSubrange(Int(pa & 0xfff)..<(Int(pa & 0xfff) + bytes.count), with: bytes)
        pages[pa >> 12] = p
    }
}

struct PageTableTests {
    @Test func x86LongModeSmallAndSuperpages() throws {
        let m = TestFrames()
        // L4 at 0x1000; va ffffffff81000000: L4 511, L3 510, L2 8, L1 0
        m.set64(0x1000 + 511 * 8, 0x2000 | 3)
        m.set64(0x2000 + 510 * 8, 0x3000 | 3)
        m.set64(0x3000 + 8 * 8, 0x4000 | 3)
        m.set64(0x4000 + 0 * 8, 0x7_7000 | 3)
        let t = Translation.x86LongMode(root: 0x1000)
        #expect(try t.translate(0xffff_ffff_8100_0123, frames: m) == 0x7_7123)
        // 2 MiB page at L2 index 9
        m.set64(0x3000 + 9 * 8, 0x4060_0000 | 0x83)
        #expect(try t.translate(0xffff_ffff_8120_5678, frames: m) == 0x4060_5678)
        // 1 GiB page at L3 index 0 of L4 0
        m.set64(0x1000, 0x5000 | 3)
        m.set64(0x5000, 0x8000_0000 | 0x83)
        #expect(try t.translate(0x0123_4567, frames: m) == 0x8123_4567)
        #expect(throws: MemoryFault.self) { try t.translate(0x0000_8000_0000_0000, frames: m) }  // non-canonical
        #expect(throws: MemoryFault.self) { try t.translate(0xffff_ffff_8140_0000, frames: m) }  // not present
    }

    @Test func x86PAEAndTwoLevel() throws {
        let m = TestFrames()
        m.set64(0x1000 + 3 * 8, 0x2000 | 1)              // PDPT entry 3 (c0000000-)
        m.set64(0x2000 + 1 * 8, 0x3000 | 3)              // L2 index 1
        m.set64(0x3000 + 2 * 8, 0x9000 | 3)              // L1 index 2
        #expect(try Translation.x86PAE(root: 0x1000).translate(0xc020_2abc, frames: m) == 0x9abc)
        m.set64(0x2000 + 2 * 8, 0x0060_0000 | 0x83)      // 2 MiB
        #expect(try Translation.x86PAE(root: 0x1000).translate(0xc041_2345, frames: m) == 0x61_2345)
        let m2 = TestFrames()
        m2.set32(0x1000 + 0x300 * 4, 0x2000 | 3)
        m2.set32(0x2000 + 5 * 4, 0x5000 | 3)
        #expect(try Translation.x86TwoLevel(root: 0x1000, pse: false).translate(0xc000_5111, frames: m2) == 0x5111)
        m2.set32(0x1000 + 0x301 * 4, 0x0080_0000 | 0x83)   // 4 MiB
        #expect(try Translation.x86TwoLevel(root: 0x1000, pse: true).translate(0xc041_0000, frames: m2) == 0x81_0000)
    }

    @Test func selfReferencingTableEndsAtTheLastLevel() throws {
        let m = TestFrames()
        m.set64(0x1000 + 511 * 8, 0x1000 | 3)            // every level points back to the L4
        m.set64(0x1000 + 0x1ff * 8, 0x1000 | 3)
        let pa = try Translation.x86LongMode(root: 0x1000).translate(0xffff_ffff_ffff_f008, frames: m)
        #expect(pa == 0x1008)                            // four steps, then done: no loop
    }

    @Test func missingTableNamesTheFrame() {
        let m = TestFrames()
        m.set64(0x1000 + 511 * 8, 0x2000 | 3)
        do {
            _ = try Translation.x86LongMode(root: 0x1000).translate(0xffff_ffff_8100_0000, frames: m)
            Issue.record("no fault")
        } catch {
            #expect(error.reason.contains("L3"))
            #expect(error.reason.contains("frame 0x2"))
        }
    }

    @Test func armLPAEBothHalves() throws {
        let m = TestFrames()
        // TTBCR: EAE, T0SZ 0, T1SZ 2 (TTBR1 covers c0000000-ffffffff, starting at level 2)
        let ttbcr: UInt64 = 0x8000_0000 | (2 << 16)
        // TTBR1 level-2 table at 0x4000: index (0xc0100000 >> 21) & 0x1ff = 0 → 2 MiB block
        m.set64(0x4000 + 0 * 8, 0x4000_0000 | 1)
        // index 1 → level-3 table at 0x6000, entry 0x100 (va c0300000 + 0x100 pages... )
        m.set64(0x4000 + 1 * 8, 0x6000 | 3)
        m.set64(0x6000 + 5 * 8, 0x8765_4000 | 3)
        // TTBR0 level-1 table at 0x3000 (4 entries): va 0x00012345 → L1 0 → L2 at 0x5000
        m.set64(0x3000, 0x5000 | 3)
        m.set64(0x5000, 0x7000 | 3)
        m.set64(0x7000 + 0x12 * 8, 0x1_2345_6000 | 3)
        let t = Translation.armLPAE(ArmLPAE(ttbcr: ttbcr, ttbr0: 0x0001_0000_0000_3000, ttbr1: 0x4000))
        #expect(try t.translate(0xc010_0abc, frames: m) == 0x4010_0abc)
        #expect(try t.translate(0xc020_5def, frames: m) == 0x8765_4def)
        #expect(try t.translate(0x0001_2345, frames: m) == 0x1_2345_6345)   // 40-bit output
    }

    /// A TTBR1 region under 1 GiB starts at level 2 with fewer than 9 index bits:
    /// VA[31-T1SZ:21] (ARM ARM G5), not VA[29:21].
    @Test func armLPAESmallTTBR1Region() throws {
        let m = TestFrames()
        let ttbcr: UInt64 = 0x8000_0000 | (3 << 16)          // T1SZ 3: TTBR1 covers e0000000-ffffffff
        m.set64(0x4800 + 1 * 8, 0x6000_0000 | 1)             // index (e0200000 >> 21) & 0xff = 1: 2 MiB block
        let t = Translation.armLPAE(ArmLPAE(ttbcr: ttbcr, ttbr0: 0, ttbr1: 0x4800))
        #expect(try t.translate(0xe020_1234, frames: m) == 0x6000_1234)
    }

    /// T1SZ 0 with T0SZ set (Linux 6.12's LPAE kernel with TTBR0 PAN: T0SZ 7 cuts user
    /// walks to 32 MiB while in the kernel): TTBR1 covers everything above TTBR0's region,
    /// walked as a full 32-bit space from level 1 (ARM ARM B3.6.4). It was taken for a gap.
    @Test func armLPAETTBR1TakesTheRestWhenT1SZIsZero() throws {
        let m = TestFrames()
        let ttbcr: UInt64 = 0x8000_0000 | 7                  // T0SZ 7, T1SZ 0
        m.set64(0x4000 + 3 * 8, 0x9000 | 3)                  // L1 index 3 (c0000000-ffffffff) → L2 at 0x9000
        m.set64(0x9000 + 0x8 * 8, 0x4100_0000 | 1)          // (c1000000 >> 21) & 0x1ff = 8: 2 MiB block
        m.set64(0x3000, 0x5000 | 3)                          // TTBR0 (32 MiB region: starts at level 2)
        let t = Translation.armLPAE(ArmLPAE(ttbcr: ttbcr, ttbr0: 0x3000, ttbr1: 0x4000))
        #expect(try t.translate(0xc100_1234, frames: m) == 0x4100_1234)
        // Both 0: TTBR0 for everything; T0SZ 0 with T1SZ 2: TTBR0 up to TTBR1's region.
        let whole = Translation.armLPAE(ArmLPAE(ttbcr: 0x8000_0000, ttbr0: 0x4000, ttbr1: 0x7000))
        #expect(try whole.translate(0xc100_1234, frames: m) == 0x4100_1234)
    }

    @Test func armShortDescriptorSectionsAndPages() throws {
        let m = TestFrames()
        // N = 0: everything through TTBR0 at 0x4000 (16 KiB table)
        m.set32(0x4000 + 0xc00 * 4, 0x4020_0000 | 2)                          // 1 MiB section
        m.set32(0x4000 + 0xc10 * 4, 0x5500_0000 | 2 | (1 << 18))               // 16 MiB supersection
        m.set32(0x4000 + 0xc20 * 4, 0x8000 | 1)                               // page table
        m.set32(0x8000 + 3 * 4, 0x9_9000 | 2)                                 // small page
        m.set32(0x8000 + 4 * 4, 0x7_0000 | 1)                                 // 64 KiB large page
        let t = Translation.armShort(ArmShortDescriptor(ttbcr: 0, ttbr0: 0x4000, ttbr1: 0))
        #expect(try t.translate(0xc001_2345, frames: m) == 0x4021_2345)
        #expect(try t.translate(0xc103_4567, frames: m) == 0x5503_4567)
        #expect(try t.translate(0xc200_3abc, frames: m) == 0x9_9abc)
        #expect(try t.translate(0xc200_4abc, frames: m) == 0x7_4abc)
        // N = 2: top quarter... no: addresses with either of the top 2 bits set use TTBR1.
        m.set32(0xc000 + 0xc00 * 4, 0x1230_0000 | 2)
        let split = Translation.armShort(ArmShortDescriptor(ttbcr: 2, ttbr0: 0x4000, ttbr1: 0xc000))
        #expect(try split.translate(0xc004_0000, frames: m) == 0x1234_0000)
    }

    @Test(arguments: [(UInt64(12), UInt64(2)), (14, 1), (16, 3)])   // (granule bits, TG1 encoding)
    func aarch64Granules(granule g: UInt64, tg1: UInt64) throws {
        let m = TestFrames()
        let t1sz: UInt64 = 16                                  // 48-bit
        let tcr = (t1sz << 16) | (tg1 << 30) | 16 | (g == 12 ? 0 : g == 16 ? (1 << 14) : (2 << 14))
        let stride = g - 3
        let levels = Int((48 - g + stride - 1) / stride)
        let va: UInt64 = 0xffff_8000_1234_5678
        var table: UInt64 = 0x10_0000
        let root = table
        for level in (4 - levels)...3 {
            let shift = g + stride * UInt64(3 - level)
            let bits = level == 4 - levels ? 48 - shift : stride
            let index = (va >> shift) & ((1 << bits) - 1)
            let next = table + 0x10_0000
            m.set64(table + index * 8, level == 3 ? (0x4_0000_0000 | 3) : (next | 3))
            table = next
        }
        let tr = Translation.aarch64(AArch64Translation(tcr: tcr, ttbr0: 0, ttbr1: 0x0038_0000_0000_0000 | root))
        #expect(try tr.translate(va, frames: m) == 0x4_0000_0000 | (va & ((1 << g) - 1)))
        #expect(throws: MemoryFault.self) { try tr.translate(0x0000_0000_0000_1000, frames: m) }   // TTBR0 half: empty
    }

    @Test func aarch64BlockAndDisabledHalf() throws {
        let m = TestFrames()
        let tcr: UInt64 = (16 << 16) | (2 << 30) | 16 | (1 << 7)       // 4K, EPD0
        m.set64(0x1000 + 256 * 8, 0x2000 | 3)                        // L0 index of ffff8000...
        m.set64(0x2000, 0x8000_0000 | 1)                             // L1 1 GiB block
        let tr = Translation.aarch64(AArch64Translation(tcr: tcr, ttbr0: 0, ttbr1: 0x1000))
        #expect(try tr.translate(0xffff_8000_0123_4567, frames: m) == 0x8123_4567)
        #expect(throws: MemoryFault.self) { try tr.translate(0x1000, frames: m) }
    }

    @Test func mmuOffIsIdentity() throws {
        #expect(try Translation.identity.translate(0x4000_1234, frames: TestFrames()) == 0x4000_1234)
    }
}
