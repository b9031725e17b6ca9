import Foundation
import Testing

/// Exact unwinding (`--unwind auto`: ORC on x86_64, frame records on AArch64, EHABI
/// tables on ARM32) against the guests' own oops backtraces.
///
/// Truth: the backtrace the guest kernel printed (console.log), reliable frames only (the
/// kernel marks scanned guesses with `?`), without the dumping code's own frames
/// (`dump_stack_lvl` and the like), which returned before the core was written. From the
/// first of those frames down, ours must be the same list; above it the vCPU has since
/// moved on (into `xen_reboot` or `__delay` after `panic`), which the kernel could not print.
@Suite(.serialized)
struct ExactUnwindTests {
    static let cases = ["x86-run1-lab-crash", "x86-run2-lab-crash-cpu1", "x86-run3-lab-crash-cpu1-savecore", "arm-full-a64-crash",
                        "arm-full-a32-crash", "arm-full-a32-crash-smp-bootoops1"]

    /// With the case's System.map, and with nothing but the core (the guest's own kallsyms).
    @Test(arguments: cases, [true, false])
    func exactTraceIsTheKernelsOwn(_ name: String, withMap: Bool) throws {
        let c = Corpus.named(name)
        let console = try String(contentsOf: c.dir.appendingPathComponent("console.log"), encoding: .utf8)
        let traces = ConsoleTraceTests.consoleTraces(console)
        try #require(!traces.isEmpty)
        let symbols = withMap ? ["-s", try Corpus.mapPath(c)] : []
        let result = try Tool.run(["--core", try Corpus.corePath(c)] + symbols + ["--unwind", "auto", "-C", "-l", "0"])
        #expect(result.status == 0, "\(result.stderr)")
        for (cpu, printed) in traces {
            let expected = printed.filter { !ConsoleTraceTests.dumpers.contains($0) }
            try #require(!expected.isEmpty, "no frames in the console trace of CPU \(cpu)")
            let ours = ConsoleTraceTests.traceFunctions(result.stdout, vcpu: cpu)
            let fromFirst = Array(ours.drop { $0 != expected[0] })
            #expect(fromFirst == expected, "vcpu\(cpu): ours \(ours)")
        }
        // Every frame says how it was found.
        #expect(result.stdout.contains(c.arch == "a64" ? " (fp)\n" : c.arch == "a32" ? " (exidx)\n" : " (orc)\n"))
    }

    /// Without guest memory there is no kallsyms to find the tables through.
    @Test func tableUnwindersNeedSymbols() throws {
        let registersOnly = try Corpus.corePath(Corpus.named("arm-run1-a32-crash"))
        for method in ["orc", "exidx"] {
            let r = try Tool.run(["--unwind", method, "--core", registersOnly])
            #expect(r.status == 2 && r.stderr.contains("give -s or --vmlinux") && r.stderr.contains("no guest memory"), "\(r.stderr)")
        }
    }
}
