import VCPUContext

/// One task as the kernel keeps it in `task_struct`, decoded.
public struct KernelTask: Sendable, Equatable {
    public let address: UInt64
    public let pid: Int32, tgid: Int32
    /// The pid of `real_parent` (what `ps` and sysrq-t print as ppid).
    public let ppid: Int32?
    /// The kernel's one-letter state (`task_state_to_char`: R S D T t X Z P I), "?" unknown.
    public let state: String
    /// The CPU it runs or last ran on.
    public let cpu: Int?
    /// `on_cpu`: running on a CPU at the moment of the core.
    public let onCPU: Bool
    /// PF_KTHREAD: a kernel thread (`ps` shows it in brackets).
    public let isKernelThread: Bool
    public let comm: String
    /// The lowest address of its kernel stack (`task_struct.stack`).
    public let stackBase: UInt64?
    /// When it last went onto a CPU (`sched_info.last_arrival`, ns of that CPU's runqueue
    /// clock); nil without CONFIG_SCHED_INFO or when unreadable, 0 if it never ran.
    public var lastArrival: UInt64? = nil

    static let commLength = 16          // TASK_COMM_LEN
    static let pidMax: Int32 = 4_194_304 // PID_MAX_LIMIT
    static let kernelThreadFlag: UInt32 = 0x0020_0000 // PF_KTHREAD

    /// The task_struct at `address`, checked to look like one (comm printable and
    /// terminated, pid and tgid in range): a wrong pointer gets an error, not a row.
    public static func read(at address: UInt64, reader: KernelReader, layout: TaskLayout) throws(KernelDataError) -> KernelTask {
        func field<T>(_ what: String, _ body: () throws(MemoryFault) -> T) throws(KernelDataError) -> T {
            do { return try body() } catch { throw KernelDataError("task at \(hex(address))", "\(what) unreadable: \(error)") }
        }
        let comm = try field("comm") { () throws(MemoryFault) in try reader.bytes(address &+ UInt64(layout.comm), count: commLength, limit: commLength) }
        let pid = Int32(bitPattern: try field("pid") { () throws(MemoryFault) in try reader.u32(address &+ UInt64(layout.pid)) })
        let tgid = Int32(bitPattern: try field("tgid") { () throws(MemoryFault) in try reader.u32(address &+ UInt64(layout.tgid)) })
        let name = comm.prefix { $0 != 0 }
        guard !name.isEmpty, name.count < commLength, (0...pidMax).contains(pid), (0...pidMax).contains(tgid),
              name.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            throw KernelDataError("task at \(hex(address))", "does not hold a task (comm, pid or tgid out of range)")
        }
        // The rest is best effort: a field that cannot be read is shown as unknown.
        func optionalU32(_ offset: Int?) -> UInt32? { offset.flatMap { try? reader.u32(address &+ UInt64($0)) } }
        func optionalWord(_ offset: Int?) -> UInt64? { offset.flatMap { try? reader.word(address &+ UInt64($0)) } }
        var ppid: Int32? = nil
        if let parent = optionalWord(layout.realParent), parent != 0 {
            ppid = (try? reader.u32(parent &+ UInt64(layout.pid))).map { Int32(bitPattern: $0) }
        }
        let state = optionalU32(layout.state).map { Self.stateLetter(state: $0, exitState: optionalU32(layout.exitState) ?? 0) } ?? "?"
        return KernelTask(address: address, pid: pid, tgid: tgid, ppid: ppid, state: state,
                          cpu: optionalU32(layout.cpu).map { Int($0) }, onCPU: (optionalU32(layout.onCPU) ?? 0) != 0,
                          isKernelThread: (optionalU32(layout.flags) ?? 0) & kernelThreadFlag != 0,
                          comm: String(decoding: name, as: UTF8.self), stackBase: optionalWord(layout.stack),
                          lastArrival: layout.lastArrival.flatMap { try? reader.u64(address &+ UInt64($0)) })
    }

    /// `task_state_index` of Linux 4.14+: the highest reported bit of state|exit_state,
    /// TASK_IDLE (uninterruptible and noload) as I, an RT lock wait as D.
    static func stateLetter(state: UInt32, exitState: UInt32) -> String {
        let report: UInt32 = 0x7f, idle: UInt32 = 0x402, rtlockWait: UInt32 = 0x1000
        var bits = (state | exitState) & report
        if state & idle == idle { bits = 0x80 }
        if state == rtlockWait { bits = 0x2 }
        let letters = Array("RSDTtXZPI")
        let index = bits == 0 ? 0 : 32 - bits.leadingZeroBitCount
        return String(letters[index])
    }
}

