import Foundation
import Testing

/// `--vmlinux` with Debian's real -dbg vmlinux (600+ MB, not committed). Runs when
/// `Scripts/fetch-vmlinux.sh 6.1.0-56-amd64` has put it in the cache (or XENCTX_VMLINUX
/// names it); the DWARF logic itself is tested on small ELFs in ELFSymbolsTests.
@Suite(.serialized)
struct VmlinuxTests {
    static let path: String? = {
        let env = ProcessInfo.processInfo.environment
        let candidates = [env["XENCTX_VMLINUX"],
                          (env["VMLINUX_CACHE"] ?? NSHomeDirectory() + "/.cache/xenctx-swift/vmlinux") + "/6.1.0-56-amd64/vmlinux-6.1.0-56-amd64"]
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
    }()

    @Test(.enabled(if: path != nil, "Debian's -dbg vmlinux is not in the cache (Scripts/fetch-vmlinux.sh)"))
    func everyFrameGetsALineAndInlines() throws {
        let c = Corpus.named("x86-run1-lab-crash")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--vmlinux", Self.path!, "--unwind", "auto", "-l", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        let trace = r.stdout.components(separatedBy: "Call Trace:\n").last ?? ""
        let frames = trace.split(separator: "\n").filter { $0.contains("[<") }
        #expect(frames.count >= 10)
        for f in frames { #expect(f.range(of: #"\.[chS]:\d+$"#, options: .regularExpression) != nil, "no file:line: \(f)") }
        #expect(trace.contains("panic+0x286 (orc) kernel/panic.c:"))
        #expect(trace.contains("pde_write (inlined) fs/proc/inode.c:"))
        // The vmlinux symbol table alone gives the same function names as System.map.
        let withMap = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "--unwind", "auto", "-l", "0"])
        func names(_ s: String) -> [String] { s.split(separator: "\n").filter { $0.contains("(orc)") }.compactMap { $0.split(separator: " ").first { $0.contains("+0x") }.map(String.init) } }
        #expect(names(r.stdout) == names(withMap.stdout))
    }

    /// DWARF CFI through libdwfl's unwinder, against the ORC trace of the same vCPUs: the
    /// CFI frames must be ORC's last frames (the hypercall stub vcpu0 sits in has no CFI,
    /// so libdwfl's fallback may skip frames above; vcpu1 must match entirely).
    @Test(.enabled(if: path != nil, "Debian's -dbg vmlinux is not in the cache (Scripts/fetch-vmlinux.sh)"))
    func cfiAgreesWithORC() throws {
        let c = Corpus.named("x86-run1-lab-crash")
        let args = ["--core", try Corpus.corePath(c), "--vmlinux", Self.path!, "-C", "-l", "0"]
        let cfi = try Tool.run(args + ["--unwind", "cfi"]), orc = try Tool.run(args + ["--unwind", "orc"])
        for vcpu in 0...1 {
            let fromCFI = ConsoleTraceTests.traceFunctions(cfi.stdout, vcpu: vcpu).dropFirst()
            let fromORC = ConsoleTraceTests.traceFunctions(orc.stdout, vcpu: vcpu).dropFirst()
            #expect(fromCFI.count >= 8)
            #expect(Array(fromORC.suffix(fromCFI.count)) == Array(fromCFI), "vcpu\(vcpu): cfi \(fromCFI) orc \(fromORC)")
            if vcpu == 1 { #expect(Array(fromCFI) == Array(fromORC)) }
        }
        #expect(cfi.stdout.contains(" (cfi) "))
    }
}
