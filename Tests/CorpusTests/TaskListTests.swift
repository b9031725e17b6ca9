import Foundation
import Testing

/// `--tasks` and task stacks against the kernel's own sysrq-t listing of the same guest
/// (x86-run5-lab-crash-tasks: the lab dumped every task to its console just before the
/// crash), read with no symbol file: kallsyms, BTF and the module list from the core.
@Suite(.serialized)
struct TaskListTests {
    struct KernelTask { var comm: String; var state: String; var ppid: Int; var running: Bool; var frames: [String] = [] }

    /// sysrq-t: `task:COMM state:S … pid:P [tgid:T] ppid:Q`, then the reliable frames as
    /// `func+0x1 [mod]` (`? func` guesses are left out, as they are not a trace). x86 and
    /// arm64 print a frame a line (`func+0x1/0x2`); ARM32 prints `f from g+0x1/0x2`: the
    /// first function bare (where the switch saved its pc), then each caller's return address.
    static func sysrqT(_ console: String) -> [Int: KernelTask] {
        var tasks: [Int: KernelTask] = [:]
        var current: Int? = nil
        for line in console.split(whereSeparator: \.isNewline).map(String.init) {
            // 5.10 pads the numbers (`pid:  100 ppid:     1`), 6.12 adds `tgid:` between them.
            if let m = line.firstMatch(of: /task:(\S+)\s+state:(\S)\s.*?pid:\s*(\d+)\s.*?ppid:\s*(\d+)/) {
                current = Int(m.3)!
                tasks[current!] = KernelTask(comm: String(m.1), state: String(m.2), ppid: Int(m.4)!, running: line.contains("running task"))
            } else if line.contains("LAB-GUEST") || line.contains("LABGUEST") || line.contains("sysrq:") {
                current = nil
            } else if let c = current, let m = line.firstMatch(of: /^\[\s*[\d.]+\]\s+([A-Za-z_.][\w.]*) from ([A-Za-z_.][\w.]*\+0x[0-9a-f]+)\/0x[0-9a-f]+( \[\w+\])?\s*$/) {
                if tasks[c]!.frames.isEmpty { tasks[c]!.frames.append(String(m.1)) }
                tasks[c]!.frames.append(String(m.2) + String(m.3 ?? ""))
            } else if let c = current, let m = line.firstMatch(of: /^\[\s*[\d.]+\]\s+([A-Za-z_.][\w.]*\+0x[0-9a-f]+)\/0x[0-9a-f]+( \[\w+\])?\s*$/) {
                tasks[c]!.frames.append(String(m.1) + String(m.2 ?? ""))
            }
        }
        return tasks
    }

    /// Our `--tasks --stack`: the list's rows, then each task's frames as `func+0x1 [mod]`.
    static func ours(_ text: String) -> (rows: [Int: KernelTask], frames: [Int: [String]]) {
        var rows: [Int: KernelTask] = [:]
        var frames: [Int: [String]] = [:]
        let parts = text.components(separatedBy: "\nPID: ")
        for line in parts[0].split(separator: "\n").map(String.init) {
            guard let m = line.firstMatch(of: /^[> ]\s*(\d+)\s+(\S+)\s+\S+\s+[0-9a-f]+\s+(\S+)\s+(.*)$/), let ppid = Int(m.2) else { continue }
            let comm = String(m.4).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            if rows[Int(m.1)!] == nil { rows[Int(m.1)!] = KernelTask(comm: comm, state: String(m.3), ppid: ppid, running: line.hasPrefix(">")) }
        }
        for block in parts.dropFirst() {
            guard let pid = Int(block.prefix { $0 != " " }), frames[pid] == nil else { continue }
            frames[pid] = block.split(separator: "\n").compactMap { line in
                line.firstMatch(of: /\]\s+(\S+?)( \[\w+\])? \(/).map { String($0.1) + String($0.2 ?? "") }
            }
        }
        return (rows, frames)
    }

    /// A -dbg vmlinux with DWARF in the cache (`Scripts/fetch-vmlinux.sh KVER`), for the
    /// kernels that have no BTF (ARM32, 32-bit x86): their task types come from it.
    static func cachedVmlinux(_ kver: String) -> String? {
        let env = ProcessInfo.processInfo.environment
        let path = (env["VMLINUX_CACHE"] ?? NSHomeDirectory() + "/.cache/xenctx-swift/vmlinux") + "/\(kver)/vmlinux-\(kver)"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }
    static let armmpVmlinux = cachedVmlinux("6.1.0-50-armmp-lpae")
    static let i686Vmlinux = cachedVmlinux("6.1.0-50-686")
    static let armmp612Vmlinux = cachedVmlinux("6.12.118+deb13-armmp-lpae")
    static let i686510Vmlinux = cachedVmlinux("5.10.0-32-686")

