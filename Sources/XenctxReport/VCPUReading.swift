import GuestKernel
import StackWalk
import Symbols
import VCPUContext

/// Reads a vCPU's memory views from guest memory into `VCPUMemory` values: code bytes,
/// the `Stack:` words, the call trace, `-m` and `-d`, each as far as upstream's
/// `print_code`, `print_stack`, `print_lines` and `print_mem` read, and where and why
/// reading stopped. `VCPUText` and the report model print them.
struct VCPUMemoryView {
    let report: Report
    let vcpu: VCPU
    let memory: GuestMemory
    let width: Int
    let ip: UInt64
    /// The stack pointer the dump starts at and the stack limit derives from.
    let sp: UInt64?
    let fp: UInt64
    let isARM: Bool
    var options: ReportOptions { report.options }
    /// The report's, taken once: a stack view asks for it per word, and each ask of the
    /// report's lazy facts is an atomic load. Nil for -m, which names nothing.
    let symbols: KernelAddressClassifier?
    var classifier: KernelAddressClassifier { _read { if let symbols { yield symbols } else { yield report.classifier } } }

    init(report: Report, vcpu: VCPU, stackPointer choice: StackPointerChoice, mode: Report.Mode? = nil) {
        self.report = report
        self.vcpu = vcpu
        symbols = mode == .memory ? nil : report.classifier
        let guest = report.guest
        memory = GuestMemory(guest: guest, vcpu: vcpu)
        width = guest.description.wordSize
        switch vcpu.registers {
        case .x86_64(let r):
            if guest.description.protectedMode {
                ip = guest.description.wordSize == 8 ? r.rip : r.rip & 0xffff_ffff
                sp = guest.description.wordSize == 8 ? r.rsp : r.rsp & 0xffff_ffff
            } else {
                ip = (UInt64(r.cs) << 4) &+ r.rip      // upstream adds the segment, NONPROT_MODE_SEGMENT_SHIFT
                sp = (UInt64(r.ss) << 4) &+ r.rsp
            }
            fp = guest.description.wordSize == 8 ? r.rbp : r.rbp & 0xffff_ffff
            isARM = false
        case .x86_32(let r):
            ip = UInt64(r.eip); sp = UInt64(r.esp); fp = UInt64(r.ebp)
            isARM = false
        case .arm(let r):
            ip = r.isAArch32State ? UInt64(r.pc32) : r.pc
            // Exception modes: Linux's frames are on the SVC stack (see StackPointerChoice).
            sp = choice.fallback ?? choice.address
            fp = r.isAArch32State ? UInt64(r.r(11)) : r.x[29]
            isARM = true
        }
    }

    /// What the tool knows about the guest's architecture.
    var descriptor: any ArchitectureDescriptor { report.guest.description.architecture.descriptor }

    func wordText(_ v: UInt64) -> String {
        hex(v, width: width == 2 ? 4 : width == 4 ? 8 : 16)
    }

    func sym(_ a: UInt64) -> String { classifier.symbolSuffix(a, kind: .text) }

    /// Strips AArch64 PAC/tag bits from a kernel-half pointer; other guests' words pass through.
    func stripPAC(_ w: UInt64) -> UInt64 {
        guard report.guest.description.architecture.descriptor.signsReturnAddresses, width == 8, (w >> 55) & 1 == 1 else { return w }
        let vaBits = report.guest.kernelVABits
        guard (12...52).contains(vaBits), w >> UInt64(vaBits) != ~UInt64(0) >> UInt64(vaBits) else { return w }
        return stripPointerAuthentication(w, vaBits: vaBits)
    }

    /// The view `mode` asks for, read from guest memory.
    func analyse(_ mode: Report.Mode) -> VCPUMemory {
        switch mode {
        case .context:
            guard memory.frames != nil else { return .none }
            let code = isARM ? nil : codeBytes()
            guard !report.guest.description.protectedMode || classifier.classify(ip) >= .text else {
                return .context(code: code, outsideText: privilegedOutsideText(), stack: nil)
            }
            // Read even when the code bytes were not (the text stops there, as upstream;
            // --json still shows the trace).
            return .context(code: code, outsideText: nil, stack: sp.map { stackView(start: $0, stackPointer: $0, isDumpAsStack: false) })
        case .memory:
            guard let address = options.memoryAddress else { return .none }
            // -l max would dump gigabytes (upstream: INT_MAX lines, until memory ends).
            let bpl = options.bytesPerLine   // upstream rounds only in print_stack
            let lineCount = min(options.lines, Self.maxMemoryLines)
            let (span, overflow1) = UInt64(lineCount).multipliedReportingOverflow(by: UInt64(bpl))
            let (end, overflow2) = address.addingReportingOverflow(span)
            let lines = readLines(from: address, limit: overflow1 || overflow2 ? ~0 : end, bytesPerLine: bpl)
            return .memoryDump(address: address, lines: lines, capped: options.lines > Self.maxMemoryLines)
        case .dumpAsStack:
            guard let address = options.dumpAsStack else { return .none }
            return .dumpAsStack(sp.map { stackView(start: address, stackPointer: $0, isDumpAsStack: true) })
        }
    }

