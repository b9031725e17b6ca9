import VCPUContext

/// The registers a task saved when the scheduler switched it out: where its stack
/// trace starts while it is not running.
public struct SavedContext: Sendable, Equatable {
    /// The return address into the scheduler (x86_64 `ret_addr`; arm64 `cpu_context.pc`).
    public let ip: UInt64
    public let sp: UInt64
    /// The frame pointer (x86_64 rbp, arm64 x29, ARM32 r11).
    public let fp: UInt64
    /// ARM32: r4…r11 as saved (EHABI may restore any of them), by register number.
    public var calleeSaved: [Int: UInt64] = [:]
}

/// The user-mode registers saved in the `pt_regs` at the top of a task's kernel stack
/// when it entered the kernel (a system call, an interrupt or a fault from user space).
public struct UserEntry: Sendable, Equatable {
    public let ip: UInt64, sp: UInt64, flags: UInt64
    /// x86_64: the code and stack segment selectors (0033 / 002b in 64-bit mode).
    public let cs: UInt64?, ss: UInt64?

    public init(ip: UInt64, sp: UInt64, flags: UInt64, cs: UInt64?, ss: UInt64?) {
        self.ip = ip; self.sp = sp; self.flags = flags; self.cs = cs; self.ss = ss
    }
}

extension KernelTask {
    /// Linux's kernel stack size (THREAD_SIZE) for the architectures with BTF, without KASAN.
    public static func threadSize(_ architecture: GuestArchitecture) -> UInt64 { architecture.descriptor.kernelStackSize }

    /// The context saved by the last switch away from this task. Stale for a task that is
    /// running: its registers are its vCPU's.
    public func savedContext(reader: KernelReader, layout: TaskLayout) throws(KernelDataError) -> SavedContext {
        func read(_ what: String, _ va: UInt64) throws(KernelDataError) -> UInt64 {
            do { return try reader.word(va) } catch { throw KernelDataError("saved context of pid \(pid)", "\(what) unreadable: \(error)") }
        }
        switch layout.switchFrame {
        case .x86(let threadSP, let frameSize, let bp, let ret)?:
            let frame = try read("thread.sp", address &+ UInt64(threadSP))
            return SavedContext(ip: try read("inactive_task_frame.ret_addr", frame &+ UInt64(ret)),
                                sp: frame &+ UInt64(frameSize), fp: try read("inactive_task_frame.bp", frame &+ UInt64(bp)))
        case .aarch64(let fp, let sp, let pc)?:
            return SavedContext(ip: try read("cpu_context.pc", address &+ UInt64(pc)), sp: try read("cpu_context.sp", address &+ UInt64(sp)),
                                fp: try read("cpu_context.fp", address &+ UInt64(fp)))
        case .arm32(let context, let inStack, let r4, let sp, let pc)?:
            // thread_info is in the task (5.18+) or at the base of the task's stack.
            let info: UInt64
            if inStack {
                guard let base = stackBase, base != 0 else { throw KernelDataError("saved context of pid \(pid)", "no stack for its thread_info") }
                info = base
            } else {
                info = address
            }
            let ctx = info &+ UInt64(context)
            var saved: [Int: UInt64] = [:]
            for (i, reg) in (4...11).enumerated() { saved[reg] = try read("cpu_context.r\(reg)", ctx &+ UInt64(r4 + 4 * i)) }
            return SavedContext(ip: try read("cpu_context.pc", ctx &+ UInt64(pc)), sp: try read("cpu_context.sp", ctx &+ UInt64(sp)),
                                fp: saved[11] ?? 0, calleeSaved: saved)
        case nil:
            throw KernelDataError("saved context of pid \(pid)", "the kernel's types give no switch frame for this architecture")
        }
    }

    /// The user registers at the top of the kernel stack, when the task entered the
    /// kernel from user mode; nil for kernel threads or when the frame says kernel mode.
    public func userEntry(reader: KernelReader, layout: TaskLayout, architecture: GuestArchitecture) -> UserEntry? {
        guard !isKernelThread, let base = stackBase, base != 0, let regs = layout.entryRegisters else { return nil }
        // ARM32 keeps 8 bytes free above pt_regs (THREAD_START_SP = THREAD_SIZE - 8), and so
        // does 32-bit x86 (TOP_OF_KERNEL_STACK_PADDING, without CONFIG_VM86).
        let descriptor = architecture.descriptor
        let at = base &+ descriptor.kernelStackSize &- UInt64(regs.size) &- descriptor.stackTopPadding
        func word(_ offset: Int?) -> UInt64? { offset.flatMap { try? reader.word(at &+ UInt64($0)) } }
        guard let ip = word(regs.ip), let sp = word(regs.sp), let flags = word(regs.flags) else { return nil }
        let cs = word(regs.cs)
        guard descriptor.isUserEntry(flags: flags, cs: cs) else { return nil }
        return UserEntry(ip: ip, sp: sp, flags: flags, cs: cs.map { $0 & 0xffff }, ss: word(regs.ss).map { $0 & 0xffff })
    }
}
