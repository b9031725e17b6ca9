/// What the tool knows about one guest architecture, in one place: each architecture is one
/// file (`X86_64Architecture.swift`, …) and `GuestArchitecture.descriptor` is the one
/// decision that picks it. Layers above this module read the capabilities below (how a task
/// is switched out, how `current` is found, which unwinder walks a kernel stack) and switch
/// on them, never on the architecture, so a new architecture is a new file plus the cases
/// the compiler then asks for.
public protocol ArchitectureDescriptor: Sendable {
    var architecture: GuestArchitecture { get }
    /// Bytes in a kernel word: stacks are walked at this width, never the tool's.
    var wordSize: Int { get }
    /// `e_machine` of the architecture's kernels (a `--vmlinux` is checked against it).
    var elfMachine: UInt16 { get }
    /// THREAD_SIZE of the kernels with BTF, without KASAN.
    var kernelStackSize: UInt64 { get }
    /// Bytes the kernel keeps free above the user entry frame at the top of a kernel stack.
    var stackTopPadding: UInt64 { get }
    /// Whether kernel text is told from data only by the symbols (ARM: one kernel half for
    /// both), not by an address window.
    var textOnlyFromSymbols: Bool { get }
    /// `-k`'s default: the lowest kernel virtual address (TCR_EL1 decides it on AArch64).
    func defaultKernelStart(tcr: UInt64?) -> UInt64
    /// Where the kernel image may lie, searched in order for VMCOREINFO, kallsyms and BTF.
    func kernelImageWindows(guest: Guest) -> [KernelImageWindow]
    /// Where the kernel's linear map of RAM may lie.
    func directMap(guest: Guest) -> ClosedRange<UInt64>
    /// Whether an entry frame's saved flags (and, on x86, CS) say the task came from user mode.
    func isUserEntry(flags: UInt64, cs: UInt64?) -> Bool
    var switchFrame: SwitchFrameKind { get }
    var entryFrame: EntryFrameKind { get }
    var currentTask: CurrentTaskSource { get }
    var kernelStackUnwinder: KernelStackUnwinder { get }
    var frameRecords: FrameRecordShape { get }
    /// The kernel's own frame-pointer unwinder (`--unwind fp`), where it has one.
    var framePointerUnwinder: FramePointerUnwinder? { get }
    /// Whether kernel pointers on the stack may carry pointer-authentication bits (arm64).
    var signsReturnAddresses: Bool { get }
    /// Whether a return address is named by its call site only when a call precedes it (ARM
    /// entry code sets LR by hand) rather than always (x86's `%pB`).
    var returnAddressNeedsCallCheck: Bool { get }
    /// Whether per-CPU variables are linked from 0 (x86_64's `__per_cpu_start`) rather than
    /// at their addresses in the image.
    var perCPUFromZero: Bool { get }
    /// Whether an HVM guest may have booted through the PVH entry point (x86), which only
    /// its kernel's `xen_pvh` tells.
    var mayBePVH: Bool { get }
    /// What kind of guest this is, in the words the header and --describe use.
    func summary(isPV: Bool, protectedMode: Bool) -> String
    /// The translation regime a vCPU was using, from its own registers.
    func translation(_ registers: RegisterFile, isPV: Bool) -> Translation
    /// Which register holds the vCPU's stack, and why (its mode, its privilege level).
    func stackPointer(_ registers: RegisterFile, isPV: Bool, protectedMode: Bool) -> StackPointerChoice
    /// Whether the vCPU was running user code: PV x86 by Xen's in-kernel flag, HVM x86 by
    /// CPL 3, ARM by its mode (AArch32 USR, AArch64 EL0).
    func isUserMode(_ registers: RegisterFile, isPV: Bool) -> Bool
}

/// GuestDescription decides the architecture and the context layout together, so a
/// descriptor never meets another architecture's register file; if one did, it would get the
/// file's own stack pointer rule and no translation, not a guess.
func foreignStackPointer(_ registers: RegisterFile) -> StackPointerChoice {
    switch registers {
    case .arm(let r): StackPointerChoice.arm(r)
    case .x86_32(let r): StackPointerChoice.x86_32(r)
    case .x86_64(let r): StackPointerChoice.x86_64(r, pv: false)
    }
}

