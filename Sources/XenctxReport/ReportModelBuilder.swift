import GuestKernel
import StackWalk
import Symbols
import VCPUContext

/// Builds `ReportModel` from the same analysis the text report prints. Every string from
/// the guest or a file is escaped (`TerminalSafe`) first, so the JSON holds no control
/// character the output gate would have to rewrite.
extension Report {
    /// Why a core without guest memory has no tasks, modules or log: one wording for the
    /// text's stderr and the JSON's errors.
    public static let noMemory = (
        tasks: "no tasks: this core holds no guest memory (registers only); a complete core (xenctx-swift --save-core) has them",
        modules: "no modules: this core holds no guest memory (registers only); a complete core (xenctx-swift --save-core) has them",
        log: "no kernel log: this core holds no guest memory (registers only); a complete core (xenctx-swift --save-core) has it")

    public struct ModelRequest: Sendable {
        public var modules = false
        public var log: KernelLog? = nil
        /// Whether to say why the guest stopped (reads the log when `log` is not given).
        public var verdict = false
        /// Whether to add up the guest's memory counters (`--meminfo`).
        public var memory = false
        public init(modules: Bool = false, log: KernelLog? = nil, verdict: Bool = false, memory: Bool = false) {
            self.modules = modules
            self.memory = memory
            self.log = log
            self.verdict = verdict
        }
    }

    public func model(_ request: ModelRequest = ModelRequest(), errors: [String] = []) -> ReportModel {
        let d = guest.description
        let w = d.wordSize * 2
        let facts = ReportModel.GuestFacts(architecture: d.architecture.rawValue, wordSize: d.wordSize, paravirtualized: d.isPV,
                                           summary: guestSummary, kernelStart: hex(options.kernelStart ?? guest.defaultKernelStart, width: w),
                                           evidence: (d.evidence + (guestKindEvidence.map { [$0] } ?? [])).map { TerminalSafe.escape($0) })
        var kernel: ReportModel.KernelFacts? = nil
        if options.kernel != nil || options.symbols != nil {
            let info = try? options.kernel?.vmcoreinfo.get().info
            var types: String? = nil
            switch taskLayout {
            case .success(let l)?: types = l.how
            case .failure(let e)?: types = "none: \(e)"
            case nil: break
            }
            kernel = ReportModel.KernelFacts(release: info.map { TerminalSafe.escape($0.osRelease) }, buildID: info?.buildID,
                                             kernelOffset: kernelOffset.map { hex($0.offset, width: w) },
                                             symbols: (options.symbolFacts + (kernelOffset.map { [$0.describe] } ?? [])).map { TerminalSafe.escape($0) },
                                             types: types.map { TerminalSafe.escape($0) })
        }
        // Each vCPU read once: its model and the text's problems come from the same analysis.
        let analyses = guest.vcpus.map { analyseVCPU($0, mode: .context) }
        var model = ReportModel(tool: "xenctx-swift", guest: facts, kernel: kernel, vcpus: analyses.map(vcpuModel), errors: errors)
        // How long each vCPU's task has run since it was scheduled in (a lockup's measure).
        if let layout = try? taskLayout?.get(), let offset = layout.lastArrival, let reader = KernelReader(guest: guest) {
            let clocks = runqueueClocks()
            for i in model.vcpus.indices {
                let id = model.vcpus[i].id
                guard case .success(let t)? = currentTasks[id], let arrival = try? reader.u64(t.address &+ UInt64(offset)),
                      let ns = Report.since(arrival, onCPU: id, clocks: clocks) else { continue }
                model.vcpus[i].task?.runningFor = Double(ns) / 1e9
            }
        }
        // What the text says about each vCPU's block (an unreadable stack, an exact trace
        // cut short), in the text's words and order.
        for a in analyses where a.vcpu.isOnline { model.errors += VCPUText(report: self, analysis: a).render(.context).errors }
        let noMemory = guest.frames == nil
        let view = options.tasks.map { taskView($0) }
        if noMemory, options.tasks != nil { model.errors.append(Report.noMemory.tasks) }
        else if case .failure(let e)? = view { model.errors.append("no task list: \(e)") }
        if case .success(let view)? = view {
            let list = view.list
            model.errors += list.problems.map { "task list: \($0)" }
            var shown = list.tasks
            var withStacks = Set(view.stacks.keys)
            switch view.hung {
            case .success(let hung)?:
                // Only the hung tasks (their chains' owners were read for the text's chains).
                withStacks = Set(hung.tasks.map(\.task.address))
                shown = shown.filter { withStacks.contains($0.address) }
            case .failure(let e)?:
                model.errors.append("\(e)")
                withStacks = []
                shown = []
            case nil: break
            }
            let byAddress = Dictionary(list.tasks.map { ($0.address, $0) }) { a, _ in a }
            model.tasks = shown.map { t in
                var entry = ReportModel.TaskEntry(address: hex(t.address, width: w), pid: Int(t.pid), tgid: Int(t.tgid), ppid: t.ppid.map(Int.init),
                                                  state: t.state, cpu: t.cpu, onCPU: t.onCPU, runningOnVCPU: vcpuRunning(t),
                                                  kernelThread: t.isKernelThread, comm: TerminalSafe.escape(t.comm), trace: nil, userEntry: nil)
                entry.sinceScheduled = Report.sinceScheduled(t, clocks: view.clocks).map { Double($0) / 1e9 }
                if withStacks.contains(t.address), let s = view.stacks[t.address] {
                    entry.trace = taskTraceModel(s)
                    if s.unwind == nil { entry.noTrace = s.note.map { TerminalSafe.escape($0) } }
                    entry.userEntry = s.userEntry.map { userModel($0) }
                    if case .success(let lock)? = s.lock {
                        let pid = { (a: UInt64) in byAddress[a].map { Int($0.pid) } }
                        entry.waitsFor = ReportModel.LockWaitEntry(kind: lock.kind.rawValue, lock: hex(lock.lock, width: w), owner: lock.owner.flatMap(pid),
                                                                   readerOwned: lock.readerOwned, waiters: lock.waiters.compactMap(pid))
                    }
                }
                return entry
            }
        }
        // What the text report says on stderr about modules, JSON says in `errors`.
        if request.modules, noMemory { model.errors.append(Report.noMemory.modules) }
        else if request.modules, modules == nil { model.errors.append("no module list: \(modulesMissing ?? "not read")") }
        if request.modules, let list = modules {
            model.errors += list.problems.map { "modules: \($0)" }
            model.modules = list.modules.map { m in
                ReportModel.ModuleEntry(name: TerminalSafe.escape(m.name), address: hex(m.address, width: w), base: hex(m.base, width: w),
                                        size: Int(m.size), symbols: m.symbols.count)
            }
        }
        if request.memory {
            switch memInfo() {
            case .success(let m):
                model.memory = ReportModel.Memory(kB: Dictionary(m.lines, uniquingKeysWith: { a, _ in a }),
                                                  lastOOMKill: lastOOMKill()?.1.map { logEntry($0) })
                model.errors += m.missing.map { "memory: \($0)" }
            case .failure(let e): model.errors.append("no memory summary: \(e.reason)")
            }
        }
        if request.verdict {
            let log: Result<KernelLog, KernelDataError>? = request.log.map { .success($0) } ?? options.kernel.map { $0.log(symbols: options.symbols) }
            model.verdict = verdict(vcpus: model.vcpus, log: log)
        }
        if let log = request.log {
            model.log = log.records.map { logEntry($0) }
        }
        return model
    }

