import Foundation
import Testing

/// Exact unwinding (`--unwind auto`: ORC on x86_64, frame records on AArch64) against
/// the guests' own oops backtraces.
///
/// Truth: the `Call Trace:` the guest kernel printed (console.log), reliable frames only
/// (the kernel marks scanned guesses with `?`). Exact from `panic` down: above it, the
/// dumping code's frames (`dump_stack_lvl`) have returned and the vCPU has since moved on
/// into `xen_reboot` or `__delay` (its current frames), which the kernel could not have printed.
@Suite(.serialized)
struct ORCTraceTests {
    static let cases = ["x86-run1-lab-crash", "x86-run2-lab-crash-cpu1", "arm-full-a64-crash"]

    @Test(arguments: cases)
    func orcTraceIsTheKernelsOwn(_ name: String) throws {
        let c = Corpus.named(name)
        let console = try String(contentsOf: c.dir.appendingPathComponent("console.log"), encoding: .utf8)
        let traces = ConsoleTraceTests.consoleTraces(console)
        try #require(!traces.isEmpty)
        let result = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "--unwind", "auto", "-C", "-l", "0"])
        #expect(result.status == 0, "\(result.stderr)")
        for (cpu, printed) in traces {
            let expected = Array(printed.drop { $0 != "panic" })
            try #require(!expected.isEmpty, "no panic frame in the console trace of CPU \(cpu)")
            let ours = ConsoleTraceTests.traceFunctions(result.stdout, vcpu: cpu)
            let fromPanic = Array(ours.drop { $0 != "panic" })
            #expect(fromPanic == expected, "vcpu\(cpu): ours \(ours)")
        }
        // Every frame says how it was found.
        #expect(!result.stdout.contains("unwind stopped"))
        #expect(result.stdout.contains(c.isARM ? " (fp)\n" : " (orc)\n"))
    }

    @Test func orcNeedsASymbolTable() throws {
        let r = try Tool.run(["--unwind", "orc", "--core", "x"])
        #expect(r.status == 64 && r.stderr.contains("give -s"))
    }
}
