import VCPUContext

/// x86 frame-pointer unwinding as Linux's `CONFIG_UNWINDER_FRAME_POINTER` does it
/// (arch/x86/kernel/unwind_frame.c): the only exact unwinder a 32-bit x86 kernel has.
///
/// Each frame is {caller's bp, return address} at bp. Exception and interrupt entry code
/// stores an *encoded* pointer to its pt_regs in bp instead (`ENCODE_FRAME_POINTER`):
/// on x86_64 the address with bit 0 set, on 32-bit the address with bit 31 cleared, which
/// no kernel frame (at 0xc0000000 and up) has — except while the kernel still runs at
/// physical addresses (early boot), so an encoded pointer whose pt_regs cannot be read but
/// whose plain frame can is taken as plain. The walk then reads the interrupted ip and
/// bp from the pt_regs, and ends at pt_regs of user mode. A syscall's pt_regs is not
/// encoded: it sits at the top of the task's stack, just above the last frame.
///
/// The walk is bounded: frames move up within a stack, may move to another stack (IRQ
/// stack → task stack) but never back to one already left, and are capped in number.
public struct X86FrameUnwinder {
    /// The pt_regs of one word size (arch/x86/include/asm/ptrace.h).
    public struct PtRegs: Sendable {
        public let size: UInt64, bp: UInt64, ip: UInt64, cs: UInt64, flags: UInt64, sp: UInt64
        /// 32-bit: bx cx dx si di bp ax ds es fs gs orig_ax ip cs flags sp ss (4 bytes each).
        public static let x86_32 = PtRegs(size: 68, bp: 20, ip: 48, cs: 52, flags: 56, sp: 60)
        /// 64-bit: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip cs flags sp ss.
        public static let x86_64 = PtRegs(size: 168, bp: 32, ip: 128, cs: 136, flags: 144, sp: 152)
    }

    public let width: Int
    public let regs: PtRegs
    /// THREAD_SIZE: task stacks (and 32-bit IRQ stacks) are blocks of this size, so aligned.
    public let stackSize: UInt64
    /// TOP_OF_KERNEL_STACK_PADDING: bytes above a task's pt_regs (8 on 32-bit, 0 on x86_64).
    public let topPadding: UInt64
    public let maxFrames: Int
    /// Whether an address is kernel text (a return address outside text ends the walk).
    public let isKernelText: (UInt64) -> Bool

    /// `stackSize` and `topPadding` are the guest's THREAD_SIZE and the bytes kept free above
    /// pt_regs (the architecture's descriptor says them); by default Linux's for the width.
    public init(width: Int, stackSize: UInt64? = nil, topPadding: UInt64? = nil, maxFrames: Int = 256, isKernelText: @escaping (UInt64) -> Bool) {
        self.width = width == 4 ? 4 : 8
        regs = width == 4 ? .x86_32 : .x86_64
        self.stackSize = stackSize ?? (width == 4 ? 8192 : 16384)
        self.topPadding = topPadding ?? (width == 4 ? 8 : 0)
        self.maxFrames = maxFrames
        self.isKernelText = isKernelText
    }

    /// The pt_regs an encoded frame pointer names, or nil for a plain frame pointer.
    func decodedRegs(_ bp: UInt64) -> UInt64? {
        if width == 4 { return bp & 0x8000_0000 == 0 ? bp | 0x8000_0000 : nil }
        return bp & 1 == 1 ? bp & ~1 : nil
    }

    /// The syscall pt_regs at the top of the task stack that `address` lies in.
    func taskRegs(_ address: UInt64) -> UInt64 {
        (address & ~(stackSize - 1)) &+ stackSize &- topPadding &- regs.size
    }

    /// Whether a frame at `bp` is a task's outermost one, right below its syscall pt_regs
    /// (or three words lower when GCC realigned the stack and copied the return address).
    func isLastTaskFrame(_ bp: UInt64, memory: some StackMemory) -> Bool {
        let w = UInt64(width), last = taskRegs(bp) &- 2 * w
        if bp == last { return true }
        guard bp == last &- 3 * w else { return false }
        let copied = try? memory.word(bp &+ w, width: width), original = try? memory.word(last &+ w, width: width)
        return copied != nil && copied == original
    }

