/// ARMv7 short-descriptor translation (TTBCR.EAE = 0): sections, supersections, 64 KiB
/// large pages and 4 KiB small pages; TTBCR.N splits the space between TTBR0 and TTBR1.
/// Reference: ARM ARM B3.5, and Xen's `guest_walk_sd` (xen/arch/arm/guest_walk.c).
public struct ArmShortDescriptor: Sendable, Equatable {
    public let n: UInt64
    public let ttbr0: UInt64
    public let ttbr1: UInt64
    public let disableTTBR0: Bool   // TTBCR.PD0
    public let disableTTBR1: Bool   // TTBCR.PD1

    public init(ttbcr: UInt64, ttbr0: UInt64, ttbr1: UInt64) {
        n = ttbcr & 7
        self.ttbr0 = ttbr0
        self.ttbr1 = ttbr1
        disableTTBR0 = ttbcr & (1 << 4) != 0
        disableTTBR1 = ttbcr & (1 << 5) != 0
    }

    func translate(_ va: UInt64, _ t: TableReader) throws(MemoryFault) -> UInt64 {
        let v = va & 0xffff_ffff
        let useTTBR1 = n != 0 && (v >> (32 - n)) != 0
        let base: UInt64, index: UInt64, name: String
        if useTTBR1 {
            guard !disableTTBR1 else { throw MemoryFault(address: va, reason: "TTBR1 walks are disabled (TTBCR.PD1)") }
            base = ttbr1 & 0xffff_c000
            index = v >> 20
            name = "TTBR1 L1"
        } else {
            guard !disableTTBR0 else { throw MemoryFault(address: va, reason: "TTBR0 walks are disabled (TTBCR.PD0)") }
            base = ttbr0 & (0xffff_ffff << (14 - n)) & 0xffff_ffff
            index = (v & (0xffff_ffff >> n)) >> 20
            name = "TTBR0 L1"
        }
        let l1 = try t.entry32(table: base, index: index, level: name)
        switch l1 & 3 {
        case 1: // page table
            let l2Index = (v >> 12) & 0xff
            let l2 = try t.entry32(table: l1 & 0xffff_fc00, index: l2Index, level: "L2", covering: 1 << 20)
            switch l2 & 3 {
            case 0: throw t.notPresent("L2", index: l2Index, entry: l2, span: 1 << 12)
            case 1: return (l2 & 0xffff_0000) | (v & 0xffff)        // 64 KiB large page
            default: return (l2 & 0xffff_f000) | (v & 0xfff)        // 4 KiB small page
            }
        case 2:
            if l1 & (1 << 18) != 0 {
                // Supersection: 16 MiB, with physical address bits 39:32 in 8:5 and 23:20.
                let high = ((l1 >> 20) & 0xf) << 32 | ((l1 >> 5) & 0xf) << 36
                return high | (l1 & 0xff00_0000) | (v & 0xff_ffff)
            }
            return (l1 & 0xfff0_0000) | (v & 0xf_ffff)
        default:
            throw t.notPresent(name, index: index, entry: l1, span: 1 << 20)
        }
    }
}