    /// An ARM vCPU in the kernel whose PC is in no kernel text gets no stack or trace, as a
    /// vCPU in user mode does — but that is a gap to name, not a normal view: where it is
    /// (the high vector page: an exception whose handler could not be fetched, a recursive
    /// abort) and which stack the interrupted code was on.
    func privilegedOutsideText() -> String? {
        guard case .arm(let r) = vcpu.registers else { return nil }
        if r.isAArch32State {
            let mode = r.cpsr & 0x1f
            guard mode != 0x10 else { return nil }       // USR: user space, nothing missing
            let name = AArch32Mode(rawValue: mode).map { "\($0)".uppercased() } ?? String(mode, radix: 16)
            let pc = UInt64(r.pc32)
            let vectors = ["reset", "undefined instruction", "supervisor call", "prefetch abort", "data abort", "(unused)", "IRQ", "FIQ"]
            let at = (0xffff_0000..<0xffff_0020).contains(pc)
                ? "the \(vectors[Int((pc - 0xffff_0000) / 4)]) vector of the high vector page: an exception whose handler it could not fetch, taken again and again (a recursive abort)"
                : "in no kernel text the symbols name"
            return "the vCPU is in \(name) mode, PC \(hex(pc, width: 8)) is \(at); the interrupted kernel stack is sp_svc \(hex(UInt64(r.spSVC), width: 8)) (-d \(hex(UInt64(r.spSVC), width: 8)) dumps it)"
        }
        guard (r.cpsr >> 2) & 3 == 1 else { return nil }  // EL0: user space
        return "the vCPU is at EL1 but its PC \(hex(ip, width: 16)) is in no kernel text the symbols name"
    }

    /// `print_code`'s bytes: 32 from IP-21, up to the first unreadable one.
    func codeBytes() -> CodeBytes {
        let start = ip &- 21
        var bytes: [UInt8] = []
        for i in 0..<UInt64(32) {
            do { bytes.append(try memory.byte(start &+ i)) } catch {
                return CodeBytes(ip: ip, start: start, bytes: bytes, fault: error)
            }
        }
        return CodeBytes(ip: ip, start: start, bytes: bytes, fault: nil)
    }

    /// Upper bound of the stack: upstream's end of SP's page plus n-1 pages on x86; on ARM
    /// the top of the kernel stack (THREAD_SIZE-aligned: 8 KiB on ARM32, 16 KiB on arm64)
    /// plus n-1 pages, since Linux's ARM stacks are not page-sized.
    func stackLimit(stackPointer: UInt64) -> UInt64 {
        let extra = UInt64(max(0, min(options.stackPages, 65536) - 1)) * 4096
        if isARM {
            let threadSize = descriptor.kernelStackSize
            return ((stackPointer & ~(threadSize - 1)) &+ threadSize) &+ extra
        }
        return ((stackPointer &+ 4096) & ~4095) &+ extra
    }

    var bytesPerLine: Int { ((options.bytesPerLine + width - 1) / width) * width }

    /// At most this many lines of -m (4 MiB at 64 bytes a line).
    static let maxMemoryLines = 65536

    /// `print_lines`' reading: `options.lines` lines of `bpl` bytes from `start`, stopping at
    /// `limit`, at the top of the address space, or at a word that cannot be read.
    func readLines(from start: UInt64, limit: UInt64, bytesPerLine bpl: Int) -> DumpLines {
        var out = DumpLines()
        var address = start
        var line = 1
        while line <= options.lines && address < limit {
            var current = DumpLines.Line(address: address, words: [])
            // Near the top of the address space the line's end would wrap: saturate it.
            let (end, wraps) = start.addingReportingOverflow(UInt64(line) &* UInt64(bpl))
            let lineEnd = wraps ? UInt64.max : end
            let before = address
            var wrapped = false
            while !wrapped && address < limit && address < lineEnd {
                do { current.words.append(try memory.word(address, width: width)) } catch {
                    out.lines.append(current)
                    out.stoppedAt = address
                    out.fault = error
                    return out
                }
                (address, wrapped) = address.addingReportingOverflow(UInt64(width))
            }
            out.lines.append(current)
            line += 1
            // The top of the address space reached, or a line that read nothing: done.
            if wrapped || address == before { break }
        }
        return out
    }

