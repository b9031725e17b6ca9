import VCPUContext

extension ORCUnwinder {
    /// How an ORC entry's 16 flag bits read. sp_reg (bits 0–3) and bp_reg (4–7) never moved;
    /// what follows did:
    /// - `twoBitType`, Linux up to 6.3: type:2 (CALL 0, REGS 1, REGS_PARTIAL 2), then `end`
    ///   (6.3 put `signal` at bit 10 and moved `end` to bit 11);
    /// - `threeBitType`, Linux 6.4 and later: type:3 (UNDEFINED 0, END_OF_STACK 1, CALL 2,
    ///   REGS 3, REGS_PARTIAL 4), then `signal` at bit 11.
    /// The kernel carries no version number a core can read without its hash table, so the
    /// format is decided from the entries themselves (`detect`).
    public enum Format: String, Sendable, Equatable {
        case twoBitType = "type:2"
        case threeBitType = "type:3"

        /// The kernels that write entries this way, for `--describe`.
        public var kernels: String {
            switch self {
            case .twoBitType: return "Linux before 6.4"
            case .threeBitType: return "Linux 6.4 or later"
            }
        }

        func entry(spOffset: Int16, bpOffset: Int16, flags: UInt16) -> Entry {
            let spReg = UInt8(flags & 0xf), bpReg = UInt8((flags >> 4) & 0xf)
            let kind: Kind, signal: Bool
            switch self {
            case .twoBitType:
                let type = UInt8((flags >> 8) & 3), bit10 = flags & 0x400 != 0, bit11 = flags & 0x800 != 0
                if spReg == Reg.undefined {
                    // 6.2 and earlier mark the end at bit 10, 6.3 at bit 11 (bit 10 is `signal`
                    // there, which an entry without a stack pointer never sets).
                    kind = bit10 || bit11 ? .endOfStack : .undefined
                    signal = false
                } else {
                    switch type {
                    case 0: kind = .call
                    case 1: kind = .regs
                    case 2: kind = .regsPartial
                    default: kind = .unknown(type)
                    }
                    // Before 6.3 a register frame implies `signal`; 6.3 says it at bit 10
                    // (which the older format leaves clear wherever sp_reg is defined).
                    signal = kind != .call || bit10
                }
            case .threeBitType:
                let type = UInt8((flags >> 8) & 7)
                switch type {
                case 0: kind = .undefined
                case 1: kind = .endOfStack
                case 2: kind = .call
                case 3: kind = .regs
                case 4: kind = .regsPartial
                default: kind = .unknown(type)
                }
                signal = flags & 0x800 != 0
            }
            return Entry(spOffset: spOffset, bpOffset: bpOffset, spReg: spReg, bpReg: bpReg, kind: kind, signal: signal)
        }

        /// The format of `count` entries at `entries`, from a bounded sample of them (at most
        /// `blocks` runs of `run` entries spread over the table). Most entries of any kernel
        /// describe a plain call frame: with a stack pointer (sp_reg ≠ 0), CALL is type 0 in
        /// the older format and 2 in the newer, and the other types are rare in both. Bits 12–15
        /// are clear in both; an entry that sets them is not ORC this tool knows.
        public static func detect(entries: UInt64, count: Int, memory: some StackMemory,
                                  blocks: Int = 64, run: Int = 32) -> Result<Format, FormatUnknown> {
            guard count > 0 else { return .failure(FormatUnknown("the table is empty")) }
            var typeZero = 0, typeTwo = 0, seen = 0
            let step = max(count / blocks, run)
            var start = 0
            while start < count {
                for i in start..<min(start + run, count) {
                    let at = entries &+ UInt64(i) &* 6
                    guard let raw = try? memory.word(at &+ 4, width: 2) else {
                        return .failure(FormatUnknown("entry \(i) at \(hex(at)) is unreadable"))
                    }
                    let flags = UInt16(truncatingIfNeeded: raw)
                    seen += 1
                    if flags & 0xf000 != 0 {
                        return .failure(FormatUnknown("entry \(i) at \(hex(at)) sets flag bits 12-15 (\(hex(UInt64(flags))))"))
                    }
                    guard flags & 0xf != 0 else { continue }
                    switch (flags >> 8) & 7 {
                    case 0: typeZero += 1
                    case 2: typeTwo += 1
                    default: break
                    }
                }
                start += step
            }
            // A clear majority either way; anything else is not a table this tool can read.
            if typeZero >= 16, typeZero > 4 * typeTwo { return .success(.twoBitType) }
            if typeTwo >= 16, typeTwo > 4 * typeZero { return .success(.threeBitType) }
            return .failure(FormatUnknown("of \(seen) entries sampled, \(typeZero) have type bits 0 and \(typeTwo) have 2: neither the format before Linux 6.4 (CALL = 0) nor the one after (CALL = 2)"))
        }
    }

    public struct FormatUnknown: Error, Sendable, Equatable {
        public let reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
