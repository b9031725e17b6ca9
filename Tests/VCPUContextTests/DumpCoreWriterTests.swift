import Foundation
import Testing
@testable import VCPUContext

struct DumpCoreWriterTests {
    @Test func pvRoundTripThroughAFile() throws {
        var ctx = [UInt8](repeating: 0, count: 5168)
        ctx.replaceSubrange(648..<656, with: le64(0xffff_ffff_8100_1234))     // rip
        let writer = DumpCoreWriter(machine: XenCoreLayout.emX86_64, magic: XenCoreLayout.magicPV, entrySize: 5168,
                                    contexts: [ctx, ctx], frames: [(pfn: 0, gmfn: 0x777), (pfn: 1, gmfn: 0x555)])
        let path = temporaryPath("roundtrip.core")
        try? FileManager.default.removeItem(atPath: path)
        try writer.write(to: path) { slot in [UInt8](repeating: UInt8(slot + 1), count: 4096) }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: DumpCoreWriter.WriteError.self) { try writer.write(to: path) { _ in nil } }   // never overwrites
        let guest = try Guest(core: XenCore(path: path))
        #expect(guest.description.architecture == .x86_64 && guest.description.isPV)
        #expect(guest.vcpus.count == 2)
        guard case .x86_64(let r) = guest.vcpus[1].registers else { Issue.record("layout"); return }
        #expect(r.rip == 0xffff_ffff_8100_1234)
        #expect(guest.frames?.page(0x555)?.first == 2)                          // machine frame index
        #expect(guest.frames?.page(0x777)?.first == 1)
        #expect(guest.frames?.page(1) == nil)
    }
}

