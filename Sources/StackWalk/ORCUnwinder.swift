import VCPUContext

/// x86_64 ORC unwinding (Linux `CONFIG_UNWINDER_ORC`, arch/x86/kernel/unwind_orc.c),
/// driven by the guest kernel's own tables read from guest memory: `__start_orc_unwind_ip`
/// (sorted 32-bit self-relative addresses) and `__start_orc_unwind` (6-byte entries),
/// located through System.map, so no vmlinux is needed.
///
/// Entries (`orc_types.h`) are s16 sp_offset, s16 bp_offset, then 16 bits of flags whose
/// meaning changed with the kernel: see `Format`, which the tables' own shape decides.
public struct ORCUnwinder {
    public struct Tables: Sendable {
        public let ipTable: UInt64     // __start_orc_unwind_ip
        public let count: Int          // (__stop_orc_unwind_ip - __start_orc_unwind_ip) / 4
        public let entries: UInt64     // __start_orc_unwind
        /// How the entries' flags read; nil when the tables' shape did not tell (`unformatted` says why).
        public var format: Format?
        public var unformatted: String?
        public init(ipTable: UInt64, stopIPTable: UInt64, entries: UInt64, format: Format?, unformatted: String? = nil) {
            self.ipTable = ipTable
            self.count = stopIPTable > ipTable ? Int(min((stopIPTable - ipTable) / 4, 1 << 24)) : 0
            self.entries = entries
            self.format = format
            self.unformatted = unformatted
        }

        /// The same tables with the format their entries show (`Format.detect`).
        public func detectingFormat(memory: some StackMemory) -> Tables {
            var t = self
            switch Format.detect(entries: entries, count: count, memory: memory) {
            case .success(let f): (t.format, t.unformatted) = (f, nil)
            case .failure(let why): (t.format, t.unformatted) = (nil, why.reason)
            }
            return t
        }
    }

    /// The registers the walk starts from (a vCPU context is a full register set).
    public struct Registers: Sendable {
        public var ip: UInt64, sp: UInt64, bp: UInt64
        public var r10: UInt64, r13: UInt64, di: UInt64, dx: UInt64
        public init(ip: UInt64, sp: UInt64, bp: UInt64, r10: UInt64, r13: UInt64, di: UInt64, dx: UInt64) {
            self.ip = ip; self.sp = sp; self.bp = bp; self.r10 = r10; self.r13 = r13; self.di = di; self.dx = dx
        }
    }

    /// An entry with its flags read in its kernel's format.
    struct Entry: Equatable {
        let spOffset: Int16, bpOffset: Int16
        let spReg: UInt8, bpReg: UInt8, kind: Kind
        /// Whether the next lookup takes the ip as is (the frame was interrupted, not a call).
        let signal: Bool
    }

    enum Reg { static let undefined: UInt8 = 0, prevSP: UInt8 = 1, dx: UInt8 = 2, di: UInt8 = 3, bp: UInt8 = 4, sp: UInt8 = 5, r10: UInt8 = 6, r13: UInt8 = 7, bpIndirect: UInt8 = 8, spIndirect: UInt8 = 9 }
    enum Kind: Equatable { case undefined, endOfStack, call, regs, regsPartial, unknown(UInt8) }

    public let tables: Tables
    public let maxFrames: Int
    /// Whether an address is kernel text (a frame's ip outside text ends the walk).
    public let isKernelText: (UInt64) -> Bool

    /// Modules' own tables, each for its text (`mod->arch.orc_unwind_ip`, sorted at load).
    public let moduleTables: [(text: Range<UInt64>, tables: Tables)]
    /// Where the function holding an address starts (the symbols'), to prove a call site.
    public let functionStart: ((UInt64) -> UInt64?)?

    public init(tables: Tables, moduleTables: [(text: Range<UInt64>, tables: Tables)] = [], maxFrames: Int = 256,
                functionStart: ((UInt64) -> UInt64?)? = nil, isKernelText: @escaping (UInt64) -> Bool) {
        self.tables = tables
        self.moduleTables = moduleTables
        self.maxFrames = maxFrames
        self.functionStart = functionStart
        self.isKernelText = isKernelText
    }

    /// A vCPU stopped in code that has no unwind entry — a Xen PV guest's hypercall page,
    /// which Xen fills at run time (`xen_hypercall_sched_op` before the fix of XSA-466), marked
    /// undefined for ORC — is a leaf the kernel itself never unwinds from. Its caller is
    /// proven by the stack: the first of the few words above the stack pointer that is a
    /// return address whose call instruction (`call rel32`, or `call *disp32(%rip)` through
    /// a pointer in memory) targets the start of the function the vCPU is in.
    func callSiteStep(ip: UInt64, sp: UInt64, memory: some StackMemory) -> UnwoundFrame? {
        guard let functionStart, let start = functionStart(ip) else { return nil }
        for k in 0..<Self.leafWords {
            let slot = sp &+ UInt64(k) &* 8
            guard let ret = try? memory.word(slot, width: 8), isKernelText(ret), callTarget(returnAddress: ret, memory: memory) == start else { continue }
            return UnwoundFrame(ip: ret, sp: slot &+ 8, slot: slot, trust: .callSite)
        }
        return nil
    }

