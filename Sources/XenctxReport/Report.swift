import GuestKernel
import StackWalk
import Symbols
import VCPUContext

/// Where the guest kernel keeps its unwind metadata (found through the symbol table).
struct UnwindTables: Sendable {
    /// x86_64 ORC (`CONFIG_UNWINDER_ORC`).
    var orc: ORCUnwinder.Tables?
    /// ARM32 EHABI index (`CONFIG_ARM_UNWIND`).
    let exidx: EHABIUnwinder.Tables?

    /// How the EHABI index was found, when not by its symbols.
    var exidxNote: String? = nil
    /// Each loaded module's ORC tables, by its text.
    var moduleORC: [(Range<UInt64>, ORCUnwinder.Tables)] = []

    /// `guest` is searched for the ARM32 index when the symbols lack its bounds (kallsyms
    /// without data symbols): nil skips that search.
    init(symbols: SystemMap?, architecture: GuestArchitecture, guest: Guest? = nil) {
        let wanted = symbols?.addresses(of: ["__start_orc_unwind_ip", "__stop_orc_unwind_ip", "__start_orc_unwind", "__start_unwind_idx", "__stop_unwind_idx"]) ?? [:]
        let unwinder = architecture.descriptor.kernelStackUnwinder
        if unwinder == .orc, let ip = wanted["__start_orc_unwind_ip"], let stop = wanted["__stop_orc_unwind_ip"],
           let entries = wanted["__start_orc_unwind"] {
            // The entries' format is decided from guest memory by `detectingORCFormat`.
            orc = ORCUnwinder.Tables(ipTable: ip, stopIPTable: stop, entries: entries, format: nil, unformatted: "not read from guest memory")
        } else {
            orc = nil
        }
        if unwinder == .ehabi, let start = wanted["__start_unwind_idx"], let stop = wanted["__stop_unwind_idx"] {
            exidx = EHABIUnwinder.Tables(start: start, stop: stop)
        } else if unwinder == .ehabi, let guest, let map = symbols, map.stext != 0, map.etext > map.stext,
                  let reader = KernelReader(guest: guest) {
            // .ARM.exidx lies after .rodata, before the init sections.
            var text = [map.stext...map.etext]
            if map.sinittext != 0, map.einittext > map.sinittext { text.append(map.sinittext...map.einittext) }
            let end = map.sinittext > map.etext ? map.sinittext : map.etext &+ (16 << 20)
            if let found = EHABIIndexFinder.locate(reader: reader, text: text, from: map.etext, to: end) {
                exidx = EHABIUnwinder.Tables(start: found.start, stop: found.stop)
                exidxNote = "EHABI index found by content at \(hex(found.start))–\(hex(found.stop)) (\((found.stop - found.start) / 8) entries; the symbols do not name it)"
            } else {
                exidx = nil
            }
        } else {
            exidx = nil
        }
    }
}

/// The whole report for one guest, in upstream xenctx's order and shapes, plus what
/// upstream never had (the chosen stack pointer, ARM stacks), on lines of their own.
public struct Report: Sendable {
    public let guest: Guest
    public let options: ReportOptions
    /// The kernel facts the views share, worked out on first use.
    let facts: Lazy<KernelFacts>

    public init(guest: Guest, options: ReportOptions) {
        self.guest = guest
        self.options = options
        facts = Lazy { KernelFacts(guest: guest, options: options) }
    }

    /// Borrowed, not copied: views ask for it once per stack word.
    public var classifier: KernelAddressClassifier { _read { yield facts.value.classifier } }
    /// Whether the symbol table fits the guest, and its KASLR offset (nil without -s).
    public var kernelOffset: KernelOffset? { _read { yield facts.value.kernelOffset } }
    /// The kernel's own unwind tables, located once through the symbol table.
    var unwindTables: UnwindTables { _read { yield facts.value.unwindTables } }
    /// task_struct's layout from the guest's BTF (nil when not looked for).
    var taskLayout: Result<TaskLayout, KernelDataError>? { _read { yield facts.value.taskLayout } }
    /// Where the sleeping locks keep their waiters and owner, from the same types.
    var lockLayout: LockLayout? { _read { yield facts.value.lockLayout } }
    /// The kernel's types (BTF, else a fitting vmlinux's DWARF), when they were found.
    var kernelTypes: (any KernelTypes)? { _read { yield facts.value.kernelTypes } }
    /// The loaded modules (nil when not looked for: no types or no `modules` symbol).
    public var modules: ModuleList? { _read { yield facts.value.modules } }
    /// Why there is no module list, when there is none.
    var modulesMissing: String? { _read { yield facts.value.modulesMissing } }
    /// Each vCPU's current task (by vCPU id), found once for the blocks and --describe.
    var currentTasks: [Int: Result<CurrentTask, KernelDataError>] { _read { yield facts.value.currentTasks } }
    /// The guest's kind as the core and, for x86 HVM and PVH (alike in a core), the
    /// kernel's own `xen_pvh` say; with the evidence for the latter.
    public var guestSummary: String { _read { yield facts.value.guestSummary } }
    var guestKindEvidence: String? { _read { yield facts.value.guestKindEvidence } }