struct StreamingWriterTests {
    /// The ARM --save-core path: pages arrive as they map; the index is written last.
    @Test func streamedARMCoreReadsBack() throws {
        var ctx = [UInt8](repeating: 0, count: 352)
        ctx[0] = 1                                                                  // VGCF_online
        ctx.replaceSubrange(264..<272, with: le64(0x6000_01c5))                     // EL1h
        ctx.replaceSubrange(304..<312, with: le64(0xffff_8000_0800_3f20))           // SP_EL1
        let writer = DumpCoreWriter(machine: XenCoreLayout.emARM, magic: XenCoreLayout.magicHVM, entrySize: 352,
                                    contexts: [ctx], frames: [])
        let path = temporaryPath("streamed.core")
        try? FileManager.default.removeItem(atPath: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var pfns: [UInt64] = [0x40000, 0x40001, 0x41653]
        let count = try writer.writeStreaming(to: path) {
            guard !pfns.isEmpty else { return nil }
            let pfn = pfns.removeFirst()
            return (pfn, [UInt8](repeating: UInt8(pfn & 0xff), count: 4096))
        }
        #expect(count == 3)
        let guest = try Guest(core: XenCore(path: path))
        #expect(guest.description.architecture == .aarch64)
        #expect(StackPointerChoice.choose(guest.vcpus[0].registers, guest: guest.description).address == 0xffff_8000_0800_3f20)
        #expect(guest.frames?.page(0x41653)?.first == 0x53)
        #expect(guest.frames?.page(0x40002) == nil)
    }
}

/// A trimmed copy keeps the notes (Xen's version note byte for byte, plus its own) and the
/// contexts, and only the frames asked for, in slot order.
@Test func trimmedCopyKeepsNotesContextsAndTheFramesAsked() throws {
    var w = DumpCoreWriter(machine: XenCoreLayout.emX86_64, magic: XenCoreLayout.magicHVM, entrySize: XenCoreLayout.x86EntrySize,
                           contexts: [[UInt8](repeating: 7, count: XenCoreLayout.x86EntrySize)], frames: (0..<8).map { (pfn: UInt64($0), gmfn: UInt64($0)) })
    w.compileInfo = Array("gcc (Debian 12.2.0-14) 12.2.0".utf8)
    let dir = NSTemporaryDirectory() + "xenctx-trim-unit-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try w.write(to: dir + "/full.core") { [UInt8](repeating: UInt8($0 + 1), count: 4096) }
    let full = try XenCore(path: dir + "/full.core")
    #expect(full.trimNote == nil)
    let result = try CoreTrim.write(core: full, frames: [5, 2, 99], note: "the pages read by: -C", to: dir + "/trim.core")
    #expect(result.pages == 2)
    let trim = try XenCore(path: dir + "/trim.core")
    #expect(trim.trimNote == "the pages read by: -C")
    #expect(trim.versionDescriptor == full.versionDescriptor)
    #expect(trim.contextBytes(entry: 0)?.bytes == full.contextBytes(entry: 0)?.bytes)
    let frames = CoreFrames(core: trim)
    #expect(frames.availableCount == 2)
    #expect(frames.page(5).map { Array($0) } == [UInt8](repeating: 6, count: 4096))
    #expect(frames.page(2).map { Array($0) } == [UInt8](repeating: 3, count: 4096))
    #expect(frames.page(3) == nil)
    #expect(frames.whyMissing(3).contains("a trimmed core"))
}

/// Pages of zeros are kept as runs of frames in a note, read back as zeros, and kept as runs
/// again when a trimmed copy is trimmed; a frame next to a run is still missing.
@Test func trimKeepsZeroPagesAsRuns() throws {
    let frames: [(pfn: UInt64, gmfn: UInt64)] = (0..<10).map { (pfn: UInt64($0), gmfn: UInt64($0)) }
    var w = DumpCoreWriter(machine: XenCoreLayout.emX86_64, magic: XenCoreLayout.magicHVM, entrySize: XenCoreLayout.x86EntrySize,
                           contexts: [[UInt8](repeating: 7, count: XenCoreLayout.x86EntrySize)], frames: frames)
    let dir = NSTemporaryDirectory() + "xenctx-trim-zero-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // Frames 2-4 and 7 are zeros; the others are not.
    try w.write(to: dir + "/full.core") { [2, 3, 4, 7].contains($0) ? [UInt8](repeating: 0, count: 4096) : [UInt8](repeating: UInt8($0 + 1), count: 4096) }
    let full = try XenCore(path: dir + "/full.core")
    let result = try CoreTrim.write(core: full, frames: [1, 2, 3, 4, 7, 8], note: "the pages read by: -C", to: dir + "/trim.core")
    #expect(result.pages == 2 && result.zeroPages == 4)
    let trim = try XenCore(path: dir + "/trim.core")
    #expect(trim.zeroRuns == [XenCore.ZeroRun(first: 2, count: 3), XenCore.ZeroRun(first: 7, count: 1)])
    let read = CoreFrames(core: trim)
    #expect(read.availableCount == 2)
    for f: UInt64 in [2, 3, 4, 7] { #expect(read.page(f).map { Array($0) } == [UInt8](repeating: 0, count: 4096), "frame \(f)") }
    #expect(read.page(8).map { Array($0) } == [UInt8](repeating: 9, count: 4096))
    for f: UInt64 in [0, 5, 6, 9] { #expect(read.page(f) == nil, "frame \(f)") }
    let again = try CoreTrim.write(core: trim, frames: [3, 4, 8], note: "again", to: dir + "/again.core")
    #expect(again.pages == 1 && again.zeroPages == 2)
    #expect(try XenCore(path: dir + "/again.core").zeroRuns == [XenCore.ZeroRun(first: 3, count: 2)])
}

/// A zero-page note that is not whole, ascending, apart runs is refused, not trusted.
@Test(arguments: [[(UInt64(5), UInt64(2)), (UInt64(6), UInt64(1))], [(UInt64(5), UInt64(0))], [(UInt64.max, UInt64(2))]])
func malformedZeroRunsAreRefused(_ runs: [(UInt64, UInt64)]) throws {
    var w = DumpCoreWriter(machine: XenCoreLayout.emX86_64, magic: XenCoreLayout.magicHVM, entrySize: XenCoreLayout.x86EntrySize,
                           contexts: [[UInt8](repeating: 7, count: XenCoreLayout.x86EntrySize)], frames: [(pfn: 0, gmfn: 0)])
    var bytes: [UInt8] = []
    for (a, b) in runs { for v in [a, b] { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } } }
    w.extraNotes = [CoreTrim.note("x"), (XenCoreLayout.trimNoteName, XenCoreLayout.trimZeroNoteType, bytes)]
    let path = NSTemporaryDirectory() + "xenctx-zero-bad-\(getpid())-\(runs.count)-\(runs[0].1).core"
    defer { try? FileManager.default.removeItem(atPath: path) }
    try w.write(to: path) { _ in [UInt8](repeating: 1, count: 4096) }
    #expect(throws: CoreError.self) { try XenCore(path: path) }
}
