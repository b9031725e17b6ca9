import Foundation
import Testing

/// Why a guest hangs or dies, against what its kernel printed: `x86-run15-why-hung-lockup-oom`
/// and `arm-why-a64-hung-lockup-oom` made their 6.1 kernels, `x86-run16-why612-hung-lockup-oom`
/// and `arm-why612-a64-hung-lockup-oom` Debian 13's 6.12, report three hung tasks in a chain of
/// rw_semaphores owned by test_lockup, a soft lockup and an OOM kill before their sysrq crash
/// (see their PROVENANCE).
struct WhyTests {
    static let name = "x86-run15-why-hung-lockup-oom"
    static let cases = [name, "arm-why-a64-hung-lockup-oom", "x86-run16-why612-hung-lockup-oom", "arm-why612-a64-hung-lockup-oom"]
    /// Kernels whose kallsyms names data symbols (tainted_mask, runqueues, the memory
    /// counters): x86_64's, and arm64's from 6.12 on (6.1's arm64 kallsyms has none).
    static let dataSymbolCases = [name, "x86-run16-why612-hung-lockup-oom", "arm-why612-a64-hung-lockup-oom"] + WhyMutexLockupTests.cases

    static func console(_ name: String = name) throws -> String { try Corpus.named(name).consoleText().replacingOccurrences(of: "\r", with: "") }
    static func core(_ name: String = name) throws -> String { try Corpus.corePath(Corpus.named(name)) }

