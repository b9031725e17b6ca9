#if canImport(Glibc)
import Glibc
#endif
import ELFSymbols
import GuestKernel
import StackWalk
import Symbols
import VCPUContext
import XenctxReport

/// One in-process fuzz target per parser and walker. Each takes the fuzzer's bytes and
/// must return, whatever they are: a trap, an unbounded loop or allocation is a finding.
/// `Scripts/fuzz.sh` runs them under libFuzzer with AddressSanitizer; the tests run each
/// over its seed corpus, so the harness itself is always built and exercised.
public enum FuzzTargets {
    public static let names = ["core", "report", "systemmap", "elf", "vmcoreinfo", "kallsyms", "printk", "pagetables", "unwind", "btf", "tasks", "locators", "printkring", "layouts", "kerneloffset", "cfi"]

    public static func run(_ name: String, _ data: UnsafeRawBufferPointer) {
        switch name {
        case "core": core(data)
        case "report": report(data)
        case "systemmap": systemMap(data)
        case "elf": elf(data)
        case "vmcoreinfo": _ = try? VMCoreInfo(text: Array(data.prefix(VMCoreInfo.maxBytes + 16)))
        case "kallsyms": kallsyms(data)
        case "printk": printk(data)
        case "pagetables": pageTables(data)
        case "unwind": unwind(data)
        case "tasks": tasks(data)
        case "locators": locators(data)
        case "printkring": printkRing(data)
        case "layouts": layouts(data)
        case "kerneloffset": kernelOffset(data)
        case "cfi": cfi(data)
        case "btf":
            guard let btf = try? BTF(bytes: Array(data.prefix(BTF.maxBytes))) else { return }
            // Member paths through arrays and array shapes (6.4's module.mem[]), on any struct.
            _ = btf.offset(of: "mem.size", in: "module"); _ = btf.arrayShape(of: "mem", in: "module")
            _ = btf.arrayShape(of: "comm", in: "task_struct"); _ = btf.offset(of: "thread.sp", in: "task_struct")
            guard let task = btf.structID(named: "task_struct") else { return }
            for m in ["pid", "tgid", "comm", "stack", "thread"] { _ = btf.memberOffset(structID: task, member: m) }
        default: break
        }
    }

    /// The core as a file: headers, notes, contexts, the frame index (and a trimmed core's
    /// zero runs), then each vCPU's registers, its stack pointer by mode and the memory at
    /// its stack and instruction pointers through its own page tables: the reader, fast
    /// enough to fuzz the format itself (`report` runs the whole report over the same cores).
    static func core(_ data: UnsafeRawBufferPointer) {
        guard let core = try? XenCore(file: MappedFile(copying: data, path: "fuzz.core")),
              let guest = try? Guest(core: core) else { return }
        for v in guest.vcpus {
            let choice = StackPointerChoice.choose(v.registers, guest: guest.description)
            let memory = GuestMemory(guest: guest, vcpu: v)
            for at in [v.registers.instructionPointer, choice.address ?? 0] { _ = try? memory.read(at &- 64, count: 256) }
        }
        guard let frames = guest.frames else { return }
        for frame in UInt64(0)..<8 where frames.page(frame) == nil { _ = frames.whyMissing(frame) }
    }

