import GuestKernel
import StackWalk
import Symbols
import VCPUContext

/// What the task views show of one task: where its stack trace starts, how it unwinds, each
/// frame named, and the lock it sleeps on. Values only; `TaskText` and the model print them.
public struct TaskStack: Sendable {
    public let task: KernelTask
    /// The vCPU it is running on (its registers start the trace), nil when switched out.
    public let vcpu: Int?
    /// The exact unwind, nil with `note` saying why there is none.
    public let unwind: Unwind?
    public let note: String?
    /// The user registers it entered the kernel with, when it came from user mode.
    public let userEntry: UserEntry?
    /// The unwind's frames, named as both printers show them.
    public var frames: [TaskFrame] = []
    /// The lock it sleeps on (nil: none in its trace).
    public var lock: Result<LockWait, KernelDataError>? = nil

    init(task: KernelTask, vcpu: Int?, unwind: Unwind?, note: String?, userEntry: UserEntry?) {
        self.task = task
        self.vcpu = vcpu
        self.unwind = unwind
        self.note = note
        self.userEntry = userEntry
    }
}

/// A frame of a task's trace: its name (a return address by its call site) and how it was
/// found (`saved by switch` for a switched-out task's first).
public struct TaskFrame: Sendable {
    public let frame: UnwoundFrame
    public let symbol: SymbolRef?
    public let how: String
}

/// From a blocked task through each lock's owner while the owner itself waits on a lock.
public struct LockChain: Sendable {
    /// The blocked task, then each owner in turn (a task met twice closes a cycle).
    public var tasks: [UInt64]
    public enum End: Sendable {
        /// The last owner is one met before: a deadlock.
        case cycle
        /// The last owner is not on the task list.
        case unlisted
        /// The last owner waits on no lock (or the chain reached its bound).
        case noLock
        /// The last lock has no single owner to follow (held by readers, or none recorded).
        case unowned(LockWait)
    }
    public var end: End
}

/// What a task request shows, read once: the list, the runqueue clocks, each shown task's
/// stack and lock, and for --hung the hung tasks and their lock chains.
public struct TaskView: Sendable {
    public let request: Report.TaskRequest
    public let list: TaskList
    public let clocks: [Int: UInt64]
    /// The stacks of the tasks the request shows them for, by task_struct address.
    public let stacks: [UInt64: TaskStack]
    public let hung: Result<Report.HungTasks, KernelDataError>?
    public let chains: [LockChain]
}

extension Report {
    /// Which tasks to show (`--tasks`, `--tasks --stack`, `--task PID`).
    public enum TaskRequest: Sendable, Equatable {
        case list(stacks: Bool)
        case one(pid: Int32)
        /// Tasks in D state not scheduled for at least `seconds` (nil: the guest's own
        /// hung_task_timeout_secs), longest first, with their stacks.
        case hung(seconds: UInt64?)
    }

    /// The hung-task detector's threshold in the guest (`sysctl_hung_task_timeout_secs`),
    /// where the symbols name it; 0 means the detector is off.
    func hungTaskTimeout() -> UInt64? {
        guard let at = classifier.symbols?.address(of: "sysctl_hung_task_timeout_secs"), let reader = KernelReader(guest: guest) else { return nil }
        return try? reader.word(at)
    }

    /// What `--hung` shows: the D-state tasks blocked at least the threshold, longest first,
    /// the threshold and where it came from; a failure when the kernel keeps no times.
    public struct HungTasks: Sendable {
        /// `blocked` is nil when the kernel keeps no times to tell it by.
        public let tasks: [(task: KernelTask, blocked: UInt64?)]
        /// Nil: every task in D state, for how long cannot be told (`thresholdSource` says why).
        public let threshold: UInt64?
        public let thresholdSource: String
        /// D-state tasks in all, however long.
        public let blockedCount: Int
    }