    /// An x86 guest in an HVM container is HVM or PVH: Xen's core does not say which, the
    /// kernel does (`xen_pvh`, a bool set when it booted through the PVH entry point).
    static func guestKind(guest: Guest, reader: KernelReader?, symbols: SystemMap?) -> (String, String?) {
        let d = guest.description
        guard d.architecture.descriptor.mayBePVH, !d.isPV, d.protectedMode else { return (d.summary, nil) }
        guard let reader, let at = symbols?.address(of: "xen_pvh") else {
            return (d.summary, "HVM or PVH: the core does not say, and \(reader == nil ? "the guest's kernel was not read" : "the symbols name no xen_pvh") to tell")
        }
        guard let byte = try? reader.bytes(at, count: 1, limit: 1).first else {
            return (d.summary, "HVM or PVH: the kernel's xen_pvh at \(hex(at)) is unreadable")
        }
        switch byte {
        case 1: return (d.summary.replacing("HVM", with: "PVH"), "the kernel's xen_pvh at \(hex(at)) is 1: it booted as a PVH guest")
        case 0: return (d.summary, "the kernel's xen_pvh at \(hex(at)) is 0: an HVM guest, not PVH")
        default: return (d.summary, "HVM or PVH: the kernel's xen_pvh at \(hex(at)) holds \(byte), no bool")
        }
    }

    /// Problems met while rendering (unreadable memory and the like), for stderr.
    public struct Output: Sendable {
        public var text = ""
        public var errors: [String] = []
        /// What the reader should know before the text (printed first, on stderr) that is
        /// no failure: the exit status stays 0.
        public var notes: [String] = []
        public init(text: String = "", errors: [String] = [], notes: [String] = []) {
            self.text = text
            self.errors = errors
            self.notes = notes
        }
    }

    public enum SelectionError: Error, CustomStringConvertible {
        case noSuchVCPU(requested: Int, count: Int)
        public var description: String {
            switch self {
            case .noSuchVCPU(let n, let count):
                return "vCPU \(n) is not here: there \(count == 1 ? "is" : "are") \(count) vCPU context\(count == 1 ? "" : "s") (0–\(count - 1)); a vCPU that was never started has none (and a core leaves it out)"
            }
        }
    }

    /// Renders the report; `emit` receives each vCPU's text as soon as it is ready.
    public func render(emit: (Output) -> Void) throws(SelectionError) {
        if options.describe { emit(Output(text: describeText())) }
        if options.kernelOffset == nil, let k = kernelOffset, case .mismatch = k.finding {
            emit(Output(text: "", errors: ["symbol table: \(k.describe); symbols will be wrong"]))
        }
        if let n = options.vcpu, !guest.vcpus.indices.contains(n) {
            throw .noSuchVCPU(requested: n, count: guest.vcpus.count)
        }
        let vcpu = options.vcpu ?? 0
        let named = options.memoryAddress != nil || options.dumpAsStack != nil || !options.allVCPUs
        if named, guest.vcpus.indices.contains(vcpu), !guest.vcpus[vcpu].isOnline {
            // As -C says `vcpuN offline`; upstream shows a PV vCPU's last context silently,
            // and for PVH prints nothing but libxc's error.
            emit(Output(notes: ["vcpu\(vcpu) is offline: what follows is the last context Xen holds for it"]))
        }
        // Upstream order: -m for VCPU, then -d for VCPU, then all vCPUs (-C) or the default.
        var blocks: [Output] = []
        if options.memoryAddress != nil { blocks.append(vcpuText(guest.vcpus[vcpu], mode: .memory)) }
        if options.dumpAsStack != nil { blocks.append(vcpuText(guest.vcpus[vcpu], mode: .dumpAsStack)) }
        for (i, block) in blocks.enumerated() {
            var b = block
            if i > 0 { b.text = "\n" + b.text }
            emit(b)
        }
        let separator = blocks.isEmpty ? "" : "\n"
        if options.allVCPUs {
            // Upstream's `vcpuN offline` on stdout; where to see what it was doing, on stderr
            // (first, as notes are, live or not).
            let offline = guest.vcpus.filter { !$0.isOnline }.map { "vcpu\($0.id) is offline: give its number instead of -C to see the last context Xen holds for it" }
            if !offline.isEmpty { emit(Output(notes: offline)) }
            var first = true
            for v in guest.vcpus {
                var out: Output
                if v.isOnline {
                    out = vcpuText(v, mode: .context)
                    out.text = "vcpu\(v.id):\n" + out.text + "\n"
                } else {
                    out = Output(text: "vcpu\(v.id) offline\n\n")
                }
                if first { out.text = separator + out.text; first = false }
                emit(out)
            }
        } else if blocks.isEmpty {
            emit(vcpuText(guest.vcpus[vcpu], mode: .context))
        }
    }

    /// Convenience for tests and benchmarks: the whole stdout text and the error lines.
    public func renderAll() throws(SelectionError) -> Output {
        var all = Output()
        try render { out in
            all.text += out.text
            all.errors += out.errors
            all.notes += out.notes
        }
        return all
    }

    enum Mode { case context, memory, dumpAsStack }

    /// One vCPU's block of `mode`: read, then printed.
    func vcpuText(_ v: VCPU, mode: Mode) -> Output {
        VCPUText(report: self, analysis: analyseVCPU(v, mode: mode)).render(mode)
    }

    func describeText() -> String {
        let d = guest.description
        var s = "# guest: \(guestSummary), \(d.wordSize)-byte words\n"
        for e in d.evidence + (guestKindEvidence.map { [$0] } ?? []) { s += "#   evidence: \(e)\n" }
        let start = options.kernelStart ?? guest.defaultKernelStart
        s += "# kernel_start: \(hex(start, width: d.wordSize * 2)) (\(options.kernelStart != nil ? "from -k" : "default for \(d.architecture.rawValue)"))\n"
        if let kernel = options.kernel {
            switch kernel.vmcoreinfo {
            case .success(let l):
                let i = l.info
                s += "# kernel: Linux \(TerminalSafe.escape(i.osRelease))\(i.buildID.map { ", build id \($0)" } ?? ""), page size \(i.pageSize)"
                s += i.kernelOffset.map { ", KERNELOFFSET \(hex($0))" } ?? ""
                s += " (VMCOREINFO)\n"
                s += "# VMCOREINFO: at \(hex(l.address)), found \(l.how); \(l.pagesScanned) pages searched in \(milliseconds(kernel.locateTime))\n"
            case .failure(let e):
                s += "# VMCOREINFO: \(e.reason)\n"
            }
        }
        for f in options.symbolFacts { s += "# \(f)\n" }
        if let k = kernelOffset { s += "# symbols: \(k.describe)\n" }
        if let note = unwindTables.exidxNote { s += "# unwind: \(note)\n" }
        if let orc = unwindTables.orc {
            s += "# unwind: ORC, \(orc.count) entries at \(hex(orc.entries)); " + (orc.format.map { "their flags read as \($0.kernels) (\($0.rawValue), decided from the entries' shape)" }
                ?? "format not known: \(orc.unformatted ?? "not read")") + "\n"
        }
        switch taskLayout {
        case .success(let layout)?:
            s += "# tasks: \(layout.how)\n"
            let clocks = runqueueClocks()
            if !clocks.isEmpty {
                s += "#   runqueue clocks (sched_clock at each CPU's last scheduler update): "
                s += clocks.sorted { $0.key < $1.key }.map { "cpu\($0.key) \(TaskText.seconds($0.value))" }.joined(separator: ", ") + "\n"
            }
            for v in guest.vcpus where v.isOnline {
                switch currentTasks[v.id] {
                case .success(let t)?: s += "#   vcpu\(v.id): current task at \(hex(t.address)), found through \(t.how)\n"
                case .failure(let e)?: s += "#   vcpu\(v.id): no current task: \(e.reason)\n"
                case nil: break
                }
            }
        case .failure(let e)?: s += "# tasks: no task_struct layout: \(e)\n"
        case nil: break
        }
        if let m = modules {
            s += "# modules: \(m.modules.count) loaded (from the `modules` list)" + (m.problems.isEmpty ? "" : "; \(m.problems.count) problems") + "\n"
        }
        for f in guest.facts { s += "# \(f)\n" }
        for w in guest.warnings { s += "# warning: \(w)\n" }
        return s + "\n"
    }
}
