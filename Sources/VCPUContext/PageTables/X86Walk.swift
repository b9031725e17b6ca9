/// x86 page-table walks, as `xc_translate_foreign_address` (tools/libs/ctrl/xc_pagetab.c)
/// does them: 4-level (long mode, and every 64-bit PV guest), 3-level PAE (32-bit PV,
/// PAE HVM) and 2-level (non-PAE HVM). Superpages: 1 GiB at L3 of 4-level, 2 MiB at L2
/// (PAE/long), 4 MiB at L2 (2-level with CR4.PSE).
enum X86Walk {
    static let present: UInt64 = 1
    static let pageSize: UInt64 = 1 << 7
    static let addressMask: UInt64 = 0x000f_ffff_ffff_f000

    static func longMode(_ va: UInt64, root: UInt64, _ t: TableReader) throws(MemoryFault) -> UInt64 {
        // Canonical: bits 63:47 all equal.
        let top = va >> 47
        guard top == 0 || top == 0x1ffff else {
            throw MemoryFault(address: va, reason: "not a canonical 48-bit address")
        }
        var table = root & addressMask
        for level in stride(from: 4, through: 1, by: -1) {
            let shift = UInt64(12 + 9 * (level - 1))
            let index = (va >> shift) & 0x1ff
            let e = try t.entry64(table: table, index: index, level: "L\(level)", covering: level == 4 ? 0 : 1 << (shift + 9))
            guard e & present != 0 else { throw t.notPresent("L\(level)", index: index, entry: e, span: 1 << shift) }
            if (level == 3 || level == 2) && e & pageSize != 0 {
                let span = UInt64(1) << shift
                return (e & addressMask & ~(span - 1)) | (va & (span - 1))
            }
            table = e & addressMask
        }
        return table | (va & 0xfff)
    }

    static func pae(_ va: UInt64, root: UInt64, _ t: TableReader) throws(MemoryFault) -> UInt64 {
        let v = va & 0xffff_ffff
        let l3 = try t.entry64(table: root, index: v >> 30, level: "L3 (PDPT)")
        guard l3 & present != 0 else { throw t.notPresent("L3 (PDPT)", index: v >> 30, entry: l3, span: 1 << 30) }
        let l2Index = (v >> 21) & 0x1ff
        let l2 = try t.entry64(table: l3 & addressMask, index: l2Index, level: "L2", covering: 1 << 30)
        guard l2 & present != 0 else { throw t.notPresent("L2", index: l2Index, entry: l2, span: 1 << 21) }
        if l2 & pageSize != 0 { return (l2 & addressMask & ~0x1f_ffff) | (v & 0x1f_ffff) }
        let l1Index = (v >> 12) & 0x1ff
        let l1 = try t.entry64(table: l2 & addressMask, index: l1Index, level: "L1", covering: 1 << 21)
        guard l1 & present != 0 else { throw t.notPresent("L1", index: l1Index, entry: l1, span: 1 << 12) }
        return (l1 & addressMask) | (v & 0xfff)
    }

    static func twoLevel(_ va: UInt64, root: UInt64, pse: Bool, _ t: TableReader) throws(MemoryFault) -> UInt64 {
        let v = va & 0xffff_ffff
        let l2 = try t.entry32(table: root & 0xffff_f000, index: v >> 22, level: "L2 (page directory)")
        guard l2 & present != 0 else { throw t.notPresent("L2 (page directory)", index: v >> 22, entry: l2, span: 1 << 22) }
        if pse && l2 & pageSize != 0 {
            // PSE-36: bits 20:13 of a 4 MiB entry hold physical address bits 39:32.
            return (l2 & 0xffc0_0000) | (((l2 >> 13) & 0xff) << 32) | (v & 0x3f_ffff)
        }
        let l1Index = (v >> 12) & 0x3ff
        let l1 = try t.entry32(table: l2 & 0xffff_f000, index: l1Index, level: "L1", covering: 1 << 22)
        guard l1 & present != 0 else { throw t.notPresent("L1", index: l1Index, entry: l1, span: 1 << 12) }
        return (l1 & 0xffff_f000) | (v & 0xfff)
    }
}
