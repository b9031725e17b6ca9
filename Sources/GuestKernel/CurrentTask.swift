import Symbols
import VCPUContext

/// The task a vCPU was running, found as its kernel finds `current`.
public struct CurrentTask: Sendable, Equatable {
    public let address: UInt64
    public let comm: String
    public let pid: Int32, tgid: Int32
    /// How `current` was found (the register or per-CPU variable).
    public let how: String

    public init(address: UInt64, comm: String, pid: Int32, tgid: Int32, how: String) {
        (self.address, self.comm, self.pid, self.tgid, self.how) = (address, comm, pid, tgid, how)
    }

    static let commLength = 16          // TASK_COMM_LEN
    static let pidMax: Int32 = 4_194_304 // PID_MAX_LIMIT

    /// x86, both widths: the per-CPU `current_task` of CPU `vcpu.id` (`__per_cpu_offset[id]`
    /// plus the variable's per-CPU offset); arm64: SP_EL0, which holds `current` while in the kernel.
    /// `symbol` answers from the report's symbols (and kallsyms' per-CPU ones).
    public static func find(vcpu: VCPU, guest: Guest, reader: KernelReader, layout: TaskLayout,
                            symbol: (String) -> UInt64?) -> Result<CurrentTask, KernelDataError> {
        Result { () throws(KernelDataError) in
            let task: UInt64, how: String
            switch guest.description.architecture.descriptor.currentTask {
            case .perCPUVariable:
                guard let offsets = symbol("__per_cpu_offset") else {
                    throw KernelDataError("current task", "the symbols name no __per_cpu_offset")
                }
                // Its own per-CPU variable, except from 6.2 until 6.15, where it is a member
                // of the per-CPU `pcpu_hot` (the kernel's types say where).
                let variable: UInt64, name: String
                if let v = symbol("current_task") {
                    (variable, name) = (v, "current_task")
                } else if let hot = symbol("pcpu_hot"), let member = layout.pcpuHotCurrentTask {
                    (variable, name) = (hot &+ UInt64(member), "pcpu_hot.current_task")
                } else if symbol("pcpu_hot") != nil {
                    throw KernelDataError("current task", "the kernel keeps current in pcpu_hot, and its types have no pcpu_hot.current_task")
                } else {
                    throw KernelDataError("current task", "the symbols name neither current_task nor pcpu_hot")
                }
                let base: UInt64
                do { base = try reader.word(offsets &+ UInt64(vcpu.id) &* UInt64(reader.wordSize)) } catch { throw KernelDataError("current task", "__per_cpu_offset[\(vcpu.id)] unreadable: \(error)") }
                do { task = try reader.word(base &+ variable) } catch { throw KernelDataError("current task", "per-CPU \(name) of CPU \(vcpu.id) unreadable: \(error)") }
                how = "the per-CPU \(name) of CPU \(vcpu.id) (__per_cpu_offset[\(vcpu.id)] = \(hex(base)))"
            case .spEL0:
                guard case .arm(let r) = vcpu.registers else { throw KernelDataError("current task", "SP_EL0 is not in this vCPU's context") }
                let el = (r.cpsr >> 2) & 3
                guard el == 1 else { throw KernelDataError("current task", "the vCPU is at EL\(el): SP_EL0 holds current only in the kernel (EL1)") }
                task = r.spEL0
                how = "SP_EL0 (arm64 keeps current there in the kernel)"
            case .stackOfSVCStackPointer:
                throw KernelDataError("current task", "found by the stack that holds SP_svc, over the task list (CurrentTask.all)")
            }
            let comm: [UInt8], pid: Int32, tgid: Int32
            do {
                comm = try reader.bytes(task &+ UInt64(layout.comm), count: commLength, limit: commLength)
                pid = Int32(bitPattern: try reader.u32(task &+ UInt64(layout.pid)))
                tgid = Int32(bitPattern: try reader.u32(task &+ UInt64(layout.tgid)))
            } catch {
                throw KernelDataError("current task", "task_struct at \(hex(task)) unreadable: \(error)")
            }
            let name = comm.prefix { $0 != 0 }
            guard name.count < commLength, (0...pidMax).contains(pid), (0...pidMax).contains(tgid),
                  name.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
                throw KernelDataError("current task", "\(hex(task)) does not hold a task (comm, pid or tgid out of range)")
            }
            return CurrentTask(address: task, comm: String(decoding: name, as: UTF8.self), pid: pid, tgid: tgid, how: how)
        }
    }
}

