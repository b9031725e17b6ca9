import Foundation
import Testing

/// Bad input: one clear message and a non-zero exit, never a crash.
@Suite(.serialized)
struct CommandLineTests {
    func core(_ name: String) throws -> String { try Corpus.corePath(Corpus.named(name)) }

    /// HVM and PVH guests look alike in Xen's core (both HVM containers): the kernel's own
    /// xen_pvh tells them apart, in --describe and in --json's guest summary.
    @Test func pvhAndHVMAreToldApartByTheKernel() throws {
        let pvh = try Tool.run(["--core", try core("x86-run9-pvh64-crash"), "--describe"])
        #expect(pvh.stdout.contains("# guest: x86_64 PVH guest (64-bit mode), 8-byte words\n"), "\(pvh.stdout.prefix(400))")
        #expect(pvh.stdout.contains("is 1: it booted as a PVH guest"))
        let hvm = try Tool.run(["--core", try core("x86-run9-hvm64-crash"), "--describe", "--json"])
        #expect(hvm.stdout.contains("\"summary\" : \"x86_64 HVM guest (64-bit mode)\"") || hvm.stdout.contains("\"summary\":\"x86_64 HVM guest (64-bit mode)\""), "\(hvm.stdout.prefix(400))")
        #expect(hvm.stdout.contains("is 0: an HVM guest, not PVH"))
    }

