import VCPUContext

/// A frame produced by an unwinder, with how it was found.
public struct UnwoundFrame: Equatable, Sendable {
    public enum Trust: String, Sendable {
        case registers     // the vCPU's own registers (the first frame)
        case orc           // x86 ORC metadata
        case exidx         // ARM EHABI unwind tables
        case cfi           // DWARF call frame information
        case exceptionRegs = "regs"   // registers saved in an exception/interrupt frame (pt_regs)
        case framePointer = "fp"
        case linkRegister = "lr"   // ARM: a leaf's return address, still in LR (proved by the step after it)
        case callSite = "call"     // x86: a return address whose call instruction targets the function stopped in
        case scan
    }
    /// The instruction address (a return address for frames after the first).
    public let ip: UInt64
    /// The stack pointer of this frame (after the return address was popped).
    public let sp: UInt64
    /// Where the return address was read from, when it came from the stack.
    public let slot: UInt64?
    public let trust: Trust

    public init(ip: UInt64, sp: UInt64, slot: UInt64?, trust: Trust) {
        self.ip = ip
        self.sp = sp
        self.slot = slot
        self.trust = trust
    }
}

/// Why an unwinder stopped, and the frames it produced.
public struct Unwind: Sendable {
    public var frames: [UnwoundFrame]
    public var stop: String
    /// Whether the walk ended where a healthy stack ends (user mode, the outermost frame).
    public var complete: Bool

    public init(frames: [UnwoundFrame], stop: String, complete: Bool) {
        self.frames = frames
        self.stop = stop
        self.complete = complete
    }
}
