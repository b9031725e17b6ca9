import Foundation
import Testing

/// `arm-why612-a64-mutex-lockup` (Debian 13's 6.12 on arm64) and `x86-run17-why-mutex-lockup`
/// (6.1, x86_64 PV): the why labs' mutex steps (see their PROVENANCE). test_lockup_mutex
/// holds cgroup_mutex asleep while `mkdir` in a cgroup2 mount waits for it, test_lockup_soft
/// spins on vCPU 1 touching the soft-lockup watchdog (so the kernel never reports it) until
/// sysrq-c on vCPU 0, and the guest printed /proc/meminfo just before the crash. The truth is
/// what the guest printed about itself.
struct WhyMutexLockupTests {
    static let name = "arm-why612-a64-mutex-lockup"
    static let x86 = "x86-run17-why-mutex-lockup"
    static let cases = [name, x86]

    /// `--hung`: the mkdir waits for the mutex at cgroup_mutex's address, held by the
    /// module's insmod, the pids and address the guest printed.
    @Test(arguments: cases)
    func mutexWaiterAndItsOwner(_ name: String) throws {
        let console = try WhyTests.console(name)
        let lock = String(try #require(console.firstMatch(of: /why: cgroup_mutex at 0x([0-9a-f]+) \(\/proc\/kallsyms\)/)).1)
        let owner = Int(try #require(console.firstMatch(of: /why: mutex owner: insmod test_lockup_mutex\.ko\.xz \S+ pid ([0-9]+) holds cgroup_mutex/)).1)!
        let waiter = Int(try #require(console.firstMatch(of: /why: mutex waiter: mkdir \S+ pid ([0-9]+) waits for cgroup_mutex/)).1)!
        let r = try Tool.run(["--core", try WhyTests.core(name), "--hung", "--hung-after", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        let block = try #require(r.stdout.components(separatedBy: "\nPID: ").first { $0.hasPrefix("\(waiter) ") })
        #expect(block.contains("COMMAND: \"mkdir\"  STATE: D"))
        // arm64 6.12 shows mutex_lock+…, x86 6.1 __mutex_lock.constprop.0+… (as sysrq-w does).
        for f in ["mutex_lock", "cgroup_kn_lock_live+", "cgroup_mkdir+"] { #expect(block.contains(f), "\(f)") }
        #expect(block.contains("Waits for: mutex \(lock), held by insmod (pid \(owner)); queue: mkdir (pid \(waiter))"), "\(block.suffix(300))")
        // The same in --json, where the owner is a pid.
        let j = try Tool.run(["--core", try WhyTests.core(name), "--hung", "--hung-after", "0", "--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any]
        let task = try #require((doc["tasks"] as? [[String: Any]])?.first { $0["pid"] as? Int == waiter })
        let waits = try #require(task["waitsFor"] as? [String: Any])
        #expect(waits["kind"] as? String == "mutex" && waits["lock"] as? String == lock && waits["owner"] as? Int == owner)
        #expect(waits["waiters"] as? [Int] == [waiter])
        // The owner sleeps in S, in the module's init, as sysrq-t shows it.
        let tasks = try Tool.run(["--core", try WhyTests.core(name), "--tasks"]).stdout
        #expect(tasks.contains(try Regex("(?m)^ +\(owner) +1 +[01] +[0-9a-f]{16} +S +insmod$")), "\(tasks.prefix(400))")
    }

    /// The spin the watchdog never reported: the verdict is still the sysrq panic, and names
    /// vCPU 1's insmod as locked up, for as long as it ran: from the module's START record
    /// (the task was scheduled in just before it) to its CPU's stop after the panic.
    @Test(arguments: cases)
    func lockupTheLogNeverReported(_ name: String) throws {
        let console = try WhyTests.console(name)
        let spinner = Int(try #require(console.firstMatch(of: /why: pids: mutex owner [0-9]+ mutex waiter [0-9]+ unreported lockup ([0-9]+)/)).1)!
        let start = Double(try #require(console.firstMatch(of: try Regex("\\[ *([0-9.]+)\\] test_lockup_soft: START pid=\(spinner) ")))[1].substring!)!
        let panic = Double(try #require(console.firstMatch(of: /\[ *([0-9.]+)\] Kernel panic - not syncing: sysrq triggered crash/)).1)!
        // The panic's last record: arm64's "end Kernel panic", x86 PV's last line before it
        // told Xen it crashed.
        let last = console.firstMatch(of: /\[ *([0-9.]+)\] ---\[ end Kernel panic/)?.1 ?? console.matches(of: #/(?m)^\[ *([0-9.]+)\] /#).last?.1
        let end = Double(try #require(last))!
        let trigger = try #require(console.range(of: "sysrq triggered crash"))
        let header = try #require(console[trigger.upperBound...].firstMatch(of: /CPU: ([0-9]+) (?:UID: [0-9]+ )?PID: ([0-9]+) Comm: (\S+)/))
        #expect(!console.contains("[insmod:\(spinner)]"), "the lab meant the watchdog never to report it")
        let r = try Tool.run(["--core", try WhyTests.core(name), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let v = try #require(doc["verdict"] as? [String: Any])
        #expect(v["reason"] as? String == "panic" && v["vcpu"] as? Int == 0)
        let l = try #require(v["lockup"] as? [String: Any])
        #expect(l["vcpu"] as? Int == 1 && l["pid"] as? Int == spinner && l["comm"] as? String == "insmod" && l["reported"] as? Bool == false)
        #expect(l["threshold"] as? Double == 20)
        let ran = try #require(l["runningFor"] as? Double)
        // Not the latest clock (arm64's vCPU 0 kept ticking in the panic loop for 9 s): vCPU 1's own.
        #expect(ran >= panic - start && ran <= end - start + 0.5, "\(ran) vs \(panic - start)…\(end - start)")
        let events = try #require(v["events"] as? [[String: Any]])
        #expect(!events.contains { $0["pid"] as? Int == spinner })
        let summary = try Tool.run(["--core", try WhyTests.core(name), "--summary"]).stdout.split(separator: "\n").map(String.init)
        #expect(summary.count == 4)
        #expect(header.1 == "0")
        #expect(summary[0].hasPrefix("verdict: panic on vcpu0 in \(header.3) (pid \(header.2)) at [  \(String(format: "%.6f", panic))]: Kernel panic - not syncing: sysrq triggered crash"), "\(summary[0])")
        #expect(summary[1].hasPrefix("lockup: vcpu1's task insmod (pid \(spinner)) has run in the kernel for ")
                && summary[1].hasSuffix("without being scheduled out (soft-lockup threshold 20 s); no watchdog report in the log: inferred from the scheduler's clocks"), "\(summary[1])")
        // arm64's vCPU 1 took the panic's stop IPI; x86 PV's was still spinning when Xen stopped it.
        #expect(summary[3].hasPrefix("vcpu1   ") && summary[3].contains(" insmod (pid \(spinner))"), "\(summary[3])")
    }

    /// `--meminfo` against the /proc/meminfo the guest printed just before sysrq-c: every
    /// line both have, equal to the kB. Free memory may move by what the crash's own shell
    /// took after the reading (x86-run17: 30 pages): MemFree within 1 MiB, and MemAvailable
    /// moved by exactly as much (the estimate's other parts equal).
    @Test(arguments: cases)
    func meminfoAsTheGuestReadItBeforeTheCrash(_ name: String) throws {
        let console = try WhyTests.console(name)
        var guest: [String: UInt64] = [:]
        for m in console.matches(of: /(?m)^LABGUEST meminfo: ([A-Za-z_()]+): +([0-9]+) kB$/) { guest[String(m.1)] = UInt64(m.2)! }
        #expect(guest["MemAvailable"] != nil && guest.count > 30)
        // /proc/meminfo's Cached is the page cache less swap cache and buffers: none here.
        #expect(guest["Buffers"] == 0 && guest["SwapCached"] == 0)
        let r = try Tool.run(["--core", try WhyTests.core(name), "--meminfo", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let ours = try #require((doc["memory"] as? [String: Any])?["kB"] as? [String: Any])
        var compared: [String] = []
        func kB(_ key: String) -> Int64? { (ours[key] as? NSNumber)?.int64Value }
        for key in ours.keys.sorted() {
            guard let theirs = guest[key == "FilePages" ? "Cached" : key].map(Int64.init), let value = kB(key) else { continue }
            if key == "MemFree" || key == "MemAvailable" {
                #expect(abs(value - theirs) <= 1024, "\(key): \(value) vs \(theirs)")
            } else {
                #expect(value == theirs, "\(key): \(value) vs \(theirs)")
            }
            compared.append(key)
        }
        let (free, available) = (try #require(kB("MemFree")), try #require(kB("MemAvailable")))
        #expect(available - free == Int64(guest["MemAvailable"]!) - Int64(guest["MemFree"] ?? 0), "\(available) − \(free)")
        #expect(compared == ["FilePages", "MemAvailable", "MemFree", "MemTotal", "SReclaimable", "SUnreclaim", "Shmem", "Slab", "SwapFree", "SwapTotal"])
    }
}
