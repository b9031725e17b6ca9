import Foundation
import Testing
import VCPUContext

/// `--json` against its schema (docs/report.schema.json) on every full-RAM case, and against
/// the text report of the same run: the same frames, in order, for every vCPU and task.
@Suite(.serialized)
struct JSONReportTests {
    static let cases = Corpus.cases.filter(\.hasRAM).map(\.name)
    static let schema = Corpus.root.appendingPathComponent("docs/report.schema.json")

    /// The addresses of a text trace, in order: `[<addr>]` of each frame line (inlined
    /// lines repeat their frame's address and are left out).
    static func textFrames(_ block: Substring) -> [String] {
        block.split(separator: "\n").compactMap { line in
            guard !line.contains("(inlined)"), let open = line.range(of: "[<"), let close = line.range(of: ">]") else { return nil }
            return String(line[open.upperBound..<close.lowerBound])
        }
    }

    @Test(arguments: cases)
    func reportValidatesAndAgreesWithText(_ name: String) throws {
        let core = try Corpus.corePath(Corpus.named(name))
        let r = try Tool.run(["--core", core, "--json", "-C", "--tasks", "--stack", "--modules", "--log", "--meminfo"])
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        let problems = try JSONSchemaCheck(schemaAt: Self.schema).check(object)
        #expect(problems.isEmpty, "\(name): \(problems.prefix(10))")
        let json = try JSONDecoder().decode(Doc.self, from: Data(r.stdout.utf8))
        // vCPUs: the JSON frames are the text's Call Trace lines.
        let text = try Tool.run(["--core", core, "-C", "-l", "0"])
        for v in json.vcpus where v.online {
            guard let block = text.stdout.components(separatedBy: "vcpu\(v.id):\n").dropFirst().first?.components(separatedBy: "\nvcpu").first else {
                Issue.record("\(name): no vcpu\(v.id) block"); continue
            }
            let trace = block.components(separatedBy: "Call Trace:\n").dropFirst().first.map { Substring($0) } ?? ""
            #expect(Self.textFrames(trace) == (v.trace?.frames.map(\.address) ?? []), "\(name) vcpu\(v.id)")
            if let task = v.task { #expect(block.contains("Task: \(task.comm) (pid \(task.pid), tgid \(task.tgid))")) }
        }
        // Tasks: the JSON traces are the text's task stacks.
        if let tasks = json.tasks, !tasks.isEmpty {
            let t = try Tool.run(["--core", core, "--tasks", "--stack"])
            let blocks = t.stdout.components(separatedBy: "\nPID: ").dropFirst()
            #expect(blocks.count == tasks.count, "\(name)")
            for (task, block) in zip(tasks, blocks) {
                #expect(block.hasPrefix("\(task.pid)  TASK: \(task.address)"), "\(name) pid \(task.pid)")
                #expect(Self.textFrames(Substring(block)) == (task.trace?.frames.map(\.address) ?? []), "\(name) pid \(task.pid)")
            }
        }
    }

    /// The checker catches what the schema forbids (so a passing check means something).
    /// `--json` and the text say the same problems and exit the same way, on every case
    /// (#28: the JSON had dropped or reworded what stderr said). Text problems are stderr's
    /// lines without the tool's prefix; notes are no problems.
    @Test(arguments: Corpus.cases.map(\.name))
    func jsonAndTextAgreeOnProblems(_ name: String) throws {
        let core = try Corpus.corePath(Corpus.named(name))
        let args = ["--core", core, "-C", "--tasks", "--modules", "--log", "--meminfo"]
        let text = try Tool.run(args)
        let json = try Tool.run(args + ["--json"])
        #expect(text.status == json.status, "\(name): text \(text.status), json \(json.status)")
        let said = text.stderr.split(separator: "\n").compactMap { line -> String? in
            guard !line.hasPrefix("xenctx-swift: note: ") else { return nil }
            var l = line.dropFirst("xenctx-swift: ".count)
            if l.hasPrefix("warning: ") { l = l.dropFirst("warning: ".count) }
            return String(l)
        }
        let doc = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let errors = (doc?["errors"] as? [String]) ?? []
        #expect(Set(said) == Set(errors), "\(name): only in text \(Set(said).subtracting(errors)), only in JSON \(Set(errors).subtracting(said))")
    }

    @Test func schemaCheckRejectsBrokenReports() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named("x86-run1-lab-crash")), "--json"])
        let check = try JSONSchemaCheck(schemaAt: Self.schema)
        var doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(check.check(doc).isEmpty)
        var vcpus = doc["vcpus"] as! [[String: Any]]
        vcpus[0]["state"] = "dancing"
        vcpus[0]["online"] = "yes"
        vcpus[1]["extra"] = 1
        doc["vcpus"] = vcpus
        var guest = doc["guest"] as! [String: Any]
        guest["kernelStart"] = "0xZZ"
        doc["guest"] = guest
        doc.removeValue(forKey: "errors")
        let problems = check.check(doc)
        for expected in ["$.vcpus[0].state", "$.vcpus[0].online: not boolean", "$.vcpus[1]: unexpected extra", "$.guest.kernelStart", "$: missing errors"] {
            #expect(problems.contains { $0.hasPrefix(expected) }, "\(expected) in \(problems)")
        }
    }

    /// A vCPU in real mode (CR0.PE clear, patched into a copy of an HVM core's context): the
    /// guest has 2-byte words, and the report still validates against the schema.
    @Test func realModeGuestValidates() throws {
        let c = Corpus.named("x86-run9-hvm64-live")
        let original = try Corpus.corePath(c)
        let core = try XenCore(path: original)
        var data = try Data(contentsOf: URL(fileURLWithPath: original))
        let cr0At = Int(core.prstatus.offset) + 4984   // ctrlreg[0] of context entry 0
        data[cr0At] &= 0xfe
        data[cr0At + 3] &= 0x7f
        let path = Corpus.cache.appendingPathComponent("\(c.name)/real-mode.core").path
        try data.write(to: URL(fileURLWithPath: path))
        let r = try Tool.run(["--core", path, "--json", "-C"])
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        let guestFacts = (object as? [String: Any])?["guest"] as? [String: Any]
        #expect(guestFacts?["wordSize"] as? Int == 2, "\(r.stdout.prefix(300))")
        let problems = try JSONSchemaCheck(schemaAt: Self.schema).check(object)
        #expect(problems.isEmpty, "\(problems.prefix(10))")
    }

    /// Registers-only cores: registers and stack pointers, no traces, and why in errors.
    @Test(arguments: Corpus.cases.filter { !$0.hasRAM }.map(\.name))
    func registersOnlyReportValidates(_ name: String) throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named(name)), "--json", "-C"])
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        let problems = try JSONSchemaCheck(schemaAt: Self.schema).check(object)
        #expect(problems.isEmpty, "\(name): \(problems.prefix(10))")
        let doc = object as! [String: Any]
        #expect(!(doc["errors"] as! [Any]).isEmpty, "\(name): a registers-only core says so")
    }

    /// A registers-only ARM core (xl's) with its System.map: no stack, so the vCPU is classed
    /// by what its PC and link register name. The idle guest was called `kernel` (#28): its
    /// vCPUs are in cpu_do_idle, returning to arch_cpu_idle; the crashed one's vCPU 0 was
    /// stopped by the panic's IPI, as the complete core of the same kernel shows.
    @Test func registersOnlySummaryFromPCAndLinkRegister() throws {
        for (name, expected) in [("arm-run1-a64-alive", "vcpu0   idle      -\nvcpu1   idle      -\n"),
                                 ("arm-run3-a64-crash-big", "vcpu0   stopped   -                         local_cpu_stop+0x44\n")] {
            let c = Corpus.named(name)
            let r = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "--summary"])
            // No memory, so no log: the verdict cannot be read, and says why.
            let lines = r.stdout.split(separator: "\n", maxSplits: 1)
            #expect(lines[0].hasPrefix("verdict: unknown: no kernel log"), "\(name): \(r.stdout)")
            #expect(lines[1].hasPrefix(expected), "\(name): \(r.stdout)")
        }
    }

    /// Frames carry their symbol as values (function, offset, module) beside its text, so
    /// triage and --summary never cut strings: the same, read either way.
    @Test func framesNameTheirSymbolAsValues() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named("x86-run5-lab-crash-tasks")), "--json", "--tasks", "--stack"])
        let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        var frames = ((doc["vcpus"] as? [[String: Any]]) ?? []).compactMap { ($0["trace"] as? [String: Any])?["frames"] as? [[String: Any]] }.flatMap { $0 }
        frames += ((doc["tasks"] as? [[String: Any]]) ?? []).compactMap { ($0["trace"] as? [String: Any])?["frames"] as? [[String: Any]] }.flatMap { $0 }
        #expect(frames.count > 300)
        var modules = 0
        for f in frames {
            guard let symbol = f["symbol"] as? String else { #expect(f["function"] == nil); continue }
            let m = try #require(symbol.firstMatch(of: /^([^+ .]+)[^+ ]*(?:\+0x([0-9a-f]+))?(?: \[(\S+)\])?$/), "\(symbol)")
            #expect(f["function"] as? String == String(m.1), "\(f)")
            #expect(f["offset"] as? Int == (m.2.map { Int($0, radix: 16)! } ?? 0), "\(f)")
            #expect(f["module"] as? String == m.3.map(String.init), "\(f)")
            if m.3 != nil { modules += 1 }
        }
        #expect(modules >= 1, "the reader asleep in rfkill_fop_read [rfkill]")
    }

    @Test func summaryIsOneLinePerVCPU() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named("x86-run1-lab-crash")), "--summary"])
        // The clock is the guest's own (checked against Xen's record of its boot in ClockTests).
        #expect(r.stdout == """
            verdict: panic on vcpu0 in sh (pid 101) at [   51.159196]: Kernel panic - not syncing: sysrq triggered crash (Not tainted); dumped at 2026-11-26T19:24:02.623Z, up 51 s
            vcpu0   panic     sh (pid 101)              panic+0x286 ← sysrq_handle_crash+0x16
            vcpu1   kernel    sh (pid 98)               rcu_sched_clock_irq+0x306

            """)
        let a64 = try Tool.run(["--core", try Corpus.corePath(Corpus.named("arm-full-a64-crash")), "--summary"])
        #expect(a64.stdout.split(separator: "\n", maxSplits: 1)[1].hasPrefix("vcpu0   stopped   swapper/0 (pid 0)         local_cpu_stop+0x44\nvcpu1   panic     init (pid 1)"))
        #expect(try Tool.run(["--core", try Corpus.corePath(Corpus.named("x86-run1-lab-crash")), "--summary", "--json"]).status == 64)
    }

    /// On every kernel series and guest kind, the vCPU the oops names (`CPU: N [UID: 0 ]PID: P
    /// Comm: C`, the first after sysrq's "Trigger a crash") says panic, with the panic frame and
    /// its caller; where the kernel has BTF (x86_64, arm64) also the task the oops names. The
    /// 32-bit kernels have no BTF: no task, and the line says so with `-`.
    static let crashCases = ["x86-run1-lab-crash", "x86-run2-lab-crash-cpu1", "x86-run5-lab-crash-tasks",
                             "x86-run9-pvh64-crash", "x86-run9-hvm64-crash", "x86-run8-hvm32-crash",
                             "arm-full-a64-crash", "arm-tasks-a64-crash", "arm-why-a64-hung-lockup-oom", "arm-why612-a64-hung-lockup-oom", "arm-why612-a64-mutex-lockup", "arm-full-a32-crash", "arm-tasks-a32-crash-smp",
                             "x86-run10-pv612-crash-tasks", "x86-run10-pv510-crash-tasks", "x86-run10-pv510-hcpage-crash-tasks",
                             "x86-run11-xen420-pv612-crash-tasks", "x86-run11-xen420-hvm612-crash-tasks", "x86-run12-xen420-pvh612-crash-tasks", "x86-run15-why-hung-lockup-oom", "x86-run16-why612-hung-lockup-oom", "x86-run17-why-mutex-lockup",
                             "x86-run13-pvh510-crash-tasks", "x86-run13-hvm510-crash-tasks", "x86-run14-hvm32-510-crash",
                             "arm-tasks612-a64-crash", "arm-tasks612-a32-crash-smp", "arm-tasks612-a64-16k-crash"]
    @Test(arguments: crashCases)
    func summarySaysPanicOnEveryKernel(_ name: String) throws {
        let c = Corpus.named(name)
        let console = try c.consoleText()
        let afterTrigger = console[try #require(console.range(of: "Trigger a crash")).upperBound...]
        let oops = try #require(afterTrigger.firstMatch(of: /CPU: ([0-9]+) (?:UID: 0 )?PID: ([0-9]+) Comm: (\S+)/))
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--summary"])
        #expect(r.status == 0, "\(r.stderr)")
        let line = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("vcpu\(oops.1) ") })
        let task = c.arch == "a32" || c.arch == "x86" ? "-" : "\(oops.3) (pid \(oops.2))"
        #expect(line.hasPrefix("vcpu\(oops.1)   panic     \(task) "), "\(line)")
        #expect(line.contains(" panic+0x") && line.contains(" ← sysrq_handle_crash+0x"), "\(line)")
    }

    /// What stderr says when there is no module list, `errors` says in JSON, and the run
    /// does not pass (it exited 0 with `"errors": []` and no `modules` key).
    @Test func missingModulesAreAnError() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named("arm-full-a64-crash")), "--json", "--modules"])
        #expect(r.status == 1)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let errors = try #require(doc["errors"] as? [String])
        #expect(errors.contains { $0.hasPrefix("no module list: the symbols do not name the `modules` list head") }, "\(errors)")
        #expect(r.stderr.contains("no module list: "))
    }

    struct Doc: Decodable {
        struct Frame: Decodable { let address: String }
        struct Trace: Decodable { let frames: [Frame] }
        struct TaskRef: Decodable { let pid: Int; let tgid: Int; let comm: String }
        struct VCPU: Decodable { let id: Int; let online: Bool; let trace: Trace?; let task: TaskRef? }
        struct Task: Decodable { let pid: Int; let address: String; let trace: Trace? }
        let vcpus: [VCPU]
        let tasks: [Task]?
    }
}
