/// The lowest kernel virtual address of a guest: upstream xenctx's `kernel_start`, chosen
/// by the **guest's** architecture rather than the tool's (xenctx.md §7).
public enum KernelStart {
    /// `-k`'s default for a guest. For AArch64 it is the bottom of the TTBR1 half that
    /// TCR_EL1.T1SZ defines (48-bit VA: 0xffff000000000000); xenctx's 0xffffff8000000000
    /// is the 2012 39-bit layout and misses every 48-bit kernel.
    public static func defaultValue(for arch: GuestArchitecture, tcr: UInt64?) -> UInt64 {
        switch arch {
        case .x86_32, .arm32: return 0xc000_0000
        case .x86_64: return 0xffff_ffff_8000_0000
        case .aarch64:
            let t1sz = tcr.map { ($0 >> 16) & 0x3f } ?? 0
            // T1SZ outside 12...48 is not a usable configuration (or the MMU is off).
            guard (12...48).contains(t1sz) else { return 0xffff_0000_0000_0000 }
            return ~((UInt64(1) << (64 - t1sz)) - 1)
        }
    }

    /// Upstream's `kernel_end` default: the top of the guest's address space.
    public static func defaultEnd(for arch: GuestArchitecture) -> UInt64 {
        arch.wordSize == 4 ? 0xffff_ffff : ~0
    }
}
