import VCPUContext

/// Where `task_struct` and its neighbours keep what the task views read, from the kernel's
/// own type information (BTF, or a vmlinux's DWARF). Only pid, tgid and comm are required
/// (they name the current task); the rest is optional and each view says what it lacks.
public struct TaskLayout: Sendable, Equatable {
    public let pid: Int, tgid: Int, comm: Int
    /// `task_struct.tasks`: the list of thread-group leaders from `init_task`.
    public let tasks: Int?
    /// `task_struct.thread_group` (before 6.7), else `thread_node` in `signal->thread_head`.
    public let threadGroup: Int?
    public let threadNode: ThreadNode?
    public struct ThreadNode: Sendable, Equatable { public let signal: Int, head: Int, node: Int }
    /// `__state` (5.14+) or `state`, and `exit_state`.
    public let state: Int?, exitState: Int?
    public let realParent: Int?
    /// `task_struct.cpu` (5.16+) or `thread_info.cpu`.
    public let cpu: Int?
    public let onCPU: Int?
    public let flags: Int?
    /// `task_struct.stack`: the base of the task's kernel stack.
    public let stack: Int?
    /// Where a task that is not running saved its registers when it was switched out.
    public let switchFrame: SwitchFrame?
    /// The registers saved at kernel entry, at the top of the kernel stack.
    public let entryRegisters: EntryRegisters?
    /// `rq.idle` and `rq.curr` in the per-CPU `runqueues`.
    public let runqueueIdle: Int?, runqueueCurrent: Int?
    /// x86 from 6.2 until 6.15: `current` is `current_task` inside the per-CPU `struct pcpu_hot`.
    public let pcpuHotCurrentTask: Int?
    /// `task_struct.sched_info.last_arrival` (when it last went onto a CPU, in its runqueue's
    /// clock; CONFIG_SCHED_INFO) and `rq.clock`, to tell how long ago that was.
    public let lastArrival: Int?, runqueueClock: Int?
    /// What was found and from where, for `--describe`.
    public let how: String

    public enum SwitchFrame: Sendable, Equatable {
        /// x86 (both widths): `thread.sp` points at an `inactive_task_frame` {…, bp, ret_addr}.
        case x86(threadSP: Int, frameSize: Int, bp: Int, returnAddress: Int)
        /// arm64: `thread.cpu_context` {x19…x28, fp, sp, pc}.
        case aarch64(fp: Int, sp: Int, pc: Int)
        /// ARM32: `thread_info.cpu_context` {r4…r9, sl, fp, sp, pc}, the thread_info in the
        /// task (THREAD_INFO_IN_TASK, 5.18+) or at the base of its stack (`inStack`).
        case arm32(context: Int, inStack: Bool, r4: Int, sp: Int, pc: Int)
    }

    /// `struct pt_regs`: its size and the user-visible registers an oops prints.
    public struct EntryRegisters: Sendable, Equatable {
        public let size: Int
        /// x86_64: ip, cs, flags, sp, ss; arm64: pc, sp, pstate (cs/ss nil).
        public let ip: Int, sp: Int, flags: Int
        public let cs: Int?, ss: Int?
        /// arm64: `pt_regs.stackframe`, the {0, 0} record that ends a task's chain.
        public let stackframe: Int?
    }

