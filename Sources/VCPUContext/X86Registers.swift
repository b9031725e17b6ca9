/// `vcpu_guest_context` flag bits shared by both x86 layouts (public arch-x86/xen.h).
public enum VGCF {
    public static let inKernel: UInt64 = 1 << 2
    public static let online: UInt64 = 1 << 5
    /// Where `flags` is in both layouts (after the 512-byte FPU area).
    public static let flagsOffset = 512
}

/// The register file of a 64-bit x86 context (`vcpu_guest_context_x86_64`, 5168 bytes):
/// 64-bit PV guests, and every HVM guest on 64-bit Xen (HVM contexts are host-sized).
public struct X86_64Registers: Sendable, Equatable, Codable {
    public var rax: UInt64, rbx: UInt64, rcx: UInt64, rdx: UInt64
    public var rsi: UInt64, rdi: UInt64, rbp: UInt64, rsp: UInt64
    public var r8: UInt64, r9: UInt64, r10: UInt64, r11: UInt64
    public var r12: UInt64, r13: UInt64, r14: UInt64, r15: UInt64
    public var rip: UInt64, rflags: UInt64
    public var cs: UInt16, ss: UInt16, ds: UInt16, es: UInt16, fs: UInt16, gs: UInt16
    public var flags: UInt64
    public var kernelSS: UInt64, kernelSP: UInt64
    public var ctrlreg: [UInt64]
    public var debugreg: [UInt64]
    public var fsBase: UInt64, gsBaseKernel: UInt64, gsBaseUser: UInt64

    /// Decodes the layout of public `arch-x86/xen-x86_64.h` (offsets from the format note §3.2).
    public init(_ b: LittleEndianBytes) {
        let u = 520 // user_regs
        r15 = b.u64(u + 0); r14 = b.u64(u + 8); r13 = b.u64(u + 16); r12 = b.u64(u + 24)
        rbp = b.u64(u + 32); rbx = b.u64(u + 40); r11 = b.u64(u + 48); r10 = b.u64(u + 56)
        r9 = b.u64(u + 64); r8 = b.u64(u + 72); rax = b.u64(u + 80); rcx = b.u64(u + 88)
        rdx = b.u64(u + 96); rsi = b.u64(u + 104); rdi = b.u64(u + 112)
        rip = b.u64(u + 128); cs = b.u16(u + 136); rflags = b.u64(u + 144); rsp = b.u64(u + 152)
        ss = b.u16(u + 160); es = b.u16(u + 168); ds = b.u16(u + 176); fs = b.u16(u + 184); gs = b.u16(u + 192)
        flags = b.u64(VGCF.flagsOffset)
        kernelSS = b.u64(4968); kernelSP = b.u64(4976)
        ctrlreg = (0..<8).map { b.u64(4984 + 8 * $0) }
        debugreg = (0..<8).map { b.u64(5048 + 8 * $0) }
        fsBase = b.u64(5144); gsBaseKernel = b.u64(5152); gsBaseUser = b.u64(5160)
    }

    public var isOnline: Bool { flags & VGCF.online != 0 }
    public var inKernel: Bool { flags & VGCF.inKernel != 0 }
    /// PV by Xen's in-kernel flag, HVM by CPL 3.
    public func isUserMode(isPV: Bool) -> Bool { isPV ? !inKernel : cs & 3 == 3 }
}

/// The register file of a 32-bit PV guest's compat context (`vcpu_guest_context_x86_32`,
/// 2800 bytes, stored at the start of each 5168-byte slot).
public struct X86_32Registers: Sendable, Equatable, Codable {
    public var eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32
    public var esi: UInt32, edi: UInt32, ebp: UInt32, esp: UInt32
    public var eip: UInt32, eflags: UInt32
    public var cs: UInt16, ss: UInt16, ds: UInt16, es: UInt16, fs: UInt16, gs: UInt16
    public var flags: UInt32
    public var kernelSS: UInt32, kernelSP: UInt32
    public var ctrlreg: [UInt32]
    public var debugreg: [UInt32]

    /// Decodes public `arch-x86/xen-x86_32.h` (format note §3.3).
    public init(_ b: LittleEndianBytes) {
        let u = 516
        ebx = b.u32(u + 0); ecx = b.u32(u + 4); edx = b.u32(u + 8); esi = b.u32(u + 12)
        edi = b.u32(u + 16); ebp = b.u32(u + 20); eax = b.u32(u + 24)
        eip = b.u32(u + 32); cs = b.u16(u + 36); eflags = b.u32(u + 40); esp = b.u32(u + 44)
        ss = b.u16(u + 48); es = b.u16(u + 52); ds = b.u16(u + 56); fs = b.u16(u + 60); gs = b.u16(u + 64)
        flags = b.u32(VGCF.flagsOffset)
        kernelSS = b.u32(2708); kernelSP = b.u32(2712)
        ctrlreg = (0..<8).map { b.u32(2716 + 4 * $0) }
        debugreg = (0..<8).map { b.u32(2748 + 4 * $0) }
    }

    public var isOnline: Bool { UInt64(flags) & VGCF.online != 0 }
    public var inKernel: Bool { UInt64(flags) & VGCF.inKernel != 0 }
    /// PV by Xen's in-kernel flag, HVM by CPL 3.
    public func isUserMode(isPV: Bool) -> Bool { isPV ? !inKernel : cs & 3 == 3 }

    /// The PAE L3 machine frame named by a compat CR3 (`xen_cr3_to_pfn_x86_32`: a 32-bit rotate).
    public var cr3Frame: UInt64 {
        let cr3 = ctrlreg[3]
        return UInt64((cr3 >> 12) | (cr3 << 20))
    }
}
