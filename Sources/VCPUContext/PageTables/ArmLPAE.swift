/// ARMv7 long-descriptor (LPAE) translation, TTBCR.EAE = 1: 4 KiB granule, up to three
/// levels, 1 GiB and 2 MiB blocks, T0SZ/T1SZ splitting the 32-bit space between TTBR0
/// and TTBR1, EPD0/EPD1. Reference: ARM ARM B3.6, Xen's `guest_walk_ld`.
public struct ArmLPAE: Sendable, Equatable {
    public let t0sz: UInt64, t1sz: UInt64
    public let epd0: Bool, epd1: Bool
    public let ttbr0: UInt64, ttbr1: UInt64

    public init(ttbcr: UInt64, ttbr0: UInt64, ttbr1: UInt64) {
        t0sz = ttbcr & 7
        t1sz = (ttbcr >> 16) & 7
        epd0 = ttbcr & (1 << 7) != 0
        epd1 = ttbcr & (1 << 23) != 0
        self.ttbr0 = ttbr0
        self.ttbr1 = ttbr1
    }

    static let outputMask: UInt64 = 0x0000_00ff_ffff_f000

    func translate(_ va: UInt64, _ t: TableReader) throws(MemoryFault) -> UInt64 {
        let v = va & 0xffff_ffff
        // ARM ARM B3.6.4 (Xen's guest_walk_ld alike): with both sizes set, TTBR0 covers the
        // bottom 2^(32-T0SZ) bytes and TTBR1 the top 2^(32-T1SZ), a gap between. A size of 0
        // gives that register everything the other one does not cover: T0SZ 7, T1SZ 0 (Linux
        // 6.12's LPAE kernel with TTBR0 PAN, user walks cut to 32 MiB) puts the kernel in TTBR1.
        let ttbr1Start: UInt64, ttbr0End: UInt64
        switch (t0sz, t1sz) {
        case (0, 0): (ttbr0End, ttbr1Start) = (1 << 32, 1 << 32)
        case (_, 0): (ttbr0End, ttbr1Start) = (1 << (32 - t0sz), 1 << (32 - t0sz))
        case (0, _): (ttbr0End, ttbr1Start) = ((1 << 32) - (1 << (32 - t1sz)), (1 << 32) - (1 << (32 - t1sz)))
        default: (ttbr0End, ttbr1Start) = (1 << (32 - t0sz), (1 << 32) - (1 << (32 - t1sz)))
        }
        let tsz: UInt64, ttbr: UInt64, name: String
        if v >= ttbr1Start {
            guard !epd1 else { throw MemoryFault(address: va, reason: "TTBR1 walks are disabled (TTBCR.EPD1)") }
            (tsz, ttbr, name) = (t1sz, ttbr1, "TTBR1")
        } else if v < ttbr0End {
            guard !epd0 else { throw MemoryFault(address: va, reason: "TTBR0 walks are disabled (TTBCR.EPD0)") }
            (tsz, ttbr, name) = (t0sz, ttbr0, "TTBR0")
        } else {
            throw MemoryFault(address: va, reason: "in the gap between the TTBR0 and TTBR1 regions (TTBCR T0SZ \(t0sz), T1SZ \(t1sz))")
        }
        // A region of 2^31 or more starts at level 1, smaller ones at level 2; the start
        // table is aligned to its own size (TTBR bits 39:x, x = 5-TSZ or 14-TSZ).
        let alignBits: UInt64 = tsz <= 1 ? 5 - tsz : 14 - tsz
        let table = ttbr & 0x0000_00ff_ffff_ffff & ~((UInt64(1) << alignBits) - 1)
        return try t.longDescriptorWalk(v, vaBits: 32 - tsz, granuleBits: 12, table: table, outputMask: ArmLPAE.outputMask, name: name)
    }
}
