import Foundation
import Testing
@testable import VCPUContext

/// Frame lookup without a whole-core index: `.xen_pfn` searched in place (and an unsorted
/// one found out and indexed by runs), PV machine frames indexed by runs. Every page is
/// written with its slot number, so each lookup's answer is checked against the writer.
struct FrameLookupTests {
    func core(magic: UInt64, machine: UInt16, entrySize: Int, frames: [(pfn: UInt64, gmfn: UInt64)], name: String) throws -> Guest {
        let ctx = [UInt8](repeating: 0, count: entrySize)
        let writer = DumpCoreWriter(machine: machine, magic: magic, entrySize: entrySize, contexts: [ctx], frames: frames)
        let path = temporaryPath(name)
        try? FileManager.default.removeItem(atPath: path)
        try writer.write(to: path) { slot in
            var page = [UInt8](repeating: 0, count: 4096)
            page.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(slot).littleEndian, as: UInt32.self) }
            return page
        }
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try Guest(core: XenCore(path: path))
    }

    func slotOf(_ guest: Guest, _ frame: UInt64) -> Int? {
        guest.frames?.page(frame).map { Int($0.loadUnaligned(as: UInt32.self)) }
    }

    /// A PV p2m in 2000 short runs (1 to 3 frames), out of frame order, with gaps.
    @Test func fragmentedP2M() throws {
        var frames: [(pfn: UInt64, gmfn: UInt64)] = []
        var mfn: UInt64 = 0x9_0000
        var runs: [[UInt64]] = []
        for i in 0..<2000 {
            let length = UInt64(1 + i % 3)
            runs.append((0..<length).map { mfn + $0 })
            mfn += length + 1 + UInt64(i % 5)            // a gap after every run
        }
        runs.reverse()                                   // descending: the runs need sorting
        for run in runs { for m in run { frames.append((pfn: UInt64(frames.count), gmfn: m)) } }
        let guest = try core(magic: XenCoreLayout.magicPV, machine: XenCoreLayout.emX86_64, entrySize: 5168, frames: frames, name: "fragmented.core")
        for (slot, f) in frames.enumerated() { #expect(slotOf(guest, f.gmfn) == slot, "mfn \(f.gmfn)") }
        #expect(slotOf(guest, 0x9_0000 - 1) == nil)
        #expect(slotOf(guest, mfn + 100) == nil)
        // A gap between two runs is no frame.
        let present = Set(frames.map(\.gmfn))
        let gap = (0x9_0000..<mfn).first { !present.contains($0) }!
        #expect(slotOf(guest, gap) == nil)
        if let cf = guest.frames as? CoreFrames, cf.lookupState == .runs { #expect(cf.indexedRuns.runs == 2000) } else { Issue.record("not indexed by runs") }
    }

    /// A `.xen_pfn` index out of order (Xen's writer never makes one): a binary search would
    /// miss pfn 0x40 below; the block the search reads is checked, found out of order, and
    /// the core indexed by runs instead.
    @Test func unsortedPFNIndex() throws {
        let pfns: [UInt64] = [0x41, 0x45, 0x43, 0x47, 0x40, 0x44]
        let guest = try core(magic: XenCoreLayout.magicHVM, machine: XenCoreLayout.emARM, entrySize: 352,
                             frames: pfns.map { (pfn: $0, gmfn: 0) }, name: "unsorted-pfn.core")
        for (slot, p) in pfns.enumerated() { #expect(slotOf(guest, p) == slot, "pfn \(p)") }
        #expect(slotOf(guest, 0x42) == nil)
        #expect(slotOf(guest, 0x48) == nil)
        guard let cf = guest.frames as? CoreFrames, cf.lookupState == .runs else { Issue.record("the unsorted index was not found out"); return }
    }

    /// Out of order only far from the start: found out as soon as a search reads that block,
    /// whether it hits or misses there.
    @Test func unsortedBlockFoundWhereRead() throws {
        var pfns: [UInt64] = (0..<4000).map { 0x40000 + UInt64($0) * 2 }
        pfns.swapAt(3000, 3001)
        let guest = try core(magic: XenCoreLayout.magicHVM, machine: XenCoreLayout.emARM, entrySize: 352,
                             frames: pfns.map { (pfn: $0, gmfn: 0) }, name: "unsorted-block.core")
        let cf = try #require(guest.frames as? CoreFrames)
        #expect(slotOf(guest, pfns[10]) == 10)
        #expect(cf.lookupState == .sortedPFN)                   // blocks read so far are in order
        #expect(slotOf(guest, pfns[3000] + 1) == nil)           // a miss in the swapped block
        #expect(cf.lookupState == .runs)
        for (slot, p) in pfns.enumerated() { #expect(slotOf(guest, p) == slot) }
    }

    /// The sorted `.xen_pfn` of Xen's writer is searched in place: no index is built, and
    /// only the blocks the searches read are checked (a miss included).
    @Test func sortedPFNIndexInPlace() throws {
        let pfns: [UInt64] = (0..<300_000).map { 0x40000 + UInt64($0) * 3 }
        let guest = try core(magic: XenCoreLayout.magicHVM, machine: XenCoreLayout.emARM, entrySize: 352,
                             frames: pfns.map { (pfn: $0, gmfn: 0) }, name: "sorted-pfn.core")
        let cf = try #require(guest.frames as? CoreFrames)
        for slot in [0, 1, 150_000, 299_999] { #expect(slotOf(guest, pfns[slot]) == slot) }
        #expect(slotOf(guest, 0x40001) == nil)
        #expect(slotOf(guest, 0x3_0000) == nil)                 // below every pfn
        #expect(cf.lookupState == .sortedPFN)
        let blocks = (300_000 + CoreFrames.blockEntries - 1) / CoreFrames.blockEntries
        #expect(cf.checkedBlockCount > 0 && cf.checkedBlockCount < blocks / 4, "\(cf.checkedBlockCount) of \(blocks) blocks checked")
    }
}

/// A PV p2m is indexed only as far as lookups need it, and past a budget of runs by
/// per-segment filters, so a guest of any size and any scatter costs bounded memory.
struct FrameRunIndexTests {
    /// 200 000 slots, each its own run (every other machine frame, descending), so every
    /// step of the index is a sort and the budget bites.
    func scattered(_ name: String) throws -> (CoreFrames, [UInt64]) {
        let count = 200_000
        let mfns: [UInt64] = (0..<count).map { 0x100_0000 + UInt64(count - 1 - $0) * 2 }
        let frames = mfns.enumerated().map { (pfn: UInt64($0.offset), gmfn: $0.element) }
        let writer = DumpCoreWriter(machine: XenCoreLayout.emX86_64, magic: XenCoreLayout.magicPV, entrySize: 5168,
                                    contexts: [[UInt8](repeating: 0, count: 5168)], frames: frames)
        let path = temporaryPath(name)   // one per test: the tests run in parallel
        try? FileManager.default.removeItem(atPath: path)
        try writer.write(to: path) { _ in nil }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let guest = try Guest(core: XenCore(path: path))
        return (try #require(guest.frames as? CoreFrames), mfns)
    }

    @Test func lookupsIndexOnlyWhatTheyNeed() throws {
        let (cf, mfns) = try scattered("scattered-lazy.core")
        #expect(cf.slot(of: mfns[10]) == 10)
        #expect(cf.indexedRuns.slots == FrameRunIndex.firstStep)
        #expect(cf.slot(of: mfns[70_000]) == 70_000)            // the second step doubles
        #expect(cf.indexedRuns.slots == 2 * FrameRunIndex.firstStep)
        #expect(cf.slot(of: 0x100_0001) == nil)                 // a miss indexes the rest
        #expect(cf.indexedRuns.slots == mfns.count && cf.indexedRuns.filterBytes == 0)
    }

    @Test func pastTheBudgetEveryFrameIsStillFound() throws {
        let (cf, mfns) = try scattered("scattered-budget.core")
        let entries = try #require(cf.entries(frameOffset: 8))
        var index = FrameRunIndex(runBudget: 1000, tailSegment: 4096)
        #expect(index.slot(of: 0x100_0001, in: entries) == nil)              // between two frames
        #expect(index.runs.count == 1000 && index.indexed == 1000 && index.tail != nil)
        for slot in stride(from: 0, to: mfns.count, by: 997) { #expect(index.slot(of: mfns[slot], in: entries) == slot) }
        #expect(index.slot(of: mfns[mfns.count - 1], in: entries) == mfns.count - 1)
        #expect(index.slot(of: 0xfff_ffff, in: entries) == nil)
        #expect(index.slot(of: 0xfff_ffff, in: entries) == nil)              // remembered
    }
}