    /// `print_stack`'s reading: the Stack: words, then the call trace by the exact unwinder,
    /// frame pointers (-f) or upstream's scan, over the words the dump could read.
    func stackView(start: UInt64, stackPointer: UInt64, isDumpAsStack: Bool) -> StackView {
        let limit = stackLimit(stackPointer: stackPointer)
        let dump = options.lines > 0 ? readLines(from: start, limit: limit, bytesPerLine: bytesPerLine) : nil
        let traceLimit = dump?.stoppedAt ?? limit
        let first = isDumpAsStack ? nil : frame(ip, slot: nil, symbol: classifier.symbol(ip, kind: .text), how: "registers", reliable: true, isReturn: false)
        let trace: TraceAnalysis
        if !isDumpAsStack, let method = exactMethod(options.unwind), let unwind = exactUnwind() {
            trace = .exact(exactTrace(unwind, method: method))
        } else if options.framePointers {
            trace = .framePointers(framePointerWalk(stackPointer: stackPointer, limit: traceLimit))
        } else {
            trace = .scan(scanRegions(from: start, limit: traceLimit, followSwitches: isARM && !isDumpAsStack))
        }
        return StackView(start: start, stackPointer: stackPointer, limit: limit, isDumpAsStack: isDumpAsStack, dump: dump, first: first, trace: trace)
    }

    /// A frame with its DWARF source lines (a return address looked up by its call).
    func frame(_ ip: UInt64, slot: UInt64?, symbol: SymbolRef?, how: String, reliable: Bool, isReturn: Bool) -> TraceFrame {
        var source: [SourceFrame] = []
        if reliable, let locator = options.sourceLocator {
            source = locator.frames(at: ip &- (report.kernelOffset?.offset ?? 0) &- (isReturn ? 1 : 0))
        }
        return TraceFrame(ip: ip, slot: slot, symbol: symbol, how: how, reliable: reliable, source: source)
    }

    func exactTrace(_ unwind: Unwind, method: ReportOptions.UnwindMethod) -> ExactTrace {
        let frames = unwind.frames.dropFirst().map { f in
            frame(f.ip, slot: f.slot, symbol: frameSymbolRef(f), how: f.trust.rawValue, reliable: true, isReturn: isReturnAddress(f))
        }
        let leftovers = unreliableCandidates(after: unwind).map { c in
            TraceFrame(ip: c.address, slot: c.slot, symbol: report.returnAddressSymbol(c.address, memory: memory), how: "scan", reliable: false, source: [])
        }
        return ExactTrace(method: method, complete: unwind.complete, stop: unwind.stop, frames: frames, leftovers: leftovers,
                          userEntry: unwind.complete ? report.userEntry(vcpu: vcpu.id) : nil, registersOnly: unwind.frames.count <= 1)
    }

    /// The exact unwind, by the method resolved once; nil when none applies.
    /// `method` overrides --unwind (task stacks are always exact).
    func exactUnwind(method: ReportOptions.UnwindMethod? = nil) -> Unwind? {
        exactMethod(method ?? options.unwind).flatMap { method in
            switch method {
            case .orc: return orcTrace()
            case .fp:
                switch report.guest.description.architecture.descriptor.framePointerUnwinder {
                case .x86?: return x86FrameTrace()
                case .frameRecords?: return aarch64Trace()
                case nil: return nil
                }
            case .exidx: return exidxTrace()
            case .cfi: return cfiTrace()
            case .scan, .auto: return nil
            }
        }
    }