    /// A whole core through the full report (every vCPU, every stack word, exact unwinding,
    /// symbols and VMCOREINFO from its memory) and the views of why it stopped.
    static func report(_ data: UnsafeRawBufferPointer) {
        guard let core = try? XenCore(file: MappedFile(copying: data, path: "fuzz.core")),
              let read = try? Guest(core: core) else { return }
        let guest = Guest(description: read.description, vcpus: read.vcpus, frames: read.frames.map { WhyMissingOnce($0) },
                          warnings: read.warnings, facts: read.facts)
        let kernel = GuestKernel(guest: guest)
        var options = ReportOptions()
        options.allVCPUs = true
        options.stackTrace = true
        options.unwind = .auto
        options.describe = true
        options.tasks = .list(stacks: true)
        options.kernel = kernel
        let resolution = SymbolResolution(guest: guest, kernel: kernel, inputs: SymbolResolution.Inputs())
        options.symbols = resolution.symbols
        options.kernelOffset = resolution.kernelOffset
        let report = Report(guest: guest, options: options)
        _ = try? report.renderAll()
        _ = report.taskText(.list(stacks: true))
        _ = report.moduleText()
        _ = JSONText.render(report.model(Report.ModelRequest(modules: true)))
        if let kernel, case .success(let log) = kernel.log(symbols: resolution.symbols) { _ = LogText.render(log) }
        // Why it stopped: the verdict from the log's events and the vCPUs (--summary), hung
        // tasks with their lock chains (--hung), the memory counters (--meminfo).
        _ = SummaryText.render(report.model(Report.ModelRequest(verdict: true)))
        _ = report.taskText(.hung(seconds: 0))
        _ = report.memInfoText()
    }

    static func systemMap(_ data: UnsafeRawBufferPointer) {
        guard let map = try? SystemMap(bytes: data, path: "fuzz.map") else { return }
        var h = FuzzHeader(data)
        for _ in 0..<8 { _ = map.lookup(h.u64()) }
        _ = map.shifted(by: h.u64()).lookup(h.u64())
    }

    static func elf(_ data: UnsafeRawBufferPointer) {
        _ = try? ELFIdentity(bytes: Array(data))
        // An ELF as --vmlinux reads it: its .symtab read in place (through libelf's section
        // data), names bounds-checked in the string table, the table sorted and searched.
        guard data.count >= 64, data.starts(with: [0x7f, 0x45, 0x4c, 0x46]) else { return }
        let path = "/tmp/xenctx-fuzz-elf-\(getpid())"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        let written = write(fd, data.baseAddress, data.count)
        close(fd)
        defer { unlink(path) }
        guard written == data.count, let elf = try? ELFFile(path: path), let map = try? elf.symbolTable() else { return }
        var h = FuzzHeader(data)
        for _ in 0..<4 { _ = map.lookup(h.u64()) }
        _ = map.addresses(of: ["_start", "_stext", "vmcoreinfo_data"])
    }

    /// The searches by content, over an ARM32 guest's lowmem made of the input (the window
    /// ARM32 and 32-bit x86 search upwards): VMCOREINFO, kallsyms by its token table, BTF by
    /// its header. Each must cost a bounded amount per byte, whatever the memory holds.
    static func locators(_ data: UnsafeRawBufferPointer) {
        let lowmem = FuzzLowmem(data)
        let description = GuestDescription(architecture: .arm32, isPV: false, layout: .arm(entrySize: 352), protectedMode: true,
                                           wordSize: 4, evidence: [])
        let guest = Guest(description: description, vcpus: [], frames: lowmem, warnings: [], facts: [])
        let reader = KernelReader(memory: GuestMemory(frames: lowmem, translation: lowmem.translation), wordSize: 4)
        var kallsyms: Result<KallsymsFinder.Found, KernelDataError>? = nil
        _ = try? VMCoreInfoLocator.locate(guest: guest, reader: reader, kallsyms: &kallsyms)
        if kallsyms == nil { _ = try? KallsymsFinder.locate(guest: guest, reader: reader) }
        _ = try? BTF.locate(guest: guest, reader: reader, symbols: [:])
    }

    /// Memory at a kernel address; the header places the kallsyms tables inside it.
    static let base: UInt64 = 0xffff_ffff_8200_0000

