import Symbols
import VCPUContext

/// Per-CPU data of the guest kernel: each CPU's copy of a variable is at
/// `__per_cpu_offset[cpu]` plus the variable's per-CPU offset.
public enum PerCPU {
    /// Per-CPU variables as offsets into each CPU's area (`__per_cpu_offset[cpu]` is added).
    /// x86_64 links them from 0 (`__per_cpu_start`, which a relocation moves with them) and
    /// kallsyms keeps them absolute; the others link them at their addresses in the image.
    public static func variables(_ names: Set<String>, symbols: SystemMap?, absolute: [String: UInt64],
                                 architecture: GuestArchitecture) -> [String: UInt64] {
        var known = symbols?.addresses(of: names.union(["__per_cpu_offset", "__per_cpu_start"])) ?? [:]
        if architecture.descriptor.perCPUFromZero, let start = known["__per_cpu_start"] {
            for n in names { if let v = known[n] { known[n] = v &- start } }
        }
        known.merge(absolute.filter { names.contains($0.key) || $0.key == "__per_cpu_offset" }) { _, kallsyms in kallsyms }
        return known
    }

    /// Each vCPU's runqueue clock (`rq.clock`, ns: what the scheduler last read of sched_clock
    /// there), where the symbols and types name it.
    public static func runqueueClocks(guest: Guest, reader: KernelReader, layout: TaskLayout, symbols: SystemMap?,
                                      absolute: [String: UInt64]) -> [Int: UInt64] {
        let known = variables(["runqueues"], symbols: symbols, absolute: absolute, architecture: guest.description.architecture)
        guard let offsets = known["__per_cpu_offset"], let rq = known["runqueues"], let clock = layout.runqueueClock else { return [:] }
        var out: [Int: UInt64] = [:]
        for v in guest.vcpus {
            guard let base = try? reader.word(offsets &+ UInt64(v.id) &* UInt64(reader.wordSize)),
                  let value = try? reader.u64(base &+ rq &+ UInt64(clock)) else { continue }
            out[v.id] = value
        }
        return out
    }

    /// Each vCPU's runqueue `idle` and `curr` tasks (the per-CPU `runqueues`), where the
    /// symbols name both.
    public static func runqueueTasks(guest: Guest, reader: KernelReader, layout: TaskLayout, symbols: SystemMap?,
                                     absolute: [String: UInt64]) -> [Int: (idle: UInt64?, current: UInt64?)] {
        let known = variables(["runqueues"], symbols: symbols, absolute: absolute, architecture: guest.description.architecture)
        guard let offsets = known["__per_cpu_offset"], let rq = known["runqueues"] else { return [:] }
        var out: [Int: (idle: UInt64?, current: UInt64?)] = [:]
        for v in guest.vcpus {
            guard let base = try? reader.word(offsets &+ UInt64(v.id) &* UInt64(reader.wordSize)) else { continue }
            func task(_ offset: Int?) -> UInt64? { offset.flatMap { try? reader.word(base &+ rq &+ UInt64($0)) }.flatMap { $0 == 0 ? nil : $0 } }
            out[v.id] = (task(layout.runqueueIdle), task(layout.runqueueCurrent))
        }
        return out
    }
}
