import Testing
@testable import GuestKernel

/// The ARM32 exception index found by content: the longest run of entries whose prel31
/// targets rise through text; nothing when the run is short or the targets do not rise.
struct EHABIIndexFinderTests {
    static let text: ClosedRange<UInt64> = 0xc040_0000...0xc0ff_ffff
    static let base: UInt64 = 0xc130_0000

    /// `count` entries at `base + 0x100`, after 32 bytes of absolute (__ex_table-like) words.
    static func memory(count: Int, rising: Bool = true) -> TestMemory {
        let m = TestMemory()
        for i in 0..<8 { m.write32(base + UInt64(0x100 - 32 + 4 * i), 0xc050_0000) }
        for i in 0..<count {
            let entry = base + 0x100 + UInt64(8 * i)
            let function: UInt64 = rising ? 0xc040_0000 + UInt64(0x40 * i) : 0xc080_0000 - UInt64(0x40 * i)
            m.write32(entry, UInt32((function &- entry) & 0x7fff_ffff))
            m.write32(entry + 4, 1)   // EXIDX_CANTUNWIND
        }
        m.write32(base + 0x100 + UInt64(8 * count), 0xdead_beef)
        return m
    }

    @Test func findsTheRun() {
        let found = EHABIIndexFinder.locate(reader: Self.memory(count: 1000).reader(wordSize: 4), text: [Self.text], from: Self.base, to: Self.base + 0x10000)
        #expect(found?.start == Self.base + 0x100)
        #expect(found?.stop == Self.base + 0x100 + 8000)
    }

    @Test func shortOrFallingRunsAreNotAnIndex() {
        #expect(EHABIIndexFinder.locate(reader: Self.memory(count: 100).reader(wordSize: 4), text: [Self.text], from: Self.base, to: Self.base + 0x10000) == nil)
        #expect(EHABIIndexFinder.locate(reader: Self.memory(count: 1000, rising: false).reader(wordSize: 4), text: [Self.text], from: Self.base, to: Self.base + 0x10000) == nil)
        // A window larger than any kernel's is refused, not scanned.
        #expect(EHABIIndexFinder.locate(reader: Self.memory(count: 1000).reader(wordSize: 4), text: [Self.text], from: 0, to: 0xffff_ffff) == nil)
    }
}
