import VCPUContext

/// One frame record found through a frame pointer.
public struct FrameRecord: Equatable, Sendable {
    /// The frame pointer's value.
    public let address: UInt64
    /// Where the caller's frame pointer is saved, and its value.
    public let savedFramePointerSlot: UInt64
    public let savedFramePointer: UInt64
    /// Where the return address is saved; nil for the outermost record (saved frame pointer 0).
    public let returnAddressSlot: UInt64
    public let returnAddress: UInt64?
}

/// Where a frame pointer points, relative to the saved registers.
public enum FrameRecordLayout: Sendable {
    /// `[fp]` = caller's fp, `[fp+w]` = return address: x86 (rbp), AArch64 (x29/x30),
    /// and clang's ARM32 frames.
    case framePointerThenReturn
    /// GCC's ARM APCS frame (`-mapcs-frame`, Linux ARM `CONFIG_FRAME_POINTER`): fp points
    /// at the saved pc; `[fp-4]` = lr, `[fp-8]` = sp, `[fp-12]` = caller's fp.
    case apcs

    func savedFPOffset(_ w: UInt64) -> UInt64 { self == .apcs ? 0 &- 3 * w : 0 }
    func returnOffset(_ w: UInt64) -> UInt64 { self == .apcs ? 0 &- w : w }
    /// Lowest byte of the record relative to fp, and the first byte above it.
    func low(_ w: UInt64) -> UInt64 { self == .apcs ? 0 &- 3 * w : 0 }
    func high(_ w: UInt64) -> UInt64 { self == .apcs ? w : 2 * w }
}

/// Walks a chain of frame records (see `FrameRecordLayout`).
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
    public let layout: FrameRecordLayout
    /// Upstream xenctx -f's (x86) checks only: it compares just the walk's position with the
    /// limit, so it reads one record above the limit (then stops, since the position has
    /// passed it), and never checks alignment, so it prints the words up to a misaligned
    /// frame pointer as up to any other.
    public let upstreamChecks: Bool

    public init(width: Int, limit: UInt64, layout: FrameRecordLayout = .framePointerThenReturn, maxFrames: Int = 1024,
                frameBelowPosition: BelowPosition = .stop, upstreamChecks: Bool = false,
                cleanReturnAddress: @escaping (UInt64) -> UInt64 = { $0 }) {
        self.layout = layout
        self.upstreamChecks = upstreamChecks
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
            if frame &+ layout.low(w) < position {
                guard frameBelowPosition == .usePosition, layout == .framePointerThenReturn else {
                    return .wentBackwards(frame: frame, position: position)
                }
                frame = position
            }
            if frame >= limit && !upstreamChecks { return .reachedLimit(limit) }
            // (x86-run17-why-mutex-lockup's vCPU 1: its chain ends at an odd module text
            // address, and upstream prints words to the end of the stack's pages.)
            if frame % w != 0 && !upstreamChecks { return .misaligned(frame: frame) }
            if count >= maxFrames { return .tooManyFrames(count) }
            let savedSlot = frame &+ layout.savedFPOffset(w), returnSlot = frame &+ layout.returnOffset(w)
            let saved: UInt64
            do { saved = try memory.word(savedSlot, width: width) } catch { return .fault(error) }
            var ret: UInt64? = nil
            if saved != 0 {
                do { ret = cleanReturnAddress(try memory.word(returnSlot, width: width)) } catch { return .fault(error) }
            }
            visit(FrameRecord(address: frame, savedFramePointerSlot: savedSlot, savedFramePointer: saved,
                              returnAddressSlot: returnSlot, returnAddress: ret))
            count += 1
            position = saved != 0 || layout == .apcs ? frame &+ layout.high(w) : frame &+ w
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