    /// The exact unwinder asked for (`--unwind orc`) or the best available (`auto`).
    func exactMethod(_ asked: ReportOptions.UnwindMethod) -> ReportOptions.UnwindMethod? {
        let descriptor = report.guest.description.architecture.descriptor
        switch asked {
        case .orc: return .orc
        case .exidx: return .exidx
        case .cfi: return .cfi
        case .auto:
            if orcTables() != nil { return .orc }
            if exidxTables() != nil { return .exidx }
            // AArch64 Linux always keeps frame records; a 32-bit x86 kernel has no ORC, and
            // its only exact unwinder is frame pointers (Debian's 686-pae: UNWINDER_FRAME_POINTER).
            switch descriptor.kernelStackUnwinder {
            case .frameRecords: return .fp
            case .framePointers: return width == 4 ? .fp : nil
            case .orc, .ehabi: return nil          // their tables were not found
            }
        case .fp:
            switch descriptor.framePointerUnwinder {
            case .frameRecords?: return .fp
            case .x86?: return width >= 4 ? .fp : nil
            case nil: return nil
            }
        case .scan:
            // AArch64 Linux always keeps frame records: -f walks them across stacks. On x86
            // -f stays upstream's walk.
            return options.framePointers && descriptor.framePointerUnwinder == .frameRecords ? .fp : nil
        }
    }

    func orcTables() -> ORCUnwinder.Tables? { report.unwindTables.orc }

    func orcTrace() -> Unwind? {
        guard let tables = orcTables(), case .x86_64(let r) = vcpu.registers else { return nil }
        let symbols = classifier.symbols
        let unwinder = ORCUnwinder(tables: tables, moduleTables: report.unwindTables.moduleORC,
                                   functionStart: { symbols?.lookup($0)?.symbol.address }) { classifier.classify($0) >= .text }
        let start = ORCUnwinder.Registers(ip: r.rip, sp: r.rsp, bp: r.rbp, r10: r.r10, r13: r.r13, di: r.rdi, dx: r.rdx)
        return unwinder.unwind(from: start, memory: memory)
    }

    func exidxTables() -> EHABIUnwinder.Tables? { report.unwindTables.exidx }

    func exidxTrace() -> Unwind? {
        guard let tables = exidxTables(), case .arm(let r) = vcpu.registers, r.isAArch32State else { return nil }
        // r0-r12 (FIQ banks r8-r12), then the SP and LR of the mode the stack was taken from.
        let fiq = r.cpsr & 0x1f == 0x11
        var regs = (0..<13).map { UInt64(fiq && $0 >= 8 ? r.rFIQ($0) : r.r($0)) }
        let (spReg, lrReg) = AArch32Mode(rawValue: r.cpsr & 0x1f).flatMap { r.banked($0) } ?? (r.spUSR, r.lrUSR)
        regs += [UInt64(spReg), UInt64(lrReg), UInt64(r.pc32)]
        let unwinder = EHABIUnwinder(tables: tables, stackSize: descriptor.kernelStackSize) { classifier.classify($0) >= .text }
        return report.endingAtEntry(unwinder.unwind(registers: regs, memory: memory))
    }

    /// DWARF CFI through the vmlinux's own unwinder (elfutils), guest memory supplied to it.
    func cfiTrace() -> Unwind? {
        guard let cfi = options.cfiUnwinder else { return nil }
        guard (report.kernelOffset?.offset ?? 0) == 0 else {
            return Unwind(frames: [], stop: "CFI needs the kernel at its link address (this one is relocated by KASLR)", complete: false)
        }
        let regs: [UInt64], pc: UInt64
        switch vcpu.registers {
        case .x86_64(let r) where width == 8:
            regs = [r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15]
            pc = r.rip
        case .arm(let r) where !r.isAArch32State:
            regs = r.x + [sp ?? r.spEL1]
            pc = r.pc
        case .arm(let r):
            // The LR banked with the chosen stack pointer's mode (SVC's was taken in every mode).
            let lr = AArch32Mode(rawValue: r.cpsr & 0x1f).flatMap { r.banked($0) }?.lr ?? r.lrSVC
            regs = (0..<13).map { UInt64(r.r($0)) } + [sp ?? 0, UInt64(lr), UInt64(r.pc32)]
            pc = UInt64(r.pc32)
        default:
            return nil
        }
        let w = width
        let (pcs, stop) = cfi.unwindCFI(registers: regs, pc: pc, maxFrames: 256) { [memory] a in try? memory.word(a, width: w) }
        var frames = pcs.enumerated().map { UnwoundFrame(ip: $0.element, sp: 0, slot: nil, trust: $0.offset == 0 ? .registers : .cfi) }
        if frames.isEmpty { frames = [UnwoundFrame(ip: pc, sp: 0, slot: nil, trust: .registers)] }
        return Unwind(frames: frames, stop: stop.isEmpty ? "end of the CFI chain" : stop, complete: stop.isEmpty)
    }