    static func kallsyms(_ data: UnsafeRawBufferPointer) {
        var h = FuzzHeader(data)
        let wordSize = h.u8() & 1 == 0 ? 8 : 4
        let start = wordSize == 8 ? base : 0xc200_0000
        var fields: [UInt64] = []
        for _ in 0..<6 { fields.append(start &+ UInt64(h.u32() & 0xf_ffff)) }
        let memory = FuzzMemory(h.rest, firstFrame: start >> 12)
        let reader = KernelReader(memory: GuestMemory(frames: memory, translation: .identity), wordSize: wordSize)
        let tables = Kallsyms.Tables(numSyms: fields[0], names: fields[1], tokenTable: fields[2], tokenIndex: fields[3],
                                     offsets: fields[4], relativeBase: fields[5])
        if let d = try? Kallsyms.decode(tables: tables, reader: reader, stext: nil),
           let map = try? SystemMap(addresses: d.addresses, types: d.types, nameBytes: d.nameBytes, nameEnds: d.nameEnds, path: "fuzz") {
            _ = map.lookup(h.u64())
            _ = map.addresses(of: ["_stext", "_etext", "init_task"])
        }
        // The content search's proof, from the first run of digit tokens in the input.
        let digits = Array("0\u{0}1\u{0}2\u{0}3\u{0}".utf8)
        let rest = Array(h.rest)
        if let i = rest.indices.first(where: { rest[$0...].starts(with: digits) }) {
            _ = try? KallsymsFinder.tables(digitTokenAt: start &+ UInt64(i), reader: reader)
        }
    }

    /// A printk ring at the start of the memory (Linux 5.10–6.x layout), with the events read from
    /// its records (LogEvents, each oops' [#N] count), and a log_buf.
    static func printk(_ data: UnsafeRawBufferPointer) {
        var h = FuzzHeader(data)
        let wordSize = h.u8() & 1 == 0 ? 8 : 4
        let start: UInt64 = wordSize == 8 ? base : 0xc200_0000
        let memory = FuzzMemory(h.rest, firstFrame: start >> 12)
        let reader = KernelReader(memory: GuestMemory(frames: memory, translation: .identity), wordSize: wordSize)
        let layout = PrintkRing.assumedLayout(prb: start, wordSize: wordSize)
        if let log = try? PrintkRing.readRing(at: start, layout: layout, reader: reader) {
            _ = LogText.render(log)
            // The kernel's words read out of its records: events, and each oops' [#N] count.
            for e in LogEvents.find(in: log.records) { _ = LogEvents.oopsNumber(e.text) }
        }
        let legacy = """
        OSRELEASE=5.4
        PAGESIZE=4096
        SYMBOL(log_buf)=\(hex(start))
        SYMBOL(log_buf_len)=\(hex(start + 8))
        SYMBOL(log_first_idx)=\(hex(start + 12))
        SYMBOL(log_next_idx)=\(hex(start + 16))
        SIZE(printk_log)=16
        OFFSET(printk_log.ts_nsec)=0
        OFFSET(printk_log.len)=8
        OFFSET(printk_log.text_len)=10

        """
        if let info = try? VMCoreInfo(text: Array(legacy.utf8)), let log = try? LegacyLogBuffer.read(vmcoreinfo: info, reader: reader) {
            _ = LogText.render(log)
        }
    }

    /// Every walker over tables from the input (frames 0…), with registers from the header.
    static func pageTables(_ data: UnsafeRawBufferPointer) {
        var h = FuzzHeader(data)
        let kind = h.u8() % 7
        let a = h.u64(), b = h.u64(), c = h.u64()
        var addresses: [UInt64] = []
        for _ in 0..<8 { addresses.append(h.u64()) }
        let memory = FuzzMemory(h.rest, firstFrame: 0)
        let translation: Translation
        switch kind {
        case 0: translation = .x86LongMode(root: a & 0xffff_f000)
        case 1: translation = .x86PAE(root: a & 0xffff_ffe0)
        case 2: translation = .x86TwoLevel(root: a & 0xffff_f000, pse: b & 1 != 0)
        case 3: translation = .armShort(ArmShortDescriptor(ttbcr: a, ttbr0: b & 0xffff_ffff, ttbr1: c & 0xffff_ffff))
        case 4: translation = .armLPAE(ArmLPAE(ttbcr: a, ttbr0: b & 0xffff_f000, ttbr1: c & 0xffff_f000))
        case 5: translation = .aarch64(AArch64Translation(tcr: a, ttbr0: b & 0xffff_f000, ttbr1: c & 0xffff_f000))
        default: translation = .identity
        }
        for va in addresses { _ = try? translation.translate(va, frames: memory) }
        let reader = KernelReader(memory: GuestMemory(frames: memory, translation: translation), wordSize: 8)
        reader.forEachMappedPage(from: addresses[0], to: addresses[0] &+ (64 << 20), descending: b & 2 != 0, maxPages: 256) { _, _ in true }
    }

