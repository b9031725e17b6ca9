import GuestKernel
import StackWalk
import Symbols
import VCPUContext

/// Everything one vCPU's block shows, read once from guest memory: the text report, `--json`
/// and `--summary` print it (`VCPUText`, `ReportModel`), and no printer reads guest memory.
/// Each part keeps where and why reading stopped.
struct VCPUAnalysis: Sendable {
    let vcpu: VCPU
    let stackPointer: StackPointerChoice
    /// Registers holding kernel addresses with a symbol (link registers by their call site).
    let namedRegisters: [NamedRegister]
    let task: CurrentTask?
    let memory: VCPUMemory

    struct NamedRegister: Sendable {
        let name: String
        let value: UInt64
        let symbol: SymbolRef
    }
}

/// What a vCPU's view read from guest memory, by the view asked for.
enum VCPUMemory: Sendable {
    /// A core without guest memory.
    case none
    /// The default view: code bytes (x86), then the stack and its trace when the IP is
    /// kernel text. `outsideText` names a privileged vCPU whose PC is in no kernel text.
    case context(code: CodeBytes?, outsideText: String?, stack: StackView?)
    /// `-m`: `lines` from `address`; `capped` when -l asked for more than is dumped.
    case memoryDump(address: UInt64, lines: DumpLines, capped: Bool)
    /// `-d`: the stack view from that address (nil without a stack pointer to bound it).
    case dumpAsStack(StackView?)
}

/// `print_code`'s 32 bytes from IP-21; reading stops at the first unreadable byte.
struct CodeBytes: Sendable {
    let ip: UInt64
    let start: UInt64
    let bytes: [UInt8]
    let fault: MemoryFault?
}

/// Words laid out as upstream's `print_lines` reads them: line by line from the start, up to
/// a limit and a line count. A word that could not be read ends the dump mid-line.
struct DumpLines: Sendable {
    struct Line: Sendable {
        let address: UInt64
        var words: [UInt64]
    }
    var lines: [Line] = []
    /// The address of the word that could not be read, and why.
    var stoppedAt: UInt64? = nil
    var fault: MemoryFault? = nil
}

/// A `Stack:` dump and the call trace that follows it.
struct StackView: Sendable {
    let start: UInt64
    let stackPointer: UInt64
    let limit: UInt64
    let isDumpAsStack: Bool
    /// Nil with `-l 0`.
    let dump: DumpLines?
    /// The IP's own frame (not for `-d`, which starts nowhere in particular).
    let first: TraceFrame?
    /// Read in real mode too, where upstream prints none.
    let trace: TraceAnalysis?
}

/// One frame of a call trace: its address, symbol, how it was found, where on the stack it
/// was read, and with DWARF its source lines (innermost, inlined, first).
struct TraceFrame: Sendable {
    let ip: UInt64
    let slot: UInt64?
    let symbol: SymbolRef?
    let how: String
    let reliable: Bool
    let source: [SourceFrame]
}

/// How the call trace was found, with what each way produced.
enum TraceAnalysis: Sendable {
    /// The kernel's own metadata (or frame records): frames after the IP's, then, if it
    /// stopped early, the text addresses left on the stack above it (unreliable).
    case exact(ExactTrace)
    /// `-f` (upstream's frame-pointer walk), with `-S` the words between the records.
    case framePointers(FramePointerWalk)
    /// Upstream's scan, one region per stack (ARM follows an IRQ stack's switch).
    case scan([ScanRegion])
}

struct ExactTrace: Sendable {
    let method: ReportOptions.UnwindMethod
    let complete: Bool
    let stop: String
    /// Frames after the first (the registers' own).
    let frames: [TraceFrame]
    let leftovers: [TraceFrame]
    /// Where user space was, when the unwind reached the kernel's entry.
    let userEntry: UserEntry?
    /// Only the registers' own frame: no trace, a failure to report.
    let registersOnly: Bool
}

struct FramePointerWalk: Sendable {
    enum Step: Sendable {
        /// `-S`: a word between records.
        case word(slot: UInt64, value: UInt64)
        case savedFramePointer(slot: UInt64, value: UInt64)
        case returnAddress(slot: UInt64, address: UInt64, symbol: SymbolRef?)
    }
    var steps: [Step] = []
    /// Why the walk ended early (reading a word, or a bound), or nil.
    var failure: MemoryFault? = nil
    /// The walk's own end, when it is not a normal one.
    var abnormalStop: String? = nil
}

struct ScanRegion: Sendable {
    struct Word: Sendable {
        let slot: UInt64
        let value: UInt64
        /// The value as a text address (AArch64 PAC bits stripped) with its symbol, when it is one.
        let text: UInt64?
        let symbol: SymbolRef?
    }
    var words: [Word] = []
    var fault: MemoryFault? = nil
    /// The interrupted stack this region's frames lead to, and how it was found.
    var next: (sp: UInt64, how: String)? = nil
}
