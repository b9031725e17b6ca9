import Foundation
import Testing

/// Exact unwinding (`--unwind auto`: ORC on x86_64, frame pointers on 32-bit x86, frame
/// records on AArch64, EHABI tables on ARM32) against the guests' own oops backtraces.
///
/// Truth: the backtrace the guest kernel printed (console.log), reliable frames only (the
/// kernel marks scanned guesses with `?`), without the dumping code's own frames
/// (`dump_stack_lvl` and the like), which returned before the core was written. From the
/// first of those frames down, ours must be the same list; above it the vCPU has since
/// moved on (into `xen_reboot` or `__delay` after `panic`), which the kernel could not print.
@Suite(.serialized)
struct ExactUnwindTests {
    static let cases = ["x86-run1-lab-crash", "x86-run2-lab-crash-cpu1", "x86-run3-lab-crash-cpu1-savecore", "arm-full-a64-crash",
                        "arm-full-a32-crash", "arm-full-a32-crash-smp-bootoops1", "x86-run8-hvm32-crash",
                        "x86-run9-pvh64-crash", "x86-run9-hvm64-crash",
                        // Debian 13's 6.12 (ORC entries of the 6.4 format) and Debian 11's 5.10,
                        // one of them stopped in the hypercall page (a leaf without ORC).
                        "x86-run10-pv612-crash-tasks", "x86-run10-pv510-crash-tasks", "x86-run10-pv510-hcpage-crash-tasks",
                        "x86-run11-xen420-pv612-crash-tasks", "x86-run11-xen420-hvm612-crash-tasks", "x86-run12-xen420-pvh612-crash-tasks", "x86-run15-why-hung-lockup-oom", "x86-run16-why612-hung-lockup-oom", "x86-run17-why-mutex-lockup",
                        "x86-run13-pvh510-crash-tasks", "x86-run13-hvm510-crash-tasks",
                        "x86-run14-hvm32-510-crash",
                        "arm-tasks612-a64-crash", "arm-tasks612-a32-crash-smp", "arm-tasks612-a64-16k-crash", "arm-why612-a64-hung-lockup-oom", "arm-why612-a64-mutex-lockup"]

    /// With the case's System.map, and with nothing but the core (the guest's own kallsyms).
    @Test(arguments: cases, [true, false])
    func exactTraceIsTheKernelsOwn(_ name: String, withMap: Bool) throws {
        let c = Corpus.named(name)
        var console = try c.consoleText()
        // From the crash on, where the lab triggered one (x86-run15's OOM kill printed an
        // earlier backtrace on the CPU that is running another task at the crash).
        if let trigger = console.range(of: "Trigger a crash") { console = String(console[trigger.upperBound...]) }
        // Each CPU's last backtrace is the crash's (an earlier one, such as an RCU stall
        // report of the slow emulated guest, shows a moment long gone).
        let printed = ConsoleTraceTests.consoleTraces(console, before: try ConsoleTraceTests.symbolBefore(mapPath: try Corpus.mapPath(c)))
        let traces = Dictionary(printed, uniquingKeysWith: { _, last in last }).sorted { $0.key < $1.key }
        try #require(!traces.isEmpty)
        let result = try Self.run(name, withMap: withMap, ["--unwind", "auto", "-C", "-l", "0"])
        #expect(result.status == 0, "\(result.stderr)")
        for (cpu, printed) in traces {
            let expected = printed.filter { !ConsoleTraceTests.dumpers.contains($0) }
            try #require(!expected.isEmpty, "no frames in the console trace of CPU \(cpu)")
            let ours = ConsoleTraceTests.traceFunctions(result.stdout, vcpu: cpu)
            var fromFirst = Array(ours.drop { $0 != expected[0] })
            // Where the console's name stands for one of several callers (`a|b`), ours must be one.
            for (i, e) in expected.enumerated() where i < fromFirst.count && e.contains("|") && ConsoleTraceTests.matches(fromFirst[i], e) { fromFirst[i] = e }
            // The kernel's ARM32 unwinder stops at the caller of a noreturn function (it looks
            // up the return address, which is the next function's first instruction); ours
            // looks up the call site and goes on to the kernel entry.
            let kernelStopsAtNoreturnCaller = c.arch == "a32" && expected.count >= 2 && ConsoleTraceTests.noreturn.contains(expected[expected.count - 2])
            if kernelStopsAtNoreturnCaller {
                #expect(fromFirst.starts(with: expected) && fromFirst.count > expected.count, "vcpu\(cpu): ours \(ours)")
            } else {
                #expect(fromFirst == expected, "vcpu\(cpu): ours \(ours)")
            }
        }
        // Every frame says how it was found.
        #expect(result.stdout.contains(c.exactMethodTag))
    }

