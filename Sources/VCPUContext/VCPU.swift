/// One vCPU's registers, in the layout its context record used.
public enum RegisterFile: Sendable, Equatable, Codable {
    case x86_64(X86_64Registers)
    case x86_32(X86_32Registers)
    case arm(ArmRegisters)

    public var isOnline: Bool {
        switch self {
        case .x86_64(let r): return r.isOnline
        case .x86_32(let r): return r.isOnline
        case .arm(let r): return r.isOnline
        }
    }

    /// The instruction pointer as the context holds it: rip (also for a 32-bit HVM guest,
    /// whose context is Xen's host-sized record), eip, or ARM's pc.
    public var instructionPointer: UInt64 {
        switch self {
        case .x86_64(let r): return r.rip
        case .x86_32(let r): return UInt64(r.eip)
        case .arm(let r): return r.pc
        }
    }

    /// Decodes one context entry of `layout`.
    public static func decode(_ bytes: LittleEndianBytes, layout: ContextLayout) -> RegisterFile? {
        switch layout {
        case .x86_64: return .x86_64(X86_64Registers(bytes))
        case .x86_32: return .x86_32(X86_32Registers(bytes))
        case .arm(let size): return ArmRegisters(bytes, entrySize: size).map { .arm($0) }
        }
    }
}

/// A vCPU as a source holds it.
///
/// `id` is the vCPU number. In a core it is the entry's position: Xen packs contexts in
/// ascending vCPU order but skips vCPUs that were never started (`-ENODATA`), without
/// recording ids, so an id above a skipped vCPU would be shifted. `idIsCertain` says
/// whether the source knew the id (a live domain does; a core does not).
public struct VCPU: Sendable, Equatable {
    public let id: Int
    public let idIsCertain: Bool
    public let registers: RegisterFile
    /// Whether the vCPU is up: a live source asks Xen (`xc_vcpu_getinfo`); a core has
    /// only the context's `VGCF_online` flag.
    public let isOnline: Bool

    public init(id: Int, idIsCertain: Bool, registers: RegisterFile, online: Bool? = nil) {
        self.id = id
        self.idIsCertain = idIsCertain
        self.registers = registers
        self.isOnline = online ?? registers.isOnline
    }
}
