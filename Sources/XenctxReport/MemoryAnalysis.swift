import GuestKernel
import Symbols
import VCPUContext

/// `--meminfo`: the guest's memory counters as /proc/meminfo adds them up, and the OOM
/// killer's last victim from its log.
extension Report {
    public func memInfo() -> Result<MemInfo, KernelDataError> {
        guard let types = kernelTypes else {
            return .failure(KernelDataError("memory", "no kernel types (BTF or --vmlinux's DWARF): the counters' indices are the kernel's enumerators"))
        }
        guard let reader = KernelReader(guest: guest) else { return .failure(KernelDataError("memory", "this core holds no guest memory")) }
        let pageSize = (try? options.kernel?.vmcoreinfo.get().info.pageSize).map { UInt64($0) } ?? 4096
        let symbols = classifier.symbols
        let m = MemInfo.read(reader: reader, types: types, pageSize: pageSize) { symbols?.address(of: $0) ?? options.absoluteSymbols[$0] }
        guard !m.lines.isEmpty else { return .failure(KernelDataError("memory", m.missing.joined(separator: "; "))) }
        return .success(m)
    }

    /// The text: `MemTotal:  205480 kB` lines, what could not be read, the last OOM kill.
    public func memInfoText() -> Result<Output, KernelDataError> {
        memInfo().map { m in
            var out = Output()
            for (name, kB) in m.lines {
                let label = name + ":"
                out.text += label + String(repeating: " ", count: max(1, 16 - label.count)) + String(repeating: " ", count: max(0, 8 - String(kB).count)) + "\(kB) kB\n"
            }
            out.errors = m.missing.map { "memory: \($0)" }
            if let (oom, _) = lastOOMKill() {
                out.text += "Last OOM kill: " + LogText.timestamp(oom.timestamp) + TerminalSafe.escape(oom.text) + "\n"
            }
            return out
        }
    }

    /// The log's last OOM kill, and its record.
    func lastOOMKill() -> (LogEvent, LogRecord?)? {
        guard let kernel = options.kernel, case .success(let log) = kernel.log(symbols: options.symbols),
              let oom = LogEvents.find(in: log.records).last(where: { $0.kind == .oom }) else { return nil }
        return (oom, log.records.indices.contains(oom.index) ? log.records[oom.index] : nil)
    }
}
