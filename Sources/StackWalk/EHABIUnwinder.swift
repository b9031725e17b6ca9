import VCPUContext

/// ARM32 unwinding with the kernel's EHABI tables (`CONFIG_ARM_UNWIND`,
/// arch/arm/kernel/unwind.c), read from guest memory: `.ARM.exidx` between
/// `__start_unwind_idx` and `__stop_unwind_idx` (found through System.map) and the
/// `.ARM.extab` entries they point to. Personality routines 0 (short) and 1 (long),
/// the opcode set the kernel's own unwinder supports (no VFP pops).
///
/// Stacks: the SP must stay within a stack (an 8 KiB-aligned block) or move to one not
/// left before (`call_with_stack` moves from the IRQ stack to the task's).
public struct EHABIUnwinder {
    public struct Tables: Sendable {
        public let start: UInt64, count: Int
        public init(start: UInt64, stop: UInt64) {
            self.start = start
            count = stop > start ? Int(min((stop - start) / 8, 1 << 22)) : 0
        }
    }

    public let tables: Tables
    public let maxFrames: Int
    public let stackSize: UInt64
    public let isKernelText: (UInt64) -> Bool

    public init(tables: Tables, maxFrames: Int = 256, stackSize: UInt64 = 8192, isKernelText: @escaping (UInt64) -> Bool) {
        self.tables = tables
        self.maxFrames = maxFrames
        self.stackSize = stackSize
        self.isKernelText = isKernelText
    }

    static let sp = 13, lr = 14, pc = 15, fp = 11

    /// A prel31 offset stored at `address`, resolved.
    func prel31(_ address: UInt64, memory: some StackMemory) throws(MemoryFault) -> UInt64 {
        let v = UInt32(truncatingIfNeeded: try memory.word(address, width: 4))
        let offset = Int32(bitPattern: v << 1) >> 1          // sign-extend 31 bits
        return (address &+ UInt64(bitPattern: Int64(offset))) & 0xffff_ffff
    }

    /// The index entry whose function start is the last one ≤ pc.
    func findIndex(_ pc: UInt64, memory: some StackMemory) throws(MemoryFault) -> UInt64? {
        var lo = 0, hi = tables.count - 1, found: Int? = nil
        while lo <= hi {
            let mid = lo + (hi - lo) / 2
            if try prel31(tables.start &+ UInt64(mid) &* 8, memory: memory) <= pc { found = mid; lo = mid + 1 } else { hi = mid - 1 }
        }
        return found.map { tables.start &+ UInt64($0) &* 8 }
    }

    enum Step: Error { case fail(String) }

    /// One frame: returns the caller's registers.
    /// `returnAddress`: pc is where a call returns, so the call site (pc - 1) picks the
    /// entry when a call precedes it (a call to a noreturn function ends its caller).
    func step(_ r: [UInt64], memory: some StackMemory, returnAddress: Bool = false) throws -> [UInt64] {
        let pc = r[Self.pc]
        let site = returnAddress && CallSite.precededByCall(pc, wordSize: 4, memory: memory) == true ? pc &- 1 : pc
        guard let entry = try findIndex(site, memory: memory) else { throw Step.fail("no unwind entry for \(hex(pc))") }
        let insnWord = try memory.word(entry &+ 4, width: 4)
        if insnWord == 1 { throw Step.fail("\(hex(pc)) cannot be unwound (EXIDX_CANTUNWIND)") }
        // The opcode words: inline in the index (compact, bit 31 set) or in .ARM.extab.
        let insnAddress: UInt64
        if insnWord & 0x8000_0000 == 0 { insnAddress = try prel31(entry &+ 4, memory: memory) }
        else if insnWord & 0xff00_0000 == 0x8000_0000 { insnAddress = entry &+ 4 }
        else { throw Step.fail("unsupported personality in the index entry for \(hex(pc))") }
        let first = try memory.word(insnAddress, width: 4)
        var byteIndex: Int, words: Int
        switch first & 0xff00_0000 {
        case 0x8000_0000: byteIndex = 2; words = 1                                  // personality 0
        case 0x8100_0000: byteIndex = 1; words = 1 + Int((first >> 16) & 0xff)      // personality 1
        default: throw Step.fail("unsupported personality routine \(hex(first >> 24)) for \(hex(pc))")
        }
        guard words <= 8 else { throw Step.fail("implausible unwind table entry for \(hex(pc))") }
        var opcodes: [UInt8] = []
        for w in 0..<words {
            let word = try memory.word(insnAddress &+ UInt64(w) &* 4, width: 4)
            for b in stride(from: w == 0 ? byteIndex : 3, through: 0, by: -1) { opcodes.append(UInt8((word >> (8 * UInt64(b))) & 0xff)) }
        }
        var v = r
        v[Self.pc] = 0
        // At the first instruction of a function nothing has been pushed: return via LR.
        if try prel31(entry, memory: memory) == pc {
            v[Self.pc] = r[Self.lr]
            return v
        }
        var i = 0
        func next() throws -> UInt8 {
            guard i < opcodes.count else { throw Step.fail("truncated unwind opcodes for \(hex(pc))") }
            defer { i += 1 }
            return opcodes[i]
        }
        func pop(_ mask: UInt32, base: Int) throws {
            var vsp = v[Self.sp]
            var loadedSP: UInt64? = nil
            for bit in 0..<16 where mask & (1 << UInt32(bit)) != 0 {
                let value = try memory.word(vsp, width: 4)
                if base + bit == Self.sp { loadedSP = value } else { v[base + bit] = value }
                vsp &+= 4
            }
            v[Self.sp] = loadedSP ?? vsp
        }
        loop: while i < opcodes.count {
            let op = try next()
            switch op {
            case 0x00...0x3f: v[Self.sp] &+= (UInt64(op & 0x3f) << 2) + 4
            case 0x40...0x7f: v[Self.sp] &-= (UInt64(op & 0x3f) << 2) + 4
            case 0x80...0x8f:
                let mask = (UInt32(op & 0x0f) << 8) | UInt32(try next())
                guard mask != 0 else { throw Step.fail("refuse to unwind (opcode 0x8000) at \(hex(pc))") }
                try pop(mask, base: 4)
            case 0x90...0x9f where op & 0x0d != 0x0d:
                v[Self.sp] = v[Int(op & 0x0f)]
            case 0xa0...0xaf:
                var mask = UInt32((1 << (Int(op & 7) + 1)) - 1)
                if op & 0x08 != 0 { mask |= 1 << 10 }      // r14, relative to r4
                try pop(mask, base: 4)
            case 0xb0:
                break loop
            case 0xb1:
                let mask = UInt32(try next())
                guard mask != 0 && mask & 0xf0 == 0 else { throw Step.fail("bad unwind opcode b1 at \(hex(pc))") }
                try pop(mask, base: 0)
            case 0xb2:
                var uleb: UInt64 = 0, shift: UInt64 = 0
                repeat {
                    let b = try next()
                    uleb |= UInt64(b & 0x7f) << shift
                    shift += 7
                    if b & 0x80 == 0 { break }
                } while shift < 32
                v[Self.sp] &+= 0x204 + (uleb << 2)
            default:
                throw Step.fail("unsupported unwind opcode \(hex(op)) at \(hex(pc))")
            }
        }
        if v[Self.pc] == 0 { v[Self.pc] = v[Self.lr] }
        return v
    }