    /// What the call instruction just before a return address calls, when it says so itself.
    func callTarget(returnAddress ret: UInt64, memory: some StackMemory) -> UInt64? {
        if let op = try? memory.word(ret &- 5, width: 1), op == 0xe8, let rel = try? memory.word(ret &- 4, width: 4) {
            return ret &+ UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: rel)))
        }
        if let op = try? memory.word(ret &- 6, width: 2), op == 0x15ff, let disp = try? memory.word(ret &- 4, width: 4) {
            return try? memory.word(ret &+ UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: disp))), width: 8)
        }
        return nil
    }

    /// How far above a leaf's stack pointer its return address may lie: what a stub pushes
    /// before it traps (the hypercall page pushes rcx and r11), and no more.
    static let leafWords = 4

    /// The entry covering `ip`: the rightmost table address ≤ ip (`__orc_find`).
    func find(_ ip: UInt64, memory: some StackMemory) throws(MemoryFault) -> Entry? {
        let tables = moduleTables.first { $0.text.contains(ip) }?.tables ?? self.tables
        var lo = 0, hi = tables.count - 1, found: Int? = nil
        while lo <= hi {
            let mid = lo + (hi - lo) / 2
            let slot = tables.ipTable &+ UInt64(mid) &* 4
            let rel = Int32(truncatingIfNeeded: try memory.word(slot, width: 4))
            let address = slot &+ UInt64(bitPattern: Int64(rel))
            if address <= ip { found = mid; lo = mid + 1 } else { hi = mid - 1 }
        }
        guard let found else { return nil }
        let e = tables.entries &+ UInt64(found) &* 6
        let spOff = try memory.word(e, width: 2), bpOff = try memory.word(e &+ 2, width: 2)
        let flags = UInt16(truncatingIfNeeded: try memory.word(e &+ 4, width: 2))
        guard let format = tables.format else { return nil }
        return format.entry(spOffset: Int16(truncatingIfNeeded: spOff), bpOffset: Int16(truncatingIfNeeded: bpOff), flags: flags)
    }

    /// pt_regs offsets (arch/x86/include/asm/ptrace.h).
    enum PtRegs { static let bp: UInt64 = 32, r10: UInt64 = 56, dx: UInt64 = 96, di: UInt64 = 112, r13: UInt64 = 16, ip: UInt64 = 128, cs: UInt64 = 136, sp: UInt64 = 152 }

    public func unwind(from start: Registers, memory: some StackMemory) -> Unwind {
        var frames = [UnwoundFrame(ip: start.ip, sp: start.sp, slot: nil, trust: .registers)]
        var ip = start.ip, sp = start.sp, bp = start.bp
        // The full register set the next step may need: the vCPU's, then a pt_regs in memory.
        var regs: (base: UInt64?, initial: Registers?) = (nil, start)
        var signal = true       // the first ip is the faulting/current instruction, not a return address
        // Stacks left behind (16 KiB blocks): the walk may move down only onto another stack
        // (an IRQ stack's saved pointer back to the task stack), never back onto one it left.
        var left: Set<UInt64> = []
        func reg(_ offset: UInt64, _ pick: (Registers) -> UInt64) throws(MemoryFault) -> UInt64? {
            if let r = regs.initial { return pick(r) }
            if let base = regs.base { return try memory.word(base &+ offset, width: 8) }
            return nil
        }
        do {
            guard tables.format != nil else {
                return stop(frames, "the ORC entries' format is not one this tool reads (\(tables.unformatted ?? "not decided")): no exact trace")
            }
            while frames.count < maxFrames {
                let found = try find(signal ? ip : ip &- 1, memory: memory)
                // The registers' own ip in code without unwind information: a leaf, when a call site proves it.
                if frames.count == 1, found == nil || found?.kind == .undefined, let caller = callSiteStep(ip: ip, sp: sp, memory: memory) {
                    frames.append(caller)
                    (ip, sp, regs, signal) = (caller.ip, caller.sp, (nil, nil), false)
                    continue
                }
                guard let orc = found else {
                    return Unwind(frames: frames, stop: "no ORC entry for \(hex(ip))", complete: false)
                }
                switch orc.kind {
                case .endOfStack: return Unwind(frames: frames, stop: "end of the kernel stack", complete: true)
                case .undefined: return stop(frames, "ORC says the stack ends here without an end marker")
                default: break
                }
                var newSP: UInt64
                var indirect = false
                switch orc.spReg {
                case Reg.sp: newSP = sp &+ UInt64(bitPattern: Int64(orc.spOffset))
                case Reg.bp: newSP = bp &+ UInt64(bitPattern: Int64(orc.spOffset))
                case Reg.spIndirect: newSP = sp; indirect = true
                case Reg.bpIndirect: newSP = bp &+ UInt64(bitPattern: Int64(orc.spOffset)); indirect = true
                case Reg.r10: guard let v = try reg(PtRegs.r10, { $0.r10 }) else { return stop(frames, "needs r10, which is not saved here") }; newSP = v
                case Reg.r13: guard let v = try reg(PtRegs.r13, { $0.r13 }) else { return stop(frames, "needs r13, which is not saved here") }; newSP = v
                case Reg.di: guard let v = try reg(PtRegs.di, { $0.di }) else { return stop(frames, "needs rdi, which is not saved here") }; newSP = v
                case Reg.dx: guard let v = try reg(PtRegs.dx, { $0.dx }) else { return stop(frames, "needs rdx, which is not saved here") }; newSP = v
                default: return stop(frames, "unknown ORC sp_reg \(orc.spReg)")
                }
                if indirect {
                    newSP = try memory.word(newSP, width: 8)
                    if orc.spReg == Reg.spIndirect { newSP = newSP &+ UInt64(bitPattern: Int64(orc.spOffset)) }
                }
                let previousSP = sp
                let frame: UnwoundFrame
                switch orc.kind {
                case .call:
                    let slot = newSP &- 8
                    ip = try memory.word(slot, width: 8)
                    sp = newSP
                    regs = (nil, nil)
                    frame = UnwoundFrame(ip: ip, sp: sp, slot: slot, trust: .orc)
                case .regs:
                    // A full pt_regs at newSP: an exception, interrupt or syscall entry.
                    ip = try memory.word(newSP &+ PtRegs.ip, width: 8)
                    sp = try memory.word(newSP &+ PtRegs.sp, width: 8)
                    regs = (newSP, nil)
                    frame = UnwoundFrame(ip: ip, sp: sp, slot: newSP &+ PtRegs.ip, trust: .exceptionRegs)
                case .regsPartial:
                    // Only the hardware iret frame (ip, cs, flags, sp, ss) at newSP.
                    ip = try memory.word(newSP, width: 8)
                    sp = try memory.word(newSP &+ 24, width: 8)
                    regs = (nil, nil)
                    frame = UnwoundFrame(ip: ip, sp: sp, slot: newSP, trust: .exceptionRegs)
                case .unknown(let type):
                    return stop(frames, "unknown ORC type \(type)")
                case .undefined, .endOfStack:
                    return stop(frames, "unreachable ORC type")
                }
                signal = orc.signal
                switch orc.bpReg {
                case Reg.undefined:
                    if let base = regs.base { bp = try memory.word(base &+ PtRegs.bp, width: 8) }
                case Reg.prevSP: bp = try memory.word(newSP &+ UInt64(bitPattern: Int64(orc.bpOffset)), width: 8)
                case Reg.bp: bp = try memory.word(bp &+ UInt64(bitPattern: Int64(orc.bpOffset)), width: 8)
                default: return stop(frames, "unknown ORC bp_reg \(orc.bpReg)")
                }
                if !isKernelText(ip) {
                    // The kernel's half (sign bit set) is not user mode: text nobody named
                    // (a module missing from the list, freed init code) or a bad return address.
                    if ip >> 63 == 1 {
                        return stop(frames, "ip \(hex(ip)) is in the kernel's half of the address space but in no text the symbols and modules name")
                    }
                    // Back in user mode (the syscall's or interrupt's saved registers).
                    return Unwind(frames: frames, stop: "reached user mode (ip \(hex(ip)))", complete: frame.trust == .exceptionRegs)
                }
                frames.append(frame)
                // Guest data could loop: the stack must move up on the same stack, or move to
                // a stack not yet visited (as the kernel's unwinder tracks its stack_mask).
                let from = previousSP & ~Self.stackBlock, to = sp & ~Self.stackBlock
                if from != to {
                    guard !left.contains(to) else { return stop(frames, "the walk returns to a stack it left (\(hex(previousSP)) → \(hex(sp)))") }
                    left.insert(from)
                } else if sp <= previousSP && orc.kind == .call {
                    return stop(frames, "the stack pointer did not move up (\(hex(previousSP)) → \(hex(sp)))")
                }
            }
            return stop(frames, "stopped after \(maxFrames) frames")
        } catch {
            return stop(frames, error.description)
        }
    }

    func stop(_ frames: [UnwoundFrame], _ why: String) -> Unwind { Unwind(frames: frames, stop: why, complete: false) }

    /// x86_64 task and IRQ stacks are 16 KiB (THREAD_SIZE, IRQ_STACK_SIZE), so aligned.
    static let stackBlock: UInt64 = 16384 - 1
}
