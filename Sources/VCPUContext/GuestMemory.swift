extension Translation {
    /// The translation regime a vCPU was using, from its own registers.
    public static func of(_ registers: RegisterFile, guest: GuestDescription) -> Translation {
        switch registers {
        case .x86_64(let r) where guest.isPV:
            return .x86LongMode(root: r.ctrlreg[3])           // machine address of the L4
        case .x86_32(let r):
            return .x86PAE(root: r.cr3Frame << 12)           // compat CR3 names the PAE L3's machine frame
        case .x86_64(let r):
            let cr0 = r.ctrlreg[0], cr3 = r.ctrlreg[3], cr4 = r.ctrlreg[4]
            if cr0 & 0x8000_0000 == 0 { return .identity }
            if guest.architecture == .x86_64 { return .x86LongMode(root: cr3 & ~0xfff) }
            if cr4 & 0x20 != 0 { return .x86PAE(root: cr3 & 0xffff_ffe0) }
            return .x86TwoLevel(root: cr3 & 0xffff_f000, pse: cr4 & 0x10 != 0)
        case .arm(let r):
            if r.sctlr & 1 == 0 { return .identity }
            if guest.architecture == .aarch64 { return .aarch64(AArch64Translation(tcr: r.ttbcr, ttbr0: r.ttbr0, ttbr1: r.ttbr1)) }
            if r.ttbcr & 0x8000_0000 != 0 { return .armLPAE(ArmLPAE(ttbcr: r.ttbcr, ttbr0: r.ttbr0, ttbr1: r.ttbr1)) }
            return .armShort(ArmShortDescriptor(ttbcr: r.ttbcr, ttbr0: r.ttbr0, ttbr1: r.ttbr1))
        }
    }
}

/// A vCPU's view of guest memory: virtual addresses through its own page tables.
///
/// Keeps the last translated page, since stack dumps read word after word of one page.
/// Not thread-safe: make one per vCPU being rendered.
public final class GuestMemory {
    public let frames: (any FrameSource)?
    public let translation: Translation
    private var cachedPage: UInt64 = ~0
    private var cachedBytes: UnsafeRawBufferPointer? = nil
    /// Upper bound on one `read`, so a hostile length cannot allocate without limit.
    public static let maxRead = 1 << 20

    public init(frames: (any FrameSource)?, translation: Translation) {
        self.frames = frames
        self.translation = translation
    }

    public convenience init(guest: Guest, vcpu: VCPU) {
        self.init(frames: guest.frames, translation: .of(vcpu.registers, guest: guest.description))
    }

    /// The mapped 4 KiB page holding `va`.
    public func page(containing va: UInt64) throws(MemoryFault) -> UnsafeRawBufferPointer {
        let pageVA = va & ~0xfff
        if pageVA == cachedPage, let cachedBytes { return cachedBytes }
        guard let frames else { throw MemoryFault(address: va, reason: "the source holds no guest memory") }
        let pa = try translation.translate(pageVA, frames: frames)
        guard let page = frames.page(pa >> 12) else {
            throw MemoryFault(address: va, reason: frames.whyMissing(pa >> 12))
        }
        cachedPage = pageVA
        cachedBytes = page
        return page
    }

    public func byte(_ va: UInt64) throws(MemoryFault) -> UInt8 {
        try page(containing: va)[Int(va & 0xfff)]
    }

    public func read(_ va: UInt64, count: Int) throws(MemoryFault) -> [UInt8] {
        guard count >= 0, count <= GuestMemory.maxRead else { throw MemoryFault(address: va, reason: "read of \(count) bytes refused") }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var a = va
        while out.count < count {
            let p = try page(containing: a)
            let offset = Int(a & 0xfff)
            let n = min(count - out.count, 4096 - offset)
            out.append(contentsOf: p[offset..<(offset + n)])
            a &+= UInt64(n)
        }
        return out
    }

    /// A little-endian word of `width` bytes (2, 4 or 8) at `va`.
    public func word(_ va: UInt64, width: Int) throws(MemoryFault) -> UInt64 {
        let offset = Int(va & 0xfff)
        if offset + width <= 4096 {
            let p = try page(containing: va)
            var v: UInt64 = 0
            for i in 0..<width { v |= UInt64(p[offset + i]) << (8 * UInt64(i)) }
            return v
        }
        let bytes = try read(va, count: width)
        return bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }
}
