import VCPUContext

/// The guest's memory, as /proc/meminfo adds it up, from the kernel's global counters:
/// `_totalram_pages`, `vm_zone_stat[]` and `vm_node_stat[]` (indexed by the enumerators the
/// kernel's own types give), `total_swap_pages` and `nr_swap_pages`. Like the kernel's
/// global_*_page_state(), the per-CPU deltas not yet folded in are left out.
public struct MemInfo: Sendable, Equatable {
    /// Pages, each nil when the kernel does not name it. `slab*` are in pages too (the
    /// `_B` counters of 5.9+ count pages in the global array, bytes only per object).
    public var total: UInt64?, free: UInt64?, filePages: UInt64?, shmem: UInt64?
    public var slabReclaimable: UInt64?, slabUnreclaimable: UInt64?
    public var swapTotal: UInt64?, swapFree: UInt64?
    public let pageSize: UInt64
    /// What could not be read, and why.
    public var missing: [String] = []

    public static func read(reader: KernelReader, types: any KernelTypes, pageSize: UInt64,
                            symbol: (String) -> UInt64?) -> MemInfo {
        var m = MemInfo(pageSize: pageSize)
        let w = UInt64(reader.wordSize)
        func word(_ name: String) -> UInt64? {
            guard let at = symbol(name) else { m.missing.append("\(name): not in the symbols"); return nil }
            guard let v = try? reader.word(at) else { m.missing.append("\(name) at \(hex(at)): unreadable"); return nil }
            return v
        }
        /// `array[index of enumerator]`, a signed long that may dip below 0 between folds.
        func counter(_ array: String, _ item: String) -> UInt64? {
            guard let index = types.enumValue(item), (0..<256).contains(index) else { m.missing.append("\(item): not in the kernel's types"); return nil }
            guard let at = symbol(array) else { m.missing.append("\(array): not in the symbols"); return nil }
            guard let v = try? reader.word(at &+ UInt64(index) &* w) else { m.missing.append("\(array)[\(item)]: unreadable"); return nil }
            let signed = w == 8 ? Int64(bitPattern: v) : Int64(Int32(truncatingIfNeeded: v))
            return UInt64(max(0, signed))
        }
        // `_totalram_pages` since 5.0, `totalram_pages` before: whichever the symbols name.
        m.total = word(symbol("_totalram_pages") == nil && symbol("totalram_pages") != nil ? "totalram_pages" : "_totalram_pages")
        m.free = counter("vm_zone_stat", "NR_FREE_PAGES")
        m.filePages = counter("vm_node_stat", "NR_FILE_PAGES")
        m.shmem = counter("vm_node_stat", "NR_SHMEM")
        m.slabReclaimable = counter("vm_node_stat", "NR_SLAB_RECLAIMABLE_B")
        m.slabUnreclaimable = counter("vm_node_stat", "NR_SLAB_UNRECLAIMABLE_B")
        m.swapTotal = word("total_swap_pages")
        m.swapFree = word("nr_swap_pages").map { w == 8 ? UInt64(max(0, Int64(bitPattern: $0))) : $0 }
        var seen = Set<String>()
        m.missing = m.missing.filter { seen.insert($0).inserted }
        return m
    }

    /// /proc/meminfo's lines for what was read, in kB.
    public var lines: [(String, UInt64)] {
        let kB = pageSize / 1024
        var out: [(String, UInt64)] = []
        func add(_ name: String, _ pages: UInt64?) { if let pages { out.append((name, pages &* kB)) } }
        add("MemTotal", total)
        add("MemFree", free)
        add("FilePages", filePages)     // /proc/meminfo's Cached + Buffers + SwapCached
        add("Shmem", shmem)
        if let r = slabReclaimable, let u = slabUnreclaimable { add("Slab", r + u) }
        add("SReclaimable", slabReclaimable)
        add("SUnreclaim", slabUnreclaimable)
        add("SwapTotal", swapTotal)
        add("SwapFree", swapFree)
        return out
    }
}
