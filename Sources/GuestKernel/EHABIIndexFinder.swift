import VCPUContext

/// Finds the ARM32 kernel's exception-index table (`.ARM.exidx`, between
/// `__start_unwind_idx` and `__stop_unwind_idx`) by its content, for kernels whose kallsyms
/// has no data symbols (no CONFIG_KALLSYMS_ALL, as Debian's armmp).
///
/// Each entry is two words: a prel31 offset from the entry to a function (bit 31 clear),
/// then EXIDX_CANTUNWIND (1), inline unwind data (bit 31 set) or a prel31 offset to the
/// extab. The functions rise strictly through the kernel's text, so the table is the
/// longest run of such entries; __ex_table before it holds absolute addresses (bit 31 set
/// on a kernel at c0000000) and the extab after it breaks the run.
public enum EHABIIndexFinder {
    /// Fewer entries than this is not the kernel's table (Debian's has ~34 000).
    static let minimumEntries = 256
    static let maxSearch = 32 << 20

    public static func locate(reader: KernelReader, text: [ClosedRange<UInt64>], from start: UInt64, to end: UInt64) -> (start: UInt64, stop: UInt64)? {
        guard start < end, end - start <= UInt64(maxSearch) else { return nil }
        var best: (start: UInt64, count: Int)? = nil
        var run: (start: UInt64, count: Int, lastFunction: UInt64)? = nil
        func isText(_ a: UInt64) -> Bool { text.contains { $0.contains(a) } }
        reader.forEachMappedPage(from: start & ~0xfff, to: end, descending: false, maxPages: maxSearch / 4096) { va, page in
            var o = 0
            while o + 8 <= 4096 {
                defer { o += 8 }
                let entry = va + UInt64(o)
                let w0 = page.loadUnaligned(fromByteOffset: o, as: UInt32.self)
                let w1 = page.loadUnaligned(fromByteOffset: o + 4, as: UInt32.self)
                let function = w0 & 0x8000_0000 == 0 ? prel31(w0, at: entry) : 0
                let valid = function != 0 && isText(function) && (w1 == 1 || w1 & 0x8000_0000 != 0 || prel31(w1, at: entry + 4) != 0)
                if valid, let r = run, function > r.lastFunction, r.start + UInt64(r.count * 8) == entry {
                    run = (r.start, r.count + 1, function)
                } else {
                    if let r = run, r.count >= minimumEntries, r.count > (best?.count ?? 0) { best = (r.start, r.count) }
                    run = valid ? (entry, 1, function) : nil
                }
            }
            return true
        }
        if let r = run, r.count >= minimumEntries, r.count > (best?.count ?? 0) { best = (r.start, r.count) }
        return best.map { ($0.start, $0.start + UInt64($0.count * 8)) }
    }

    /// The address a prel31 word at `at` refers to (32-bit address space).
    static func prel31(_ w: UInt32, at: UInt64) -> UInt64 {
        let offset = Int64(Int32(bitPattern: w << 1) >> 1)
        return UInt64(truncatingIfNeeded: Int64(bitPattern: at) &+ offset) & 0xffff_ffff
    }
}