/// Every task of the guest, as `for_each_process_thread` visits them from `init_task`,
/// plus the idle task of each CPU. Guest memory is hostile: the walk is bounded, stops at
/// a cycle or a pointer that is not a task, and says where.
public struct TaskList: Sendable {
    public let tasks: [KernelTask]
    /// Why the walk ended early or skipped something (empty when the lists were whole).
    public let problems: [String]

    public static let maxTasks = 1 << 16

    /// `threadCount` is the kernel's own count of threads with a pid (`nr_threads`), when
    /// the symbols name it: a list that holds another number was cut or is being changed.
    public static func walk(reader: KernelReader, layout: TaskLayout, initTask: UInt64, idleTasks: [UInt64] = [],
                            threadCount: Int? = nil, maxTasks: Int = TaskList.maxTasks) -> Result<TaskList, KernelDataError> {
        Result { () throws(KernelDataError) in
            guard let tasksOffset = layout.tasks else { throw KernelDataError("task list", "the types give no task_struct.tasks") }
            var tasks: [KernelTask] = []
            var problems: [String] = []
            var seen: Set<UInt64> = []
            func add(_ address: UInt64) -> Bool {
                guard seen.insert(address).inserted else { return false }
                do { tasks.append(try KernelTask.read(at: address, reader: reader, layout: layout)) } catch {
                    problems.append(error.description)
                    return false
                }
                return true
            }
            /// The entry after `node` in a list_head list, as the task containing it.
            func next(_ node: UInt64, memberOffset: Int) -> UInt64? {
                guard let n = try? reader.word(node), n != 0, n % UInt64(reader.wordSize) == 0 else {
                    problems.append("list_head at \(hex(node)) has an unreadable or bad next pointer")
                    return nil
                }
                return n &- UInt64(memberOffset)
            }
            guard add(initTask) else { throw KernelDataError("task list", "init_task at \(hex(initTask)) is not a task: \(problems.last ?? "")") }
            var leader = initTask
            var leaders = 0
            while tasks.count < maxTasks {
                guard let p = next(leader &+ UInt64(tasksOffset), memberOffset: tasksOffset) else { break }
                if p == initTask { break }
                leaders += 1
                guard p != leader else {
                    problems.append("the task list entry of \(hex(p)) points to itself: the list is cut there")
                    break
                }
                guard !seen.contains(p) else {
                    problems.append("the task list loops back to \(hex(p)) without reaching init_task")
                    break
                }
                guard add(p) else { break }
                threads(of: p)
                leader = p
            }
            if tasks.count >= maxTasks { problems.append("stopped after \(maxTasks) tasks") }
            func threads(of p: UInt64) {
                // The other threads of p's group: a circular list through the leader.
                let (head, offset): (UInt64, Int)
                if let g = layout.threadGroup {
                    (head, offset) = (p &+ UInt64(g), g)
                } else if let n = layout.threadNode, let signal = try? reader.word(p &+ UInt64(n.signal)), signal != 0 {
                    (head, offset) = (signal &+ UInt64(n.head), n.node)
                } else {
                    return
                }
                var node = head
                var visited: Set<UInt64> = [head]
                while tasks.count < maxTasks {
                    guard let t = next(node, memberOffset: offset) else { return }
                    let tNode = t &+ UInt64(offset)
                    if tNode == head { return }
                    // A node that links back to one already seen (to itself) would turn forever.
                    guard visited.insert(tNode).inserted else { problems.append("the threads of \(hex(p)) loop at \(hex(t))"); return }
                    if t != p {
                        if seen.contains(t) { problems.append("the threads of \(hex(p)) loop at \(hex(t))"); return }
                        guard add(t) else { return }
                    }
                    node = tNode
                }
            }
            for idle in idleTasks where !seen.contains(idle) && tasks.count < maxTasks { _ = add(idle) }
            _ = leaders
            // nr_threads counts every task with a pid, from fork to release (zombies too);
            // the idle tasks (pid 0) are not counted.
            if let threadCount, problems.isEmpty, case let listed = tasks.filter({ $0.pid != 0 }).count, listed != threadCount {
                problems.append("the kernel counts \(threadCount) threads (nr_threads), the task lists hold \(listed): a list is cut or was changing")
            }
            return TaskList(tasks: tasks, problems: problems)
        }
    }
}