    /// Linux's x86 frame-pointer unwinder (pt_regs through encoded frame pointers).
    func x86FrameTrace() -> Unwind? {
        guard !isARM, width >= 4, report.guest.description.protectedMode else { return nil }
        let unwinder = X86FrameUnwinder(width: width, stackSize: descriptor.kernelStackSize, topPadding: descriptor.stackTopPadding) { classifier.classify($0) >= .text }
        return unwinder.unwind(ip: ip, sp: sp ?? 0, bp: fp, memory: memory)
    }

    func aarch64Trace() -> Unwind? {
        guard case .arm(let r) = vcpu.registers, !r.isAArch32State else { return nil }
        return AArch64FrameUnwinder(stackSize: descriptor.kernelStackSize, vaBits: report.guest.kernelVABits).unwind(pc: r.pc, sp: sp ?? 0, fp: r.x[29], memory: memory)
    }

    func frameSymbolRef(_ frame: UnwoundFrame) -> SymbolRef? {
        isReturnAddress(frame) ? report.returnAddressSymbol(frame.ip, memory: memory) : classifier.symbol(frame.ip, kind: .text)
    }

    /// Frames after the first hold return addresses, except registers saved at an exception.
    func isReturnAddress(_ frame: UnwoundFrame) -> Bool { frame.trust != .exceptionRegs && frame.trust != .registers }

    /// After an exact unwind that stopped early: the text addresses left on the stack above
    /// its last frame (at most 64), which the kernel would print marked `?`.
    func unreliableCandidates(after unwind: Unwind) -> [(slot: UInt64, address: UInt64)] {
        guard !unwind.complete, let last = unwind.frames.last, last.sp != 0 else { return [] }
        var address = (last.slot.map { $0 &+ UInt64(width) } ?? last.sp)
        address = (address &+ UInt64(width - 1)) & ~UInt64(width - 1)
        let limit = stackLimit(stackPointer: address)
        var found: [(UInt64, UInt64)] = []
        while address < limit && found.count < 64 {
            guard let w = try? memory.word(address, width: width) else { break }
            let candidate = stripPAC(w)
            if classifier.classify(candidate) >= .text { found.append((address, candidate)) }
            address &+= UInt64(width)
        }
        return found
    }

    /// Upstream's default: every word in [start, limit), each text address named. With
    /// `followSwitches` (ARM), an IRQ stack's region is followed by the interrupted task's
    /// stack, where an oops backtrace's frames are (ARM32 `call_with_stack`, arm64
    /// `call_on_irq_stack`), at most 3 times.
    func scanRegions(from start: UInt64, limit: UInt64, followSwitches: Bool) -> [ScanRegion] {
        var regions: [ScanRegion] = []
        var bounds = (start: start, limit: limit)
        var visited: [UInt64] = []
        for _ in 0..<4 {
            visited.append(bounds.limit)
            var region = ScanRegion()
            var address = bounds.start
            while address < bounds.limit {
                let w: UInt64
                do { w = try memory.word(address, width: width) } catch {
                    region.fault = error
                    break
                }
                // AArch64 return addresses may carry pointer-authentication bits; they are
                // named stripped, as the kernel's own backtrace does.
                let candidate = stripPAC(w)
                let isText = classifier.classify(candidate) >= .text
                region.words.append(ScanRegion.Word(slot: address, value: w, text: isText ? candidate : nil,
                                                    symbol: isText ? classifier.symbol(candidate, kind: .text) : nil))
                address &+= UInt64(width)
            }
            if followSwitches, region.fault == nil, let next = interruptedStack(start: bounds.start, limit: bounds.limit),
               !visited.contains(stackLimit(stackPointer: next.sp)) {
                region.next = next
            }
            regions.append(region)
            guard let next = region.next else { break }
            bounds = (next.sp, stackLimit(stackPointer: next.sp))
        }
        return regions
    }