    /// Every task sysrq-t listed, with its comm, ppid, state and every reliable frame of its
    /// stack, in order. x86_64 and arm64 from the core alone (kallsyms, BTF, module list).
    @Test(arguments: [("x86-run5-lab-crash-tasks", 55), ("arm-tasks-a64-crash", 55), ("arm-why-a64-hung-lockup-oom", 55), ("x86-run9-pvh64-crash", 55), ("x86-run9-hvm64-crash", 50),
                      ("x86-run10-pv612-crash-tasks", 60), ("x86-run10-pv510-crash-tasks", 45),
                      ("x86-run10-pv510-hcpage-crash-tasks", 45), ("x86-run11-xen420-pv612-crash-tasks", 60),
                      ("x86-run11-xen420-hvm612-crash-tasks", 50), ("x86-run12-xen420-pvh612-crash-tasks", 55), ("x86-run15-why-hung-lockup-oom", 55), ("x86-run16-why612-hung-lockup-oom", 60), ("x86-run17-why-mutex-lockup", 55),
                      ("x86-run13-pvh510-crash-tasks", 45), ("x86-run13-hvm510-crash-tasks", 40), ("arm-tasks612-a64-crash", 55),
                      ("arm-tasks612-a64-16k-crash", 55), ("arm-why612-a64-hung-lockup-oom", 60), ("arm-why612-a64-mutex-lockup", 60)])
    func everyTaskOfSysrqTWithItsStack(_ name: String, _ atLeast: Int) throws {
        try compare(name, extra: [], atLeast: atLeast)
    }

    /// With the guest's System.map, module symbols merged into it are named by the kernel's
    /// rule, the first in the module's own table: the lock owner's init frame is sysrq-t's
    /// `test_lockup_init+0x…`, not its alias `init_module` (the whole-list comparison above
    /// would pass it as a task that moved).
    @Test(arguments: ["arm-why-a64-hung-lockup-oom", "arm-why612-a64-hung-lockup-oom", "arm-why612-a64-mutex-lockup", "x86-run15-why-hung-lockup-oom", "x86-run16-why612-hung-lockup-oom", "x86-run17-why-mutex-lockup"])
    func moduleInitNamedAsTheKernelNamesItWithTheMap(_ name: String) throws {
        let c = Corpus.named(name)
        let console = try c.consoleText()
        let pid = try #require(console.firstMatch(of: /owner: insmod test_lockup.ko pid (\d+)/).flatMap { Int($0.1) })
        let truth = try #require(Self.sysrqT(console)[pid]?.frames.first { $0.hasPrefix("test_lockup_init+") }, "\(name): sysrq-t shows no init frame for pid \(pid)")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "--task", "\(pid)"])
        #expect(r.status == 0, "\(r.stderr)")
        let mine = Self.ours("\n" + r.stdout).frames[pid] ?? []
        #expect(mine.contains(truth), "\(name) pid \(pid): \(mine) has no \(truth)")
    }

    /// ARM32: types from the -dbg vmlinux's DWARF (`Scripts/fetch-vmlinux.sh 6.1.0-50-armmp-lpae`).
    @Test(.enabled(if: armmpVmlinux != nil, "Debian's armmp-lpae -dbg vmlinux is not in the cache (Scripts/fetch-vmlinux.sh 6.1.0-50-armmp-lpae)"))
    func arm32TasksFromDWARF() throws {
        try compare("arm-tasks-a32-crash-smp", extra: ["--vmlinux", Self.armmpVmlinux!], atLeast: 55)
    }

    /// ARM32 with Debian 13's 6.12: the vmlinux of trixie's `linux-image-6.12.118+deb13-armmp-lpae-dbg`
    /// (`KSUITE=trixie Scripts/lab-tasks-arm.sh` extracts it under ~/.cache/xenlab/arm-trixie/dbg).
    @Test(.enabled(if: armmp612Vmlinux != nil, "trixie's 6.12 armmp-lpae -dbg vmlinux is not in the cache"))
    func arm32With612TasksFromDWARF() throws {
        try compare("arm-tasks612-a32-crash-smp", extra: ["--vmlinux", Self.armmp612Vmlinux!], atLeast: 55)
    }