    /// The unwinders (ORC, EHABI, AArch64 frame records, x86/APCS frame records, Linux's
    /// x86 frame-pointer unwinder) over memory from the input, with tables and registers
    /// placed by the header.
    static func unwind(_ data: UnsafeRawBufferPointer) {
        var h = FuzzHeader(data)
        let which = h.u8() % 6
        // The 32-bit x86 unwinder needs its memory where a 32-bit kernel lives.
        let at: UInt64 = which == 4 ? 0xc100_0000 : base
        var r: [UInt64] = []
        for _ in 0..<6 { r.append(at &+ UInt64(h.u32() & 0x3_ffff)) }
        let memory = GuestMemory(frames: FuzzMemory(h.rest, firstFrame: at >> 12), translation: .identity)
        let text: (UInt64) -> Bool = { $0 >= at && $0 < at + (1 << 18) }
        switch which {
        case 0:
            // The format as the entries show it, and both formats whatever they show.
            let found = ORCUnwinder.Tables(ipTable: r[0], stopIPTable: r[0] &+ (r[1] & 0xfff), entries: r[2], format: nil).detectingFormat(memory: memory)
            var tables = found
            tables.format = found.format ?? (r[1] & 0x1000 == 0 ? .twoBitType : .threeBitType)
            _ = ORCUnwinder(tables: tables, isKernelText: text)
                .unwind(from: .init(ip: r[3], sp: r[4], bp: r[5], r10: r[4], r13: r[5], di: r[4], dx: r[5]), memory: memory)
        case 1:
            let tables = EHABIUnwinder.Tables(start: r[0] & 0xffff_ffff, stop: (r[0] &+ (r[1] & 0xfff)) & 0xffff_ffff)
            _ = EHABIUnwinder(tables: tables, isKernelText: text).unwind(registers: (0..<16).map { r[$0 % 6] }, memory: memory)
            // And the content search for the index, over the same memory.
            let reader = KernelReader(memory: memory, wordSize: 4)
            _ = EHABIIndexFinder.locate(reader: reader, text: [r[2]...(r[2] &+ (r[3] & 0xf_ffff))], from: base, to: base + (1 << 18))
        case 2:
            _ = AArch64FrameUnwinder(vaBits: 48).unwind(pc: r[0], sp: r[1], fp: r[2], memory: memory)
        case 4, 5:
            _ = X86FrameUnwinder(width: which == 4 ? 4 : 8, isKernelText: text).unwind(ip: r[0], sp: r[1], bp: r[2], memory: memory)
        default:
            let layout: FrameRecordLayout = r[3] & 1 == 0 ? .framePointerThenReturn : .apcs
            _ = FrameRecordWalk(width: r[3] & 2 == 0 ? 8 : 4, limit: r[1] &+ 0x4000, layout: layout)
                .walk(memory: memory, sp: r[1], fp: r[2]) { _ in }
        }
    }
}

/// A core's frames with `whyMissing` asked of the core once per input, its answer then
/// repeated: the searches by content (VMCOREINFO, kallsyms, BTF, the printk ring) ask it for
/// every page they miss, up to 2^17 per search, and each answer is the same sentence but
/// for the frame number (the core's kind, its ARM window, its truncation are the core's).
/// What is read, and every branch taken, stays the core's own.
final class WhyMissingOnce: FrameSource, @unchecked Sendable {
    let frames: any FrameSource
    var answer: String? = nil
    init(_ frames: any FrameSource) { self.frames = frames }
    func page(_ frame: UInt64) -> UnsafeRawBufferPointer? { frames.page(frame) }
    func whyMissing(_ frame: UInt64) -> String {
        if let answer { return answer }
        let first = frames.whyMissing(frame)
        answer = first
        return first
    }
    func releaseResidentPages() { frames.releaseResidentPages() }
}