    /// The registers at LR's call site when the first frame is a leaf with no usable
    /// entry: same SP, pc = LR; nil unless LR is text and one step from there succeeds
    /// upwards into text.
    func leafReturn(_ r: [UInt64], memory: some StackMemory) -> [UInt64]? {
        let lr = r[Self.lr] & ~1
        guard lr != r[Self.pc] & ~1, isKernelText(lr) else { return nil }
        var v = r
        v[Self.pc] = lr
        guard let next = try? step(v, memory: memory), isKernelText(next[Self.pc] & ~1), next[Self.sp] >= v[Self.sp] else { return nil }
        return v
    }

    /// Unwinds from a register set r0...r15.
    public func unwind(registers start: [UInt64], memory: some StackMemory) -> Unwind {
        var r = start
        var frames = [UnwoundFrame(ip: r[Self.pc], sp: r[Self.sp], slot: nil, trust: .registers)]
        var stack = r[Self.sp] & ~(stackSize - 1)
        var left: Set<UInt64> = []
        while frames.count < maxFrames {
            let caller: [UInt64]
            do { caller = try step(r, memory: memory, returnAddress: frames.count > 1) } catch let Step.fail(why) {
                // A leaf that cannot be unwound (cpu_v7_do_idle is EXIDX_CANTUNWIND) at the
                // first frame has not touched the stack: its caller is in LR. Taken only
                // when the caller's own entry then unwinds from the same SP.
                if frames.count == 1, let viaLR = leafReturn(r, memory: memory) {
                    frames.append(UnwoundFrame(ip: viaLR[Self.pc], sp: viaLR[Self.sp], slot: nil, trust: .linkRegister))
                    r = viaLR
                    continue
                }
                return Unwind(frames: frames, stop: why, complete: false)
            } catch {
                return Unwind(frames: frames, stop: "\(error)", complete: false)
            }
            let pc = caller[Self.pc] & ~1, sp = caller[Self.sp]
            if !isKernelText(pc) {
                return Unwind(frames: frames, stop: "reached \(pc < 0x1000 ? "the end of the stack" : "user mode or non-kernel code") (pc \(hex(pc)))", complete: true)
            }
            let newStack = sp & ~(stackSize - 1)
            if newStack == stack {
                if pc == r[Self.pc] && sp == r[Self.sp] { return Unwind(frames: frames, stop: "no progress at \(hex(pc))", complete: false) }
                if sp < r[Self.sp] { return Unwind(frames: frames, stop: "the stack pointer moved down (\(hex(r[Self.sp])) → \(hex(sp)))", complete: false) }
            } else {
                if left.contains(newStack) { return Unwind(frames: frames, stop: "the stack pointer returned to a stack already left", complete: false) }
                left.insert(stack)
                stack = newStack
            }
            frames.append(UnwoundFrame(ip: pc, sp: sp, slot: nil, trust: .exidx))
            r = caller
            r[Self.pc] = pc
        }
        return Unwind(frames: frames, stop: "stopped after \(maxFrames) frames", complete: false)
    }
}