    func logEntry(_ r: LogRecord) -> ReportModel.LogEntry {
        ReportModel.LogEntry(time: Double(r.timestamp) / 1e9, level: r.level, caller: r.caller,
                             text: TerminalSafe.escape(String(decoding: r.text, as: UTF8.self), allowTab: true, allowNewline: true))
    }

    func userModel(_ u: UserEntry) -> ReportModel.UserRegisters {
        let w = guest.description.wordSize * 2
        return ReportModel.UserRegisters(ip: hex(u.ip, width: w), sp: hex(u.sp, width: w), flags: hex(u.flags, width: 8),
                                         cs: u.cs.map { hex($0, width: 4) }, ss: u.ss.map { hex($0, width: 4) })
    }

    func taskTraceModel(_ s: TaskStack) -> ReportModel.Trace? {
        guard let unwind = s.unwind else { return nil }
        let w = guest.description.wordSize * 2
        let frames = s.frames.map { f in
            ReportModel.Frame(address: hex(f.frame.ip, width: w), symbol: f.symbol, how: f.how,
                              reliable: true, slot: f.frame.slot.map { hex($0, width: w) }, source: nil)
        }
        return ReportModel.Trace(method: unwind.frames.dropFirst().first?.trust.rawValue ?? "registers", complete: unwind.complete,
                                 stop: unwind.complete ? nil : TerminalSafe.escape(unwind.stop), frames: frames)
    }

