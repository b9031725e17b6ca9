import GuestKernel
import Symbols
import VCPUContext

/// One core in a batch (`xenctx-swift triage`): the kernel, the verdict, the crashing
/// frames and a signature that is the same for the same crash, or why the core could not
/// be read. Values only; the command prints them.
public struct TriageRow: Sendable, Equatable, Codable {
    public var core: String
    public var kernel: String?
    public var reason: String?
    public var message: String?
    public var vcpu: Int?
    public var task: String?
    /// The reliable frames the signature is made of, innermost first, without offsets.
    public var frames: [String] = []
    public var signature: String?
    public var error: String?

    /// Reads `path` with everything from the guest itself (no symbol file): symbols from
    /// its kallsyms, its log, the verdict and the crashing vCPU's exact trace.
    public static func analyse(path: String) -> TriageRow {
        var row = TriageRow(core: path)
        do {
            let guest = try Guest(core: XenCore(path: path))
            let model = Report(guest: guest, options: .fromGuestItself(guest)).model(Report.ModelRequest(verdict: true))
            row.kernel = model.kernel?.release
            guard let v = model.verdict else { row.error = "no verdict"; return row }
            row.reason = v.reason
            row.message = v.message
            row.vcpu = v.vcpu
            row.task = v.comm.map { c in v.pid.map { "\(c) (pid \($0))" } ?? c }
            // The crashing vCPU's frames, while it is still in the panic or oops (after an
            // oops the task may have died and its vCPU moved on: then the message alone).
            if let entry = v.vcpu.flatMap({ id in model.vcpus.first { $0.id == id } }), ["panic", "oops"].contains(entry.state) {
                row.frames = CrashSignature.frames(entry.trace)
            }
            switch v.reason {
            case "unknown": row.error = v.evidence.last ?? "nothing says why it stopped"
            case "running": break
            default: row.signature = CrashSignature.of(reason: v.reason, message: v.message, frames: row.frames)
            }
        } catch {
            row.error = "\(error)"
        }
        return row
    }
}

/// A crash's signature: a hash of what stays the same when the same bug strikes again on
/// another boot, KASLR offset or rebuild — the reason, the kernel's message with its
/// numbers taken out, and the function names of the top reliable frames that are not the
/// panic and backtrace machinery (as ABRT and Apport hash the top frames).
public enum CrashSignature {
    /// Frames that only report the crash, whatever caused it.
    static let machinery: Set<String> = ["panic", "vpanic", "nmi_panic", "__crash_kexec", "crash_kexec", "dump_stack", "dump_stack_lvl",
                                         "show_stack", "show_trace_log_lvl", "die", "__die", "oops_end", "die_kernel_fault", "make_task_dead",
                                         "__warn", "report_bug", "handle_bug", "exc_invalid_op", "asm_exc_invalid_op", "arm64_serror_panic",
                                         "unwind_backtrace", "xen_hypercall_sched_op", "hypercall_page"]
    static let depth = 5

    /// The names of the trace's top reliable frames (at most `depth`) below the crash
    /// machinery: after the last panic or oops frame, else after the delays and hypercalls
    /// a stopped CPU waits in.
    public static func frames(_ trace: ReportModel.Trace?) -> [String] {
        guard let trace else { return [] }
        // `__handle_sysrq.cold`, `foo.isra.0`: the compiler's part names one function.
        let names = trace.frames.filter(\.reliable).compactMap(\.function)
        let start = names.lastIndex { machinery.contains($0) }.map { $0 + 1 } ?? 0
        var out: [String] = []
        for name in names[start...] {
            if VCPUState.plumbing.contains(where: { name.hasPrefix($0) }) { continue }
            if out.last != name { out.append(name) }
            if out.count == depth { break }
        }
        return out
    }

    /// `reason|message without numbers|f1,f2,…` hashed (FNV-1a, 64 bits, 16 hex digits).
    public static func of(reason: String, message: String?, frames: [String]) -> String {
        let key = reason + "|" + (message.map(withoutNumbers) ?? "") + "|" + frames.joined(separator: ",")
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return hex(h, width: 16)
    }

    /// Digits (and hexadecimal words such as addresses) become `#`: `address: 0000000000000010`
    /// and `[sh:97]` say the same thing on every boot.
    static func withoutNumbers(_ s: String) -> String {
        var out = ""
        for word in s.split(separator: " ", omittingEmptySubsequences: false) {
            let isHex = word.count >= 4 && word.allSatisfy(\.isHexDigit)
            if isHex { out += "#" } else {
                var last: Character? = nil
                for c in word {
                    let d: Character = c.isNumber ? "#" : c
                    if !(d == "#" && last == "#") { out.append(d) }
                    last = d
                }
            }
            out += " "
        }
        return String(out.dropLast())
    }
}

extension ReportOptions {
    /// Every vCPU with its exact trace, everything else from the guest itself: its kernel
    /// (VMCOREINFO), its kallsyms, no symbol file.
    static func fromGuestItself(_ guest: Guest) -> ReportOptions {
        let kernel = GuestKernel(guest: guest)
        var options = ReportOptions()
        options.allVCPUs = true
        options.unwind = .auto
        options.kernel = kernel
        let resolution = SymbolResolution(guest: guest, kernel: kernel, inputs: SymbolResolution.Inputs())
        options.symbols = resolution.symbols
        options.kernelOffset = resolution.kernelOffset
        options.symbolFacts = resolution.symbolFacts
        options.absoluteSymbols = resolution.absoluteSymbols
        return options
    }
}