    /// 32-bit x86 with bullseye's 5.10, moved 128 MiB: the vmlinux of `linux-image-5.10.0-32-686-dbg`
    /// (`KSUITE32=bullseye Scripts/lab-tasks.sh` extracts it under ~/.cache/xenlab/x86/guest32).
    @Test(.enabled(if: i686510Vmlinux != nil, "bullseye's 5.10 686 -dbg vmlinux is not in the cache"))
    func x86_32With510TasksFromDWARF() throws {
        try compare("x86-run14-hvm32-510-crash", extra: ["--vmlinux", Self.i686510Vmlinux!], atLeast: 35)
    }

    /// 32-bit x86 (Debian's 686 kernel, an HVM guest with one vCPU): types from the -dbg
    /// vmlinux's DWARF, stacks by the kernel's frame-pointer walk, in 4-byte words.
    @Test(.enabled(if: i686Vmlinux != nil, "Debian's 686 -dbg vmlinux is not in the cache (Scripts/fetch-vmlinux.sh 6.1.0-50-686)"))
    func x86_32TasksFromDWARF() throws {
        try compare("x86-run8-hvm32-crash", extra: ["--vmlinux", Self.i686Vmlinux!], atLeast: 40)
    }

    /// The 32-bit crashing task: its trace from its vCPU down to the SYSENTER entry, and its
    /// user registers as the oops printed them (`EIP: 0xb7f06559`, `ESP: bfba4c70`).
    @Test(.enabled(if: i686Vmlinux != nil, "Debian's 686 -dbg vmlinux is not in the cache (Scripts/fetch-vmlinux.sh 6.1.0-50-686)"))
    func x86_32CrashingTaskEnteredFromWhereTheOopsSays() throws {
        let c = Corpus.named("x86-run8-hvm32-crash")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--vmlinux", Self.i686Vmlinux!, "--task", "100"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("] sysrq_handle_crash+0x17 (fp)\n"), "\(r.stdout)")
        #expect(r.stdout.contains("] entry_SYSENTER_32+0x98 (fp)\nUser: EIP: 0073:b7f06559 ESP: 007b:bfba4c70 EFLAGS: 00000246\n"), "\(r.stdout)")
    }

    func compare(_ name: String, extra: [String], atLeast: Int) throws {
        let c = Corpus.named(name)
        let truth = Self.sysrqT(try c.consoleText())
        try #require(truth.count >= atLeast, "sysrq-t listed \(truth.count) tasks")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--tasks", "--stack"] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        let (rows, ours) = Self.ours(r.stdout)
        var compared = 0
        var woken: [Int] = [], moved: [Int] = []
        for (pid, t) in truth.sorted(by: { $0.key < $1.key }) {
            guard let row = rows[pid] else { Issue.record("pid \(pid) (\(t.comm)) is not listed"); continue }
            #expect(row.comm == t.comm && row.ppid == t.ppid, "pid \(pid): \(row) vs sysrq-t \(t)")
            // A task that was running at sysrq-t has moved on by the crash.
            guard !t.running else { continue }
            // A sleeper may have been woken in the seconds between sysrq-t and the crash
            // (ARM32: migration/1 by the panic's CPU stop, kcompactd0 by its timer): it is
            // then runnable (R) and its stack is unchanged until it runs. Few, and counted.
            if row.state == "R" && t.state != "R" { woken.append(pid) } else {
                #expect(row.state == t.state, "pid \(pid) \(t.comm): state \(row.state), sysrq-t \(t.state)")
            }
            // ARM32's first function is printed bare; an offset of 0 is printed as +0x0.
            var mine = (ours[pid] ?? []).map { $0.contains("+0x") || $0.contains(" [") ? $0 : $0 + "+0x0" }
            if t.frames.first.map({ !$0.contains("+0x") }) == true, !mine.isEmpty { mine[0] = String(mine[0].prefix { $0 != "+" }) }
            // A kernel thread may also have run since sysrq-t and slept again elsewhere in its
            // own loop (x86-run9-pvh64: the RCU GP kthread, in rcu_gp_kthread+0x113 at sysrq-t,
            // in rcu_gp_fqs_loop at the crash, as the RCU stall dumps of the same kernel show
            // it): the same thread function and entry frames, another sleep point. Counted too.
            // Or preempted there, runnable (arm-tasks612-a64-16k: rcu_sched, woken, in
            // rcu_gp_kthread+0xfc at the crash, in rcu_gp_fqs_loop at sysrq-t).
            let name = { (f: String) in f.prefix { $0 != "+" } }
            if mine != t.frames, mine.count >= 3, t.frames.count >= 3, mine.suffix(2) == t.frames.suffix(2),
               name(mine[mine.count - 3]) == name(t.frames[t.frames.count - 3]), row.state == t.state || row.state == "R" {
                moved.append(pid)
            } else {
                #expect(mine == t.frames, "pid \(pid) \(t.comm): \(mine) vs sysrq-t \(t.frames)")
            }
            compared += 1
        }
        #expect(compared >= atLeast)
        // At most 4: arm-tasks612-a64-crash ran 6 s between sysrq-t and the crash, in which
        // migration/1 (the panic's CPU stop), kcompactd0 (its timer), kworker/1:1 and khvcd
        // (the console's own output) were woken; their stacks still equal sysrq-t's.
        #expect(Set(woken + moved).count <= 4, "woken since sysrq-t: \(woken), slept again in their loop: \(moved)")
    }

    /// The reader asleep in rfkill's code, as sysrq-t printed its frame (6.1, 6.12's module
    /// memory in `mem[MOD_TEXT]`, 5.10's `core_layout`).
    @Test(arguments: [("x86-run5-lab-crash-tasks", "99", "rfkill_fop_read+0xc9"), ("x86-run15-why-hung-lockup-oom", "99", "rfkill_fop_read+0xc9"), ("x86-run17-why-mutex-lockup", "99", "rfkill_fop_read+0xc9"), ("x86-run10-pv612-crash-tasks", "145", "rfkill_fop_read+0xcd"),
                      ("x86-run10-pv510-crash-tasks", "89", "rfkill_fop_read+0x98"), ("x86-run10-pv510-hcpage-crash-tasks", "87", "rfkill_fop_read+0x98"),
                      ("x86-run11-xen420-pv612-crash-tasks", "150", "rfkill_fop_read+0xcd"), ("x86-run11-xen420-hvm612-crash-tasks", "142", "rfkill_fop_read+0xcd"),
                      ("x86-run12-xen420-pvh612-crash-tasks", "145", "rfkill_fop_read+0xcd"), ("x86-run16-why612-hung-lockup-oom", "151", "rfkill_fop_read+0xcd"),
                      ("x86-run13-pvh510-crash-tasks", "89", "rfkill_fop_read+0x98"), ("x86-run13-hvm510-crash-tasks", "82", "rfkill_fop_read+0x98")])
    func moduleFrameNamedFromTheModulesOwnSymbols(_ name: String, _ pid: String, _ frame: String) throws {
        let c = Corpus.named(name)
        #expect(try c.consoleText().contains(" \(frame)/"), "the console's sysrq-t shows \(frame)")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--task", pid])
        #expect(r.stdout.contains("] \(frame) [rfkill] (orc)\n"), "\(r.stdout)")
    }

    @Test func oneTaskWithItsUserEntry() throws {
        let c = Corpus.named("x86-run5-lab-crash-tasks")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--task", "100"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("PID: 100  TASK: "))
        #expect(r.stdout.contains("COMMAND: \"sleep\"  STATE: S"))
        #expect(r.stdout.contains("] __schedule+0x34d (saved by switch)\n"))
        #expect(r.stdout.contains("] entry_SYSCALL_64_after_hwframe+0x6e (orc)\nUser: RIP: 0033:"))
        let none = try Tool.run(["--core", try Corpus.corePath(c), "--task", "4000"])
        #expect(none.status == 2)
        #expect(none.stderr.contains("no task has that pid"))
    }

    /// A task running in user mode (x86-run4-pvh-live: `sh`, pid 98, on vCPU 1) has no
    /// kernel frames: its kernel stack's top holds its last entry, long returned from. Its
    /// user registers are its vCPU's, as upstream printed them for vCPU 1 of the same moment.
    @Test func aTaskRunningInUserModeShowsItsLiveRegisters() throws {
        let c = Corpus.named("x86-run4-pvh-live")
        let upstream = try Corpus.upstreamText(try #require(c.upstream.first { $0.stdoutFile == "upstream/xenctx-C.txt" }))
        let block = try #require(upstream.components(separatedBy: "vcpu1:\n").dropFirst().first)
        func field(_ name: String) throws -> String {
            let line = try #require(block.split(separator: "\n").first { $0.hasPrefix("\(name): ") })
            return String(line.dropFirst(name.count + 2).prefix { $0 != " " })
        }
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--task", "98"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.firstMatch(of: /\(running on vcpu1\)  RUNNING FOR: [0-9]+\.[0-9]{6} s\n-- no call trace: running in user mode on vcpu1: no kernel frames --\n/) != nil, "\(r.stdout)")
        #expect(r.stdout.contains("User: RIP: 0033:\(try field("rip")) RSP: 002b:\(try field("rsp")) EFLAGS: \(try field("flags"))\n"), "\(r.stdout)")
        let j = try Tool.run(["--core", try Corpus.corePath(c), "--task", "98", "--json"])
        #expect(j.stdout.contains("\"noTrace\" : \"running in user mode on vcpu1: no kernel frames\""), "\(j.stdout.suffix(600))")
    }

    /// The crashing task's user registers equal what the oops printed (`RIP: 0033:0x47b7a0`).
    @Test func crashingTaskEnteredFromWhereTheOopsSays() throws {
        let c = Corpus.named("x86-run1-lab-crash")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--task", "101"])
        #expect(r.stdout.contains("(running on vcpu0)"))
        #expect(r.stdout.contains("User: RIP: 0033:000000000047b7a0 RSP: 002b:00007ffe11ae69a8 EFLAGS: 00000202\n"))
    }

    @Test(arguments: ["x86-run5-lab-crash-tasks", "x86-run10-pv612-crash-tasks", "x86-run10-pv510-crash-tasks", "x86-run10-pv510-hcpage-crash-tasks",
                      "x86-run11-xen420-pv612-crash-tasks", "x86-run11-xen420-hvm612-crash-tasks", "x86-run12-xen420-pvh612-crash-tasks", "x86-run13-pvh510-crash-tasks", "x86-run13-hvm510-crash-tasks"])
    func modulesListed(_ name: String) throws {
        let c = Corpus.named(name)
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--modules"])
        #expect(r.status == 0)
        let rows = r.stdout.split(separator: "\n")
        #expect(rows.count == 2)
        #expect(rows.last?.contains("  rfkill  ") == true)
        // Base and size as the guest's /proc/modules gave them (`rfkill 40960 0 - Live 0x…`):
        // 6.4+ adds up its mem[] regions, as the kernel does.
        let proc = try #require(try c.consoleText().firstMatch(of: /\nrfkill ([0-9]+) [0-9]+ - Live 0x([0-9a-f]+)/))
        #expect(rows.last?.contains("  \(proc.2)  \(proc.1)  ") == true, "\(rows.last ?? "") vs /proc/modules: rfkill \(proc.1) … 0x\(proc.2)")
    }

    /// arm64 from its BTF: the kernel threads' switched-out stacks unwind to ret_from_fork.
    @Test func arm64TasksFromBTF() throws {
        let c = Corpus.named("arm-full-a64-crash")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--tasks", "--stack"])
        #expect(r.status == 0)
        let (rows, frames) = Self.ours(r.stdout)
        #expect(rows[1]?.comm == "init" && rows[1]?.running == true)
        #expect(rows[2]?.comm == "kthreadd")
        #expect(rows.count >= 50)
        let kthreads = rows.filter { $0.value.ppid == 2 && !$0.value.running }
        #expect(!kthreads.isEmpty)
        for (pid, _) in kthreads {
            #expect(frames[pid]?.first?.hasPrefix("__switch_to+") == true, "pid \(pid): \(frames[pid] ?? [])")
            #expect(frames[pid]?.last?.hasPrefix("ret_from_fork+") == true, "pid \(pid): \(frames[pid] ?? [])")
        }
    }

    @Test func optionsThatDoNotGo() throws {
        let c = Corpus.named("x86-run1-lab-crash")
        let core = try Corpus.corePath(c)
        #expect(try Tool.run(["--core", core, "--stack"]).status == 64)
        #expect(try Tool.run(["--core", core, "--tasks", "--unwind", "scan"]).status == 64)
        // A registers-only core has no tasks, and says why.
        let regsOnly = try Tool.run(["--core", try Corpus.corePath(Corpus.named("arm-run1-a64-crash")), "--tasks"])
        #expect(regsOnly.status == 2)
        #expect(regsOnly.stderr.contains("no tasks: this core holds no guest memory"))
    }
}

/// Without a module list, `--modules` says which input was missing, not a guess at either.
struct ModulesMissingTests {
    @Test func eachCauseIsNamed() throws {
        let arm64 = try Tool.run(["--core", try Corpus.corePath(Corpus.named("arm-full-a64-crash")), "--modules"])
        #expect(arm64.status == 2 && arm64.stderr.contains("no module list: the symbols do not name the `modules` list head"), "\(arm64.stderr)")
        let arm32 = try Tool.run(["--core", try Corpus.corePath(Corpus.named("arm-full-a32-crash")), "--modules"])
        #expect(arm32.status == 2 && arm32.stderr.contains("no module list: no kernel types: BTF: none in the kernel image"), "\(arm32.stderr)")
    }
}
