/// The frame entries of a core's index, read in place (the mapped `.xen_p2m` or `.xen_pfn`).
struct IndexEntries {
    let bytes: UnsafeRawBufferPointer      // the usable slots' entries
    let width: Int                          // 16 for .xen_p2m, 8 for .xen_pfn
    let frameOffset: Int                    // where in an entry the looked-up frame is
    let file: MappedFile
    let fileOffset: UInt64                  // where `bytes` starts in the file
    var count: Int { bytes.count / width }

    /// The frame in slot `slot` (slot < count: the caller's loops are bounded by it).
    @inline(__always) func frame(_ slot: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: slot &* width &+ frameOffset, as: UInt64.self))
    }
    func prefault(_ slots: Range<Int>) { file.prefault(offset: fileOffset + UInt64(slots.lowerBound * width), count: slots.count * width) }
    /// Gives back the pages a pass read: a 64 GiB core's 256 MiB p2m must not stay resident.
    func release(_ slots: Range<Int>) { file.release(offset: fileOffset + UInt64(slots.lowerBound * width), count: slots.count * width) }
}

/// Frames `frame ..< frame + count` are in slots `slot ..< slot + count`.
struct FrameRun: Sendable, Comparable {
    var frame: UInt64
    var slot: UInt32
    var count: UInt32
    static func < (a: FrameRun, b: FrameRun) -> Bool { (a.frame, a.slot) < (b.frame, b.slot) }
}

/// frame → slot for an index not sorted by the frame looked up (a PV core's machine frames,
/// or an unsorted `.xen_pfn`), built only as far as lookups need it.
///
/// Slots are indexed from the first, as runs of consecutive frames in consecutive slots, in
/// steps that double (so merging stays linear overall) and only when a lookup misses what is
/// indexed: a report that reads the guest's kernel finds it in the first steps, however many
/// slots follow and however their frames are scattered. Runs stop at `runBudget` (16 MiB);
/// the slots after it get one Bloom filter per segment (8 bits a slot), built in one pass,
/// and a lookup there scans only the segments whose filter may hold the frame, so memory
/// and the cost of a lookup stay bounded whatever the guest's frames look like.
struct FrameRunIndex {
    private(set) var runs: [FrameRun] = []     // sorted by frame; slots 0 ..< indexed
    private(set) var indexed = 0
    private(set) var tail: TailFilter? = nil    // slots indexed ..< count, past the budget
    let runBudget: Int, tailSegment: Int
    static let firstStep = 1 << 16              // 1 MiB of p2m

    init(runBudget: Int = 1 << 20, tailSegment: Int = 1 << 16) {
        (self.runBudget, self.tailSegment) = (max(1, runBudget), max(64, tailSegment))
    }

    mutating func slot(of frame: UInt64, in entries: IndexEntries) -> Int? {
        if let s = Self.find(frame, in: runs[...]) { return s }
        while indexed < entries.count && runs.count < runBudget {
            let end = min(entries.count, indexed + max(Self.firstStep, indexed))
            let (fresh, stop) = Self.runs(of: entries, from: indexed, to: end, limit: runBudget - runs.count)
            let found = Self.find(frame, in: fresh[...])
            runs = Self.merge(runs, fresh)
            indexed = stop
            if let found { return found }
        }
        guard indexed < entries.count else { return nil }
        if tail == nil { tail = TailFilter(entries: entries, from: indexed, segmentSlots: tailSegment) }
        return tail!.slot(of: frame, in: entries)
    }

    /// Runs of slots `from ..< to`, sorted by frame, stopping early once `limit` runs are
    /// made (at a run's end, returned as the first slot not indexed).
    static func runs(of entries: IndexEntries, from: Int, to: Int, limit: Int) -> ([FrameRun], Int) {
        guard from < to else { return ([], from) }
        var runs: [FrameRun] = []
        var inOrder = true
        var runFrame = entries.frame(from), runSlot = from, runCount: UInt64 = 1
        var slot = from + 1
        let chunk = 1 << 16
        var chunkStart = from
        outer: while chunkStart < to {
            let chunkEnd = min(to, chunkStart + chunk)
            entries.prefault(chunkStart..<chunkEnd)
            while slot < chunkEnd {
                let f = entries.frame(slot)
                if f == runFrame &+ runCount && runCount < UInt64(UInt32.max) {
                    runCount += 1
                } else {
                    if runs.count + 1 >= limit { break outer }
                    if f < runFrame { inOrder = false }
                    runs.append(FrameRun(frame: runFrame, slot: UInt32(truncatingIfNeeded: runSlot), count: UInt32(runCount)))
                    runFrame = f; runSlot = slot; runCount = 1
                }
                slot += 1
            }
            entries.release(chunkStart..<chunkEnd)
            chunkStart = chunkEnd
        }
        if slot < to { entries.release(chunkStart..<min(to, chunkStart + chunk)) }
        runs.append(FrameRun(frame: runFrame, slot: UInt32(truncatingIfNeeded: runSlot), count: UInt32(runCount)))
        if !inOrder { runs.sort() }
        return (runs, slot)
    }

