import Foundation
import Testing

/// Symbol files checked against what the guest says about itself: another build is a
/// warning and exit status 1 (and the guest's own names are used), a vmlinux of another
/// architecture or a file that is no kernel is refused, and a core without RAM says why
/// there is no log.
@Suite(.serialized)
struct SymbolCheckTests {
    let x86 = Corpus.named("x86-run1-lab-crash")

    /// A System.map of "another build": the same names, each moved by its own amount, as a
    /// rebuild moves them (and as dom0's /proc/kallsyms is, for a guest).
    func otherBuildMap() throws -> String {
        let path = Corpus.cache.appendingPathComponent("maps/\(x86.kernel).otherbuild.System.map").path
        if FileManager.default.fileExists(atPath: path) { return path }
        var out = ""
        for (i, line) in try String(contentsOfFile: try Corpus.mapPath(x86), encoding: .utf8).split(separator: "\n").enumerated() {
            let parts = line.split(separator: " ", maxSplits: 2)
            guard parts.count == 3, let a = UInt64(parts[0], radix: 16) else { continue }
            out += String(a &+ UInt64(i % 7) * 0x40, radix: 16).leftPadded(16) + " \(parts[1]) \(parts[2])\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func systemMapOfAnotherBuildIsAWarningAndTheGuestsNamesAreUsed() throws {
        let core = try Corpus.corePath(x86)
        let wrong = try Tool.run(["--core", core, "-s", try otherBuildMap(), "--unwind", "auto", "-C", "-l", "0"])
        let own = try Tool.run(["--core", core, "--unwind", "auto", "-C", "-l", "0"])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("is from another build: the guest runs Linux 6.1.0-56-amd64, build id eb4fbcd037e7253717950bf2b93bd5566f47c56f"))
        #expect(wrong.stderr.contains("using the guest's own kallsyms"))
        #expect(wrong.stdout == own.stdout)
    }

    @Test func matchingSystemMapIsSaidToMatch() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(x86), "-s", try Corpus.mapPath(x86), "--describe", "-l", "0"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("# symbols: the symbol table matches the guest ("))
        #expect(r.stdout.contains("symbols VMCOREINFO names agree)"))
    }

    /// Small ELF files with a `Linux` note (what marks a kernel image) and a build id.
    func kernelLikeELF(_ cc: String, _ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-elfid-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let src = dir.appendingPathComponent("\(name).S"), out = dir.appendingPathComponent("\(name).elf")
        try """
        .section .note.Linux, "a"
        .balign 4
        .long 6, 4, 0x100
        .asciz "Linux"
        .balign 4
        .long 0
        .text
        .globl _start
        _start: .long 0

        """.write(to: src, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [cc, "-nostdlib", "-static", "-Wl,--build-id=sha1", "-o", out.path, src.path]
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "\(cc) could not build the test ELF")
        return out.path
    }

    @Test func vmlinuxOfAnotherArchitectureIsRefused() throws {
        let arm64 = try kernelLikeELF("aarch64-linux-gnu-gcc", "a64")
        let r = try Tool.run(["--core", try Corpus.corePath(x86), "--vmlinux", arm64, "-l", "0"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("is a kernel for aarch64, but the guest is x86_64"), "\(r.stderr)")
    }

    @Test func vmlinuxOfAnotherBuildIsAWarning() throws {
        let other = try kernelLikeELF("gcc", "x64")
        let r = try Tool.run(["--core", try Corpus.corePath(x86), "--vmlinux", other, "--unwind", "auto", "-l", "0"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("is another build: its build id is"))
        #expect(r.stderr.contains("the guest runs Linux 6.1.0-56-amd64, build id eb4fbcd037e7253717950bf2b93bd5566f47c56f, x86_64"))
        #expect(r.stdout.contains("panic+0x286 (orc)"))   // named from the guest's kallsyms
    }

    @Test func filesThatAreNoKernelAreRefused() throws {
        let core = try Corpus.corePath(x86)
        let program = try Tool.run(["--core", core, "--vmlinux", "/bin/true"])
        #expect(program.status == 2 && program.stderr.contains("not a Linux kernel image"), "\(program.stderr)")
        let dir = try Tool.run(["--core", core, "--vmlinux", Corpus.corpus.path])
        #expect(dir.status == 2 && dir.stderr.contains("it is a directory"))
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-fifo-\(getpid())").path
        unlink(fifo)
        try #require(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let f = try Tool.run(["--core", core, "--vmlinux", fifo])
        #expect(f.status == 2 && f.stderr.contains("it is a FIFO"))
    }

    @Test func registersOnlyCoreHasNoLogAndSaysWhy() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named("arm-run1-a64-crash")), "--log"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("no kernel log: this core holds no guest memory (registers only)"))
        #expect(r.stdout.isEmpty)
    }

    @Test func logAfterTheReportWhenBothAreAsked() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(x86), "--log", "-C", "-l", "0"])
        #expect(r.status == 0)
        let parts = r.stdout.components(separatedBy: "Kernel log:\n")
        #expect(parts.count == 2 && parts[0].hasPrefix("vcpu0:") && parts[1].hasPrefix("[    0.000000] Linux version 6.1.0-56-amd64"))
    }
}