    public func hungTasks(_ list: TaskList, seconds: UInt64?, clocks: [Int: UInt64]) -> Result<HungTasks, KernelDataError> {
        let blocked = list.tasks.filter { $0.state == "D" }
        guard !clocks.isEmpty else {
            // Still the blocked tasks, their stacks and locks: only their durations are unknown.
            return .success(HungTasks(tasks: blocked.map { ($0, nil) }, threshold: nil,
                                      thresholdSource: "no runqueue clock to time them by (the symbols name no runqueues, or the types no rq.clock)",
                                      blockedCount: blocked.count))
        }
        let (threshold, source): (UInt64, String)
        if let seconds { (threshold, source) = (seconds, "--hung-after") }
        else if let t = hungTaskTimeout() {
            // 0: the guest's detector is off, so it sets no bar: every task in D state.
            (threshold, source) = t > 0 ? (t, "the guest's hung_task_timeout_secs") : (0, "the guest's hung_task_timeout_secs is 0, its detector off: every task in D state")
        } else { (threshold, source) = (120, "the kernel's default hung_task_timeout_secs: the guest's is not in its symbols") }
        var hung: [(task: KernelTask, blocked: UInt64?)] = []
        var untimed = 0
        for t in blocked {
            guard let ns = Self.sinceScheduled(t, clocks: clocks) else { untimed += 1; continue }
            if ns >= threshold &* 1_000_000_000 { hung.append((t, ns)) }
        }
        if untimed > 0 && untimed == blocked.count {
            return .failure(KernelDataError("hung tasks", "the kernel keeps no sched_info.last_arrival (CONFIG_SCHED_INFO): \(blocked.count) task\(blocked.count == 1 ? " is" : "s are") in D state, for how long cannot be told"))
        }
        return .success(HungTasks(tasks: hung.sorted { ($0.blocked ?? 0) > ($1.blocked ?? 0) }, threshold: threshold, thresholdSource: source, blockedCount: blocked.count))
    }

    /// Every task, walked from `init_task` (found by its symbol, or as the pid-0 task on
    /// the ring through a current task), plus the idle task of each CPU from `runqueues`.
    public func taskList() -> Result<TaskList, KernelDataError> {
        Result { () throws(KernelDataError) in
            guard let layout = try taskLayout?.get() else {
                throw KernelDataError("tasks", "no kernel types: the guest's BTF was not looked for (registers-only core, or --unwind scan)")
            }
            guard let reader = KernelReader(guest: guest) else { throw KernelDataError("tasks", "this core holds no guest memory") }
            var initTask = classifier.symbols?.address(of: "init_task")
            if initTask == nil, let tasks = layout.tasks {
                // kallsyms without data symbols: init_task is the pid-0 leader on the ring. An
                // idle CPU 0's current task is init_task itself: the ring comes back to it, so
                // the pid is looked at before the walk stops there.
                for case .success(let current) in currentTasks.values {
                    var p = current.address
                    for _ in 0..<TaskList.maxTasks {
                        guard let next = try? reader.word(p &+ UInt64(tasks)) else { break }
                        p = next &- UInt64(tasks)
                        if (try? reader.u32(p &+ UInt64(layout.pid))) == 0 { initTask = p; break }
                        if p == current.address { break }
                    }
                    if initTask != nil { break }
                }
            }
            guard let initTask else { throw KernelDataError("tasks", "no init_task: the symbols do not name it and no current task leads to it") }
            let runqueues = PerCPU.runqueueTasks(guest: guest, reader: reader, layout: layout, symbols: classifier.symbols, absolute: options.absoluteSymbols)
            var idle = guest.vcpus.compactMap { runqueues[$0.id]?.idle }
            // Each vCPU's current task too: an idle vCPU's is its idle task, which is on no
            // list (and kallsyms without data symbols names no runqueues to find it by).
            for v in guest.vcpus { if case .success(let t)? = currentTasks[v.id] { idle.append(t.address) } }
            // The kernel's own count, to check the walk against (an int; absent from kallsyms without data symbols).
            let threadCount = classifier.symbols?.address(of: "nr_threads").flatMap { try? reader.u32($0) }.map { Int(Int32(bitPattern: $0)) }
            return try TaskList.walk(reader: reader, layout: layout, initTask: initTask, idleTasks: idle, threadCount: threadCount).get()
        }
    }

    /// A return address's name: by its call site (address - 1) as the kernel's `%pB` does
    /// on x86; on ARM only when a call instruction precedes it (entry code sets LR by hand).
    func returnAddressName(_ ip: UInt64, memory: some StackMemory) -> String {
        returnAddressSymbol(ip, memory: memory).map { " " + $0.text } ?? ""
    }