extension CurrentTask {
    /// The task each vCPU was running, where the layout and symbols allow finding it.
    public static func all(guest: Guest, reader: KernelReader, layout: TaskLayout, symbols: SystemMap?,
                           absolute: [String: UInt64]) -> [Int: Result<CurrentTask, KernelDataError>] {
        if case .stackOfSVCStackPointer = guest.description.architecture.descriptor.currentTask {
            return byStack(guest: guest, reader: reader, layout: layout, symbols: symbols)
        }
        let known = PerCPU.variables(["current_task", "pcpu_hot"], symbols: symbols, absolute: absolute, architecture: guest.description.architecture)
        var tasks: [Int: Result<CurrentTask, KernelDataError>] = [:]
        for v in guest.vcpus {
            tasks[v.id] = find(vcpu: v, guest: guest, reader: reader, layout: layout) { known[$0] }
        }
        return tasks
    }

    /// ARM32 keeps `current` in TPIDRURO, which Xen's context does not save: the current
    /// task is the one whose kernel stack holds the vCPU's SVC stack pointer (banked, so it
    /// stays on the task's stack in every mode), found on the task list and idle tasks.
    static func byStack(guest: Guest, reader: KernelReader, layout: TaskLayout, symbols: SystemMap?) -> [Int: Result<CurrentTask, KernelDataError>] {
        var out: [Int: Result<CurrentTask, KernelDataError>] = [:]
        guard let initTask = symbols?.address(of: "init_task") else {
            for v in guest.vcpus { out[v.id] = .failure(KernelDataError("current task", "ARM32 needs init_task from the symbols to find the task by its stack (kallsyms without data symbols lacks it: give --vmlinux or -s)")) }
            return out
        }
        let runqueues = PerCPU.runqueueTasks(guest: guest, reader: reader, layout: layout, symbols: symbols, absolute: [:])
        let list: TaskList
        switch TaskList.walk(reader: reader, layout: layout, initTask: initTask, idleTasks: guest.vcpus.compactMap { runqueues[$0.id]?.idle }) {
        case .success(let l): list = l
        case .failure(let e):
            for v in guest.vcpus { out[v.id] = .failure(e) }
            return out
        }
        let threadSize = guest.description.architecture.descriptor.kernelStackSize
        for v in guest.vcpus {
            guard case .arm(let r) = v.registers, r.isAArch32State else { continue }
            let sp = UInt64(r.spSVC)
            let base = (sp &- 1) & ~(threadSize - 1)
            if let t = list.tasks.first(where: { $0.stackBase == base }) {
                out[v.id] = .success(CurrentTask(address: t.address, comm: t.comm, pid: t.pid, tgid: t.tgid,
                                                 how: "the task whose kernel stack (\(hex(base))) holds SP_svc \(hex(sp)) (ARM32 keeps current in TPIDRURO, which the context lacks)"))
            } else if let a = runqueues[v.id]?.current, let t = list.tasks.first(where: { $0.address == a }) {
                // SP_svc is elsewhere (an IRQ stack): the scheduler's own record of the CPU.
                out[v.id] = .success(CurrentTask(address: t.address, comm: t.comm, pid: t.pid, tgid: t.tgid,
                                                 how: "runqueues.curr of CPU \(v.id) (SP_svc \(hex(sp)) is on no task's stack: an IRQ stack)"))
            } else {
                out[v.id] = .failure(KernelDataError("current task", "no task's kernel stack holds SP_svc \(hex(sp)) (\(list.tasks.count) tasks searched) and runqueues names none"))
            }
        }
        return out
    }
}
