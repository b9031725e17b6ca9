/// Everything a report needs about one guest, from whichever source (core file or,
/// later, a live domain): its kind, its vCPUs and its memory.
public struct Guest: Sendable {
    public let description: GuestDescription
    public let vcpus: [VCPU]
    /// Guest frames as the guest's page tables name them (machine frames for PV, guest
    /// frames otherwise); nil when the source has none.
    public let frames: (any FrameSource)?
    /// What the user should know about the source (truncation, missing RAM, guessed ids).
    public let warnings: [String]
    /// Facts about the source for `--describe`.
    public let facts: [String]

    public init(description: GuestDescription, vcpus: [VCPU], frames: (any FrameSource)?, warnings: [String], facts: [String]) {
        self.description = description
        self.vcpus = vcpus
        self.frames = frames
        self.warnings = warnings
        self.facts = facts
    }

    /// The translation-control register of the first online ARM vCPU with its MMU on.
    public var armTCR: UInt64? {
        for v in vcpus where v.isOnline {
            if case .arm(let r) = v.registers, r.sctlr & 1 != 0 { return r.ttbcr }
        }
        return nil
    }

    /// AArch64: bits of the kernel (TTBR1) virtual address space, 64 - TCR_EL1.T1SZ
    /// (48 when no vCPU has its MMU on). Pointer-authentication bits lie above it.
    public var kernelVABits: Int {
        64 - (armTCR.map { Int(($0 >> 16) & 0x3f) } ?? 16)
    }

    public var defaultKernelStart: UInt64 { KernelStart.defaultValue(for: description.architecture, tcr: armTCR) }
}

extension Guest {
    /// Reads a core's vCPUs and decides its guest kind.
    public init(core: XenCore) throws(CoreError) {
        let provisional: ContextLayout
        switch core.machine {
        case XenCoreLayout.emARM: provisional = .arm(entrySize: core.contextEntrySize)
        case XenCoreLayout.em386 where core.isPV: provisional = .x86_32
        default: provisional = .x86_64
        }
        var files: [RegisterFile] = []
        for i in 0..<core.vcpuEntryCount {
            guard let bytes = core.contextBytes(entry: i), let regs = RegisterFile.decode(bytes, layout: provisional) else {
                throw CoreError(.malformed, path: core.path, detail: ".xen_prstatus entry \(i) cannot be decoded")
            }
            files.append(regs)
        }
        let description = GuestDescription.decide(core: core, vcpus: files)
        let vcpus = files.enumerated().map { VCPU(id: $0.offset, idIsCertain: $0.offset == 0, registers: $0.element) }
        var warnings: [String] = []
        if let truncation = core.truncation { warnings.append(truncation) }
        let frames = CoreFrames(core: core)
        if let note = frames.availabilityNote { warnings.append(note) }
        var facts = [
            "core: \(core.path), \(core.file.size) bytes, written by Xen \(core.xenVersion.versionString) (capabilities: \(core.xenVersion.capabilities.trimmingSpaces))",
            "vCPU contexts: \(core.vcpuEntryCount) entries of \(core.contextEntrySize) bytes; ids are entry positions (Xen skips never-started vCPUs without recording ids, so an id above a skipped vCPU would be shifted)",
            "guest pages: \(core.header.pageCount) declared, \(frames.availableCount) readable, index \(core.frameIndex.name)",
        ]
        if let trim = core.trimNote {
            let zeros = core.zeroRuns.reduce(UInt64(0)) { $0 &+ $1.count }
            facts.append("trimmed by xenctx-swift: \(trim)" + (zeros == 0 ? "" : "; \(zeros) pages of zeros kept as \(core.zeroRuns.count) runs"))
        }
        facts += core.notes
        self.init(description: description, vcpus: vcpus, frames: frames.availableCount > 0 ? frames : nil, warnings: warnings, facts: facts)
    }
}
