import GuestKernel
import StackWalk
import Symbols

/// What to print, with upstream xenctx's option semantics.
public struct ReportOptions: Sendable {
    public var allVCPUs = false                 // -C
    public var vcpu: Int? = nil                 // [VCPU]
    public var allRegisters = false             // -a
    public var symbols: SystemMap? = nil        // -s
    public var kernelStart: UInt64? = nil       // -k
    public var stackTrace = false               // -S
    public var framePointers = false            // -f
    public var stackPages = 1                   // -n
    public var bytesPerLine = 32                // -b
    public var lines = 5                        // -l
    public var decodeAsASCII = false            // -D
    public var tagStackDump = false             // -t
    public var memoryAddress: UInt64? = nil     // -m
    public var dumpAsStack: UInt64? = nil       // -d
    public var describe = false                 // --describe
    /// `--tasks`, `--tasks --stack`, `--task PID`.
    public var tasks: Report.TaskRequest? = nil
    /// The load offset of `symbols`, decided with them (`SymbolResolution`); nil: detect.
    public var kernelOffset: KernelOffset? = nil
    /// What the guest kernel says about itself (VMCOREINFO), for `--describe`.
    public var kernel: GuestKernel? = nil
    /// Lines for `--describe` about where the symbols came from.
    public var symbolFacts: [String] = []
    /// Absolute symbols of the guest's kallsyms (x86_64 per-CPU variables such as current_task).
    public var absoluteSymbols: [String: UInt64] = [:]
    /// `--unwind scan` given: upstream's output exactly, nothing of ours read from the guest.
    public var upstreamExact = false
    public var unwind: UnwindMethod = .scan      // --unwind
    /// Kernel types from the vmlinux's DWARF (--vmlinux), used when the guest has no BTF.
    public var kernelTypes: (any KernelTypes)? = nil
    /// DWARF lines and inlined frames (--vmlinux with debug info).
    public var sourceLocator: (any SourceLocator)? = nil
    /// DWARF CFI (--vmlinux with .debug_frame/.eh_frame), for --unwind cfi.
    public var cfiUnwinder: (any CFIUnwinder)? = nil

    /// How call traces are found. `scan` is upstream's (every text address on the stack).
    public enum UnwindMethod: String, Sendable, CaseIterable {
        case scan, fp, orc, exidx, cfi, auto
    }

    public init() {}

    /// `-l all` / `max`: upstream's INT_MAX-1.
    public static let maxLines = Int(Int32.max) - 1
}
