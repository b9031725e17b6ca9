import Foundation
import Testing
@testable import VCPUContext

/// `xenctx-swift trim`: a copy of a core with only the pages the views read prints what the
/// core prints (stdout, stderr, exit status) for every view it names, on one case of each
/// kind of guest (Scripts/trim-check.sh runs every full-RAM case of the corpus).
struct TrimTests {
    static let views: [[String]] = [
        ["-C"], ["-C", "--describe"], ["-C", "--log", "--tasks", "--stack", "--modules"],
        ["-C", "--json", "--log", "--tasks", "--stack", "--modules"], ["--summary"], ["--hung"], ["--meminfo"],
    ]

    /// Timings, the core's own path and size, and the lines about the file itself differ.
    static func comparable(_ s: String, core: String) -> String {
        s.replacingOccurrences(of: core, with: "CORE")
            .replacing(/[0-9.]+ ms/, with: "N ms")
            .split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("# core: ") && !$0.hasPrefix("# guest pages: ") && !$0.hasPrefix("# trimmed by xenctx-swift") }
            .joined(separator: "\n")
    }

    static func trimmed(_ name: String) throws -> (core: String, copy: String, stderr: String) {
        let core = try Corpus.corePath(Corpus.named(name))
        let copy = NSTemporaryDirectory() + "xenctx-trim-\(getpid())-\(name).core"
        try? FileManager.default.removeItem(atPath: copy)
        let r = try Tool.run(["trim", core, copy])
        #expect(r.status == 0, "\(r.stderr)")
        return (core, copy, r.stderr)
    }

    /// x86_64 PV (6.1 with the why scenarios, 6.12), HVM 5.10 (kallsyms found by content), PVH
    /// 6.12, 32-bit x86 HVM, arm64 and ARM32 (one that oopsed in boot, before VMCOREINFO: its
    /// failed search reads 64 MiB of lowmem, most of it zeros, kept as runs): every view
    /// equal, and the copy small.
    @Test(arguments: ["x86-run15-why-hung-lockup-oom", "x86-run10-pv612-crash-tasks", "x86-run13-hvm510-crash-tasks",
                      "x86-run12-xen420-pvh612-crash-tasks", "x86-run8-hvm32-crash", "arm-why-a64-hung-lockup-oom", "arm-why612-a64-hung-lockup-oom", "arm-tasks-a32-crash-smp",
                      "arm-full-a32-crash-smp-bootoops1"])
    func everyViewReadsTheSame(_ name: String) throws {
        let (core, copy, said) = try Self.trimmed(name)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        for view in Self.views {
            let full = try Tool.run(["--core", core] + view), trim = try Tool.run(["--core", copy] + view)
            #expect(full.status == trim.status, "\(view)")
            #expect(Self.comparable(full.stdout, core: core) == Self.comparable(trim.stdout, core: copy), "\(name) \(view)")
            #expect(Self.comparable(full.stderr, core: core) == Self.comparable(trim.stderr, core: copy), "\(name) \(view)")
        }
        // Every guest keeps the kernel parts the views read (about 15 MiB on 64-bit 6.1 and
        // 6.12, 29 on 5.10, whose kallsyms are found by content; 7.6 MiB on 32-bit x86, 24 on
        // ARM32, where the search for the BTF they lack stops at the image's init sections):
        // within 5% of a 1 GiB guest. Pages of zeros are runs in a note, not pages.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: copy)[.size] as? Int)
        let bound = (1 << 30) / 20
        #expect(size <= bound, "\(name): \(size) bytes")
        #expect(said.contains("kept ") && said.contains(" pages "), "\(said)")
        // The copy says what it is, and a page it lacks says why.
        let described = try Tool.run(["--core", copy, "--describe", "-C"])
        #expect(described.stdout.contains("# trimmed by xenctx-swift: the pages read by: -C "), "\(described.stdout)")
    }

    /// A read beyond what the views read says the copy lacks it, and why.
    @Test func aPageTheCopyLacksSaysWhy() throws {
        let (_, copy, _) = try Self.trimmed("x86-run5-lab-crash-tasks")
        defer { try? FileManager.default.removeItem(atPath: copy) }
        let r = try Tool.run(["--core", copy, "-m", "ffff888008000000"])
        #expect(r.status == 1 && r.stderr.contains("is not in the core (a trimmed core: it keeps only the pages its views read)"), "\(r.stderr)")
    }

    /// A core trim cannot copy faithfully is refused with why; OUT is never the core itself,
    /// nor replaced without --force, nor anything but a regular file.
    @Test func refusals() throws {
        let registersOnly = try Corpus.corePath(Corpus.named("arm-run1-a64-crash"))
        var r = try Tool.run(["trim", registersOnly, NSTemporaryDirectory() + "xenctx-trim-never-\(getpid()).core"])
        #expect(r.status == 2 && r.stderr.contains("cannot trim") && r.stderr.contains("every page slot is empty"), "\(r.stderr)")
        let cut = try Corpus.corePath(Corpus.named("x86-run1-lab-crash-cpu1"))
        r = try Tool.run(["trim", cut, NSTemporaryDirectory() + "xenctx-trim-never-\(getpid()).core"])
        #expect(r.status == 2 && r.stderr.contains("cut short"), "\(r.stderr)")
        let core = try Corpus.corePath(Corpus.named("x86-run1-lab-crash"))
        r = try Tool.run(["trim", core, core])
        #expect(r.status == 64 && r.stderr.contains("is the core itself"), "\(r.stderr)")
        let existing = NSTemporaryDirectory() + "xenctx-trim-exists-\(getpid())"
        try "keep me\n".write(toFile: existing, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: existing) }
        r = try Tool.run(["trim", core, existing])
        #expect(r.status == 2 && r.stderr.contains("exists: give --force"), "\(r.stderr)")
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "keep me\n")
        r = try Tool.run(["trim", "--force", core, "/dev/null"])
        #expect(r.status == 2 && r.stderr.contains("not a regular file"), "\(r.stderr)")
        r = try Tool.run(["trim", core])
        #expect(r.status == 64)
    }
}
