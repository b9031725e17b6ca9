import VCPUContext

/// One frame record: `{saved frame pointer, return address}` at `address`.
public struct FrameRecord: Equatable, Sendable {
    /// Where the saved frame pointer is stored (the frame pointer's value).
    public let address: UInt64
    public let savedFramePointer: UInt64
    /// nil for the outermost record (saved frame pointer 0).
    public let returnAddress: UInt64?
}

/// Walks a chain of frame records laid out as x86 (`[rbp]` = caller's rbp,
/// `[rbp+w]` = return address) and AArch64 (`[x29]` = caller's x29, `[x29+8]` = x30).
///
/// The chain is guest data: each next record must lie above the previous one, inside
/// `[start, limit)` and word-aligned, and the number of records is capped, so a cycle,
/// a wild pointer or an absurdly long chain ends the walk with a reason, never a hang.
public struct FrameRecordWalk {
    public let width: Int
    public let limit: UInt64
    public let maxFrames: Int
    /// Applied to saved return addresses: AArch64 strips pointer-authentication bits.
    public let cleanReturnAddress: (UInt64) -> UInt64

    /// What to do when the next frame pointer is below the walk's position.
    public enum BelowPosition: Sendable {
        case stop          // not a chain: end the walk
        case usePosition   // upstream xenctx -S: read the record at the position instead
    }
    public let frameBelowPosition: BelowPosition

    public init(width: Int, limit: UInt64, maxFrames: Int = 1024, frameBelowPosition: BelowPosition = .stop,
                cleanReturnAddress: @escaping (UInt64) -> UInt64 = { $0 }) {
        self.frameBelowPosition = frameBelowPosition
        self.width = width
        self.limit = limit
        self.maxFrames = maxFrames
        self.cleanReturnAddress = cleanReturnAddress
    }

    /// Walks from frame pointer `fp`, with the walk's position starting at `sp`.
    /// `visit` sees each record in order; the walk's end reason is returned.
    public func walk(memory: some StackMemory, sp: UInt64, fp: UInt64, visit: (FrameRecord) -> Void) -> WalkStop {
        var position = sp
        var frame = fp
        var count = 0
        let w = UInt64(width)
        while true {
            if frame == 0 { return .endOfChain }
            if position >= limit { return .reachedLimit(limit) }
            if frame < position {
                guard frameBelowPosition == .usePosition else { return .wentBackwards(frame: frame, position: position) }
                frame = position
            }
            if frame >= limit { return .reachedLimit(limit) }
            if frame % w != 0 { return .misaligned(frame: frame) }
            if count >= maxFrames { return .tooManyFrames(count) }
            let saved: UInt64
            do { saved = try memory.word(frame, width: width) } catch { return .fault(error) }
            var ret: UInt64? = nil
            if saved != 0 {
                do { ret = cleanReturnAddress(try memory.word(frame &+ w, width: width)) } catch { return .fault(error) }
            }
            visit(FrameRecord(address: frame, savedFramePointer: saved, returnAddress: ret))
            count += 1
            position = frame &+ (saved != 0 ? 2 * w : w)
            frame = saved
        }
    }
}

/// AArch64 pointer authentication and tagging: keep the low `vaBits` and sign-extend
/// from bit 55 (kernel addresses have it set), as the kernel's `ptrauth_strip_insn_pac`.
public func stripPointerAuthentication(_ value: UInt64, vaBits: Int) -> UInt64 {
    guard vaBits > 0 && vaBits < 64 else { return value }
    let low = value & ((UInt64(1) << UInt64(vaBits)) - 1)
    return (value >> 55) & 1 == 1 ? low | ~((UInt64(1) << UInt64(vaBits)) - 1) : low
}