    /// xenctx-swift on a case's core, with its System.map or with nothing but the core.
    static func run(_ name: String, withMap: Bool, _ args: [String]) throws -> Tool.Result {
        let c = Corpus.named(name)
        let symbols = withMap ? ["-s", try Corpus.mapPath(c)] : []
        return try Tool.run(["--core", try Corpus.corePath(c)] + symbols + args)
    }

    /// Without guest memory there is no kallsyms to find the tables through.
    @Test func tableUnwindersNeedSymbols() throws {
        let registersOnly = try Corpus.corePath(Corpus.named("arm-run1-a32-crash"))
        let r = try Tool.run(["--unwind", "exidx", "--core", registersOnly])
        #expect(r.status == 2 && r.stderr.contains("give -s or --vmlinux") && r.stderr.contains("no guest memory"), "\(r.stderr)")
    }

    /// A method that does not apply to the guest is a usage error naming those that do.
    @Test func methodOfAnotherArchitecture() throws {
        let arm32 = try Tool.run(["--unwind", "orc", "--core", try Corpus.corePath(Corpus.named("arm-run1-a32-crash"))])
        #expect(arm32.status == 64)
        #expect(arm32.stderr.contains("--unwind orc reads x86_64 kernels' ORC tables, and this guest is arm32: use scan, fp, exidx, cfi, auto"), "\(arm32.stderr)")
        let x86 = try Tool.run(["--unwind", "exidx", "--core", try Corpus.corePath(Corpus.named("x86-run1-lab-crash"))])
        #expect(x86.status == 64)
        #expect(x86.stderr.contains("use scan, fp, orc, cfi, auto"), "\(x86.stderr)")
    }

    /// The default is exact when symbols are found: the x86 crash's trace is ORC's, with the
    /// call sites named (`sysrq_handle_crash` calls `panic`), and `--unwind scan` is upstream's.
    @Test func exactByDefault() throws {
        for c in Corpus.cases where c.hasRAM {
            let core = try Corpus.corePath(c)
            let byDefault = try Tool.run(["--core", core, "-C", "-l", "0"])
            let auto = try Tool.run(["--core", core, "--unwind", "auto", "-C", "-l", "0"])
            #expect(byDefault.stdout == auto.stdout, "\(c.name)")
        }
        let core = try Corpus.corePath(Corpus.named("x86-run1-lab-crash"))
        let byDefault = try Tool.run(["--core", core, "0", "-l", "0"])
        #expect(byDefault.stdout.contains("] panic+0x286 (orc)\n") && byDefault.stdout.contains("] sysrq_handle_crash+0x16 (orc)\n"))
        let scan = try Tool.run(["--core", core, "--unwind", "scan", "0", "-l", "0"])
        #expect(!scan.stdout.contains("(orc)"))
    }

