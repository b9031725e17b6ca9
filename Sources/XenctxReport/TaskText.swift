import GuestKernel
import StackWalk
import Symbols
import VCPUContext

/// `--tasks` as crash's `ps` shows them, and each task's stack as its `bt` header and
/// frames, in the shapes of the report's own exact traces.
struct TaskText {
    let report: Report
    /// Each CPU's runqueue clock, for how long ago each task was scheduled.
    var clocks: [Int: UInt64] = [:]
    /// The task list by task_struct address, to name a lock's owner and waiters.
    var tasks: [UInt64: KernelTask] = [:]
    /// What a task request read, for `render`.
    var view: TaskView? = nil
    var width: Int { report.guest.description.wordSize * 2 }

    func list(_ tasks: TaskList) -> String {
        var s = " " + pad("PID", 6) + "  " + pad("PPID", 6) + "  " + pad("CPU", 3) + "  " + "TASK".padding(width) + "  ST  COMM\n"
        for t in tasks.tasks {
            let running = report.vcpuRunning(t) != nil || t.onCPU
            let pid: String = pad(String(t.pid), 6)
            let ppid: String = pad(t.ppid.map { String($0) } ?? "?", 6)
            let cpu: String = pad(t.cpu.map { String($0) } ?? "?", 3)
            s += (running ? ">" : " ") + pid + "  " + ppid + "  " + cpu + "  "
            s += hex(t.address, width: width) + "  " + t.state.padding(2) + "  " + comm(t) + "\n"
        }
        return s
    }

    func comm(_ t: KernelTask) -> String {
        let name = TerminalSafe.escape(t.comm)
        return t.isKernelThread ? "[\(name)]" : name
    }

    func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }

    func stack(_ s: TaskStack) -> String {
        let t = s.task
        var out = "PID: \(t.pid)  TASK: \(hex(t.address, width: width))  CPU: \(t.cpu.map(String.init) ?? "?")  COMMAND: \"\(TerminalSafe.escape(t.comm))\"  STATE: \(t.state)"
        if let v = s.vcpu { out += "  (running on vcpu\(v))" }
        if let ns = Report.sinceScheduled(t, clocks: clocks) {
            out += s.vcpu != nil || t.onCPU ? "  RUNNING FOR: \(Self.seconds(ns))" : "  SCHEDULED: \(Self.seconds(ns)) ago"
        }
        out += "\n"
        if let unwind = s.unwind {
            for f in s.frames {
                let where_ = f.frame.slot.map { hex($0, width: width) + ":" } ?? String(repeating: " ", count: width + 1)
                out += "\(where_)   [<\(hex(f.frame.ip, width: width))>]\(f.symbol.map { " " + $0.text } ?? "") (\(f.how))\n"
            }
            if !unwind.complete { out += "-- unwind stopped: \(unwind.stop) --\n" }
        } else if let note = s.note {
            out += "-- no call trace: \(note) --\n"
        }
        if let u = s.userEntry { out += userEntryText(u) + "\n" }
        switch s.lock {
        case .success(let lock)?: out += "Waits for: " + lockText(lock) + "\n"
        case .failure(let e)?: out += "Waits for: a lock it could not be told from its stack: \(e.reason)\n"
        case nil: break
        }
        return out
    }

    /// `touch (pid 134) → rm (pid 129) → insmod (pid 110), which waits on no lock (state S)`:
    /// a blocked task through each lock's owner; a task met twice is a deadlock.
    func chain(_ chain: LockChain) -> String {
        var s = chain.tasks.map(name).joined(separator: " → ")
        switch chain.end {
        case .cycle: s += ": a cycle, a deadlock"
        case .unlisted: break
        case .noLock: s += chain.tasks.last.flatMap { tasks[$0] }.map { ", which waits on no lock (state \($0.state))" } ?? ""
        case .unowned(let lock):
            s += " → \(lock.kind.rawValue) \(hex(lock.lock, width: width)) (\(lock.readerOwned ? "held by readers" : "no owner recorded"))"
        }
        return s
    }

    /// A task as `insmod (pid 110)`, or its address when it is not on the list.
    func name(_ address: UInt64) -> String {
        tasks[address].map { "\(TerminalSafe.escape($0.comm)) (pid \($0.pid))" } ?? "the task at \(hex(address, width: width))"
    }

    /// `rw_semaphore ffff888005103850, held by insmod (pid 110); queue: sh (pid 121), rm (pid 129)`
    func lockText(_ lock: LockWait) -> String {
        var s = "\(lock.kind.rawValue) \(hex(lock.lock, width: width))"
        if lock.readerOwned {
            s += ", held by readers" + (lock.owner.map { " (the last to take it: \(name($0)))" } ?? "")
        } else if let owner = lock.owner {
            s += ", held by \(name(owner))"
        } else if lock.kind != .semaphore {
            s += ", held by no task"
        }
        return s + "; queue: " + lock.waiters.map(name).joined(separator: ", ")
    }

    /// `12.345678 s`, to the microsecond as the log's timestamps.
    static func seconds(_ ns: UInt64) -> String {
        let micro = String(ns % 1_000_000_000 / 1000)
        return "\(ns / 1_000_000_000).\(String(repeating: "0", count: 6 - micro.count))\(micro) s"
    }

    /// One line with what the oops prints of the user registers.
    func userEntryText(_ u: UserEntry) -> String {
        if let cs = u.cs {
            // x86, in the kernel's names for the guest's width (`EIP: 0073:b7f38559` on 32-bit).
            let (ip, sp) = report.guest.description.wordSize == 4 ? ("EIP", "ESP") : ("RIP", "RSP")
            return "User: \(ip): \(hex(cs, width: 4)):\(hex(u.ip, width: width)) \(sp): \(hex(u.ss ?? 0, width: 4)):\(hex(u.sp, width: width)) EFLAGS: \(hex(u.flags, width: 8))"
        }
        return "User: pc: \(hex(u.ip, width: width)) sp: \(hex(u.sp, width: width)) pstate: \(hex(u.flags, width: 8))"
    }
}

