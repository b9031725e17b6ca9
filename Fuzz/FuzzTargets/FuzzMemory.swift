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
    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { (0..<4).reduce(UInt32(0)) { v, i in v | UInt32(u8()) << (8 * UInt32(i)) } }
    mutating func u64() -> UInt64 { (0..<8).reduce(UInt64(0)) { v, i in v | UInt64(u8()) << (8 * UInt64(i)) } }
    var rest: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[min(position, bytes.count)...]) }
    var remaining: Int { max(0, bytes.count - position) }
    /// The next `count` bytes (fewer at the end of the input).
    mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let start = min(position, bytes.count), end = min(start + max(0, count), bytes.count)
        position = end
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }
}

/// Sparse guest memory made of fuzzer bytes: runs of [u64 address][u16 length][bytes], each
/// at its address (identity-mapped: frame = address >> 12), a later run over an earlier
/// one, zeros around them; at most `maxRuns` runs and `maxPages` pages. Seeds place real
/// bytes where the kernel had them, a few fields at a time, so inputs stay small.
final class FuzzRegions: FrameSource, @unchecked Sendable {
    static let maxRuns = 256, maxPages = 96
    private(set) var pages: [[UInt8]] = []
    private var index: [UInt64: Int] = [:]

    init(_ h: inout FuzzHeader) {
        var runs = 0
        while h.remaining > 0 && runs < Self.maxRuns {
            runs += 1
            let at = h.u64()
            let run = h.take(Int(h.u16()))
            var o = 0
            while o < run.count {
                let va = at &+ UInt64(o)
                let offset = Int(va & 0xfff)
                let n = min(4096 - offset, run.count - o)
                defer { o += n }
                let frame = va >> 12
                let i: Int
                if let known = index[frame] {
                    i = known
                } else {
                    guard pages.count < Self.maxPages else { continue }
                    i = pages.count
                    pages.append([UInt8](repeating: 0, count: 4096))
                    index[frame] = i
                }
                pages[i].withUnsafeMutableBytes { $0.baseAddress!.advanced(by: offset).copyMemory(from: run.baseAddress!.advanced(by: o), byteCount: n) }
            }
        }
    }

    func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        guard let i = index[frame] else { return nil }
        return pages[i].withUnsafeBytes { UnsafeRawBufferPointer(start: $0.baseAddress, count: 4096) }
    }

    func whyMissing(_ frame: UInt64) -> String { "not in the input" }   // cheap: searches ask it for every page they miss

    /// Bytes at addresses, for seeds: later writes over earlier ones; `encoded` is the
    /// input form FuzzRegions reads (contiguous bytes as one run, split at 65535).
    struct Builder {
        var bytes: [UInt64: UInt8] = [:]
        mutating func put(_ address: UInt64, _ b: some Sequence<UInt8>) {
            for (i, v) in b.enumerated() { bytes[address &+ UInt64(i)] = v }
        }
        mutating func put(_ address: UInt64, word v: UInt64, _ n: Int) {
            for i in 0..<n { bytes[address &+ UInt64(i)] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        }
        var encoded: [UInt8] {
            var out: [UInt8] = []
            var start: UInt64 = 0
            var run: [UInt8] = []
            func flush() {
                guard !run.isEmpty else { return }
                out.le(start, 8); out.le(UInt64(run.count), 2); out += run
                run.removeAll(keepingCapacity: true)
            }
            for a in bytes.keys.sorted() {
                // A short gap in the same page is zeros either way: bridged, one run fewer.
                let end = start &+ UInt64(run.count)
                if !run.isEmpty, a > end, a - end <= 256, a >> 12 == (end - 1) >> 12, run.count + Int(a - end) < 65535 {
                    run += [UInt8](repeating: 0, count: Int(a - end))
                }
                if run.isEmpty || a != start &+ UInt64(run.count) || run.count == 65535 {
                    flush()
                    start = a
                }
                run.append(bytes[a]!)
            }
            flush()
            return out
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends `v` as `n` little-endian bytes.
    mutating func le(_ v: UInt64, _ n: Int) { for i in 0..<n { append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
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

