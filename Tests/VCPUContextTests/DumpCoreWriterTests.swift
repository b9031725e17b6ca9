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
