import Foundation
import Testing
import VCPUContext

/// arm64 pointer authentication: on a CPU with PAuth, the kernel signs the return address it
/// saves in each frame record (`paciasp`), putting a signature in the bits above the virtual
/// address: [54:VA_BITS] and, with TBI off for the kernel's half (TCR_EL1.TBI1 = 0), [63:56];
/// bit 55 keeps telling kernel from user. The lab's emulated Cortex-A57 has no PAuth, so
/// this test signs them: in a copy of a real core (arm-full-a64-crash), every saved return
/// address the exact trace read gets a signature in exactly those bits (arbitrary values —
/// the stripping never checks the MAC, as the kernel's `ptrauth_strip_kernel_insn_pac`
/// does not), and the trace must come out the same.
@Suite(.serialized)
struct PointerAuthTests {
    static let caseName = "arm-full-a64-crash"

    /// Each frame's `SLOT:   [<ADDR>] name+off (fp)`, as (slot, rest of the line).
    static func frames(_ report: String) -> [(slot: UInt64, line: String)] {
        report.split(separator: "\n").compactMap { line in
            guard line.hasSuffix(" (fp)"), let colon = line.firstIndex(of: ":"), let slot = UInt64(line[..<colon], radix: 16) else { return nil }
            return (slot, String(line[line.index(after: colon)...]))
        }
    }

    @Test func signedReturnAddressesUnwindAsUnsigned() throws {
        let c = Corpus.named(Self.caseName)
        let original = try Corpus.corePath(c)
        let before = try Tool.run(["--core", original, "-C", "-l", "0"])
        #expect(before.status == 0)
        let frames = Self.frames(before.stdout)
        try #require(frames.count >= 20, "too few frame records to sign: \(frames.count)")

        // Where each slot lies in the core file: through the guest's own page tables.
        let guest = try Guest(core: XenCore(path: original))
        let coreFrames = try #require(guest.frames as? CoreFrames)
        let vaBits = guest.kernelVABits
        try #require(vaBits >= 39 && vaBits <= 52)
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-pac-\(getpid()).core")
        try? FileManager.default.removeItem(at: copy)
        try FileManager.default.copyItem(at: URL(fileURLWithPath: original), to: copy)
        defer { try? FileManager.default.removeItem(at: copy) }
        let handle = try FileHandle(forUpdating: copy)
        var signed: [UInt64] = []
        for (i, f) in frames.enumerated() {
            // The slot's vCPU: any vCPU's kernel tables map the kernel's half alike.
            let memory = GuestMemory(guest: guest, vcpu: guest.vcpus[0])
            let pa = try memory.translation.translate(f.slot, frames: coreFrames)
            let offset = try #require(coreFrames.fileOffset(of: pa >> 12)) + (pa & 0xfff)
            try handle.seek(toOffset: offset)
            let raw = try #require(try handle.read(upToCount: 8))
            let value = raw.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            #expect(value >> 55 == 0x1ff, "slot \(String(f.slot, radix: 16)) holds \(String(value, radix: 16)), not a kernel address")
            // A signature in [63:56] and [54:vaBits], bit 55 left set.
            let top = UInt64(0x5a &+ i) & 0xff, middle = UInt64(0x2c &+ 3 &* i) & ((1 << UInt64(55 - vaBits)) - 1)
            let signedValue = (value & ((1 << UInt64(vaBits)) - 1)) | top << 56 | 1 << 55 | middle << UInt64(vaBits)
            #expect(signedValue != value)
            try handle.seek(toOffset: offset)
            try handle.write(contentsOf: (0..<8).map { UInt8(truncatingIfNeeded: signedValue >> (8 * UInt64($0))) })
            signed.append(signedValue)
        }
        try handle.close()
        let after = try Tool.run(["--core", copy.path, "-C", "-l", "0"])
        #expect(after.status == 0, "\(after.stderr)")
        // The same frames, from the same slots, naming the same addresses.
        #expect(Self.frames(after.stdout).map { "\($0.slot) \($0.line)" } == frames.map { "\($0.slot) \($0.line)" })
        #expect(signed.count == frames.count)
        // And the words in memory are the signed ones (-m dumps the first slot as it is).
        let dump = try Tool.run(["--core", copy.path, "-m", String(frames[0].slot, radix: 16), "-l", "1", "-b", "8", "0"])
        #expect(dump.stdout.contains(String(signed[0], radix: 16)), "\(dump.stdout)")
    }
}