    /// A return address's symbol, by its call site where one precedes it (ARM32's and
    /// x86's return addresses are checked for a call; arm64's always follow one).
    func returnAddressSymbol(_ ip: UInt64, memory: some StackMemory) -> SymbolRef? {
        guard guest.description.architecture.descriptor.returnAddressNeedsCallCheck else { return classifier.returnAddressSymbol(ip) }
        let call = CallSite.precededByCall(ip, wordSize: guest.description.wordSize, memory: memory) == true
        return call ? classifier.returnAddressSymbol(ip) : classifier.symbol(ip, kind: .text)
    }

    /// ARM32's entry code is marked EXIDX_CANTUNWIND: a trace that stops in it has reached
    /// the bottom of the task's kernel stack, as the kernel's own ends there.
    func endingAtEntry(_ unwind: Unwind) -> Unwind {
        var u = unwind
        if !u.complete, let last = u.frames.last, let name = classifier.symbols?.lookup(last.ip)?.symbol.name, Self.arm32EntryCode.contains(name) {
            u.complete = true
            u.stop = "reached the kernel entry (\(name))"
        }
        return u
    }

    /// A task trace's frames as both printers show them: each frame's name (return
    /// addresses, all but a running task's first frame and exception frames, by their call
    /// site, as the kernel's %pB does) and how it was found (a switched-out task's first
    /// frame is the return address its switch saved).
    func taskFrames(_ s: TaskStack) -> [TaskFrame] {
        guard let unwind = s.unwind else { return [] }
        let memory = KernelReader(guest: guest)?.memory
        return unwind.frames.enumerated().map { (i, f) in
            let isReturn = (i > 0 || s.vcpu == nil) && f.trust != .exceptionRegs
            let symbol = isReturn && memory != nil ? returnAddressSymbol(f.ip, memory: memory!) : classifier.symbol(f.ip, kind: .text)
            return TaskFrame(frame: f, symbol: symbol, how: i == 0 && s.vcpu == nil ? "saved by switch" : f.trust.rawValue)
        }
    }

    /// Reads what `request` shows: the list, clocks, the stacks it asks for, and for --hung
    /// the hung tasks and their lock chains.
    public func taskView(_ request: TaskRequest) -> Result<TaskView, KernelDataError> {
        taskList().map { list in
            let clocks = runqueueClocks()
            let known = Set(list.tasks.map(\.address))
            var stacks: [UInt64: TaskStack] = [:]
            func read(_ t: KernelTask) { if stacks[t.address] == nil { stacks[t.address] = taskStack(t, known: known) } }
            var hung: Result<HungTasks, KernelDataError>? = nil
            var chains: [LockChain] = []
            switch request {
            case .list(let withStacks): if withStacks { list.tasks.forEach(read) }
            case .one(let pid): list.tasks.filter { $0.pid == pid }.forEach(read)
            case .hung(let seconds):
                hung = hungTasks(list, seconds: seconds, clocks: clocks)
                if case .success(let h)? = hung {
                    for t in h.tasks { read(t.task) }
                    let byAddress = Dictionary(list.tasks.map { ($0.address, $0) }) { a, _ in a }
                    chains = h.tasks.compactMap { lockChain(from: $0.task, tasks: byAddress, known: known, stacks: &stacks) }
                }
            }
            return TaskView(request: request, list: list, clocks: clocks, stacks: stacks, hung: hung, chains: chains)
        }
    }

    /// The chain of owners from a blocked task (at most 16 locks); nil when it waits on no lock.
    /// `known` is the list's task addresses, which `tasks` is keyed by.
    func lockChain(from task: KernelTask, tasks: [UInt64: KernelTask], known: Set<UInt64>, stacks: inout [UInt64: TaskStack]) -> LockChain? {
        var chain = LockChain(tasks: [task.address], end: .noLock)
        var current = task
        for _ in 0..<16 {
            if stacks[current.address] == nil { stacks[current.address] = taskStack(current, known: known) }
            guard case .success(let lock)? = stacks[current.address]?.lock else { break }
            guard let owner = lock.owner, !lock.readerOwned else {
                chain.end = .unowned(lock)
                return chain
            }
            if chain.tasks.contains(owner) {
                chain.tasks.append(owner)
                chain.end = .cycle
                return chain
            }
            chain.tasks.append(owner)
            guard let next = tasks[owner] else {
                chain.end = .unlisted
                return chain
            }
            current = next
        }
        return chain.tasks.count > 1 ? chain : nil
    }

