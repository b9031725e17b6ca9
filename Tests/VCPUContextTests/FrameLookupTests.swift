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
        if let cf = guest.frames as? CoreFrames, case .runs(let r)? = cf.lookupState { #expect(r.count == 2000) } else { Issue.record("not indexed by runs") }
    }

    /// A `.xen_pfn` index out of order (Xen's writer never makes one): a binary search would
    /// miss pfn 5 below; the miss checks the order and indexes the core by runs instead.
    @Test func unsortedPFNIndex() throws {
        let pfns: [UInt64] = [0x41, 0x45, 0x43, 0x47, 0x40, 0x44]
        let guest = try core(magic: XenCoreLayout.magicHVM, machine: XenCoreLayout.emARM, entrySize: 352,
                             frames: pfns.map { (pfn: $0, gmfn: 0) }, name: "unsorted-pfn.core")
        for (slot, p) in pfns.enumerated() { #expect(slotOf(guest, p) == slot, "pfn \(p)") }
        #expect(slotOf(guest, 0x42) == nil)
        #expect(slotOf(guest, 0x48) == nil)
        guard let cf = guest.frames as? CoreFrames, case .runs? = cf.lookupState else { Issue.record("the unsorted index was not found out"); return }
    }

    /// The sorted `.xen_pfn` of Xen's writer is searched in place: no index is built.
    @Test func sortedPFNIndexInPlace() throws {
        let pfns: [UInt64] = (0..<300).map { 0x40000 + UInt64($0) * 3 }
        let guest = try core(magic: XenCoreLayout.magicHVM, machine: XenCoreLayout.emARM, entrySize: 352,
                             frames: pfns.map { (pfn: $0, gmfn: 0) }, name: "sorted-pfn.core")
        for (slot, p) in pfns.enumerated() { #expect(slotOf(guest, p) == slot) }
        guard let cf = guest.frames as? CoreFrames, case .sortedPFN(verified: false)? = cf.lookupState else { Issue.record("not searched in place"); return }
        // A miss checks the order once, and remembers it.
        #expect(slotOf(guest, 0x40001) == nil)
        guard case .sortedPFN(verified: true)? = cf.lookupState else { Issue.record("the order was not remembered"); return }
    }
}
