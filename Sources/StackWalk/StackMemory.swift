import VCPUContext

/// What the walkers need from guest memory: words at virtual addresses.
/// `GuestMemory` is the real one; tests use arrays.
public protocol StackMemory {
    func word(_ address: UInt64, width: Int) throws(MemoryFault) -> UInt64
}

extension GuestMemory: StackMemory {}

/// Why a walk ended. A fault ends a walk; it does not fail the report.
public enum WalkStop: Equatable, Sendable, CustomStringConvertible {
    case endOfChain                     // a zero frame pointer: the outermost frame
    case reachedLimit(UInt64)           // the next frame is at or beyond the stack limit
    case wentBackwards(frame: UInt64, position: UInt64)
    case misaligned(frame: UInt64)
    case tooManyFrames(Int)
    case fault(MemoryFault)

    public var description: String {
        switch self {
        case .endOfChain: return "end of the frame chain"
        case .reachedLimit(let l): return "reached the stack limit \(hex(l))"
        case .wentBackwards(let f, let p): return "frame pointer \(hex(f)) is below the walk's position \(hex(p)): not a frame chain (stopped to avoid a cycle)"
        case .misaligned(let f): return "frame pointer \(hex(f)) is misaligned"
        case .tooManyFrames(let n): return "stopped after \(n) frames"
        case .fault(let f): return f.description
        }
    }

    /// Whether the walk ended the way a healthy stack ends.
    public var isNormal: Bool {
        switch self {
        case .endOfChain, .reachedLimit: return true
        default: return false
        }
    }
}
