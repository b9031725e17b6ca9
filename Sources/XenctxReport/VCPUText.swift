import GuestKernel
import StackWalk
import Symbols
import VCPUContext

/// Upstream's text for one vCPU, printed from its analysis: no guest memory is read here.
/// Where upstream gives up at the first unreadable page, so does the text, and the reason
/// goes to the errors (stderr) with the address, level and frame.
struct VCPUText {
    let report: Report
    let analysis: VCPUAnalysis
    var options: ReportOptions { report.options }
    var width: Int { report.guest.description.wordSize }
    var id: Int { analysis.vcpu.id }

    func wordText(_ v: UInt64) -> String {
        hex(v, width: width == 2 ? 4 : width == 4 ? 8 : 16)
    }

    static func suffix(_ symbol: SymbolRef?) -> String { symbol.map { " " + $0.text } ?? "" }

    /// The block of `mode`: for the context, registers, the named registers, the stack
    /// pointer and task, then the memory views.
    func render(_ mode: Report.Mode) -> Report.Output {
        var out = Report.Output()
        if mode == .context {
            out.text += RegisterText(classifier: report.classifier, allRegisters: options.allRegisters).block(analysis.vcpu.registers, architecture: report.guest.description.architecture)
            // Registers holding kernel addresses, named (ours, not upstream's: not with --unwind scan).
            if !options.upstreamExact {
                out.text += analysis.namedRegisters.map { "\($0.name):".padding(8) + " \(hex($0.value, width: width * 2)) \($0.symbol.text)\n" }.joined()
            }
            out.text += stackPointerText(analysis.stackPointer)
            if let task = analysis.task { out.text += "Task: \(TerminalSafe.escape(task.comm)) (pid \(task.pid), tgid \(task.tgid))\n" }
        }
        memory(into: &out)
        return out
    }

    /// `Stack pointer: …` — which register holds the stack and why (not in upstream).
    func stackPointerText(_ choice: StackPointerChoice) -> String {
        let value = choice.address.map { hex($0, width: width * 2) } ?? "none"
        var s = "Stack pointer: \(value) (\(choice.register), \(choice.reason))\n"
        if let note = choice.note { s += "Stack note: \(note)\n" }
        return s
    }

    func memory(into out: inout Report.Output) {
        switch analysis.memory {
        case .none:
            out.errors.append("vcpu\(id): no stack: this core holds no readable guest memory")
        case .context(let code, let outsideText, let stack):
            if let code { guard self.code(code, into: &out) else { return } }
            if let outsideText { out.errors.append("vcpu\(id): no stack or call trace: \(outsideText)") }
            if let stack { self.stack(stack, into: &out) }
        case .memoryDump(let address, let lines, let capped):
            out.text += "Memory (address \(wordText(address))):\n"
            let bpl = options.bytesPerLine
            guard self.lines(lines, bytesPerLine: bpl, into: &out) else { return }
            if capped {
                let lines = VCPUMemoryView.maxMemoryLines
                out.errors.append("-m: stopped after \(lines) lines (\(lines * bpl) bytes); dump further with -m \(wordText(address &+ UInt64(lines * bpl))) -l N")
            }
        case .dumpAsStack(let stack):
            if let stack { self.stack(stack, into: &out) }
        }
    }

    /// `print_code`: 32 bytes from IP-21, the IP's byte in <>. False when a byte could not be read.
    func code(_ code: CodeBytes, into out: inout Report.Output) -> Bool {
        out.text += "Code (instr addr \(hex(code.ip, width: 8)))\n"
        for (i, b) in code.bytes.enumerated() {
            out.text += code.start &+ UInt64(i) == code.ip ? "<\(hex(b, width: 2))> " : "\(hex(b, width: 2)) "
        }
        if let fault = code.fault {
            out.errors.append("vcpu\(id): code bytes: \(fault)")
            return false
        }
        out.text += "\n\n\n"
        return true
    }

    /// `print_lines`' text; false when a word could not be read (upstream leaves that line
    /// unterminated).
    func lines(_ dump: DumpLines, bytesPerLine bpl: Int, into out: inout Report.Output) -> Bool {
        for (i, line) in dump.lines.enumerated() {
            if options.tagStackDump { out.text += wordText(line.address) + ":" }
            for w in line.words { out.text += " " + wordText(w) }
            if i == dump.lines.count - 1, let fault = dump.fault {
                out.errors.append("vcpu\(id): \(fault)")
                return false
            }
            if options.decodeAsASCII {
                let perLine = bpl / width
                if line.words.count < perLine {
                    out.text += String(repeating: " " + String(repeating: " ", count: width * 2), count: perLine - line.words.count)
                }
                out.text += "  "
                for w in line.words {
                    for i in 0..<width {
                        let c = UInt8(truncatingIfNeeded: w >> (8 * UInt64(i)))
                        // isprint in the C locale: 0x20...0x7e. Nothing else reaches the terminal.
                        out.text += (0x20...0x7e).contains(c) ? String(UnicodeScalar(c)) : "."
                    }
                }
            }
            out.text += "\n"
        }
        out.text += "\n"
        return true
    }

