/// AArch64 stage-1 translation for EL1&0 from TCR_EL1: T0SZ/T1SZ, TG0/TG1 granules of
/// 4, 16 or 64 KiB, EPD0/EPD1, table and block descriptors. Reference: ARM ARM D8,
/// Xen's `guest_walk_ld` (its AArch64 half).
public struct AArch64Translation: Sendable, Equatable {
    public struct Half: Sendable, Equatable {
        public let ttbr: UInt64
        public let tsz: UInt64
        public let granuleBits: UInt64   // 12, 14 or 16
        public let disabled: Bool
    }
    public let lower: Half   // TTBR0: VA bit 55 clear
    public let upper: Half   // TTBR1: VA bit 55 set

    public init(tcr: UInt64, ttbr0: UInt64, ttbr1: UInt64) {
        let tg0: UInt64 = [0: 12, 1: 16, 2: 14][(tcr >> 14) & 3] ?? 12
        let tg1: UInt64 = [1: 14, 2: 12, 3: 16][(tcr >> 30) & 3] ?? 12
        lower = Half(ttbr: ttbr0, tsz: tcr & 0x3f, granuleBits: tg0, disabled: tcr & (1 << 7) != 0)
        upper = Half(ttbr: ttbr1, tsz: (tcr >> 16) & 0x3f, granuleBits: tg1, disabled: tcr & (1 << 23) != 0)
    }

    static let outputMask: UInt64 = 0x0000_ffff_ffff_ffff

    func translate(_ va: UInt64, _ t: TableReader) throws(MemoryFault) -> UInt64 {
        let isUpper = (va >> 55) & 1 == 1
        let half = isUpper ? upper : lower
        let name = isUpper ? "TTBR1" : "TTBR0"
        guard !half.disabled else { throw MemoryFault(address: va, reason: "\(name) walks are disabled (TCR_EL1.EPD\(isUpper ? 1 : 0))") }
        guard (12...48).contains(half.tsz) else { throw MemoryFault(address: va, reason: "TCR_EL1.T\(isUpper ? 1 : 0)SZ = \(half.tsz) is not a usable size") }
        let vaBits = 64 - half.tsz
        // Bits 55..vaBits must all equal bit 55 (the top byte may hold a tag or PAC and is ignored).
        let checkMask: UInt64 = ((1 << 56) - 1) & ~((1 << vaBits) - 1)
        guard (va & checkMask) == (isUpper ? checkMask : 0) else {
            throw MemoryFault(address: va, reason: "outside the \(vaBits)-bit \(name) region")
        }
        let table = half.ttbr & AArch64Translation.outputMask & ~0x3f
        return try t.longDescriptorWalk(va, vaBits: vaBits, granuleBits: half.granuleBits, table: table,
                                        outputMask: AArch64Translation.outputMask, name: name)
    }
}