extension Report {
    /// `--modules`: each loaded module as the kernel's list holds it.
    public func moduleText() -> Result<Output, KernelDataError> {
        guard let list = modules else {
            return .failure(KernelDataError("modules", modulesMissing ?? "not read"))
        }
        let w = guest.description.wordSize * 2
        var out = Output(text: "MODULE".padding(w) + "  " + "NAME".padding(24) + "  " + "BASE".padding(w) + "  " + "SIZE".padding(8) + "  SYMBOLS\n",
                         errors: list.problems.map { "modules: \($0)" })
        for m in list.modules {
            out.text += hex(m.address, width: w) + "  " + TerminalSafe.escape(m.name).padding(24) + "  " + hex(m.base, width: w) + "  "
            out.text += String(m.size).padding(8) + "  " + String(m.symbols.count) + "\n"
        }
        if list.modules.isEmpty { out.text += "(no modules loaded)\n" }
        return .success(out)
    }

    /// The text of a task request, and problems for stderr; a failure when there is no
    /// task list at all or the pid is not found.
    public func taskText(_ request: TaskRequest) -> Result<Output, KernelDataError> {
        taskView(request).flatMap { view in
            Result { () throws(KernelDataError) in try TaskText(report: self, view: view).render() }
        }
    }
}

extension TaskText {
    init(report: Report, view: TaskView) {
        self.init(report: report, clocks: view.clocks, tasks: Dictionary(view.list.tasks.map { ($0.address, $0) }) { a, _ in a })
        self.view = view
    }

    /// The task request's text, from what `Report.taskView` read.
    func render() throws(KernelDataError) -> Report.Output {
        guard let view else { return Report.Output() }
        let list = view.list
        var out = Report.Output(text: "", errors: list.problems.map { "task list: \($0)" })
        switch view.request {
        case .list(let stacks):
            out.text += self.list(list)
            if stacks {
                for t in list.tasks { if let s = view.stacks[t.address] { out.text += "\n" + stack(s) } }
            }
        case .one(let pid):
            let matches = list.tasks.filter { $0.pid == pid }
            guard !matches.isEmpty else {
                throw KernelDataError("--task \(pid)", "no task has that pid (\(list.tasks.count) tasks listed; --tasks shows them)")
            }
            out.text += matches.compactMap { view.stacks[$0.address].map(stack) }.joined(separator: "\n")
        case .hung:
            guard let result = view.hung else { return out }
            let hung = try result.get()
            if let threshold = hung.threshold {
                out.text += "Tasks in D state not scheduled for \(threshold) s or more (\(hung.thresholdSource)): \(hung.tasks.count) of \(hung.blockedCount) in D state\n"
            } else {
                out.text += "Tasks in D state: \(hung.blockedCount), for how long each cannot be told\n"
                out.errors.append("hung tasks: how long each has been blocked cannot be told: \(hung.thresholdSource)")
            }
            for h in hung.tasks { if let s = view.stacks[h.task.address] { out.text += "\n" + stack(s) } }
            if !view.chains.isEmpty { out.text += "\nLock chains (who waits for whom):\n" + view.chains.map { "  " + chain($0) + "\n" }.joined() }
        }
        return out
    }
}
