/// The guest's instruction set and data width.
public enum GuestArchitecture: String, Sendable, Codable, CaseIterable {
    case x86_32, x86_64, arm32, aarch64

    /// Bytes in a guest word: stacks are walked at this width, never the tool's.
    public var wordSize: Int { descriptor.wordSize }
}

/// Which `vcpu_guest_context` layout the core's `.xen_prstatus` entries use.
public enum ContextLayout: Sendable, Equatable, Codable {
    case x86_64
    case x86_32
    case arm(entrySize: Int)
}

/// What kind of guest a core holds, and the evidence the decision rests on.
///
/// ARM cores do not say whether the guest is 32- or 64-bit and x86 HVM cores lack EFER,
/// so the decision is an inference; `evidence` lists every fact used so the user can
/// judge it (shown by `--describe`).
public struct GuestDescription: Sendable, Equatable, Codable {
    public var architecture: GuestArchitecture
    /// x86 only: a paravirtualised guest (frames in page tables are machine frames).
    public var isPV: Bool
    public var layout: ContextLayout
    /// x86 HVM only: CR0.PE. Real-mode guests have 2-byte words and segment:offset addresses.
    public var protectedMode: Bool
    /// Bytes per guest word for stacks and memory dumps (2 in x86 real mode).
    public var wordSize: Int
    public var evidence: [String]

    public init(architecture: GuestArchitecture, isPV: Bool, layout: ContextLayout, protectedMode: Bool, wordSize: Int, evidence: [String]) {
        self.architecture = architecture; self.isPV = isPV; self.layout = layout
        self.protectedMode = protectedMode; self.wordSize = wordSize; self.evidence = evidence
    }

    public var summary: String { architecture.descriptor.summary(isPV: isPV, protectedMode: protectedMode) }
}

/// What a source knows about its guest apart from the registers: for a core, its ELF and
/// notes; for a live domain, what libxenctrl answered.
public struct SourceFacts: Sendable {
    public var machine: UInt16
    public var isPV: Bool
    public var contextEntrySize: Int
    public var xenVersion: String
    public var capabilities: String
    /// x86 HVM, live only: EFER and CR0 of vCPU 0 from the HVM CPU save record.
    public var hvmEFER: UInt64? = nil
    public var hvmCR0: UInt64? = nil
    /// How the source described itself, for the evidence lines.
    public var origin = "core"

    public init(machine: UInt16, isPV: Bool, contextEntrySize: Int, xenVersion: String, capabilities: String) {
        self.machine = machine
        self.isPV = isPV
        self.contextEntrySize = contextEntrySize
        self.xenVersion = xenVersion
        self.capabilities = capabilities
    }

    public init(core: XenCore) {
        self.init(machine: core.machine, isPV: core.isPV, contextEntrySize: core.contextEntrySize,
                  xenVersion: core.xenVersion.versionString, capabilities: core.xenVersion.capabilities)
    }
}

extension GuestDescription {
    /// Decides the guest kind of a core (format note §6).
    public static func decide(core: XenCore, vcpus: [RegisterFile]) -> GuestDescription {
        decide(facts: SourceFacts(core: core), vcpus: vcpus)
    }

    /// Decides the guest kind from a source's facts and its vCPUs' registers.
    public static func decide(facts core: SourceFacts, vcpus: [RegisterFile]) -> GuestDescription {
        let magic = core.isPV ? "PV magic 0xf00febed" : "HVM magic 0xf00febee"
        switch core.machine {
        case XenCoreLayout.em386 where core.isPV:
            return GuestDescription(architecture: .x86_32, isPV: true, layout: .x86_32, protectedMode: true, wordSize: 4,
                                    evidence: ["ELF machine EM_386 with \(magic): xl writes EM_386 when a PV guest's width is 4 bytes",
                                               "contexts decoded as the compat x86_32 layout"])
        case XenCoreLayout.emX86_64 where core.isPV:
            return GuestDescription(architecture: .x86_64, isPV: true, layout: .x86_64, protectedMode: true, wordSize: 8,
                                    evidence: ["ELF machine EM_X86_64 with \(magic): a 64-bit PV guest"])
        case XenCoreLayout.emARM:
            return decideARM(core: core, vcpus: vcpus)
        default:
            return decideX86HVM(core: core, vcpus: vcpus, magic: magic)
        }
    }

