import Foundation
import Testing

/// arm-live420-a64-busy: an AArch64 guest saved live by xenctx-swift's own `--save-core` in
/// a trixie dom0 on Xen 4.20 (Scripts/lab-live-arm.sh), vCPU 0 idle, vCPU 1 in a busy loop
/// at EL0. Its kallsyms has no data symbols, and the only current task in the kernel is
/// CPU 0's idle task, init_task itself: the task list must still be found from the core alone.
struct LiveARMCaseTests {
    static let name = "arm-live420-a64-busy"

    @Test func taskListFromTheIdleCPUsCurrentTask() throws {
        let c = Corpus.named(Self.name)
        let console = try c.consoleText()
        let busy = try #require(console.firstMatch(of: /LABGUEST busy loop started pid=(\d+)/).flatMap { Int($0.1) })
        let initTask = try #require(try String(contentsOfFile: try Corpus.mapPath(c), encoding: .utf8).split(separator: "\n").first { $0.hasSuffix(" D init_task") }?.split(separator: " ").first)
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--tasks"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = r.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        // `>` marks a vCPU's current task: PID PPID CPU TASK ST COMM
        #expect(rows.contains { $0.count >= 6 && $0[0] == ">" && $0[1] == "0" && $0[4] == initTask && $0[6] == "[swapper/0]" }, "\(r.stdout.prefix(400))")
        #expect(rows.contains { $0.count >= 6 && $0[0] == ">" && $0[1] == "\(busy)" && $0[3] == "1" && $0[5] == "R" }, "busy loop pid \(busy) not current on CPU 1")
        #expect(rows.filter { $0.first == ">" }.count == 2)
        #expect(rows.count > 50)
    }

    @Test func summarySaysIdleAndUser() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named(Self.name)), "--summary"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("vcpu0   idle      swapper/0 (pid 0)"))
        #expect(r.stdout.contains("vcpu1   user"))
    }
}

/// arm-live420-a32-smp-oopsstorm: a 2-vCPU ARM32 guest that "hung in /init" (the lab's word for
/// it: its console stopped after the cpuinfo lines), saved live by `--save-core` in the trixie
/// dom0 on Xen 4.20 and trimmed. The core shows why: both vCPUs are in an oops storm the
/// console never printed, each fault taken while reporting the last one.
struct LiveARMOopsStormTests {
    static let name = "arm-live420-a32-smp-oopsstorm"

    @Test func theLogHoldsWhatTheConsoleNeverShowed() throws {
        let c = Corpus.named(Self.name)
        #expect(try !c.consoleText().contains("Internal error: Oops"))
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--log"])
        #expect(r.status == 0)
        #expect(r.stdout.components(separatedBy: "Internal error: Oops: 206 [#").count > 100, "\(r.stdout.suffix(400))")
    }

    @Test func summaryAndTraceSayEachVCPUIsInTheStorm() throws {
        let core = try Corpus.corePath(Corpus.named(Self.name))
        let summary = try Tool.run(["--core", core, "--summary"])
        #expect(summary.status == 0)
        #expect(summary.stdout.hasPrefix("verdict: oops on vcpu0 at "), "\(summary.stdout)")
        #expect(summary.stdout.contains("vcpu0   panic") && summary.stdout.contains("vcpu1   panic"), "\(summary.stdout)")
        // The oops named is the storm's last (#601); the verdict's evidence points at the
        // earliest the wrapped log still holds (#246), nearer the cause.
        let json = try Tool.run(["--core", core, "--json"])
        let verdict = try #require((try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])?["verdict"] as? [String: Any])
        let evidence = try #require(verdict["evidence"] as? [String])
        #expect(evidence.contains("this is oops #601 by the kernel's count, the last of 356 in the log; the earliest it holds, #246 at 5.732762 s, is nearer the cause; #1 to #245 are not in the log: Internal error: Oops: 206 [#246] SMP ARM"), "\(evidence)")
        // vCPU 0's exact (EHABI) trace: a fault while printing the last fault's report, again and again
        let trace = try Tool.run(["--core", core, "0"])
        #expect(trace.status == 0)
        #expect(trace.stdout.components(separatedBy: "] die_kernel_fault+0x6c (exidx)").count > 10, "\(trace.stdout.prefix(600))")
        #expect(trace.stdout.contains("[<c041177c>] panic_smp_self_stop+0x20 <--"))
    }
}