    /// Every report the console holds is an event of the verdict, with its time, task and
    /// CPU; the sysrq panic, long after the OOM kill, is the reason, not the OOM.
    @Test(arguments: cases + WhyMutexLockupTests.cases)
    func verdictAndEventsAsTheConsoleSaysThem(_ name: String) throws {
        let console = try Self.console(name)
        let r = try Tool.run(["--core", try Self.core(name), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let v = try #require(doc["verdict"] as? [String: Any])
        #expect(v["reason"] as? String == "panic" && v["message"] as? String == "Kernel panic - not syncing: sysrq triggered crash")
        let afterTrigger = console[try #require(console.range(of: "Trigger a crash")).upperBound...]
        // 6.12 prints `CPU: 0 UID: 0 PID: 188 Comm: sh`, 6.1 no UID.
        let header = try #require(afterTrigger.firstMatch(of: /CPU: ([0-9]+) (?:UID: [0-9]+ )?PID: ([0-9]+) Comm: (\S+) (Tainted: [A-Z ]*[A-Z])/))
        // x86's and 6.12 arm64's kallsyms name tainted_mask (the taint at the dump); 6.1
        // arm64's has no data symbols: the panic's own line, the same (nothing tainted it after).
        #expect(v["taint"] as? String == String(header.4), "\(v["taint"] ?? "-") vs \(header.4)")
        #expect(v["taintFrom"] as? String == (Self.dataSymbolCases.contains(name) ? "tainted_mask" : "log"))
        #expect(v["vcpu"] as? Int == Int(header.1) && v["pid"] as? Int == Int(header.2) && v["comm"] as? String == String(header.3))
        let events = try #require(v["events"] as? [[String: Any]])
        var expected: [(kind: String, time: Double, pid: Int, comm: String)] = []
        for m in console.matches(of: /(?m)^\[ *([0-9.]+)\] INFO: task (\S+):([0-9]+) blocked for more than 5 seconds\./) { expected.append(("hung", Double(m.1)!, Int(m.3)!, String(m.2))) }
        for m in console.matches(of: /(?m)^\[ *([0-9.]+)\] watchdog: BUG: soft lockup - CPU#1 stuck for [0-9]+s! \[(\S+):([0-9]+)\]/) { expected.append(("soft lockup", Double(m.1)!, Int(m.3)!, String(m.2))) }
        for m in console.matches(of: /(?m)^\[ *([0-9.]+)\] Out of memory: Killed process ([0-9]+) \((\S+)\)/) { expected.append(("OOM", Double(m.1)!, Int(m.2)!, String(m.3))) }
        for m in console.matches(of: /(?m)^\[ *([0-9.]+)\] Kernel panic - not syncing: sysrq triggered crash/) { expected.append(("panic", Double(m.1)!, Int(header.2)!, String(header.3))) }
        expected.sort { $0.time < $1.time }
        // arm64's spin took 28 s under the emulation (6.1's 8 s, 6.12's 3 s): the watchdog
        // reported it twice.
        // (arm-why612-a64-mutex-lockup's, three times; x86-run17-why-mutex-lockup's 8 s took
        // 70 s on a busy host: seven times; their later spins were never reported).
        let counts = [WhyMutexLockupTests.name: 3, WhyMutexLockupTests.x86: 7]
        let lockups = Array(repeating: "soft lockup", count: counts[name] ?? (name.hasPrefix("x86") ? 1 : 2))
        #expect(expected.map(\.kind) == ["hung", "hung", "hung"] + lockups + ["OOM", "panic"])
        #expect(events.count == expected.count)
        for (e, x) in zip(events, expected) {
            #expect(e["kind"] as? String == x.kind && e["pid"] as? Int == x.pid && e["comm"] as? String == x.comm, "\(e) vs \(x)")
            #expect(abs((e["time"] as? Double ?? 0) - x.time) < 1e-6, "\(e) vs \(x)")
        }
        #expect(events[3]["vcpu"] as? Int == 1)
    }

    /// `--hung`: the three tasks the kernel reported, each in the slowpath its report shows,
    /// waiting on the lock the lab says, owned by the task the lab says, in the kernel's queue
    /// order; the chain runs touch → rm → insmod. Where the kernel names its runqueues (x86,
    /// 6.12 arm64), blocked since before their reports.
    @Test(arguments: cases)
    func hungTasksTheirLocksAndOwners(_ name: String) throws {
        let console = try Self.console(name)
        let lock = String(try #require(console.firstMatch(of: /test_lockup: lock rw_semaphore 0x([0-9a-f]+)/)).1)
        let owner = Int(try #require(console.firstMatch(of: /why: owner: insmod test_lockup\.ko pid ([0-9]+) holds/)).1)!
        let reports = Dictionary(uniqueKeysWithValues: console.matches(of: /\[ *([0-9.]+)\] INFO: task \S+:([0-9]+) blocked for more than ([0-9]+) seconds/)
            .map { (Int($0.2)!, Double($0.1)! - Double($0.3)!) })
        let waiters = reports.keys.sorted()
        try #require(waiters.count == 3)
        let (sh, rm, touch) = (waiters[0], waiters[1], waiters[2])
        let r = try Tool.run(["--core", try Self.core(name), "--hung"])
        let blocks = r.stdout.components(separatedBy: "\nPID: ").dropFirst()
        #expect(blocks.count == 3)
        if Self.dataSymbolCases.contains(name) {
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.hasPrefix("Tasks in D state not scheduled for 0 s or more (the guest's hung_task_timeout_secs is 0, its detector off: every task in D state): 3 of 3 in D state\n"), "\(r.stdout.prefix(200))")
            let describe = try Tool.run(["--core", try Self.core(name), "--describe", "-l", "0"]).stdout
            let now = try #require(describe.matches(of: /cpu[0-9]+ ([0-9.]+) s/).map { Double($0.1)! }.max())
            for block in blocks {
                let pid = Int(block.prefix { $0 != " " })!
                let ago = Double(try #require(block.firstMatch(of: /SCHEDULED: ([0-9.]+) s ago/)).1)!
                // Blocked since at least N seconds before the kernel's report of it.
                let reported = try #require(reports[pid])
                #expect(now - ago <= reported + 0.01, "pid \(pid): scheduled at \(now - ago), blocked by \(reported) per the kernel")
            }
        } else {
            // 6.1 arm64's kallsyms names no runqueues: the tasks, not how long (exit 1, said).
            #expect(r.status == 1 && r.stdout.hasPrefix("Tasks in D state: 3, for how long each cannot be told\n"), "\(r.stdout.prefix(200))")
        }
        for block in blocks {
            let pid = Int(block.prefix { $0 != " " })!
            #expect([sh, rm, touch].contains(pid) && block.contains("STATE: D"), "\(block.prefix(100))")
            let slowpath = pid == touch ? "rwsem_down_read_slowpath+" : "rwsem_down_write_slowpath+"
            #expect(block.contains("] \(slowpath)"), "pid \(pid)")
        }
        #expect(r.stdout.contains("Waits for: rw_semaphore \(lock), held by insmod (pid \(owner)); queue: sh (pid \(sh)), rm (pid \(rm))\n"), "\(r.stdout)")
        #expect(r.stdout.contains(", held by rm (pid \(rm)); queue: touch (pid \(touch))\n"), "\(r.stdout)")
        #expect(r.stdout.contains("  touch (pid \(touch)) → rm (pid \(rm)) → insmod (pid \(owner)), which waits on no lock (state S)\n"), "\(r.stdout)")
        let j = try Tool.run(["--core", try Self.core(name), "--hung", "--json"])
        let tasks = (try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any])["tasks"] as! [[String: Any]]
        let waits = Dictionary(uniqueKeysWithValues: tasks.map { ($0["pid"] as! Int, $0["waitsFor"] as? [String: Any]) })
        #expect(waits[sh]??["lock"] as? String == lock && waits[sh]??["owner"] as? Int == owner && waits[sh]??["waiters"] as? [Int] == [sh, rm])
        #expect(waits[touch]??["owner"] as? Int == rm)
    }
}

/// `--meminfo` against the guest's own sysrq-m report, 7 (x86) to 17 (arm64) seconds before its
/// dump: the totals that do not move are equal, free and slab pages within what those seconds
/// moved; MemAvailable against the guest's own last reading of it.
/// (The mutex cases' sysrq-m came a minute before their dumps, with a lab step in between:
/// WhyMutexLockupTests holds them to the /proc/meminfo they printed just before.)
struct MemInfoTests {
    @Test(arguments: WhyTests.dataSymbolCases.filter { !WhyMutexLockupTests.cases.contains($0) })
    func countersAsSysrqMReportsThem(_ name: String) throws {
        let console = try WhyTests.console(name)
        let start = try #require(console.range(of: "sysrq: Show Memory")).lowerBound
        let mem = console[start...]
        func pages(_ key: String) throws -> Double { Double(try #require(mem.firstMatch(of: try Regex("\(key):([0-9]+)\\b")))[1].substring!)! }
        let managed = mem.matches(of: /managed:([0-9]+)kB/).map { Double($0.1)! }.reduce(0, +)
        let pagecache = Double(try #require(mem.firstMatch(of: /([0-9]+) total pagecache pages/)).1)!
        let r = try Tool.run(["--core", try WhyTests.core(name), "--meminfo"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        var kB: [String: Double] = [:]
        for m in r.stdout.matches(of: /(?m)^(\w+):\s+([0-9]+) kB$/) { kB[String(m.1)] = Double(m.2)! }
        #expect(kB["MemTotal"] == managed, "MemTotal \(kB["MemTotal"] ?? -1) kB vs the zones' managed \(managed) kB")
        let shmem = try pages("shmem"), free = try pages("free")
        let reclaimable = try pages("slab_reclaimable"), unreclaimable = try pages("slab_unreclaimable")
        #expect(kB["FilePages"] == pagecache * 4 && kB["Shmem"] == shmem * 4, "\(kB)")
        #expect(abs(kB["MemFree", default: 0] / 4 - free) <= 0.01 * free, "\(kB)")
        #expect(abs(kB["SReclaimable", default: 0] / 4 - reclaimable) <= 0.02 * reclaimable, "\(kB)")
        #expect(abs(kB["SUnreclaim", default: 0] / 4 - unreclaimable) <= 0.02 * unreclaimable, "\(kB)")
        #expect(kB["SwapTotal"] == 0 && mem.contains("Total swap = 0kB"))
        // MemAvailable: the guest's last /proc/meminfo reading (after the OOM kill, seconds
        // before the dump) fixes what si_mem_available() adds to free memory. Free memory
        // moved in between, and so did the reclaimable slab (counted less the smaller of its
        // half and the low watermarks: it moves the sum by at most its own move), from the
        // OOM report's slab_reclaimable just before the reading to ours at the dump.
        let reading = try #require(console.matches(of: /(?m)^MemFree: +([0-9]+) kB\nMemAvailable: +([0-9]+) kB$/).last)
        let added = Double(reading.output.2)! - Double(reading.output.1)!
        let before = try #require(console[..<reading.range.lowerBound].matches(of: /slab_reclaimable:([0-9]+)\b/).last)
        let moved = abs(kB["SReclaimable", default: 0] / 4 - Double(before.output.1)!)
        let ours = try #require(kB["MemAvailable"], "\(r.stdout)") - kB["MemFree", default: 0]
        #expect(abs(ours - added) <= 4 * (moved + 2), "MemAvailable - MemFree: ours \(ours) kB, the guest's \(added) kB; slab_reclaimable moved \(moved) pages")
        let oom = try #require(console.firstMatch(of: /(?m)^(\[ *[0-9.]+\] Out of memory: Killed process [0-9]+ \(tail\)[^\n]*)$/))
        #expect(r.stdout.contains("Last OOM kill: \(oom.1)\n"), "\(r.stdout)")
        // --json holds the same figures and the same OOM kill.
        let j = try Tool.run(["--core", try WhyTests.core(name), "--json", "--meminfo"])
        let memory = try #require((try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])?["memory"] as? [String: Any])
        #expect((memory["kB"] as? [String: Int])?.mapValues(Double.init) == kB, "\(memory)")
        let last = try #require(memory["lastOOMKill"] as? [String: Any])
        #expect(oom.1.hasSuffix("] " + (last["text"] as? String ?? "?")), "\(last)")
    }

    /// Debian's 6.1 arm64 kallsyms has no data symbols: no counters, and it says which.
    @Test func noDataSymbolsNoCounters() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named("arm-tasks-a64-crash")), "--meminfo"])
        #expect(r.status == 2 && r.stderr.contains("no memory summary: _totalram_pages: not in the symbols"), "\(r.stderr)")
    }
}