    /// `print_stack`: the Stack: block, then the call trace.
    func stack(_ view: StackView, into out: inout Report.Output) {
        if view.isDumpAsStack && view.start >= view.limit {
            // Upstream prints the headers and nothing; say why.
            out.errors.append("vcpu\(id): -d \(wordText(view.start)) is at or above the stack limit \(wordText(view.limit)) (the end of the stack pointer \(wordText(view.stackPointer))'s \(isARM ? "kernel stack" : "page") plus -n pages), so there is nothing to show as a stack: use -m to dump that memory, or -n to widen the window")
        }
        if let dump = view.dump {
            out.text += "Stack:\n"
            let bpl = ((options.bytesPerLine + width - 1) / width) * width
            if !lines(dump, bytesPerLine: bpl, into: &out) {
                // Upstream leaves the line unterminated and prints no trace. The dump's end is
                // reported (exit 1); the trace is still made over the words that were read.
                out.text += out.text.hasSuffix("\n") ? "\n" : "\n\n"
            }
        }
        // Upstream prints no trace in real mode (--json still has the scan).
        guard let trace = view.trace, report.guest.description.protectedMode else { return }
        out.text += options.stackTrace ? "Stack Trace:\n" : "Call Trace:\n"
        if let first = view.first {
            let (inlined, location) = sourceLines(first)
            for line in inlined { out.text += String(repeating: " ", count: width * 2 + 1) + "   [<\(wordText(first.ip))>] \(line)\n" }
            out.text += String(repeating: " ", count: width * 2) + "  \(options.stackTrace ? "*" : " ") [<\(wordText(first.ip))>]\(Self.suffix(first.symbol)) <--\(location)\n"
        }
        switch trace {
        case .exact(let exact): self.exact(exact, into: &out)
        case .framePointers(let walk): framePointers(walk, into: &out)
        case .scan(let regions): scan(regions, into: &out)
        }
    }

    var isARM: Bool { if case .arm = analysis.vcpu.registers { return true } else { return false } }

    /// A frame's DWARF lines as the text shows them: the inlined functions (innermost first)
    /// and ` file:line` of the physical function. Empty without --vmlinux.
    func sourceLines(_ frame: TraceFrame) -> ([String], String) {
        guard let physical = frame.source.last else { return ([], "") }
        func place(_ f: SourceFrame) -> String {
            var file = f.file
            if file.hasPrefix("./") { file.removeFirst(2) }
            return TerminalSafe.escape(file) + ":\(f.line)"
        }
        let inlined = frame.source.dropLast().map { "\(TerminalSafe.escape($0.function)) (inlined) \(place($0))" }
        return (inlined, " " + place(physical))
    }

    /// An exact unwind in upstream's line shape, each frame labelled with how it was found;
    /// with DWARF, `file:line` on each frame and a line per inlined function above it.
    func exact(_ trace: ExactTrace, into out: inout Report.Output) {
        for frame in trace.frames {
            let where_ = frame.slot.map { wordText($0) + ":" } ?? String(repeating: " ", count: width * 2 + 1)
            let (inlined, location) = sourceLines(frame)
            for line in inlined { out.text += String(repeating: " ", count: width * 2 + 1) + "   [<\(wordText(frame.ip))>] \(line)\n" }
            out.text += "\(where_)   [<\(wordText(frame.ip))>]\(Self.suffix(frame.symbol)) (\(frame.how))\(location)\n"
        }
        if !trace.complete {
            out.text += "-- unwind stopped: \(trace.stop) --\n"
        } else if let user = trace.userEntry {
            // The trace reached the kernel entry: where user space was, as the oops prints it.
            out.text += TaskText(report: report).userEntryText(user) + "\n"
        }
        // What the kernel would print marked `?`: the text addresses above the last frame.
        for c in trace.leftovers {
            out.text += "\(wordText(c.slot ?? 0)):   [<\(wordText(c.ip))>] ?\(Self.suffix(c.symbol)) (scan)\n"
        }
        // A trace of the registers alone is no trace: say so, and fail the run.
        if !trace.complete && trace.registersOnly {
            out.errors.append("vcpu\(id): no exact call trace past the registers: \(trace.stop)")
        }
    }

    /// Upstream's scan: each text word (with -S every word), region after region.
    func scan(_ regions: [ScanRegion], into out: inout Report.Output) {
        for region in regions {
            for w in region.words {
                if let text = w.text {
                    out.text += "\(wordText(w.slot)):   [<\(wordText(text))>]\(Self.suffix(w.symbol))\n"
                } else if options.stackTrace {
                    out.text += "\(wordText(w.slot)):     \(wordText(w.value))\n"
                }
            }
            if let fault = region.fault {
                out.errors.append("vcpu\(id): call trace: \(fault)")
                return
            }
            if let next = region.next {
                out.text += "-- \(next.how): continuing on the interrupted stack at \(wordText(next.sp)) --\n"
            }
        }
    }

    /// `-f`'s walk: each return address, with -S the words and saved frame pointers between.
    func framePointers(_ walk: FramePointerWalk, into out: inout Report.Output) {
        for step in walk.steps {
            switch step {
            case .word(let slot, let value): out.text += "\(wordText(slot)): |   \(wordText(value))\n"
            case .savedFramePointer(let slot, let value): out.text += "\(wordText(slot)): |-- \(wordText(value))\n"
            case .returnAddress(let slot, let address, let symbol):
                out.text += "\(wordText(slot)): \(options.stackTrace ? "|" : " ") [<\(wordText(address))>]\(Self.suffix(symbol))\n"
            }
        }
        if let failure = walk.failure { out.errors.append("vcpu\(id): frame pointers: \(failure)"); return }
        if let stop = walk.abnormalStop { out.errors.append("vcpu\(id): frame-pointer walk: \(stop)") }
    }
}
