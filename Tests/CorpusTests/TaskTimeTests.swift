import Foundation
import Testing

/// How long before the dump each task last went onto a CPU (`sched_info.last_arrival`
/// against its CPU's runqueue clock), against the console: the lab's sleepers were started
/// before sysrq-t and slept through it, so they were last scheduled before sysrq-t's
/// "Show State" record; the tasks on the vCPUs have been running for less than a second.
struct TaskTimeTests {
    static let cases = ["x86-run5-lab-crash-tasks", "x86-run10-pv612-crash-tasks", "x86-run10-pv510-crash-tasks",
                        "x86-run11-xen420-pv612-crash-tasks", "x86-run11-xen420-hvm612-crash-tasks", "x86-run12-xen420-pvh612-crash-tasks", "x86-run15-why-hung-lockup-oom", "x86-run16-why612-hung-lockup-oom", "x86-run17-why-mutex-lockup",
                        "x86-run13-pvh510-crash-tasks", "x86-run13-hvm510-crash-tasks",
                        "arm-tasks612-a64-crash", "arm-tasks612-a64-16k-crash", "arm-why612-a64-hung-lockup-oom", "arm-why612-a64-mutex-lockup"]

    static func seconds(_ s: Substring) -> Double { Double(s)! }

    @Test(arguments: cases)
    func sleepersWereLastScheduledBeforeSysrqT(_ name: String) throws {
        let c = Corpus.named(name)
        let console = try c.consoleText()
        let showState = Self.seconds(try #require(console.firstMatch(of: /\[ *([0-9.]+)\] sysrq: Show State/)).1)
        let panic = Self.seconds(try #require(console.firstMatch(of: /\[ *([0-9.]+)\] Kernel panic - not syncing/)).1)
        let sleepers = console.matches(of: /LAB-?GUEST:? (?:task: )?(?:sleep 1000|cat \/dev\/rfkill|fifo reader \(blocked in \w+\)) pid ([0-9]+)/).map { Int($0.1)! }
        try #require(sleepers.count >= 3, "the lab's sleepers: \(sleepers)")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--tasks", "--stack"])
        #expect(r.status == 0, "\(r.stderr)")
        // "The dump" on the guest's clock: the latest runqueue clock (--describe lists them).
        let describe = try Tool.run(["--core", try Corpus.corePath(c), "--describe", "-l", "0"]).stdout
        let clockOf = Dictionary(describe.matches(of: /cpu([0-9]+) ([0-9.]+) s/).map { (Int($0.1)!, Self.seconds($0.2)) }) { a, _ in a }
        let clocks = Array(clockOf.values)
        let now = try #require(clocks.max(), "\(describe)")
        #expect(now >= panic - 0.01, "\(name): runqueue clocks \(clocks), panic at \(panic)")
        var headers: [Int: Substring] = [:]
        for line in r.stdout.split(separator: "\n") where line.hasPrefix("PID: ") {
            if let pid = Int(line.dropFirst(5).prefix { $0 != " " }) { headers[pid] = line }
        }
        for pid in sleepers {
            let h = try #require(headers[pid])
            let ago = Self.seconds(try #require(h.firstMatch(of: /SCHEDULED: ([0-9.]+) s ago/), "\(h)").1)
            // The runqueue clock and the log's timestamps are both sched_clock.
            #expect(now - ago < showState + 0.01 && now - ago > 0, "\(name) pid \(pid): scheduled at \(now - ago) s; sysrq-t at \(showState)")
        }
        // The task that panicked was running since before its panic; another vCPU's may have
        // been scheduled again until the panic stopped it.
        let afterTrigger = console[try #require(console.range(of: "Trigger a crash")).upperBound...]
        let crashing = Int(try #require(afterTrigger.firstMatch(of: /CPU: [0-9]+ (?:UID: 0 )?PID: ([0-9]+)\s/)).1)!
        let h = try #require(headers[crashing])
        let ran = Self.seconds(try #require(h.firstMatch(of: /RUNNING FOR: ([0-9.]+) s/), "\(h)").1)
        // A running task's time is by its own CPU's clock, which stopped when that CPU did.
        let own = Int(try #require(h.firstMatch(of: /CPU: ([0-9]+)/)).1).flatMap { clockOf[$0] } ?? now
        #expect(own - ran <= panic + 0.01 && own - ran > 0, "\(name): \(h)")
        for h in headers.values where h.contains("RUNNING FOR") {
            let ran = Self.seconds(try #require(h.firstMatch(of: /RUNNING FOR: ([0-9.]+) s/)).1)
            #expect(ran <= now, "\(name): \(h)")
        }
    }

    /// Debian's 6.1 arm64 kallsyms has no data symbols, so no `runqueues`: no clock, and no
    /// time is shown rather than a wrong one.
    @Test func noRunqueuesNoTimes() throws {
        let c = Corpus.named("arm-tasks-a64-crash")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--tasks", "--stack"])
        #expect(r.status == 0 && r.stdout.contains("PID: 1 ") && !r.stdout.contains("SCHEDULED") && !r.stdout.contains("RUNNING FOR"))
    }
}

/// `--hung`: tasks in D state blocked at least the guest's own hung_task_timeout_secs.
struct HungTaskViewTests {
    /// The lab's crash guests had no task in D state (their sysrq-w lists none): the view
    /// says so, with the guest's threshold; with no runqueue clock it fails and says why.
    @Test func noneBlockedAndNoClock() throws {
        let c = Corpus.named("x86-run11-xen420-pv612-crash-tasks")
        let console = try c.consoleText()
        let afterW = console[try #require(console.range(of: "sysrq: Show Blocked State")).upperBound...]
        #expect(afterW.hasPrefix("\nLAB-GUEST: triggering sysrq-c"), "sysrq-w listed no blocked task")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--hung"])
        #expect(r.status == 0 && r.stdout == "Tasks in D state not scheduled for 120 s or more (the guest's hung_task_timeout_secs): 0 of 0 in D state\n", "\(r.stdout)\(r.stderr)")
        let j = try Tool.run(["--core", try Corpus.corePath(c), "--hung", "--hung-after", "5", "--json"])
        #expect(j.status == 0 && (j.stdout.contains("\"tasks\" : [\n\n  ]") || j.stdout.contains("\"tasks\" : []")), "\(j.stdout.prefix(300))")
        let arm = try Tool.run(["--core", try Corpus.corePath(Corpus.named("arm-tasks-a64-crash")), "--hung"])
        #expect(arm.status == 1 && arm.stdout == "Tasks in D state: 0, for how long each cannot be told\n", "\(arm.stdout)")
        #expect(arm.stderr.contains("hung tasks: how long each has been blocked cannot be told: no runqueue clock to time them by"), "\(arm.stderr)")
        #expect(try Tool.run(["--core", try Corpus.corePath(c), "--hung-after", "5"]).status == 64)
        #expect(try Tool.run(["--core", try Corpus.corePath(c), "--hung", "--tasks"]).status == 64)
    }
}

/// Each vCPU's task in JSON carries how long it has run, the same figure as its task header.
struct VCPUTaskTimeTests {
    @Test func vcpuTaskRunningForMatchesItsTask() throws {
        let core = try Corpus.corePath(Corpus.named("x86-run11-xen420-pv612-crash-tasks"))
        let j = try Tool.run(["--core", core, "--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any]
        let text = try Tool.run(["--core", core, "--tasks", "--stack"]).stdout
        var checked = 0
        for v in doc["vcpus"] as! [[String: Any]] {
            let task = try #require(v["task"] as? [String: Any])
            let ran = try #require(task["runningFor"] as? Double)
            let pid = task["pid"] as! Int
            let header = try #require(text.split(separator: "\n").first { $0.hasPrefix("PID: \(pid) ") })
            let shown = Double(try #require(header.firstMatch(of: /RUNNING FOR: ([0-9.]+) s/)).1)!
            #expect(abs(shown - ran) < 1e-6, "pid \(pid): \(ran) vs \(header)")
            checked += 1
        }
        #expect(checked == 2)
    }
}
