import VCPUContext

/// The guest's memory, as /proc/meminfo adds it up, from the kernel's global counters:
/// `_totalram_pages`, `vm_zone_stat[]` and `vm_node_stat[]` (indexed by the enumerators the
/// kernel's own types give), `total_swap_pages` and `nr_swap_pages`; MemAvailable as
/// si_mem_available() estimates it, from those, `totalreserve_pages` and every zone's low
/// watermark. Like the kernel's global_*_page_state(), the per-CPU deltas not yet folded in
/// are left out.
public struct MemInfo: Sendable, Equatable {
    /// Pages, each nil when the kernel does not name it. `slab*` are in pages too (the
    /// `_B` counters of 5.9+ count pages in the global array, bytes only per object).
    public var total: UInt64?, free: UInt64?, filePages: UInt64?, shmem: UInt64?
    public var slabReclaimable: UInt64?, slabUnreclaimable: UInt64?
    public var swapTotal: UInt64?, swapFree: UInt64?
    /// si_mem_available()'s estimate, and the sum of the zones' low watermarks (with their
    /// boosts) it caps the cache and slab it counts by.
    public var available: UInt64?, lowWatermarks: UInt64?
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
        m.lowWatermarks = lowWatermarks(reader: reader, types: types, symbol: symbol, missing: &m.missing)
        // si_mem_available(): free less the reserve, plus the file LRUs and the reclaimable
        // kernel memory, each less the smaller of its half and the low watermarks.
        if let free = m.free, let wmark = m.lowWatermarks, let reserve = word("totalreserve_pages"),
           let active = counter("vm_node_stat", "NR_ACTIVE_FILE"), let inactive = counter("vm_node_stat", "NR_INACTIVE_FILE"),
           let slab = m.slabReclaimable, let misc = counter("vm_node_stat", "NR_KERNEL_MISC_RECLAIMABLE") {
            let pagecache = active &+ inactive, reclaimable = slab &+ misc
            let estimate = Int64(truncatingIfNeeded: free) &- Int64(truncatingIfNeeded: reserve)
                &+ Int64(truncatingIfNeeded: pagecache &- min(pagecache / 2, wmark))
                &+ Int64(truncatingIfNeeded: reclaimable &- min(reclaimable / 2, wmark))
            m.available = UInt64(max(0, estimate))
        }
        var seen = Set<String>()
        m.missing = m.missing.filter { seen.insert($0).inserted }
        return m
    }

    /// Every zone's low watermark with its boost (low_wmark_pages()), summed over the nodes:
    /// `contig_page_data` on kernels without NUMA, else the non-null `node_data[]` entries
    /// below `nr_node_ids` (at most 1024); each node's `node_zones[]` as the types shape it.
    static func lowWatermarks(reader: KernelReader, types: any KernelTypes, symbol: (String) -> UInt64?,
                              missing: inout [String]) -> UInt64? {
        guard let zones = types.arrayShape(of: "node_zones", in: "pglist_data"), (1...16).contains(zones.count),
              let zonesAt = types.offset(of: "node_zones", in: "pglist_data") else {
            missing.append("pglist_data.node_zones: not in the kernel's types"); return nil
        }
        // `_watermark[]` and `watermark_boost` since 5.0, `watermark[]` before.
        guard let marks = types.offset(ofAny: ["_watermark", "watermark"], in: "zone"), let low = types.enumValue("WMARK_LOW"),
              (0..<8).contains(low) else {
            missing.append("zone's watermarks: not in the kernel's types"); return nil
        }
        let boost = types.offset(of: "watermark_boost", in: "zone")
        let w = UInt64(reader.wordSize)
        var nodes: [UInt64] = []
        if let contig = symbol("contig_page_data") {
            nodes = [contig]
        } else if let table = symbol("node_data") {
            let count = symbol("nr_node_ids").flatMap { try? reader.u32($0) }.map { min(Int($0), 1024) } ?? 1
            for i in 0..<max(1, count) {
                guard let p = try? reader.word(table &+ UInt64(i) &* w) else { missing.append("node_data[\(i)]: unreadable"); return nil }
                if p != 0 { nodes.append(p) }
            }
        } else {
            missing.append("contig_page_data, node_data: not in the symbols"); return nil
        }
        var sum: UInt64 = 0
        for node in nodes {
            for z in 0..<zones.count {
                let zone = node &+ UInt64(zonesAt) &+ UInt64(z * zones.stride)
                let mark = try? reader.word(zone &+ UInt64(marks.offset) &+ UInt64(low) &* w)
                let boosted: UInt64? = if let boost { try? reader.word(zone &+ UInt64(boost)) } else { 0 }
                guard let mark, let boosted else { missing.append("zone \(z) of node at \(hex(node)): unreadable"); return nil }
                sum = sum &+ mark &+ boosted
            }
        }
        return sum
    }

    /// /proc/meminfo's lines for what was read, in kB.
    public var lines: [(String, UInt64)] {
        let kB = pageSize / 1024
        var out: [(String, UInt64)] = []
        func add(_ name: String, _ pages: UInt64?) { if let pages { out.append((name, pages &* kB)) } }
        add("MemTotal", total)
        add("MemFree", free)
        add("MemAvailable", available)
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
