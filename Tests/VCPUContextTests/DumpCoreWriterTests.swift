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
