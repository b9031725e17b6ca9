import VCPUContext

/// AArch64 frame-record unwinding as Linux's arm64 `unwind_frame` does it: from
/// {x29, pc}, each record is {caller's x29, return address}; the entry code stores a
/// record in every pt_regs holding the interrupted pc, so exceptions unwind naturally.
///
/// Records may move from one stack to another (IRQ stack → task stack, SDEI/overflow
/// stacks) but, as in the kernel, never back to a stack already left; within a stack
/// they must move up. Stacks are the `stackSize`-aligned blocks the records lie in.
public struct AArch64FrameUnwinder {
    public let stackSize: UInt64
    public let vaBits: Int
    public let maxFrames: Int

    public init(stackSize: UInt64 = 16384, vaBits: Int, maxFrames: Int = 256) {
        self.stackSize = stackSize
        self.vaBits = vaBits
        self.maxFrames = maxFrames
    }

    public func unwind(pc: UInt64, sp: UInt64, fp: UInt64, memory: some StackMemory) -> Unwind {
        var frames = [UnwoundFrame(ip: pc, sp: sp, slot: nil, trust: .registers)]
        var frame = fp
        var stack = fp & ~(stackSize - 1)
        var left: Set<UInt64> = []
        while frames.count < maxFrames {
            if frame == 0 { return Unwind(frames: frames, stop: "end of the frame chain", complete: true) }
            if frame % 16 != 0 { return Unwind(frames: frames, stop: "frame pointer \(hex(frame)) is misaligned", complete: false) }
            let next: UInt64, ret: UInt64
            do {
                next = try memory.word(frame, width: 8)
                ret = stripPointerAuthentication(try memory.word(frame &+ 8, width: 8), vaBits: vaBits)
            } catch {
                return Unwind(frames: frames, stop: error.description, complete: false)
            }
            // The outermost record of a task (pt_regs of an EL0 entry) is {0, 0}.
            if next == 0 && ret == 0 { return Unwind(frames: frames, stop: "end of the frame chain", complete: true) }
            frames.append(UnwoundFrame(ip: ret, sp: frame &+ 16, slot: frame &+ 8, trust: .framePointer))
            if next == 0 { return Unwind(frames: frames, stop: "end of the frame chain", complete: true) }
            let nextStack = next & ~(stackSize - 1)
            if nextStack == stack {
                guard next > frame else {
                    return Unwind(frames: frames, stop: "frame pointer \(hex(next)) does not move up the stack (a cycle?)", complete: false)
                }
            } else {
                guard !left.contains(nextStack) else {
                    return Unwind(frames: frames, stop: "frame pointer \(hex(next)) returns to a stack already left", complete: false)
                }
                left.insert(stack)
                stack = nextStack
            }
            frame = next
        }
        return Unwind(frames: frames, stop: "stopped after \(maxFrames) frames", complete: false)
    }
}
