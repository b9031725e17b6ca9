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
            switch (guest.description.architecture, vcpu.registers) {
            case (.x86_64, _), (.x86_32, _):
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
            case (.aarch64, .arm(let r)):
                let el = (r.cpsr >> 2) & 3
                guard el == 1 else { throw KernelDataError("current task", "the vCPU is at EL\(el): SP_EL0 holds current only in the kernel (EL1)") }
                task = r.spEL0
                how = "SP_EL0 (arm64 keeps current there in the kernel)"
            default:
                throw KernelDataError("current task", "not found on \(guest.description.architecture.rawValue) guests yet")
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