    static func decideX86HVM(core: SourceFacts, vcpus: [RegisterFile], magic: String) -> GuestDescription {
        if let efer = core.hvmEFER, let cr0 = core.hvmCR0 {
            // Live: the HVM CPU save record has EFER, so no guessing (what upstream xenctx does).
            let evidence = ["an HVM/PVH guest (XEN_DOMINF_hvm_guest); EFER \(hex(efer)) and CR0 \(hex(cr0)) from the HVM CPU save record"]
            if cr0 & 1 == 0 {
                return GuestDescription(architecture: .x86_32, isPV: false, layout: .x86_64, protectedMode: false, wordSize: 2, evidence: evidence + ["CR0.PE clear: real mode"])
            }
            if efer & 0x400 != 0 {
                return GuestDescription(architecture: .x86_64, isPV: false, layout: .x86_64, protectedMode: true, wordSize: 8, evidence: evidence + ["EFER.LMA set: long mode"])
            }
            return GuestDescription(architecture: .x86_32, isPV: false, layout: .x86_64, protectedMode: true, wordSize: 4, evidence: evidence + ["EFER.LMA clear: 32-bit protected mode"])
        }
        var evidence = ["ELF machine \(core.machine == XenCoreLayout.em386 ? "EM_386 (an i386 toolstack)" : "EM_X86_64") with \(magic): an HVM/PVH guest; contexts are host-sized x86_64 records",
                        "the core has no EFER, so the width is inferred from CR0/CR4 and register values"]
        let regs: [X86_64Registers] = vcpus.compactMap { if case .x86_64(let r) = $0, r.isOnline { return r } else { return nil } }
        guard let r = regs.first else {
            evidence.append("no online vCPU to inspect: assuming 64-bit")
            return GuestDescription(architecture: .x86_64, isPV: false, layout: .x86_64, protectedMode: true, wordSize: 8, evidence: evidence)
        }
        let cr0 = r.ctrlreg[0], cr4 = r.ctrlreg[4]
        if cr0 & 1 == 0 {
            evidence.append("CR0.PE clear on the first online vCPU: real mode, 16-bit words")
            return GuestDescription(architecture: .x86_32, isPV: false, layout: .x86_64, protectedMode: false, wordSize: 2, evidence: evidence)
        }
        let upper = regs.contains { $0.rip >> 32 != 0 || $0.rsp >> 32 != 0 }
        if cr0 & 0x8000_0000 != 0, cr4 & 0x20 != 0, upper {
            evidence.append("CR0.PG and CR4.PAE set and a vCPU has rip/rsp above 4 GiB: long mode")
            return GuestDescription(architecture: .x86_64, isPV: false, layout: .x86_64, protectedMode: true, wordSize: 8, evidence: evidence)
        }
        evidence.append("protected mode with no register above 4 GiB: a 32-bit guest")
        return GuestDescription(architecture: .x86_32, isPV: false, layout: .x86_64, protectedMode: true, wordSize: 4, evidence: evidence)
    }

    static func decideARM(core: SourceFacts, vcpus: [RegisterFile]) -> GuestDescription {
        let layout = ContextLayout.arm(entrySize: core.contextEntrySize)
        var evidence = [core.origin == "core" ? "ELF machine EM_ARM with \(core.isPV ? "PV" : "HVM") magic: an ARM guest (xl writes EM_ARM for 32- and 64-bit guests alike)"
                                              : "an ARM guest on a live ARM host (ARM has no guest-width query)",
                        "context entries of \(core.contextEntrySize) bytes: the layout of Xen \(core.contextEntrySize == 352 ? "≥ 4.16" : core.contextEntrySize == 344 ? "4.4–4.15" : "≤ 4.3") (\(core.origin) from Xen \(core.xenVersion))"]
        func result(_ arch: GuestArchitecture, _ why: String) -> GuestDescription {
            evidence.append(why)
            return GuestDescription(architecture: arch, isPV: false, layout: layout, protectedMode: true, wordSize: arch.wordSize, evidence: evidence)
        }
        let regs: [(Int, ArmRegisters)] = vcpus.enumerated().compactMap { if case .arm(let r) = $1 { return ($0, r) } else { return nil } }
        let privileged32: Set<UInt64> = [0x11, 0x12, 0x13, 0x17, 0x1b, 0x1f]
        if let (i, r) = regs.first(where: { $0.1.isAArch32State && privileged32.contains($0.1.cpsr & 0x1f) }) {
            return result(.arm32, "vCPU entry \(i) has CPSR \(hex(r.cpsr, width: 8)): AArch32 state in a privileged mode, which a 64-bit guest's EL1 never is")
        }
        if let (i, r) = regs.first(where: { !$0.1.isAArch32State }) {
            return result(.aarch64, "vCPU entry \(i) has CPSR \(hex(r.cpsr, width: 8)): AArch64 state (CPSR bit 4 clear)")
        }
        let capabilities = core.capabilities
        if !capabilities.contains("aarch64") {
            return result(.arm32, "Xen's capabilities \"\(capabilities.trimmingSpaces)\" lack xen-3.0-aarch64: 32-bit Xen runs only 32-bit guests")
        }
        if regs.contains(where: { $0.1.spsrFIQ | $0.1.spsrIRQ | $0.1.spsrUND | $0.1.spsrABT != 0 }) {
            return result(.arm32, "banked SPSRs (fiq/irq/und/abt) are set: arm64 Xen fills them only for 32-bit guests")
        }
        if regs.contains(where: { $0.1.spEL0 | $0.1.spEL1 | $0.1.elrEL1 != 0 }) {
            return result(.aarch64, "SP_EL0/SP_EL1/ELR_EL1 are set: arm64 Xen fills them only for 64-bit guests")
        }
        if let r = regs.first?.1, r.ttbcr & 0x8000_0000 != 0, r.ttbcr >> 32 == 0 {
            return result(.arm32, "every vCPU is in AArch32 user mode; TTBCR.EAE is set with no TCR_EL1 high bits: guessing a 32-bit LPAE guest")
        }
        return result(.aarch64, "every vCPU is in AArch32 user mode and nothing else decides: guessing a 64-bit guest running 32-bit user code")
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
