/// The lowest kernel virtual address of a guest: upstream xenctx's `kernel_start`, chosen
/// by the **guest's** architecture rather than the tool's (xenctx.md §7); each
/// architecture's descriptor says what it is.
public enum KernelStart {
    /// `-k`'s default for a guest (AArch64: from TCR_EL1.T1SZ).
    public static func defaultValue(for arch: GuestArchitecture, tcr: UInt64?) -> UInt64 {
        arch.descriptor.defaultKernelStart(tcr: tcr)
    }

    /// Upstream's `kernel_end` default: the top of the guest's address space.
    public static func defaultEnd(for arch: GuestArchitecture) -> UInt64 {
        arch.wordSize == 4 ? 0xffff_ffff : ~0
    }
}