    /// The 32-bit x86 PVH guest (Debian 686-pae, frame pointers, no ORC) stopped in its PVH
    /// entry: the exact trace is the kernel's frame-pointer walk, from the physical early-boot
    /// ebp to pvh_start_xen, with the System.map and from the guest's own kallsyms alike;
    /// the stack is in 4-byte words with the default kernel_start c0000000.
    @Test(arguments: [true, false])
    func thirtyTwoBitX86FramePointerTrace(withMap: Bool) throws {
        let r = try Self.run("x86-run6-pvh32-boot", withMap: withMap, ["-C"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("            [<c1dab93b>] xen_prepare_pvh+0x31 <--\n01dfe44c:   [<c1000337>] pvh_start_xen+0x57 (fp)\n"), "\(r.stdout)")
        #expect(r.stdout.contains("Stack:\n 00000000 00000000 00000000 00000000 02135000 02135038 01dfc3f8 00000000\n"))
        let describe = try Self.run("x86-run6-pvh32-boot", withMap: false, ["--describe", "-C"])
        #expect(describe.stdout.contains("# kernel_start: c0000000 (default for x86_32)"))
    }

    /// The 64-bit HVM guest (KASLR, Xen's event-channel upcall) that Xen stopped while it
    /// probed PCI at boot (its console ends there): vCPU 1 was in a timer interrupt on its
    /// IRQ stack. The ORC walk goes back down to the task stack the IRQ stack's saved pointer
    /// names, through the interrupted pci_conf1_write to ret_from_fork, with the guest's own
    /// kallsyms and with the System.map shifted by VMCOREINFO's offset alike.
    @Test(arguments: [true, false])
    func hvmTraceLeavesTheIRQStack(withMap: Bool) throws {
        let r = try Self.run("x86-run7-hvm64-boot", withMap: withMap, ["1", "-l", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        let trace = ConsoleTraceTests.traceFunctions("vcpu1:\n" + r.stdout, vcpu: 1)
        #expect(trace.starts(with: ["pvclock_clocksource_read", "xen_sched_clock", "sched_clock_local"]), "\(trace)")
        for f in ["xen_evtchn_do_upcall", "asm_sysvec_xen_hvm_callback", "_raw_spin_unlock_irqrestore", "pci_conf1_write",
                  "pci_scan_single_device", "acpi_init", "kernel_init", "ret_from_fork"] {
            #expect(trace.contains(f), "\(f) missing from \(trace)")
        }
        #expect(trace.last == "ret_from_fork")
        #expect(r.stdout.contains("] asm_sysvec_xen_hvm_callback+0x16 (orc)\n") && r.stdout.contains("] _raw_spin_unlock_irqrestore+0x19 (regs)\n"))
        if withMap {
            let describe = try Self.run("x86-run7-hvm64-boot", withMap: true, ["--describe", "1"])
            #expect(describe.stdout.contains("KASLR: the kernel was loaded +0x16e00000 from the symbol table's addresses"), "\(describe.stdout)")
        }
    }

    /// The crashed 32-bit HVM guest (686, 2-level page tables): the stack in 4-byte words
    /// with the default kernel_start, with and without the System.map, and the trace from
    /// panic's final delay loop by frame pointers.
    @Test(arguments: [true, false])
    func thirtyTwoBitHVMStackInFourByteWords(withMap: Bool) throws {
        let r = try Self.run("x86-run8-hvm32-crash", withMap: withMap, ["--describe", "-C"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("# kernel_start: c0000000 (default for x86_32)"))
        let stack = r.stdout.components(separatedBy: "\nStack:\n").dropFirst().first?.split(separator: "\n").first ?? ""
        #expect(stack.wholeMatch(of: /( [0-9a-f]{8}){8}/) != nil, "\(stack)")
        #expect(r.stdout.contains("cs:eip: 0060:c38ca880 delay_loop+0x20\n"))
        #expect(r.stdout.contains("] __const_udelay+0x30 (fp)\n") && r.stdout.contains("] panic+0x258 (fp)\n"))
    }

    /// The running 32-bit HVM guest Xen stopped (its registers are those of Xen's own dump,
    /// `xen-triple-fault.txt`): a timer interrupt over the idle loop. The frame-pointer walk
    /// decodes the interrupt's encoded frame pointer (bit 31 cleared) into its pt_regs and goes
    /// on from the interrupted `amd_e400_idle` to the boot CPU's `startup_32_smp`.
    @Test(arguments: [true, false])
    func thirtyTwoBitInterruptFrame(withMap: Bool) throws {
        let r = try Self.run("x86-run8-hvm32-live-tf", withMap: withMap, ["-C", "-l", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("cs:eip: 0060:c305c2e4 read_hpet+0x14\n"))
        let trace = ConsoleTraceTests.traceFunctions(r.stdout, vcpu: 0)
        #expect(trace == ["read_hpet", "timekeeping_advance", "update_wall_time", "tick_do_update_jiffies64", "tick_sched_timer",
                          "__hrtimer_run_queues", "hrtimer_interrupt", "__sysvec_apic_timer_interrupt", "sysvec_apic_timer_interrupt",
                          "handle_exception", "amd_e400_idle", "default_idle_call", "do_idle", "cpu_startup_entry", "rest_init",
                          "arch_call_rest_init", "start_kernel", "i386_start_kernel", "startup_32_smp"], "\(trace)")
        #expect(r.stdout.contains("] amd_e400_idle+0x43 (regs)\n"))
    }

    /// Callers of noreturn functions on the ARM sysrq crashes are named by their call site,
    /// where the kernel's own ARM backtrace names the next function.
    @Test(arguments: ["arm-full-a64-crash", "arm-full-a32-crash", "arm-tasks-a64-crash", "arm-why-a64-hung-lockup-oom", "arm-tasks-a32-crash-smp",
                      "arm-tasks612-a64-crash", "arm-tasks612-a32-crash-smp", "arm-tasks612-a64-16k-crash", "arm-why612-a64-hung-lockup-oom", "arm-why612-a64-mutex-lockup"])
    func panicCalledFromSysrqHandleCrash(_ name: String) throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named(name)), "-C", "-l", "0"])
        #expect(r.stdout.contains("] sysrq_handle_crash+0x"), "\(name)")
        #expect(!r.stdout.contains("] sysrq_reset_seq_param_set"), "\(name)")
    }

    /// ARM32 vCPU 0 of the boot oops idles in cpu_ca15_do_idle, a leaf with no unwind entry:
    /// its caller is in LR, and the trace goes on to do_idle and rest_init reliably.
    @Test func leafAtTheFirstFrameContinuesFromLR() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named("arm-full-a32-crash-smp-bootoops1")), "0", "-l", "0"])
        #expect(r.stdout.contains("] arch_cpu_idle+0x3c (lr)\n"))
        for f in ["default_idle_call+0x30", "do_idle+0xd0", "rest_init+0xb0", "arch_call_rest_init+0x10"] {
            #expect(r.stdout.contains("] \(f) (exidx)\n"), "\(f)")
        }
        #expect(!r.stdout.contains("unwind stopped"))
    }
}