    /// Where ARM32 tasks enter the kernel: the outermost frames of a whole kernel stack.
    static let arm32EntryCode: Set<String> = ["ret_fast_syscall", "__ret_fast_syscall", "ret_slow_syscall", "ret_from_fork", "vector_swi",
                                              "__irq_usr", "__dabt_usr", "__pabt_usr", "__und_usr", "__fiq_usr"]

    /// The user registers the current task of vCPU `id` entered the kernel with.
    func userEntry(vcpu id: Int) -> UserEntry? {
        guard case .success(let current)? = currentTasks[id], case .success(let layout)? = taskLayout,
              let reader = KernelReader(guest: guest), let task = try? KernelTask.read(at: current.address, reader: reader, layout: layout) else { return nil }
        return task.userEntry(reader: reader, layout: layout, architecture: guest.description.architecture)
    }

    /// A user-mode vCPU's registers as the kernel's entry would have saved them.
    static func liveUserEntry(_ registers: RegisterFile, stackPointer: UInt64?) -> UserEntry {
        switch registers {
        case .x86_64(let r): return UserEntry(ip: r.rip, sp: r.rsp, flags: r.rflags, cs: UInt64(r.cs), ss: UInt64(r.ss))
        case .x86_32(let r): return UserEntry(ip: UInt64(r.eip), sp: UInt64(r.esp), flags: UInt64(r.eflags), cs: UInt64(r.cs), ss: UInt64(r.ss))
        case .arm(let r): return UserEntry(ip: r.pc, sp: stackPointer ?? 0, flags: r.cpsr, cs: nil, ss: nil)
        }
    }

    /// Each vCPU's runqueue clock, read once for a view of many tasks.
    func runqueueClocks() -> [Int: UInt64] {
        guard let layout = try? taskLayout?.get(), let reader = KernelReader(guest: guest) else { return [:] }
        return PerCPU.runqueueClocks(guest: guest, reader: reader, layout: layout, symbols: classifier.symbols, absolute: options.absoluteSymbols)
    }

    /// How long before the dump the task last went onto a CPU (for the task running there,
    /// how long it has been running), in ns; nil when the kernel does not keep it or it never
    /// ran.
    static func sinceScheduled(_ task: KernelTask, clocks: [Int: UInt64]) -> UInt64? {
        guard let arrival = task.lastArrival else { return nil }
        return since(arrival, onCPU: task.onCPU ? task.cpu : nil, clocks: clocks)
    }

    /// `arrival` to "the dump", in ns. For a task on a CPU, that CPU's runqueue clock: it
    /// ticks while the task runs and stops when the CPU is stopped (a panic's stop IPI), so a
    /// later clock elsewhere would add time it did not run. For the others, the latest clock:
    /// an idle CPU's own stops while it sleeps (NOHZ), so it would make its tasks look recent.
    static func since(_ arrival: UInt64, onCPU cpu: Int?, clocks: [Int: UInt64]) -> UInt64? {
        guard arrival != 0, let now = cpu.flatMap({ clocks[$0] }) ?? clocks.values.max(), now >= arrival else { return nil }
        return now - arrival
    }

    /// The lock a task sleeps on, its owner and queue, when its trace shows it waiting in
    /// down_read/down_write, mutex_lock or down; nil when it is not.
    func lockWait(_ s: TaskStack, tasks: Set<UInt64>) -> Result<LockWait, KernelDataError>? {
        guard s.vcpu == nil, let unwind = s.unwind else { return nil }
        let names = s.frames.map { $0.symbol?.name ?? "" }
        guard let kind = LockKind.waitedOn(inFrames: names) else { return nil }
        guard let layout = lockLayout, let reader = KernelReader(guest: guest), let base = s.task.stackBase, base != 0,
              let sp = unwind.frames.first?.sp else {
            return .failure(KernelDataError("lock", "waits on a \(kind.rawValue), but its types or stack are not known"))
        }
        return LockWait.find(task: s.task.address, kind: kind, sp: sp, stackTop: base &+ guest.description.architecture.descriptor.kernelStackSize,
                             reader: reader, layout: layout) { tasks.contains($0) }
    }

    /// The vCPU whose current task `task` is.
    func vcpuRunning(_ task: KernelTask) -> Int? {
        currentTasks.first { if case .success(let t) = $0.value { return t.address == task.address } else { return false } }?.key
    }

    /// A task's exact call trace, its frames named and the lock it sleeps on (an owner or
    /// waiter must be one of `known`, the listed tasks).
    public func taskStack(_ task: KernelTask, known: Set<UInt64>) -> TaskStack {
        var s = unwindTask(task)
        s.frames = taskFrames(s)
        s.lock = lockWait(s, tasks: known)
        return s
    }