    static func merge(_ a: [FrameRun], _ b: [FrameRun]) -> [FrameRun] {
        if a.isEmpty { return b }
        if b.isEmpty { return a }
        if a[a.count - 1] < b[0] { return a + b }
        var out: [FrameRun] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count && j < b.count {
            if b[j] < a[i] { out.append(b[j]); j += 1 } else { out.append(a[i]); i += 1 }
        }
        out.append(contentsOf: a[i...])
        out.append(contentsOf: b[j...])
        return out
    }

    /// The slot of `frame` in `runs` (sorted by frame): the last run starting at or below it.
    static func find(_ frame: UInt64, in runs: ArraySlice<FrameRun>) -> Int? {
        var lo = runs.startIndex, hi = runs.endIndex
        while lo < hi {
            let mid = (lo + hi) / 2
            if runs[mid].frame <= frame { lo = mid + 1 } else { hi = mid }
        }
        guard lo > runs.startIndex else { return nil }
        let r = runs[lo - 1]
        let delta = frame &- r.frame
        return delta < UInt64(r.count) ? Int(r.slot) + Int(delta) : nil
    }
}

/// One Bloom filter per segment of slots past the run budget, blocked (a frame's bits lie in
/// one 64-byte block of its segment's filter, so a probe costs one cache line): a lookup
/// probes every segment's filter and scans only the segments that may hold the frame,
/// about 0.5% of them when the frame is in none (12 bits a slot, 6 bits a frame).
struct TailFilter {
    let start: Int, segmentSlots: Int, segments: Int, blocksPerSegment: Int
    private var bits: [UInt64]                  // segments × blocksPerSegment × 8 words
    /// Lookups that found nothing (a guest's page tables may point at one frame many times).
    private var misses: Set<UInt64> = []
    /// Bytes of index scanned since its pages were last given back.
    private var scanned = 0
    static let bitsPerSlot = 12, bitsPerFrame = 6
    var bytes: Int { bits.count * 8 }

    init(entries: IndexEntries, from start: Int, segmentSlots: Int) {
        self.start = start
        self.segmentSlots = segmentSlots
        segments = (entries.count - start + segmentSlots - 1) / segmentSlots
        let blocks = max(1, segmentSlots * Self.bitsPerSlot / 512)
        blocksPerSegment = blocks
        bits = [UInt64](repeating: 0, count: segments * blocks * 8)
        for s in 0..<segments {
            let range = (start + s * segmentSlots)..<min(entries.count, start + (s + 1) * segmentSlots)
            entries.prefault(range)
            bits.withUnsafeMutableBufferPointer { b in
                for slot in range {
                    let (block, mask) = Self.probe(entries.frame(slot), blocks: blocks)
                    let at = (s * blocks + block) * 8
                    for w in 0..<8 { b[at + w] |= mask[w] }
                }
            }
            entries.release(range)
        }
    }

    /// The block of a segment's filter that `frame` uses, and its bits there.
    @inline(__always) static func probe(_ frame: UInt64, blocks: Int) -> (Int, SIMD8<UInt64>) {
        // splitmix64's finaliser: the guest picks frames, so neighbours must not collide.
        func mix(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9e37_79b9_7f4a_7c15
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        let z = mix(frame)
        let block = Int(truncatingIfNeeded: mix(z) % UInt64(blocks))
        var mask = SIMD8<UInt64>(repeating: 0)
        var h = z
        for _ in 0..<bitsPerFrame {
            let bit = Int(h & 511)
            mask[bit >> 6] |= 1 << UInt64(bit & 63)
            h >>= 9
        }
        return (block, mask)
    }

    func mayHold(_ at: Int, _ mask: SIMD8<UInt64>) -> Bool {
        var block = SIMD8<UInt64>(repeating: 0)
        for w in 0..<8 { block[w] = bits[at + w] }
        return block & mask == mask
    }

    mutating func slot(of frame: UInt64, in entries: IndexEntries) -> Int? {
        if misses.contains(frame) { return nil }
        let (block, mask) = Self.probe(frame, blocks: blocksPerSegment)
        for s in 0..<segments where mayHold((s * blocksPerSegment + block) * 8, mask) {
            let range = (start + s * segmentSlots)..<min(entries.count, start + (s + 1) * segmentSlots)
            // Scanned pages stay resident until 64 MiB more have been read: a guest that makes
            // many lookups here rereads them, and memory stays bounded.
            scanned += range.count * entries.width
            if scanned > 64 << 20 { entries.release(start..<entries.count); scanned = 0 }
            for slot in range where entries.frame(slot) == frame { return slot }
        }
        if misses.count < 1 << 16 { misses.insert(frame) }
        return nil
    }
}