    func vcpuModel(_ a: VCPUAnalysis) -> ReportModel.VCPUEntry {
        let v = a.vcpu
        let w = guest.description.wordSize * 2
        var entry = ReportModel.VCPUEntry(id: v.id, online: v.isOnline, state: v.isOnline ? "kernel" : "offline", at: nil,
                                          registers: registerValues(v), namedRegisters: [], stackPointer: nil, task: nil, trace: nil, userEntry: nil)
        let task = a.task.map { t in ReportModel.TaskRef(address: hex(t.address, width: w), pid: Int(t.pid), tgid: Int(t.tgid), comm: TerminalSafe.escape(t.comm)) }
        guard v.isOnline else {
            // Its last context, which -C leaves out as upstream does: where it went down
            // (x86-run9-pvh64's vCPU 1: in stop_this_cpu, stopped by the panic).
            let (state, at) = VCPUState.classifyContext(v, guest: guest, trace: classifiedBy(traceModel(a), v))
            entry.at = at.map { "last context: \(state) \($0)" } ?? "last context: \(state)"
            entry.lastState = state
            // Taken down by a panic's stop (6.12 x86 PV's stop_self): the CPU's current task
            // is the one it ran until then, which a lockup's measure needs.
            if state == "stopped" { entry.task = task }
            return entry
        }
        entry.namedRegisters = a.namedRegisters.map { ReportModel.NamedRegister(register: $0.name, value: hex($0.value, width: w), symbol: $0.symbol.text) }
        let choice = a.stackPointer
        entry.stackPointer = ReportModel.StackPointer(address: choice.address.map { hex($0, width: w) }, register: choice.register,
                                                      reason: choice.reason, note: choice.note)
        entry.task = task
        entry.trace = traceModel(a)
        if case .context(_, _, let stack?) = a.memory, case .exact(let exact)? = stack.trace {
            entry.userEntry = exact.userEntry.map { userModel($0) }
        }
        (entry.state, entry.at) = VCPUState.classify(v, guest: guest, trace: classifiedBy(entry.trace, v))
        return entry
    }

    /// The vCPU's call trace as values, from the analysis the text prints: the exact unwind
    /// (and, when it stopped early, the scanned leftovers, unreliable), upstream's
    /// frame-pointer walk (-f, unreliable) or its scan. Nil where no trace was read.
    func traceModel(_ a: VCPUAnalysis) -> ReportModel.Trace? {
        guard case .context(_, _, let stack?) = a.memory, let first = stack.first, let trace = stack.trace else { return nil }
        let w = guest.description.wordSize * 2
        func frame(_ f: TraceFrame) -> ReportModel.Frame {
            ReportModel.Frame(address: hex(f.ip, width: w), symbol: f.symbol, how: f.how, reliable: f.reliable, slot: f.slot.map { hex($0, width: w) },
                              source: f.source.isEmpty ? nil : f.source.map {
                                  ReportModel.SourceLine(function: TerminalSafe.escape($0.function), file: TerminalSafe.escape($0.file), line: $0.line, inlined: $0.inlined)
                              })
        }
        switch trace {
        case .exact(let e):
            return ReportModel.Trace(method: e.method.rawValue, complete: e.complete, stop: e.complete ? nil : TerminalSafe.escape(e.stop),
                                     frames: ([first] + e.frames + e.leftovers).map(frame))
        case .scan(let regions):
            let scanned = regions.flatMap { r in
                r.words.compactMap { word in
                    word.text.map { TraceFrame(ip: $0, slot: word.slot, symbol: word.symbol, how: "scan", reliable: false, source: []) }
                }
            }
            return ReportModel.Trace(method: "scan", complete: false, stop: nil, frames: ([first] + scanned).map(frame))
        case .framePointers(let walk):
            let found = walk.steps.compactMap { step -> TraceFrame? in
                guard case .returnAddress(let slot, let address, let symbol) = step else { return nil }
                return TraceFrame(ip: address, slot: slot, symbol: symbol, how: "fp", reliable: false, source: [])
            }
            let stop = walk.failure.map { "\($0)" } ?? walk.abnormalStop
            return ReportModel.Trace(method: "fp", complete: false, stop: stop.map { TerminalSafe.escape($0) }, frames: ([first] + found).map(frame))
        }
    }

    /// The frames a vCPU's state is read from: its trace, or without a reliable one (a
    /// registers-only core) what the registers themselves name.
    func classifiedBy(_ trace: ReportModel.Trace?, _ v: VCPU) -> ReportModel.Trace? {
        trace?.frames.contains(where: \.reliable) == true ? trace : registerFrames(v)
    }

