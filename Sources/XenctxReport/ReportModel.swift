import Symbols
/// The report as plain values: what the analysis found, with no layout. The JSON renderer
/// prints it as it is (schema: docs/report.schema.json, version `schemaVersion`); the text
/// report is printed from the same analysis (`VCPUAnalysis`, `TaskView`).
/// Addresses are strings of hexadecimal digits ("ffffffff81a442b5"): 64-bit values do not
/// survive JSON numbers.
public struct ReportModel: Codable, Sendable, Equatable {
    public static let schemaVersion = 1
    public var schema = "xenctx-swift report"
    public var version = ReportModel.schemaVersion
    public var tool: String
    public var guest: GuestFacts
    public var kernel: KernelFacts?
    public var vcpus: [VCPUEntry]
    public var tasks: [TaskEntry]?
    public var modules: [ModuleEntry]?
    public var log: [LogEntry]?
    /// `--meminfo`: the guest's memory counters in kB, by /proc/meminfo's names.
    public var memory: Memory?
    /// Why the guest stopped (or that it did not), from its log and its vCPUs.
    public var verdict: Verdict?
    /// What could not be read, as the text report's stderr lines.
    public var errors: [String]

    public struct GuestFacts: Codable, Sendable, Equatable {
        public var architecture: String
        public var wordSize: Int
        public var paravirtualized: Bool
        public var summary: String
        public var kernelStart: String
        public var evidence: [String]
    }

    public struct KernelFacts: Codable, Sendable, Equatable {
        public var release: String?
        public var buildID: String?
        public var kernelOffset: String?
        /// Where the symbols came from and how they were checked.
        public var symbols: [String]
        /// Where the kernel's types came from (BTF or DWARF), when looked for.
        public var types: String?
    }

    public struct VCPUEntry: Codable, Sendable, Equatable {
        public var id: Int
        public var online: Bool
        /// One word for triage (`--summary`): panic, oops, idle, stopped, user, hypercall, kernel, offline.
        public var state: String
        /// The innermost meaningful frame, for the summary (`panic ← sysrq_handle_crash+0x16`).
        public var at: String?
        public var registers: [String: String]
        public var namedRegisters: [NamedRegister]
        public var stackPointer: StackPointer?
        public var task: TaskRef?
        public var trace: Trace?
        public var userEntry: UserRegisters?
        /// An offline vCPU's last context in the same words as `state` (`stopped`: taken
        /// down by a panic's stop; then `task` is the task it ran until then).
        public var lastState: String? = nil
    }

    public struct NamedRegister: Codable, Sendable, Equatable {
        public var register: String
        public var value: String
        public var symbol: String
    }

    public struct StackPointer: Codable, Sendable, Equatable {
        public var address: String?
        public var register: String
        public var reason: String
        public var note: String?
    }

    public struct TaskRef: Codable, Sendable, Equatable {
        public var address: String
        public var pid: Int
        public var tgid: Int
        public var comm: String
        /// Seconds it has run on this vCPU since it was last scheduled in.
        public var runningFor: Double? = nil
    }

    public struct Trace: Codable, Sendable, Equatable {
        /// orc, exidx, fp, cfi (exact) or scan (every text address on the stack).
        public var method: String
        /// Whether an exact unwind reached the end of the stack.
        public var complete: Bool
        public var stop: String?
        public var frames: [Frame]
    }

    public struct Frame: Codable, Sendable, Equatable {
        public var address: String
        /// `name+0xoff [module]` as the text prints it (return addresses by their call site).
        public var symbol: String?
        /// registers, orc, exidx, cfi, regs, fp, lr, scan, saved by switch.
        public var how: String
        /// False for scanned candidates (printed `?` after an exact unwind stopped).
        public var reliable: Bool
        /// Where on the stack the address was read.
        public var slot: String?
        /// DWARF source lines, innermost (inlined) first, with --vmlinux.
        public var source: [SourceLine]?
        /// The symbol as values: its function (a compiler part's `.cold`, `.isra.0` cut),
        /// the offset in it, and its module (absent: the kernel image).
        public var function: String?
        public var offset: UInt64?
        public var module: String?

        public init(address: String, symbol: SymbolRef?, how: String, reliable: Bool, slot: String?, source: [SourceLine]?) {
            self.address = address
            self.symbol = symbol?.text
            self.how = how
            self.reliable = reliable
            self.slot = slot
            self.source = source
            function = symbol?.function
            offset = symbol?.offset
            module = symbol.flatMap { $0.module.map { TerminalSafe.escape($0) } }
        }
    }

