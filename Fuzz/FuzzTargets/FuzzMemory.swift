import VCPUContext

/// Guest memory made of fuzzer bytes: page i of `bytes` is frame `firstFrame + i`, so the
/// walkers and readers run on the input itself, with no file and no copy per read.
final class FuzzMemory: FrameSource, @unchecked Sendable {
    let pages: [[UInt8]]
    let firstFrame: UInt64

    init(_ bytes: UnsafeRawBufferPointer, firstFrame: UInt64) {
        self.firstFrame = firstFrame
        var pages: [[UInt8]] = []
        var o = 0
        while o < bytes.count && pages.count < 4096 {
            var p = [UInt8](repeating: 0, count: 4096)
            let n = min(4096, bytes.count - o)
            for i in 0..<n { p[i] = bytes[o + i] }
            pages.append(p)
            o += 4096
        }
        self.pages = pages
    }

    func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        guard frame >= firstFrame, frame - firstFrame < UInt64(pages.count) else { return nil }
        return pages[Int(frame - firstFrame)].withUnsafeBytes { UnsafeRawBufferPointer(start: $0.baseAddress, count: 4096) }
    }

    func whyMissing(_ frame: UInt64) -> String { "frame \(frame) is not in the input" }
}

/// Little-endian fields from the front of an input, then the rest as memory.
struct FuzzHeader {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func u8() -> UInt8 {
        defer { position += 1 }
        return position < bytes.count ? bytes[position] : 0
    }
    mutating func u32() -> UInt32 { (0..<4).reduce(UInt32(0)) { v, i in v | UInt32(u8()) << (8 * UInt32(i)) } }
    mutating func u64() -> UInt64 { (0..<8).reduce(UInt64(0)) { v, i in v | UInt64(u8()) << (8 * UInt64(i)) } }
    var rest: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[min(position, bytes.count)...]) }
}

/// An ARM32 guest's lowmem made of fuzzer bytes: page i of `bytes` is virtual page
/// c0000000 + 4 KiB·i, mapped by 1 MiB sections of a short-descriptor table (frames 0–3)
/// that leaves the rest of the address space unmapped, so a search over lowmem skips what
/// the input does not hold a section at a time, as it does in a real guest.
final class FuzzLowmem: FrameSource, @unchecked Sendable {
    static let firstFrame: UInt64 = 0x100          // the input's pages start at 1 MiB
    let table: [UInt8]
    let memory: FuzzMemory

    init(_ bytes: UnsafeRawBufferPointer) {
        memory = FuzzMemory(bytes, firstFrame: Self.firstFrame)
        var t = [UInt8](repeating: 0, count: 16384)
        let sections = (memory.pages.count + 255) / 256
        for i in 0..<sections {
            let entry = UInt32(truncatingIfNeeded: (Self.firstFrame << 12) + UInt64(i) << 20) | 0b10
            let at = (0xc00 + i) * 4
            for b in 0..<4 { t[at + b] = UInt8(truncatingIfNeeded: entry >> (8 * UInt32(b))) }
        }
        table = t
    }

    var translation: Translation { .armShort(ArmShortDescriptor(ttbcr: 0, ttbr0: 0, ttbr1: 0)) }

    func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        if frame < 4 {
            return table.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[Int(frame) * 4096..<Int(frame + 1) * 4096]) }
        }
        return memory.page(frame)
    }

    func whyMissing(_ frame: UInt64) -> String { memory.whyMissing(frame) }
}