    /// The PC and, on ARM, the current mode's link register (the caller, or where a leaf
    /// returns to), as frames to classify a vCPU by when no stack could be read.
    func registerFrames(_ v: VCPU) -> ReportModel.Trace? {
        var addresses = [v.registers.instructionPointer]
        if case .arm(let r) = v.registers, let lr = r.kernelLinkRegister { addresses.append(lr) }
        let w = guest.description.wordSize * 2
        let frames = addresses.filter { classifier.classify($0) == .text }.map { ip in
            ReportModel.Frame(address: hex(ip, width: w), symbol: classifier.symbol(ip, kind: .text), how: "registers",
                              reliable: true, slot: nil, source: nil)
        }
        return frames.isEmpty ? nil : ReportModel.Trace(method: "registers", complete: false, stop: nil, frames: frames)
    }

    /// Each register by the name upstream's block gives it, as hexadecimal.
    func registerValues(_ v: VCPU) -> [String: String] {
        var out: [String: String] = [:]
        func put(_ name: String, _ value: UInt64, _ width: Int) { out[name] = hex(value, width: width) }
        switch v.registers {
        case .x86_64(let r):
            let w = guest.description.wordSize * 2
            let names = w == 16 ? ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"]
                                : ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "", "", "", "", "", "", "", "", "eip", "eflags"]
            let values = [r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags]
            for (n, value) in zip(names, values) where !n.isEmpty { put(n, w == 16 ? value : value & 0xffff_ffff, w) }
            for (n, value) in [("cs", r.cs), ("ss", r.ss), ("ds", r.ds), ("es", r.es), ("fs", r.fs), ("gs", r.gs)] { put(n, UInt64(value), 4) }
            for (i, value) in r.ctrlreg.enumerated() where [0, 2, 3, 4].contains(i) { put("cr\(i)", value, 16) }
        case .x86_32(let r):
            for (n, value) in [("eax", r.eax), ("ebx", r.ebx), ("ecx", r.ecx), ("edx", r.edx), ("esi", r.esi), ("edi", r.edi),
                               ("ebp", r.ebp), ("esp", r.esp), ("eip", r.eip), ("eflags", r.eflags)] { put(n, UInt64(value), 8) }
            for (n, value) in [("cs", r.cs), ("ss", r.ss), ("ds", r.ds), ("es", r.es), ("fs", r.fs), ("gs", r.gs)] { put(n, UInt64(value), 4) }
        case .arm(let r) where r.isAArch32State:
            for i in 0..<13 { put("r\(i)_usr", UInt64(r.r(i)), 8) }
            for i in 8..<13 { put("r\(i)_fiq", UInt64(r.rFIQ(i)), 8) }
            put("pc", UInt64(r.pc32), 8); put("cpsr", r.cpsr, 8)
            for (n, value) in [("sp_usr", r.spUSR), ("lr_usr", r.lrUSR), ("sp_svc", r.spSVC), ("lr_svc", r.lrSVC), ("sp_irq", r.spIRQ), ("lr_irq", r.lrIRQ),
                               ("sp_abt", r.spABT), ("lr_abt", r.lrABT), ("sp_und", r.spUND), ("lr_und", r.lrUND), ("sp_fiq", r.spFIQ), ("lr_fiq", r.lrFIQ),
                               ("spsr_svc", r.spsrSVC), ("spsr_irq", r.spsrIRQ), ("spsr_abt", r.spsrABT), ("spsr_und", r.spsrUND), ("spsr_fiq", r.spsrFIQ)] {
                put(n, UInt64(value), 8)
            }
            put("sctlr", r.sctlr, 8); put("ttbcr", r.ttbcr, 16); put("ttbr0", r.ttbr0, 16); put("ttbr1", r.ttbr1, 16)
        case .arm(let r):
            for i in 0..<31 { put("x\(i)", r.x[i], 16) }
            put("pc", r.pc, 16); put("cpsr", r.cpsr, 8); put("sp_el0", r.spEL0, 16); put("sp_el1", r.spEL1, 16)
            put("elr_el1", r.elrEL1, 16); put("spsr_el1", r.spsrEL1, 8)
            put("sctlr", r.sctlr, 8); put("ttbcr", r.ttbcr, 16); put("ttbr0", r.ttbr0, 16); put("ttbr1", r.ttbr1, 16)
        }
        return out
    }
}