    public struct SourceLine: Codable, Sendable, Equatable {
        public var function: String
        public var file: String
        public var line: Int
        public var inlined: Bool
    }

    public struct UserRegisters: Codable, Sendable, Equatable {
        public var ip: String
        public var sp: String
        public var flags: String
        public var cs: String?
        public var ss: String?
    }

    public struct TaskEntry: Codable, Sendable, Equatable {
        public var address: String
        public var pid: Int
        public var tgid: Int
        public var ppid: Int?
        public var state: String
        public var cpu: Int?
        public var onCPU: Bool
        public var runningOnVCPU: Int?
        public var kernelThread: Bool
        public var comm: String
        /// Seconds before the dump it last went onto a CPU (running: how long it has run),
        /// from its `sched_info.last_arrival` and its CPU's runqueue clock.
        public var sinceScheduled: Double? = nil
        public var trace: Trace?
        /// The lock it sleeps on, from its waiter on its stack.
        public var waitsFor: LockWaitEntry? = nil
        /// Why a task asked for has no trace (as the text's `-- no call trace: … --`).
        public var noTrace: String? = nil
        public var userEntry: UserRegisters?
    }

    public struct LockWaitEntry: Codable, Sendable, Equatable {
        /// rw_semaphore, mutex or semaphore.
        public var kind: String
        public var lock: String
        /// The owner's pid (an rw_semaphore held by readers: the last reader's).
        public var owner: Int?
        public var readerOwned: Bool
        /// The queue's pids, first to be woken first.
        public var waiters: [Int]
    }

    public struct ModuleEntry: Codable, Sendable, Equatable {
        public var name: String
        public var address: String
        public var base: String
        public var size: Int
        public var symbols: Int
    }

    public struct Verdict: Codable, Sendable, Equatable {
        /// panic, oops, BUG, soft lockup, hard lockup, hung, OOM; running (no sign of
        /// either); unknown (no log and no vCPU that says).
        public var reason: String
        /// The kernel's own line for the reason (`BUG: kernel NULL pointer dereference, …`).
        public var message: String?
        /// The panic's line, when it panicked (`Kernel panic - not syncing: …`).
        public var panic: String?
        public var vcpu: Int?
        public var pid: Int?
        public var comm: String?
        /// `Not tainted` or `Tainted: G      D`, as the kernel prints its taint.
        public var taint: String?
        /// `tainted_mask` (at the dump) or `log` (the kernel's line, before an oops' own taint).
        public var taintFrom: String?
        /// Seconds since boot of the message's record, and of the last record in the log.
        public var time: Double?
        public var lastLogTime: Double?
        /// The guest's own clocks at the dump (its last timekeeping update): wall-clock time,
        /// ISO 8601 in UTC, and seconds since boot (CLOCK_BOOTTIME, the log's time base).
        public var wallClock: String?
        public var uptime: Double?
        /// Where each part came from, and what could not be checked.
        public var evidence: [String]
        /// Every event the log records (at most the last 32), oldest first.
        public var events: [Event]? = nil
        /// A vCPU's task that has run in the kernel past the soft-lockup threshold without
        /// being scheduled out, from the scheduler's clocks, whatever the log says.
        public var lockup: Lockup? = nil

        public struct Lockup: Codable, Sendable, Equatable {
            public var vcpu: Int
            public var pid: Int
            public var comm: String
            /// Seconds since it was scheduled in, by its CPU's runqueue clock.
            public var runningFor: Double
            /// 2 × watchdog_thresh, in seconds.
            public var threshold: Double
            /// Whether the log holds the watchdog's report of this task.
            public var reported: Bool
        }

        public struct Event: Codable, Sendable, Equatable {
            public var kind: String
            public var message: String
            public var time: Double
            public var vcpu: Int?
            public var pid: Int?
            public var comm: String?
        }
    }

    public struct Memory: Codable, Sendable, Equatable {
        /// /proc/meminfo's lines that could be read, in kB (`MemTotal`, `MemAvailable`, …).
        public var kB: [String: UInt64]
        /// The OOM killer's last report in the log.
        public var lastOOMKill: LogEntry?
    }

    public struct LogEntry: Codable, Sendable, Equatable {
        /// Seconds since boot.
        public var time: Double
        public var level: Int?
        public var caller: String?
        public var text: String
    }
}
