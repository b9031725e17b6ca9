import Foundation
import GuestKernel
import Testing
import VCPUContext

/// KASLR and mismatched symbol tables, on a real core.
///
/// The lab's guests run without KASLR (PV guests have none; ARM ones boot `nokaslr`), so
/// the relocation is synthesised the other way round: the guest stays put and the
/// System.map is moved by a known offset. Detection must find exactly that offset and the
/// report must be the same as with the true map.
@Suite(.serialized)
struct KernelOffsetTests {
    func shiftedMap(_ c: Corpus.Case, by delta: Int64) throws -> String {
        let path = Corpus.cache.appendingPathComponent("maps/\(c.kernel).shifted\(delta).System.map").path
        if FileManager.default.fileExists(atPath: path) { return path }
        var out = ""
        for line in try String(contentsOfFile: try Corpus.mapPath(c), encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 2)
            guard parts.count == 3, let a = UInt64(parts[0], radix: 16) else { continue }
            let moved = UInt64(bitPattern: Int64(bitPattern: a) &+ delta)
            out += String(moved, radix: 16).leftPadded(16) + " \(parts[1]) \(parts[2])\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(arguments: [("x86-run1-lab-crash", Int64(-0x240_0000)), ("arm-full-a64-crash", Int64(0x1000_0000))])
    func relocatedKernelIsFoundAndApplied(_ name: String, _ mapShift: Int64) throws {
        let c = Corpus.named(name)
        let core = try Corpus.corePath(c)
        let truth = try Tool.run(["--core", core, "-s", try Corpus.mapPath(c), "--unwind", "auto", "-C", "--describe"])
        let moved = try Tool.run(["--core", core, "-s", try shiftedMap(c, by: mapShift), "--unwind", "auto", "-C", "--describe"])
        #expect(truth.stdout.contains("# symbols: the symbol table matches the guest"))
        let shown = String(-mapShift, radix: 16).replacingOccurrences(of: "-", with: "")
        #expect(moved.stdout.contains("# symbols: KASLR: the kernel was loaded \(mapShift < 0 ? "+" : "-")0x\(shown)"))
        func body(_ s: String) -> [Substring] { s.split(separator: "\n").filter { !$0.hasPrefix("#") } }
        #expect(body(moved.stdout) == body(truth.stdout))
    }

    @Test func symbolTableOfAnotherKernelIsReported() throws {
        let x86 = Corpus.named("x86-run1-lab-crash")
        let r = try Tool.run(["--core", try Corpus.corePath(x86), "-s", try Corpus.mapPath(Corpus.named("arm-full-a64-crash")), "-l", "0"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("the symbol table is from another build"))
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// A real guest relocated as KASLR would have placed it: a copy of the x86 crash's core
/// whose kernel image is mapped 4 MiB higher (the image's L2 entries moved up two slots),
/// with what the kernel's own relocation would have changed: `kallsyms_relative_base`,
/// VMCOREINFO's image symbols and `KERNELOFFSET`, and the vCPU's instruction pointer.
/// (Return addresses on the stacks are not rewritten, so only the first frame is checked.)
@Suite(.serialized)
struct RelocatedImageTests {
    static let shift: UInt64 = 4 << 20
    let c = Corpus.named("x86-run1-lab-crash")

    func relocatedCore() throws -> String {
        let path = Corpus.cache.appendingPathComponent("x86-run1-lab-crash/kaslr-4m.core").path
        if FileManager.default.fileExists(atPath: path) { return path }
        let original = try Corpus.corePath(c)
        let guest = try Guest(core: XenCore(path: original))
        let frames = try #require(guest.frames as? CoreFrames)
        guard case .x86_64(let regs) = guest.vcpus[0].registers else { throw CocoaError(.featureUnsupported) }
        let translation = Translation.of(guest.vcpus[0].registers, guest: guest.description)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: original))
        func offset(_ machineAddress: UInt64) throws -> Int { Int(try #require(frames.fileOffset(of: machineAddress >> 12))) + Int(machineAddress & 0xfff) }
        func read64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
        func write64(_ at: Int, _ v: UInt64) { for i in 0..<8 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        func physical(_ va: UInt64) throws -> Int { try offset(try translation.translate(va, frames: frames)) }

        // Values the relocation changes, read through the original mapping first.
        let info = try GuestKernel(guest: guest).map { try $0.vmcoreinfo.get() }
        let located = try #require(info)
        let baseAt = try physical(try #require(located.info.symbol("kallsyms_relative_base")))
        write64(baseAt, read64(baseAt) + Self.shift)
        var text = ""
        for line in try VMCoreInfoText.lines(guest: guest, at: located.address) {
            if line.hasPrefix("SYMBOL("), let eq = line.firstIndex(of: "="), let v = UInt64(line[line.index(after: eq)...], radix: 16),
               v >= 0xffff_ffff_8000_0000 {
                text += line[...eq] + String(v + Self.shift, radix: 16) + "\n"
            } else if line.hasPrefix("KERNELOFFSET=") {
                text += "KERNELOFFSET=\(String(Self.shift, radix: 16))\n"
            } else {
                text += line + "\n"
            }
        }
        let textAt = try physical(located.address)
        bytes.replaceSubrange(textAt..<(textAt + text.utf8.count + 1), with: Array(text.utf8) + [0])

        // The image's L2 table (L4[511] → L3[510] → L2): every entry two slots up.
        let l4 = regs.ctrlreg[3] & 0x000f_ffff_ffff_f000
        let l3 = read64(try offset(l4 + 511 * 8)) & 0x000f_ffff_ffff_f000
        let l2 = read64(try offset(l3 + 510 * 8)) & 0x000f_ffff_ffff_f000
        let l2At = try offset(l2)
        let entries = (0..<512).map { read64(l2At + 8 * $0) }
        for i in 0..<512 { write64(l2At + 8 * i, i >= 2 ? entries[i - 2] : 0) }

        // vcpu0's rip (user_regs.rip at 648 in the x86_64 context).
        let ripAt = Int(guest.vcpus.isEmpty ? 0 : try XenCore(path: original).prstatus.offset) + 648
        write64(ripAt, read64(ripAt) + Self.shift)
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func guestSymbolsFollowTheRelocatedImage() throws {
        let core = try relocatedCore()
        let r = try Tool.run(["--core", core, "--describe", "-l", "0", "0"])
        #expect(r.stdout.contains("KERNELOFFSET 400000 (VMCOREINFO)"), "\(r.stdout)")
        #expect(r.stdout.contains("symbols: 93883 from the guest's kallsyms (through VMCOREINFO"))
        #expect(r.stdout.contains("\nrip: ffffffff81e442b5 xen_hypercall_pv+0x5\n"))
    }

    @Test func aSystemMapIsShiftedByTheOffsetTheGuestReports() throws {
        let core = try relocatedCore()
        let r = try Tool.run(["--core", core, "-s", try Corpus.mapPath(c), "--describe", "-l", "0", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("# symbols: KASLR: the kernel was loaded +0x400000 from the symbol table's addresses ("))
        #expect(r.stdout.contains("\nrip: ffffffff81e442b5 xen_hypercall_pv+0x5\n"))
    }
}

/// VMCOREINFO's lines as the guest holds them.
enum VMCoreInfoText {
    static func lines(guest: Guest, at address: UInt64) throws -> [String] {
        let reader = try #require(KernelReader(guest: guest))
        let bytes = try reader.cString(address, max: VMCoreInfo.maxBytes)
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