/// A register file's own rule, for a descriptor that meets another architecture's file.
func foreignIsUserMode(_ registers: RegisterFile, isPV: Bool) -> Bool {
    switch registers {
    case .arm(let r): r.isUserMode
    case .x86_32(let r): r.isUserMode(isPV: isPV)
    case .x86_64(let r): r.isUserMode(isPV: isPV)
    }
}

extension GuestArchitecture {
    /// The descriptor of this architecture: the one place that picks it.
    public var descriptor: any ArchitectureDescriptor {
        switch self {
        case .x86_64: X86_64Architecture()
        case .x86_32: X86_32Architecture()
        case .arm32: ARM32Architecture()
        case .aarch64: AArch64Architecture()
        }
    }
}

/// A range of kernel virtual addresses to search, with the direction that reaches .bss first.
public struct KernelImageWindow: Equatable, Sendable {
    public let start: UInt64, end: UInt64
    public let descending: Bool
    public let name: String
    public init(start: UInt64, end: UInt64, descending: Bool, name: String) {
        (self.start, self.end, self.descending, self.name) = (start, end, descending, name)
    }
}

/// How the kernel saves a task's registers when it switches away from it.
public enum SwitchFrameKind: Sendable {
    /// x86 (both widths): `thread.sp` points at an `inactive_task_frame` {…, bp, ret_addr}.
    case inactiveTaskFrame
    /// arm64: `thread.cpu_context` {x19–x28, fp, sp, pc} in the task.
    case cpuContext
    /// ARM32: `cpu_context_save` {r4–r11, sp, pc} in thread_info (in the task from 5.18,
    /// else at the base of its stack).
    case cpuContextSave
}

/// The registers a task's entry from user mode leaves at the top of its kernel stack.
public enum EntryFrameKind: Sendable {
    /// x86's `pt_regs` {…, ip, cs, flags, sp, ss}.
    case x86PtRegs
    /// arm64's `pt_regs` {…, sp, pc, pstate, …, stackframe}.
    case arm64PtRegs
    /// ARM32's `pt_regs` { uregs[18] }: pc is uregs[15], sp [13], cpsr [16].
    case arm32Uregs
}

/// How the kernel finds the task running on a CPU.
public enum CurrentTaskSource: Sendable {
    /// The per-CPU `current_task` (or `pcpu_hot.current_task`) at `__per_cpu_offset[cpu]`.
    case perCPUVariable
    /// SP_EL0, which holds `current` while the CPU is in the kernel.
    case spEL0
    /// Not saved in the vCPU context (ARM32's TPIDRURO): the task whose stack holds SP_svc.
    case stackOfSVCStackPointer
}

/// The exact unwinder for a kernel stack, from a vCPU's registers or a switched-out task.
public enum KernelStackUnwinder: Sendable {
    /// The kernel's ORC tables (x86_64).
    case orc
    /// The kernel's EHABI index (ARM32).
    case ehabi
    /// Frame records {fp, lr}, which AArch64 Linux always keeps.
    case frameRecords
    /// The kernel's own frame-pointer unwinder (32-bit x86 has no ORC).
    case framePointers
}

/// The kernel's frame-pointer unwinder.
public enum FramePointerUnwinder: Sendable {
    /// x86 (both widths): encoded frame pointers and `pt_regs` at interrupts and exceptions.
    case x86
    /// AArch64's frame records, across the IRQ and overflow stacks.
    case frameRecords
}

/// The shape of a frame record, for `-f`.
public enum FrameRecordShape: Sendable {
    /// {caller's frame pointer, return address}, the frame pointer at the record.
    case framePointerThenReturn
    /// GCC's APCS frame on 32-bit ARM: {fp, sp, lr, pc} below the frame pointer.
    case apcs
}