    func isUserMode(_ base: UInt64, memory: some StackMemory) throws(MemoryFault) -> Bool {
        let cs = try memory.word(base &+ regs.cs, width: width) & 0xffff
        // vm86 (EFLAGS.VM) is user mode too on 32-bit.
        let vm = width == 4 ? try memory.word(base &+ regs.flags, width: width) & 0x2_0000 != 0 : false
        return cs & 3 != 0 || vm
    }

    public func unwind(ip: UInt64, sp: UInt64, bp: UInt64, memory: some StackMemory) -> Unwind {
        let w = UInt64(width)
        var frames = [UnwoundFrame(ip: ip, sp: sp, slot: nil, trust: .registers)]
        // Where the walk is: a plain frame at `frame`, or a pt_regs at `frame` (isRegs).
        var frame = bp, isRegs = false, started = false
        var stack: UInt64 = 0
        var left: Set<UInt64> = []
        do throws(MemoryFault) {
            while frames.count < maxFrames {
                let next: UInt64
                if !started {
                    next = bp
                } else if isRegs {
                    next = try memory.word(frame &+ regs.bp, width: width)
                } else {
                    if isLastTaskFrame(frame, memory: memory) {
                        let base = taskRegs(frame)
                        // A kthread's stack ends in partial regs with nothing to show.
                        guard try isUserMode(base, memory: memory) else { return done(frames, "end of the kernel stack") }
                        return done(frames, "reached user mode (the syscall's registers at \(hex(base)))")
                    }
                    next = try memory.word(frame, width: width)
                }
                if next == 0 { return done(frames, "end of the frame chain") }
                // An encoded pointer names pt_regs the walk can read; early boot code runs on
                // physical addresses below 0x80000000, whose plain frames merely look encoded.
                var regsBase = decodedRegs(next)
                if let base = regsBase, (try? memory.word(base &+ regs.ip, width: width)) == nil,
                   (try? memory.word(next &+ w, width: width)) != nil {
                    regsBase = nil
                }
                let target = regsBase ?? next
                let length = regsBase == nil ? 2 * w : regs.size
                if target % w != 0 { return stop(frames, "frame pointer \(hex(next)) is misaligned") }
                // The frame must lie inside one stack block and move up within it.
                let block = target & ~(stackSize - 1)
                guard (target &+ length &- 1) & ~(stackSize - 1) == block else {
                    return stop(frames, "frame at \(hex(target)) crosses the end of its stack")
                }
                if started && block == stack {
                    let previousEnd = frame &+ (isRegs ? regs.size : 2 * w)
                    guard target >= previousEnd else {
                        return stop(frames, "frame pointer \(hex(next)) does not move up the stack (a cycle?)")
                    }
                } else if started {
                    guard !left.contains(block) else {
                        return stop(frames, "frame pointer \(hex(next)) returns to a stack already left")
                    }
                    left.insert(stack)
                }
                stack = block
                started = true
                frame = target
                isRegs = regsBase != nil
                let found: UnwoundFrame
                if let base = regsBase {
                    if try isUserMode(base, memory: memory) { return done(frames, "reached user mode (registers at \(hex(base)))") }
                    let at = try memory.word(base &+ regs.ip, width: width)
                    // Linux 5.3+ completes a 32-bit kernel-mode frame with sp and ss too (FIXUP_FRAME).
                    found = UnwoundFrame(ip: at, sp: try memory.word(base &+ regs.sp, width: width), slot: base &+ regs.ip, trust: .exceptionRegs)
                } else {
                    let at = try memory.word(target &+ w, width: width)
                    found = UnwoundFrame(ip: at, sp: target &+ 2 * w, slot: target &+ w, trust: .framePointer)
                }
                guard isKernelText(found.ip) else {
                    return stop(frames, "return address \(hex(found.ip)) at \(hex(found.slot ?? 0)) is not kernel text")
                }
                frames.append(found)
            }
            return stop(frames, "stopped after \(maxFrames) frames")
        } catch {
            return stop(frames, error.description)
        }
    }

    func done(_ frames: [UnwoundFrame], _ why: String) -> Unwind { Unwind(frames: frames, stop: why, complete: true) }
    func stop(_ frames: [UnwoundFrame], _ why: String) -> Unwind { Unwind(frames: frames, stop: why, complete: false) }
}