    /// Where the stack that `[start, limit)` interrupted continues, if it was an IRQ stack.
    func interruptedStack(start: UInt64, limit: UInt64) -> (sp: UInt64, how: String)? {
        let regionBase = limit &- descriptor.kernelStackSize
        func inRegion(_ a: UInt64) -> Bool { a >= regionBase && a < limit }
        var words: [UInt64] = []
        var a = start
        while a < limit, let w = try? memory.word(a, width: width) { words.append(w); a &+= UInt64(width) }
        let names = Set(words.compactMap { classifier.symbols?.lookup($0)?.symbol.name })
        if width == 8, names.contains("call_on_irq_stack") {
            // arm64: the frame-record chain leaves the IRQ stack for the task stack.
            var frame = fp
            for _ in 0..<256 where inRegion(frame) {
                guard let saved = try? memory.word(frame, width: 8) else { return nil }
                if !inRegion(saved) { return saved != 0 ? (saved, "call_on_irq_stack") : nil }
                guard saved > frame else { return nil }
                frame = saved
            }
            return nil
        }
        if width == 4, names.contains("call_with_stack") {
            // ARM32: call_with_stack keeps the old SP in the frame register, which the IRQ
            // handler saved on this stack; it pushed {fp, lr} just below it. Take the lowest
            // saved pointer outside this stack and the kernel image with a return address
            // (kernel text) in the word below it.
            let image = classifier.symbols.map { ($0.text, $0.end ?? $0.text) }
            let candidates = words.filter { w in
                w % 4 == 0 && !inRegion(w) && w >= classifier.kernelStart &&
                !(image.map { w >= $0.0 && w <= $0.1 } ?? false) &&
                    (try? memory.word(w &- 4, width: 4)).map { classifier.classify($0) >= .text } == true
            }
            guard let lowest = candidates.min() else { return nil }
            return (lowest &- 8, "call_with_stack")
        }
        return nil
    }

    /// `-f`: the frame-record chain from the frame pointer, with -S every word between.
    func framePointerWalk(stackPointer: UInt64, limit: UInt64) -> FramePointerWalk {
        // Upstream's -S loop reads the record at its position when the frame pointer is
        // below it; reproduce that (it still only moves up, so the walk stays bounded).
        // 32-bit ARM Linux frame pointers are GCC APCS frames; the others are {fp, return}.
        let layout: FrameRecordLayout
        switch descriptor.frameRecords {
        case .apcs: layout = .apcs
        case .framePointerThenReturn: layout = .framePointerThenReturn
        }
        let vaBits = report.guest.kernelVABits
        let walker = FrameRecordWalk(width: width, limit: limit, layout: layout,
                                     frameBelowPosition: options.stackTrace ? .usePosition : .stop,
                                     upstreamChecks: !isARM,
                                     cleanReturnAddress: descriptor.signsReturnAddresses ? { stripPointerAuthentication($0, vaBits: vaBits) } : { $0 })
        var walk = FramePointerWalk()
        var position = stackPointer
        let stop = walker.walk(memory: memory, sp: stackPointer, fp: fp) { record in
            if walk.failure != nil { return }
            if options.stackTrace {
                // Upstream prints every word up to the next record, as far as it can read
                // (a wild frame pointer: to the end of the stack's pages); at most 1 MiB of
                // words here, where upstream would go on for gigabytes.
                let first = position
                while position < record.savedFramePointerSlot {
                    guard position &- first < 1 << 20 else {
                        walk.failure = MemoryFault(address: record.address, reason: "frame pointer \(hex(record.address)) is more than 1 MiB above the stack position \(hex(first)); stopped printing the words between after 1 MiB")
                        return
                    }
                    guard let w = try? memory.word(position, width: width) else {
                        walk.failure = MemoryFault(address: position, reason: "unreadable stack word (on the way to frame pointer \(hex(record.address)))")
                        return
                    }
                    walk.steps.append(.word(slot: position, value: w))
                    position &+= UInt64(width)
                }
                walk.steps.append(.savedFramePointer(slot: record.savedFramePointerSlot, value: record.savedFramePointer))
            }
            if let ret = record.returnAddress {
                walk.steps.append(.returnAddress(slot: record.returnAddressSlot, address: ret, symbol: classifier.symbol(ret, kind: .text)))
                position = record.returnAddressSlot &+ UInt64(width)
            } else {
                position = record.savedFramePointerSlot &+ UInt64(width)
            }
        }
        if walk.failure == nil, !stop.isNormal { walk.abnormalStop = "\(stop)" }
        return walk
    }
}

extension Report {
    /// One vCPU's block, read once: what every printer of it shows.
    func analyseVCPU(_ v: VCPU, mode: Mode) -> VCPUAnalysis {
        let choice = StackPointerChoice.choose(v.registers, guest: guest.description)
        let view = VCPUMemoryView(report: self, vcpu: v, stackPointer: choice, mode: mode)
        var task: CurrentTask? = nil
        // Only the context names the task (-m and -d need no kernel facts).
        if mode == .context, case .success(let t)? = currentTasks[v.id] { task = t }
        let named = mode == .context ? namedRegisters(v) : []
        return VCPUAnalysis(vcpu: v, stackPointer: choice, namedRegisters: named, task: task, memory: view.analyse(mode))
    }
}
