import ArgumentParser
import ELFSymbols
import GuestKernel
import LiveDomain
import Symbols
import VCPUContext
import XenctxReport
#if canImport(Glibc)
import Glibc
#endif

/// Exit statuses, after eu-stack: 0 complete, 1 partial, 2 nothing could be done, 64 usage.
enum ExitStatus {
    static let partial: Int32 = 1
    static let failure: Int32 = 2
    /// A usage error found only once the guest is known (as swift-argument-parser's own).
    static let usage: Int32 = 64
}

/// The release this source is (bumped with each release; `--version` prints it).
let xenctxSwiftVersion = "0.6.0"

@main
struct XenctxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xenctx-swift",
        abstract: "Print a Xen guest's vCPU registers, stacks and call traces, from a core file or a live domain.",
        usage: """
        xenctx-swift [options] --core FILE [VCPU]
        xenctx-swift [options] DOMID [VCPU]
        xenctx-swift --save-core FILE [--trim] [--force] [--no-pause] DOMID
        xenctx-swift triage [--json] [--jobs N] PATH...   (many cores: see triage --help)
        xenctx-swift trim [--force] CORE OUT   (a small core for every view: see trim --help)
        """,
        discussion: """
        Options and output follow upstream xenctx (tools/xentrace/xenctx.c), with ARM stacks, the \
        guest's own word size and kernel_start, and a `Stack pointer:` line naming the register \
        the stack was taken from and why. Addresses (-k, -m, -d) are hexadecimal, with or without 0x.

        No symbol file is needed: the guest kernel's own kallsyms, VMCOREINFO and log are read \
        from its memory (a core with guest RAM, or a live domain). A System.map or vmlinux that is \
        given is checked against the guest; one of another build is a warning and exit status 1. \
        `--unwind scan` reproduces upstream's output exactly (symbols only from -s).

        Exit status: 0 complete; 1 partial (something could not be read, see stderr); \
        2 nothing could be done; 64 usage error.
        """,
        version: "xenctx-swift \(xenctxSwiftVersion)"
    )

    @Option(name: .customLong("core"), help: ArgumentHelp("Read a core written by `xl dump-core` (or --save-core) instead of a live domain.", valueName: "FILE"))
    var core: String?

    @Argument(help: ArgumentHelp("DOMID [VCPU] for a live domain; [VCPU] with --core (default 0).", valueName: "DOMID|VCPU"))
    var positional: [String] = []

    @Flag(name: [.customShort("f"), .customLong("frame-pointers")], help: "Assume the kernel was compiled with frame pointers.")
    var framePointers = false

    @Option(name: [.customShort("s"), .customLong("symbol-table")], help: ArgumentHelp("Read symbols from SYMTAB (the guest kernel's System.map, or its /proc/kallsyms); it is checked against the guest. Without -s or --vmlinux, symbols come from the guest's own kallsyms in its memory.", valueName: "SYMTAB"))
    var symbolTable: String?

    @Flag(name: [.customShort("S"), .customLong("stack-trace")], help: "Print a complete stack trace (every stack word).")
    var stackTrace = false

    @Option(name: [.customShort("k"), .customLong("kernel-start")], help: ArgumentHelp("Set the user/kernel split (default: by guest architecture: c0000000 for 32-bit x86 and ARM, ffffffff80000000 for x86_64, TCR_EL1.T1SZ's TTBR1 base for AArch64).", valueName: "KADDR"))
    var kernelStart: String?

    @Flag(name: [.customShort("a"), .customLong("all")], help: "Display more registers (x86 control and debug registers).")
    var all = false

    @Flag(name: [.customShort("C"), .customLong("all-vcpus")], help: "Print info for all vCPUs.")
    var allVCPUs = false

    @Option(name: [.customShort("n"), .customLong("display-stack-pages")], help: ArgumentHelp("Display N pages from the stack pointer; changes the stack limit.", valueName: "PAGES"))
    var stackPages: Int = 1

    @Option(name: [.customShort("b"), .customLong("bytes-per-line")], help: ArgumentHelp("Bytes per line of the Stack dump, 4 to 128, rounded up to the guest word size.", valueName: "bytes"))
    var bytesPerLine: Int = 32

    @Option(name: [.customShort("l"), .customLong("lines")], parsing: .unconditional, help: ArgumentHelp("Lines of the Stack dump, or all/max; 0 omits it. Fewer are printed if the stack limit is reached.", valueName: "lines"))
    var lines: String = "5"

    @Flag(name: [.customShort("D"), .customLong("decode-as-ascii")], help: "Add an ASCII decode of the Stack dump (non-printable bytes as '.').")
    var decodeAsASCII = false

    @Flag(name: [.customShort("t"), .customLong("tag-stack-dump")], help: "Add the address on each line of the Stack dump.")
    var tagStackDump = false

    @Option(name: [.customShort("m"), .customLong("memory")], help: ArgumentHelp("Dump memory at guest virtual address MADDR.", valueName: "maddr"))
    var memory: String?

    @Option(name: [.customShort("d"), .customLong("dump-as-stack")], help: ArgumentHelp("Dump memory as a stack at guest virtual address DADDR.", valueName: "daddr"))
    var dumpAsStack: String?

    @Flag(name: .customLong("describe"), help: "Print what the guest is and the evidence for it, kernel_start, and facts about the core, as # lines first (live: and how long the domain was paused, last).")
    var describe = false

    @Option(name: .customLong("vmlinux"), help: ArgumentHelp("The guest kernel's ELF (e.g. Debian's linux-image-*-dbg vmlinux): its symbols when -s is not given, and with DWARF, file:line and inlined functions on every frame of an exact trace (--unwind).", valueName: "FILE"))
    var vmlinux: String?

    @Option(name: .customLong("kaslr"), help: ArgumentHelp("Where the kernel was loaded relative to the addresses in -s/--vmlinux: auto (the default: found from the guest's VMCOREINFO, else its linux_banner) or a hexadecimal offset (0 uses the file's addresses as they are, as upstream xenctx does, e.g. for a 32-bit kernel its decompressor moved).", valueName: "OFFSET|auto"))
    var kaslr: String?

    @Option(name: .customLong("unwind"), help: ArgumentHelp("How to find the call trace: scan (upstream's exactly: every text address on the stack, symbols only from -s), fp (frame pointers: the kernel's own frame-pointer unwinder, through interrupt and exception frames; -f alone on x86 keeps upstream's walk), orc (x86_64: the guest kernel's ORC tables), exidx (ARM32: the kernel's EHABI tables), cfi (DWARF CFI of --vmlinux, through elfutils), auto (the default: the most exact the inputs allow, a scan when there are no symbols or tables; where an exact unwind stops early, the rest of the stack follows marked ?).", valueName: "METHOD"))
    var unwind: String?

    @Flag(name: .customLong("log"), help: "Print the guest kernel's log (as dmesg does), read from its memory: alone, just the log; with -C, a VCPU or other report options, after the report.")
    var log = false

    @Flag(name: [.customShort("T"), .customLong("ctime")], help: "With --log: each record's time as wall-clock time, as dmesg -T prints it (local time zone): the guest's boot time from its own clocks at the dump, plus the record's timestamp. Like dmesg -T, off by as long as the guest was suspended or its clock was set since boot, and by as far as the log's clock has drifted from the timekeeper's (the verdict's evidence in --json says when they differ by over 1 s).")
    var ctime = false

    @Flag(name: .customLong("json"), help: "Print the report (and --tasks, --modules, --log) as one JSON document instead of text (schema: docs/report.schema.json).")
    var json = false

    @Flag(name: .customLong("summary"), help: "A verdict first (why the guest stopped, in the kernel's own words from its log: panic, oops, BUG, lockup, hung task or OOM, its vCPU, task and taint), then one line per vCPU: its state (panic, oops, stopped, idle, hypercall, user, kernel, offline), its current task and the innermost frame that says something.")
    var summary = false

    @Flag(name: .customLong("tasks"), help: "List every task of the guest kernel (pid, ppid, CPU, task_struct, state, command; '>' marks tasks on a CPU), read from its memory with its own types (BTF): alone, just the list; with report options, after the report.")
    var tasks = false

    @Flag(name: .customLong("stack"), help: "With --tasks: also each task's exact call trace, from its vCPU's registers or the context its last switch saved.")
    var taskStacks = false

    @Flag(name: .customLong("modules"), help: "List the guest kernel's loaded modules (struct module, name, base, size, symbols read from its own symbol table); their functions are named in every trace as func+0x12 [module].")
    var modules = false

    @Option(name: .customLong("task"), help: ArgumentHelp("Print the call trace of the task (or threads) with this PID.", valueName: "PID"))
    var task: Int32?

    @Flag(name: .customLong("meminfo"), help: "The guest's memory as /proc/meminfo adds it up (total, free, available, file pages, shmem, slab, swap), from the kernel's own counters, and the OOM killer's last victim from its log.")
    var meminfo = false

    @Flag(name: .customLong("hung"), help: "Tasks in D state not scheduled for a while (the guest's own hung_task_timeout_secs, or --hung-after), longest first, each with its call trace.")
    var hung = false

    @Option(name: .customLong("hung-after"), help: ArgumentHelp("With --hung: how long a task must have been blocked, in seconds.", valueName: "SECONDS"))
    var hungAfter: UInt64?

    @Flag(name: .customLong("no-pause"), help: "Live: do not pause the domain (non-intrusive, but registers and memory may disagree).")
    var noPause = false

    @Option(name: .customLong("save-core"), help: ArgumentHelp("Live: write a complete core of DOMID to FILE (all guest RAM, ARM included) and exit.", valueName: "FILE"))
    var saveCore: String?

    @Flag(name: .customLong("force"), help: "With --save-core: replace FILE if it exists.")
    var force = false

    @Flag(name: .customLong("trim"), help: "With --save-core: keep only the pages the views read, as `xenctx-swift trim` does (x86 PV: the whole core is written next to FILE first, then trimmed).")
    var trim = false

    /// ArgumentParser's own main, but its messages (a usage error echoes the argument as
    /// given, control bytes and all) reach the terminal through the one gate, `writeAll`.
    static func main() {
        // `triage` is a command of its own; everything else is the report's options.
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "triage" {
            run(TriageCommand.self, Array(arguments.dropFirst()))
        }
        if arguments.first == "trim" {
            run(TrimCommand.self, Array(arguments.dropFirst()))
        }
        run(XenctxCommand.self, arguments)
    }

    /// A command's run, with failures mapped to exit statuses in one place.
    static func run<C: ParsableCommand>(_ type: C.Type, _ arguments: [String]) -> Never {
        do {
            var command = try type.parseAsRoot(arguments)
            try command.run()
        } catch let failure as CommandFailure {
            if !failure.description.isEmpty { writeAll(2, "xenctx-swift: \(failure.description)\n") }
            Glibc.exit(failure.status)
        } catch {
            let code = type.exitCode(for: error)
            let message = type.fullMessage(for: error)
            if !message.isEmpty { writeAll(code == .success ? 1 : 2, message + "\n") }
            Glibc.exit(code.rawValue)
        }
        Glibc.exit(0)
    }

    mutating func validate() throws {
        if positional.count > 2 { throw ValidationError("too many arguments: expected [options] --core FILE [VCPU] or [options] DOMID [VCPU]") }
        if core != nil && positional.count > 1 { throw ValidationError("with --core, give at most one VCPU number (got \(positional.joined(separator: " ")))") }
        if saveCore != nil && core != nil { throw ValidationError("--save-core writes a core of a live domain: give a DOMID, not --core") }
        if saveCore != nil && positional.count != 1 { throw ValidationError("--save-core FILE takes exactly one DOMID") }
        if force && saveCore == nil { throw ValidationError("--force goes with --save-core") }
        if trim && saveCore == nil { throw ValidationError("--trim goes with --save-core (for a core file: xenctx-swift trim CORE OUT)") }
        if summary && json { throw ValidationError("--summary is a text view of what --json holds per vCPU (state, task, at): give one of them") }
        if (summary || json) && unwind == "scan" { throw ValidationError("--unwind scan is upstream's text exactly: it has no --summary or --json") }
        if noPause && core != nil { throw ValidationError("--no-pause is for live domains: a core is not running") }
        if taskStacks && !tasks { throw ValidationError("--stack goes with --tasks (every task's call trace); for one task, use --task PID") }
        if let task, task < 0 { throw ValidationError("'\(task)' for --task is not a pid (a non-negative decimal integer)") }
        if hungAfter != nil && !hung { throw ValidationError("--hung-after goes with --hung") }
        if hung && (tasks || task != nil) { throw ValidationError("--hung is a task view of its own: give one of --tasks, --task and --hung") }
        if ctime && !log { throw ValidationError("-T/--ctime is the time of --log's records: give it with --log") }
        if ctime && (json || summary) { throw ValidationError("-T/--ctime is for the text log; --json's verdict holds wallClock and uptime, from which every record's time follows") }
        if meminfo && summary { throw ValidationError("--meminfo is a view of its own: give it without --summary (--json holds it as memory)") }
        if (tasks || task != nil || hung || modules || meminfo) && unwind == "scan" { throw ValidationError("--unwind scan is upstream's output exactly, which has no tasks: leave it out with --tasks, --task or --modules") }
        for p in positional where Int(p) == nil || Int(p)! < 0 {
            // A core given without --core: say how to read it (checked by name only, no open).
            let hint = core == nil && (p.contains("/") || p.hasSuffix(".core") || p.contains(".core.")) ? ": to read a core file, give --core \(p)" : ""
            throw ValidationError("'\(p)' is not a domain or vCPU number (a non-negative decimal integer)\(hint)")
        }
        if allVCPUs && vcpuArgument != nil { throw ValidationError("both --all-vcpus and [VCPU] is not supported") }
        if stackPages < 1 || stackPages > 65536 { throw ValidationError("unsupported value (\(stackPages)) for --display-stack-pages: needs to be 1 to 65536") }
        if !(4...128).contains(bytesPerLine) { throw ValidationError("unsupported value (\(bytesPerLine)) for --bytes-per-line: needs to be 4 <= value <= 128") }
        if let unwind, ReportOptions.UnwindMethod(rawValue: unwind) == nil { throw ValidationError("unknown --unwind method '\(unwind)': use scan, fp, orc, exidx, cfi or auto") }
        if unwind == "cfi" && vmlinux == nil { throw ValidationError("--unwind cfi uses the DWARF CFI of the kernel: give --vmlinux") }
        if parsedLines == nil { throw ValidationError("unsupported value '\(lines)' for --lines: a number >= 0, or all/max") }
        if framePointers && dumpAsStack != nil { throw ValidationError("both --frame-pointers and --dump-as-stack is not supported") }
        if let kaslr, kaslr != "auto", parseHexAddress(kaslr) == nil {
            throw ValidationError("'\(kaslr)' for --kaslr is neither auto nor a hexadecimal offset (like 0, 4000000 or 0x1e000000)")
        }
        if kaslr != nil && symbolTable == nil && vmlinux == nil { throw ValidationError("--kaslr says where the kernel is relative to a symbol file: give -s or --vmlinux") }
        if let kernelStart, parseHexAddress(kernelStart) == nil {
            throw ValidationError("'\(kernelStart)' for --kernel-start is not a hexadecimal address (like ffffffff81000000 or 0xc0000000)")
        }
        for (name, value) in [("--memory", memory), ("--dump-as-stack", dumpAsStack)] {
            if let value, parseHexAddress(value) == nil, parseSymbolExpression(value) == nil {
                throw ValidationError("'\(value)' for \(name) is neither a hexadecimal address (like ffffffff81000000 or 0xc0000000) nor SYMBOL[+OFFSET] (like linux_banner or init_task+0x10)")
            }
        }
    }

    var vcpuArgument: Int? {
        core != nil ? positional.first.flatMap { Int($0) } : (positional.count > 1 ? Int(positional[1]) : nil)
    }

    var parsedLines: Int? {
        if ["all", "ALL", "max", "MAX"].contains(lines) { return ReportOptions.maxLines }
        guard let n = Int(lines), n >= 0, n < ReportOptions.maxLines + 1 else { return nil }
        return n
    }

    func run() throws {
        // Here rather than in validate(), so that an unknown option is named first.
        if core == nil && positional.isEmpty { throw ValidationError("give a DOMID, or --core FILE") }
        let options = reportOptions()
        let files = try loadSymbolFiles()
        guard let core else {
            try runLive(domid: UInt32(positional[0]) ?? 0, options: options, files: files)
            return
        }
        let guest: Guest
        do {
            guest = try Guest(core: XenCore(path: core))
        } catch {
            throw CommandFailure.from(error)
        }
        if try report(guest, files: files, options: options, emit: show) { throw CommandFailure.partial }
    }

    /// The report's options, from the command line.
    func reportOptions() -> ReportOptions {
        var options = ReportOptions()
        options.allVCPUs = allVCPUs
        options.vcpu = vcpuArgument
        options.allRegisters = all
        options.kernelStart = kernelStart.flatMap(parseHexAddress)
        options.stackTrace = stackTrace
        // Exact by default: the most exact method the inputs allow (a scan when there are no
        // symbols or tables); -f alone keeps upstream's frame-pointer walk.
        options.unwind = unwind.flatMap(ReportOptions.UnwindMethod.init(rawValue:)) ?? (framePointers ? .scan : .auto)
        options.framePointers = framePointers || options.unwind == .fp
        options.stackPages = stackPages
        options.bytesPerLine = bytesPerLine
        options.lines = parsedLines ?? 5
        options.decodeAsASCII = decodeAsASCII
        options.tagStackDump = tagStackDump
        options.memoryAddress = memory.flatMap(parseHexAddress)
        options.dumpAsStack = dumpAsStack.flatMap(parseHexAddress)
        options.describe = describe
        options.tasks = task.map { .one(pid: $0) } ?? (hung ? .hung(seconds: hungAfter) : tasks ? .list(stacks: taskStacks) : nil)
        return options
    }

    /// Options that do not fit the guest are usage errors: `-k` beyond a 32-bit guest's
    /// address space, `--unwind orc` on an ARM guest or `exidx` on x86 (naming what applies).
    func checkAgainstGuest(_ guest: Guest) throws {
        if let k = kernelStart.flatMap(parseHexAddress), guest.description.wordSize == 4, k > 0xffff_ffff {
            throw CommandFailure.usage("-k \(TerminalSafe.escape(kernelStart ?? "")) is beyond this 32-bit guest's address space (00000000–ffffffff)")
        }
        guard let unwind, let method = ReportOptions.UnwindMethod(rawValue: unwind) else { return }
        let arch = guest.description.architecture
        var applies: [ReportOptions.UnwindMethod] = [.scan, .fp, .cfi, .auto]
        switch arch.descriptor.kernelStackUnwinder {
        case .orc: applies.insert(.orc, at: 2)
        case .ehabi: applies.insert(.exidx, at: 2)
        case .frameRecords, .framePointers: break
        }
        guard !applies.contains(method) else { return }
        let whose = method == .orc ? "x86_64 kernels' ORC tables" : "ARM32 kernels' EHABI tables"
        throw CommandFailure.usage("--unwind \(unwind) reads \(whose), and this guest is \(arch.rawValue): use \(applies.map(\.rawValue).joined(separator: ", "))")
    }

    /// `--log`, `--tasks`, `--task` or `--modules` given: views of the kernel, alone unless report options are too.
    var kernelViewsOnly: Bool { log || tasks || task != nil || hung || modules || meminfo }

    /// Whether the vCPU report is printed: always, except for `--log`, `--tasks` or `--modules` alone.
    var reportWanted: Bool {
        !kernelViewsOnly || allVCPUs || vcpuArgument != nil || memory != nil || dumpAsStack != nil || stackTrace || framePointers || all
            || unwind != nil || describe
    }
}
