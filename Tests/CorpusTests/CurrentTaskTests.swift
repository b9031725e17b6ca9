import Foundation
import Testing

/// Each vCPU's current task against the kernel's own `CPU: N PID: P Comm: C` lines, found
/// with no symbol file: kallsyms and BTF from the guest's memory (x86_64 per-CPU
/// current_task, arm64 SP_EL0). ARM32 kernels carry no BTF: the report says why instead.
@Suite(.serialized)
struct CurrentTaskTests {
    static let cases = ["x86-run1-lab-crash", "x86-run5-lab-crash-tasks", "arm-tasks-a64-crash", "arm-why-a64-hung-lockup-oom", "x86-run2-lab-crash-cpu1", "x86-run3-lab-crash-cpu1-savecore", "arm-full-a64-crash",
                        "x86-run9-pvh64-crash", "x86-run9-hvm64-crash",
                        // 6.12 keeps current in the per-CPU pcpu_hot; 5.10 in current_task.
                        "x86-run10-pv612-crash-tasks", "x86-run10-pv510-crash-tasks", "x86-run10-pv510-hcpage-crash-tasks",
                        "x86-run11-xen420-pv612-crash-tasks", "x86-run11-xen420-hvm612-crash-tasks", "x86-run12-xen420-pvh612-crash-tasks", "x86-run15-why-hung-lockup-oom", "x86-run16-why612-hung-lockup-oom", "x86-run17-why-mutex-lockup",
                        "x86-run13-pvh510-crash-tasks", "x86-run13-hvm510-crash-tasks",
                        "arm-tasks612-a64-crash", "arm-tasks612-a64-16k-crash", "arm-why612-a64-hung-lockup-oom", "arm-why612-a64-mutex-lockup"]

    @Test(arguments: cases)
    func vcpuNamesTheTaskTheKernelPrinted(_ name: String) throws {
        try check(name, extra: [])
    }

    /// ARM32 with types from the vmlinux's DWARF: the task whose stack holds SP_svc, or the
    /// runqueue's current. (The bootoops case is left out: its `CPU: 0 PID: 1` line is from
    /// an oops before the core, when that CPU had gone idle.)
    @Test(.enabled(if: TaskListTests.armmpVmlinux != nil, "Debian's armmp-lpae -dbg vmlinux is not in the cache (Scripts/fetch-vmlinux.sh 6.1.0-50-armmp-lpae)"),
          arguments: ["arm-full-a32-crash", "arm-tasks-a32-crash-smp"])
    func arm32FromDWARF(_ name: String) throws {
        try check(name, extra: ["--vmlinux", TaskListTests.armmpVmlinux!])
    }

    func check(_ name: String, extra: [String]) throws {
        let c = Corpus.named(name)
        var console = try c.consoleText()
        // From the crash on, where the lab triggered one: a task an earlier report named (an
        // OOM kill's, x86-run15) may be long gone from its CPU.
        if let trigger = console.range(of: "Trigger a crash") { console = String(console[trigger.upperBound...]) }
        let printed = console.split(separator: "\n").compactMap { line -> (Int, String, String)? in
            // 6.12 prints `CPU: 0 UID: 0 PID: 159 Comm: sh`, earlier kernels no UID.
            guard let m = line.firstMatch(of: /CPU: ([0-9]+) (?:UID: [0-9]+ )?PID: ([0-9]+) Comm: ([^ ]+)/) else { return nil }
            return (Int(m.1)!, String(m.2), String(m.3))
        }
        try #require(!printed.isEmpty)
        // Each CPU's last such line is the moment nearest the core (an earlier one, such as
        // an RCU stall report's, names the task of a moment long gone).
        let last = Dictionary(printed.map { ($0.0, $0) }, uniquingKeysWith: { _, later in later }).values.sorted { $0.0 < $1.0 }
        let r = try Tool.run(["--core", try Corpus.corePath(c), "-C", "-l", "0"] + extra)
        #expect(r.status == 0)
        for (cpu, pid, comm) in last {
            let block = r.stdout.components(separatedBy: "vcpu\(cpu):\n").dropFirst().first?.components(separatedBy: "\nvcpu").first ?? ""
            #expect(block.contains("\nTask: \(comm) (pid \(pid), tgid "), "vcpu\(cpu): \(block.split(separator: "\n").filter { $0.hasPrefix("Task") })")
        }
    }

    @Test func arm32SaysWhyThereIsNoTask() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named("arm-full-a32-crash")), "--describe", "-l", "0"])
        #expect(!r.stdout.contains("\nTask: "))
        #expect(r.stdout.contains("# tasks: no task_struct layout: BTF: none in the kernel image"))
    }
}
