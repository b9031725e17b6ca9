extension Translation {
    /// The translation regime a vCPU was using, from its own registers.
    public static func of(_ registers: RegisterFile, guest: GuestDescription) -> Translation {
        guest.architecture.descriptor.translation(registers, isPV: guest.isPV)
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
            throw MemoryFault(address: va, why: .missing(frame: pa >> 12, source: frames, table: nil))
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