    /// A task's exact unwind: from its vCPU's registers when it is some vCPU's current
    /// task, else from the context its last switch saved, with the kernel's own unwinder.
    func unwindTask(_ task: KernelTask) -> TaskStack {
        let arch = guest.description.architecture
        guard let reader = KernelReader(guest: guest), case .success(let layout)? = taskLayout else {
            return TaskStack(task: task, vcpu: nil, unwind: nil, note: "no kernel types", userEntry: nil)
        }
        let user = task.userEntry(reader: reader, layout: layout, architecture: arch)
        if let id = vcpuRunning(task), let v = guest.vcpus.first(where: { $0.id == id }) {
            let choice = StackPointerChoice.choose(v.registers, guest: guest.description)
            // Running in user mode: its kernel stack holds nothing live (the frame at its top
            // is from its last entry, long returned from); its user registers are the vCPU's.
            if VCPUState.isUserMode(v, guest: guest) {
                return TaskStack(task: task, vcpu: id, unwind: nil, note: "running in user mode on vcpu\(id): no kernel frames",
                                 userEntry: Self.liveUserEntry(v.registers, stackPointer: choice.address))
            }
            let view = VCPUMemoryView(report: self, vcpu: v, stackPointer: choice)
            let unwind = view.exactUnwind(method: .auto)
            return TaskStack(task: task, vcpu: id, unwind: unwind,
                             note: unwind == nil ? "no exact unwinder for this guest: see the vCPU's Call Trace" : nil, userEntry: user)
        }
        let saved: SavedContext
        do { saved = try task.savedContext(reader: reader, layout: layout) } catch {
            return TaskStack(task: task, vcpu: nil, unwind: nil, note: error.description, userEntry: user)
        }
        let isText: (UInt64) -> Bool = { classifier.classify($0) >= .text }
        switch arch.descriptor.kernelStackUnwinder {
        case .orc:
            guard let tables = unwindTables.orc else {
                return TaskStack(task: task, vcpu: nil, unwind: nil, note: "no ORC tables in the symbols", userEntry: user)
            }
            let start = ORCUnwinder.Registers(ip: saved.ip, sp: saved.sp, bp: saved.fp, r10: 0, r13: 0, di: 0, dx: 0)
            return TaskStack(task: task, vcpu: nil, unwind: ORCUnwinder(tables: tables, moduleTables: unwindTables.moduleORC, isKernelText: isText).unwind(from: start, memory: reader.memory),
                             note: nil, userEntry: user)
        case .frameRecords:
            let unwinder = AArch64FrameUnwinder(stackSize: arch.descriptor.kernelStackSize, vaBits: guest.kernelVABits)
            return TaskStack(task: task, vcpu: nil, unwind: unwinder.unwind(pc: saved.ip, sp: saved.sp, fp: saved.fp, memory: reader.memory),
                             note: nil, userEntry: user)
        case .ehabi:
            guard let tables = unwindTables.exidx else {
                return TaskStack(task: task, vcpu: nil, unwind: nil, note: "no EHABI unwind index (the symbols do not bound it)", userEntry: user)
            }
            // r0-r3 and r12 are caller-saved: not needed to unwind from a call site.
            var regs = [UInt64](repeating: 0, count: 16)
            for (n, v) in saved.calleeSaved { regs[n] = v }
            regs[13] = saved.sp; regs[14] = saved.ip; regs[15] = saved.ip
            let unwind = endingAtEntry(EHABIUnwinder(tables: tables, stackSize: arch.descriptor.kernelStackSize, isKernelText: isText).unwind(registers: regs, memory: reader.memory))
            return TaskStack(task: task, vcpu: nil, unwind: unwind, note: nil, userEntry: user)
        case .framePointers:
            // The 32-bit kernel has frame pointers only (no ORC): its own unwinder's walk.
            let unwinder = X86FrameUnwinder(width: 4, stackSize: arch.descriptor.kernelStackSize, topPadding: arch.descriptor.stackTopPadding, isKernelText: isText)
            return TaskStack(task: task, vcpu: nil, unwind: unwinder.unwind(ip: saved.ip, sp: saved.sp, bp: saved.fp, memory: reader.memory),
                             note: nil, userEntry: user)
        }
    }
}