    public init(types: some KernelTypes, architecture: GuestArchitecture, how: String) throws(KernelDataError) {
        func at(_ path: String, _ s: String = "task_struct") -> Int? { types.offset(of: path, in: s) }
        guard types.size(of: "task_struct") != nil else { throw KernelDataError(types.source, "has no struct task_struct") }
        guard let pid = at("pid"), let tgid = at("tgid"), let comm = at("comm") else {
            throw KernelDataError(types.source, "task_struct lacks pid, tgid or comm")
        }
        (self.pid, self.tgid, self.comm) = (pid, tgid, comm)
        tasks = at("tasks")
        threadGroup = at("thread_group")
        if let signal = at("signal"), let head = at("thread_head", "signal_struct"), let node = at("thread_node") {
            threadNode = ThreadNode(signal: signal, head: head, node: node)
        } else {
            threadNode = nil
        }
        state = types.offset(ofAny: ["__state", "state"], in: "task_struct")?.offset
        exitState = at("exit_state")
        realParent = at("real_parent")
        cpu = types.offset(ofAny: ["cpu", "thread_info.cpu"], in: "task_struct")?.offset
        onCPU = at("on_cpu")
        flags = at("flags")
        stack = at("stack")
        runqueueIdle = at("idle", "rq")
        runqueueCurrent = at("curr", "rq")
        pcpuHotCurrentTask = at("current_task", "pcpu_hot")
        lastArrival = at("sched_info.last_arrival")
        runqueueClock = at("clock", "rq")
        let descriptor = architecture.descriptor
        switch descriptor.switchFrame {
        case .inactiveTaskFrame:
            // 32-bit x86 has the same structures under the same names, in 4-byte words.
            if let sp = at("thread.sp"), let size = types.size(of: "inactive_task_frame"),
               let bp = at("bp", "inactive_task_frame"), let ret = at("ret_addr", "inactive_task_frame") {
                switchFrame = .x86(threadSP: sp, frameSize: size, bp: bp, returnAddress: ret)
            } else {
                switchFrame = nil
            }
        case .cpuContext:
            if let context = at("thread.cpu_context"), let fp = at("fp", "cpu_context"), let sp = at("sp", "cpu_context"),
               let pc = at("pc", "cpu_context") {
                switchFrame = .aarch64(fp: context + fp, sp: context + sp, pc: context + pc)
            } else {
                switchFrame = nil
            }
        case .cpuContextSave:
            let inTask = at("thread_info.cpu_context")
            let context = inTask ?? types.offset(of: "cpu_context", in: "thread_info")
            if let context, let r4 = at("r4", "cpu_context_save"), let sp = at("sp", "cpu_context_save"), let pc = at("pc", "cpu_context_save") {
                switchFrame = .arm32(context: context, inStack: inTask == nil, r4: r4, sp: sp, pc: pc)
            } else {
                switchFrame = nil
            }
        }
        switch descriptor.entryFrame {
        case .x86PtRegs:
            if let size = types.size(of: "pt_regs"), let ip = at("ip", "pt_regs"), let sp = at("sp", "pt_regs"),
               let flags = at("flags", "pt_regs") {
                entryRegisters = EntryRegisters(size: size, ip: ip, sp: sp, flags: flags, cs: at("cs", "pt_regs"), ss: at("ss", "pt_regs"), stackframe: nil)
            } else {
                entryRegisters = nil
            }
        case .arm64PtRegs:
            if let size = types.size(of: "pt_regs"), let pc = at("pc", "pt_regs"), let sp = at("sp", "pt_regs"),
               let pstate = at("pstate", "pt_regs") {
                entryRegisters = EntryRegisters(size: size, ip: pc, sp: sp, flags: pstate, cs: nil, ss: nil, stackframe: at("stackframe", "pt_regs"))
            } else {
                entryRegisters = nil
            }
        case .arm32Uregs:
            if let size = types.size(of: "pt_regs"), size >= 72 {
                entryRegisters = EntryRegisters(size: size, ip: 60, sp: 52, flags: 64, cs: nil, ss: nil, stackframe: nil)
            } else {
                entryRegisters = nil
            }
        }
        var missing: [String] = []
        if tasks == nil { missing.append("tasks") }
        if state == nil { missing.append("__state") }
        if switchFrame == nil { missing.append("the switch frame") }
        self.how = "\(how) (\(types.source)): task_struct.pid at +\(pid), tgid at +\(tgid), comm at +\(comm)"
            + (missing.isEmpty ? "" : "; missing: \(missing.joined(separator: ", "))")
    }
}