    /// CI and developer machines are not Xen dom0s: the live path must say so and exit.
    @Test func liveDomainOnAHostWithoutXen() throws {
        try #require(access("/proc/xen/privcmd", F_OK) != 0 && access("/dev/xen/privcmd", F_OK) != 0, "this host is a Xen dom0")
        let r = try Tool.run(["3"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("this host is not a Xen dom0"))
        #expect(r.stdout.isEmpty)
        let save = try Tool.run(["--save-core", "/tmp/never-written.core", "3"])
        #expect(save.status == 2 && save.stderr.contains("not a Xen dom0"))
        #expect(access("/tmp/never-written.core", F_OK) != 0)
    }

    @Test func missingAndWrongFiles() throws {
        let missing = try Tool.run(["--core", "/nonexistent/core"])
        #expect(missing.status == 2 && missing.stderr.contains("No such file"))
        let text = try Tool.run(["--core", Corpus.corpus.appendingPathComponent("README.md").path])
        #expect(text.status == 2 && text.stderr.contains("not an ELF file"))
        let dir = try Tool.run(["--core", Corpus.corpus.path])
        #expect(dir.status == 2 && dir.stderr.contains("directory"))
        // The corpus's own compressed core, and a core's path given without --core.
        let xz = Corpus.named("arm-run1-a64-crash").dir.appendingPathComponent("a64-crash.core.xz").path
        let compressed = try Tool.run(["--core", xz])
        #expect(compressed.status == 2 && compressed.stderr.contains("xz-compressed, not a core as such: decompress it first (xz -dk FILE)"), "\(compressed.stderr)")
        let bare = try Tool.run([try core("arm-run1-a64-crash")])
        #expect(bare.status == 64 && bare.stderr.contains("to read a core file, give --core "), "\(bare.stderr)")
        let map = try Tool.run(["-s", "/nonexistent/System.map", "--core", try core("arm-run1-a64-crash")])
        #expect(map.status == 2 && map.stderr.contains("cannot read symbol table"))
    }

    @Test(arguments: [
        ["-b", "2", "--core", "x"], ["-l", "-1", "--core", "x"], ["-l", "lots", "--core", "x"],
        ["-n", "0", "--core", "x"], ["-k", "xyz", "--core", "x"], ["-C", "--core", "x", "1"],
        ["-f", "-d", "c0000000", "--core", "x"], ["--core", "x", "1", "2"], ["1", "2", "3"],
        ["--no-such-option", "--core", "x"], ["--core", "x", "abc"], ["--no-pause", "--core", "x"],
        ["-m", "not a symbol", "--core", "x"], ["--stack", "--core", "x"],
        ["--kaslr", "somewhere", "-s", "x", "--core", "x"], ["--kaslr", "0", "--core", "x"],
    ])
    func usageErrors(_ args: [String]) throws {
        let r = try Tool.run(args)
        #expect(r.status == 64, "\(args): \(r.stderr)")
        #expect(r.stderr.contains("Error:"))
    }

    /// A usage error echoes the argument, escaped like every string from outside.
    @Test func usageErrorEchoesTheArgumentEscaped() throws {
        for args in [["-k", "\u{1b}]0;pwned\u{07}", "--core", "x"], ["--kaslr", "\u{1b}[31m", "-s", "x", "--core", "x"]] {
            let r = try Tool.run(args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("\\x1b") && !HostileInputTests.hasRawControl(r.stdout + r.stderr), "\(r.stderr)")
        }
    }

    /// `-n 5 -l MAX` runs the stack dump into the unmapped guard page above vcpu0's stack:
    /// the dump stops there with a warning and exit 1 (upstream stops too), and the call
    /// trace still follows, the same as without the wider window (upstream prints none).
    @Test func stoppedStackDumpKeepsItsTrace() throws {
        let c = Corpus.named("x86-run1-lab-crash")
        let map = try Corpus.mapPath(c)
        func trace(_ s: String) -> [Substring] {
            s.split(separator: "\n").drop { !$0.hasSuffix("Trace:") }.prefix { !$0.isEmpty }.map { $0 }
        }
        for unwind in ["auto", "scan"] {
            let wide = try Tool.run(["-s", map, "-n", "5", "-l", "MAX", "--unwind", unwind, "--core", try core(c.name), "0"])
            #expect(wide.status == 1)
            #expect(wide.stderr.contains("cannot read ffffc900407cc000: not mapped"))
            #expect(wide.stdout.contains(" 00007ffe11ae69a8 000000000000002b\n\nCall Trace:\n"), "the dump's last words, then the trace")
            let plain = try Tool.run(["-s", map, "--unwind", unwind, "--core", try core(c.name), "0"])
            #expect(plain.status == 0)
            let expected = trace(plain.stdout)
            #expect(expected.count > 10)
            if unwind == "auto" {
                #expect(trace(wide.stdout) == expected)
            } else {
                // A scan over the whole 16 KiB stack finds what the one-page scan found, and more.
                #expect(Array(trace(wide.stdout).prefix(expected.count)) == expected)
            }
        }
    }

    /// A named vCPU that is down says so, as -C's `vcpuN offline` does, before its last
    /// context (which upstream prints silently for PV: the stdout is still upstream's).
    @Test func namedOfflineVCPUSaysSo() throws {
        let c = try core("x86-run3-lab-crash-cpu1-savecore")
        let down = try Tool.run(["--core", c, "0"])
        #expect(down.status == 0)
        #expect(down.stderr == "xenctx-swift: note: vcpu0 is offline: what follows is the last context Xen holds for it\n")
        #expect(down.stdout.hasPrefix("rip: ffffffff81a442b5"))
        let up = try Tool.run(["--core", c, "1"])
        #expect(up.status == 0 && up.stderr.isEmpty)
        let all = try Tool.run(["--core", c, "-C"])
        #expect(all.stdout.hasPrefix("vcpu0 offline\n"))
        #expect(all.stderr == "xenctx-swift: note: vcpu0 is offline: give its number instead of -C to see the last context Xen holds for it\n", "\(all.stderr)")
        let summary = try Tool.run(["--core", c, "--summary"])
        // Taken down by the panic's stop while idle (its trace: stop_self in an interrupt of
        // do_idle on init's stack): its task is CPU 0's idle task.
        #expect(summary.stdout.split(separator: "\n", maxSplits: 1)[1].hasPrefix("vcpu0   offline   swapper/0 (pid 0)         last context: stopped stop_self+0x69"), "\(summary.stdout)")
        // PVH: the vCPU that the panic's stop IPI took down (HLT with interrupts off), of
        // which upstream, named, prints nothing at all.
        let pvh = try core("x86-run9-pvh64-crash")
        let stopped = try Tool.run(["--core", pvh, "1", "-l", "0"])
        #expect(stopped.status == 0)
        #expect(stopped.stderr == "xenctx-swift: note: vcpu1 is offline: what follows is the last context Xen holds for it\n")
        #expect(stopped.stdout.hasPrefix("rip: ffffffff8103fc9b stop_this_cpu+0x6b\n"), "\(stopped.stdout)")
        #expect(try Tool.run(["--core", pvh, "-C", "-l", "0"]).stdout.hasSuffix("\nvcpu1 offline\n\n"))
    }

    @Test func vcpuOutOfRange() throws {
        let r = try Tool.run(["--core", try core("arm-run1-a64-crash"), "7"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("vCPU 7 is not here: there are 2 vCPU contexts"))
    }

    @Test func registersOnlyARMCoreIsExplained() throws {
        let r = try Tool.run(["--core", try core("arm-run1-a64-crash"), "-C"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("this core holds registers only"))
        #expect(r.stdout.contains("vcpu1:"))
    }

    @Test func partialARMCoreNamesTheMissingFrame() throws {
        let r = try Tool.run(["--core", try core("arm-run3-a32-crash-big")])
        #expect(r.status == 1)
        #expect(r.stderr.contains("0x80000–0x87fff"))
        #expect(r.stderr.contains("guest frame 0x"))
    }

    @Test func longFormOfDisplayStackPages() throws {
        // Upstream segfaults on `--display-stack-pages 2`.
        let c = try core("x86-run1-lab-crash")
        let long = try Tool.run(["--display-stack-pages", "2", "-l", "max", "--core", c])
        let short = try Tool.run(["-n", "2", "-l", "max", "--core", c])
        #expect(long.stdout == short.stdout && long.stdout.contains("Stack:"))
    }

    @Test func crashedARM32GuestShowsSVCStack() throws {
        let r = try Tool.run(["--core", try core("arm-full-a32-crash"), "--describe"])
        #expect(r.stdout.contains("Stack pointer: c880de70 (sp_svc, CPSR mode SVC)"))
        #expect(r.stdout.contains("# guest: ARM32 (AArch32) guest, 4-byte words"))
        #expect(r.stdout.contains("Call Trace:"))
        let a64 = try Tool.run(["--core", try core("arm-full-a64-crash"), "--describe"])
        #expect(a64.stdout.contains("# kernel_start: ffff000000000000"))
        #expect(a64.stdout.contains("Stack pointer: ffff800008003f20 (SP_EL1, EL1h)"))
    }

    /// The small things a first use ran into, each with a message that says what to do.
    @Test func messagesThatSayWhatHappened() throws {
        let bogus = try Tool.run(["--bogus"])
        #expect(bogus.status == 64 && bogus.stderr.contains("Unknown option '--bogus'"), "\(bogus.stderr)")
        let negative = try Tool.run(["-l", "-1", "--core", "x"])
        #expect(negative.stderr.contains("unsupported value '-1' for --lines"), "\(negative.stderr)")
        let version = try Tool.run(["--version"])
        #expect(version.status == 0 && version.stdout.hasPrefix("xenctx-swift "))
        let x86 = try core("x86-run1-lab-crash")
        // -m and -d take SYMBOL[+OFFSET]; linux_banner is the kernel's version string.
        let banner = try Tool.run(["--core", x86, "-m", "linux_banner", "-l", "1", "-D"])
        #expect(banner.status == 0 && banner.stdout.hasPrefix("Memory (address ffffffff82161900):\n"), "\(banner.stdout)")
        let noSymbol = try Tool.run(["--core", x86, "-m", "no_such_symbol"])
        #expect(noSymbol.status == 2 && noSymbol.stderr.contains("no symbol no_such_symbol"))
        // -d outside the stack window: upstream's empty shape, and why on stderr.
        let outside = try Tool.run(["--core", x86, "-d", "init_task", "-l", "1"])
        #expect(outside.stdout == "Stack:\n\nCall Trace:\n")
        #expect(outside.status == 1 && outside.stderr.contains("is at or above the stack limit"))
        // -m -l max is capped, and says how to go on.
        let max = try Tool.run(["--core", x86, "-m", "ffffffff81000000", "-l", "max"])
        #expect(max.stdout.split(separator: "\n").count == 65536 + 1)
        #expect(max.stderr.contains("stopped after 65536 lines") && max.stderr.contains("-m ffffffff81200000 -l N"))
        // -k beyond a 32-bit guest's address space.
        let k = try Tool.run(["--core", try core("arm-full-a32-crash"), "-k", "100000000"])
        #expect(k.status == 64 && k.stderr.contains("beyond this 32-bit guest's address space"))
        // A core cut before its frame index says so, not "none in the file".
        let cut = try Tool.run(["--core", try core("x86-run1-lab-crash-cpu1"), "-l", "0"])
        #expect(cut.stderr.contains("this core was cut short: 12288 of its 65536 pages (48 MiB) are in the file, but its frame index (.xen_p2m"), "\(cut.stderr)")
        // A registers-only ARM core points at the way to a complete one.
        let regs = try Tool.run(["--core", try core("arm-run1-a64-crash")])
        #expect(regs.stderr.contains("xenctx-swift --save-core FILE DOMID"))
    }

    @Test func helpExitsZero() throws {
        let r = try Tool.run(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("--symbol-table") && r.stdout.contains("--display-stack-pages"))
    }
}
