import Synchronization

/// The frames of an `xl dump-core` file, found through `.xen_p2m` or `.xen_pfn`.
///
/// Nothing is indexed when the core is opened: counting the usable pages is a binary
/// search (both indexes are sorted by pfn with `~0` slots last), and the PV machine-frame
/// index is built on the first memory access only.
public final class CoreFrames: FrameSource {
    let core: XenCore
    let isP2M: Bool
    let entryWidth: Int
    /// Usable slots: valid (not `~0`), with the index entry and the page inside the file.
    public let availableCount: Int
    /// Slots whose index entry, and whose page, are within the file (a cut core loses its
    /// index first: xl writes it after the pages).
    let indexInFile: Int, pagesInFile: Int
    private let lookup = Mutex<Lookup?>(nil)

    enum Lookup: Sendable {
        case sortedPFN                 // binary search in the mapped .xen_pfn
        case table([UInt64: Int])      // frame → slot (PV machine frames, or an unsorted index)
    }

    public init(core: XenCore) {
        self.core = core
        isP2M = core.frameIndex.name == ".xen_p2m"
        entryWidth = isP2M ? 16 : 8
        let index = core.frameIndex
        let declared = Int(clamping: core.header.pageCount)
        // Slots whose index entry is in the file, and whose page is in the file.
        let indexInFile = core.file.size > Int(clamping: index.offset)
            ? min(declared, (core.file.size - Int(index.offset)) / entryWidth) : 0
        let pagesInFile = core.file.size > Int(clamping: core.pages.offset)
            ? min(declared, (core.file.size - Int(core.pages.offset)) / XenCoreLayout.pageSize) : 0
        (self.indexInFile, self.pagesInFile) = (indexInFile, pagesInFile)
        let usable = min(indexInFile, pagesInFile)
        // Valid pfns come first, ascending; find the first ~0.
        var lo = 0, hi = usable
        let base = core.file.bytes(at: index.offset, count: usable * (isP2M ? 16 : 8))
        while lo < hi {
            let mid = (lo + hi) / 2
            if let base, base.le64(mid * (isP2M ? 16 : 8)) != XenCoreLayout.invalidFrame { lo = mid + 1 } else { hi = mid }
        }
        availableCount = base == nil ? 0 : lo
    }

    /// The pfn recorded in slot `slot`.
    func pfn(slot: Int) -> UInt64 {
        core.file.bytes(at: core.frameIndex.offset + UInt64(slot * entryWidth), count: 8)!.le64(0)
    }

    /// The frame the guest's page tables use for slot `slot` (the gmfn for PV).
    func frame(slot: Int) -> UInt64 {
        core.file.bytes(at: core.frameIndex.offset + UInt64(slot * entryWidth) + (isP2M ? 8 : 0), count: 8)!.le64(0)
    }

    private func prepared() -> Lookup {
        lookup.withLock { state in
            if let state { return state }
            let built: Lookup
            var sorted = !isP2M
            if sorted {
                var previous: UInt64? = nil
                for slot in 0..<availableCount {
                    let p = pfn(slot: slot)
                    if let previous, p <= previous { sorted = false; break }
                    previous = p
                }
            }
            if sorted {
                built = .sortedPFN
            } else {
                var table = [UInt64: Int](minimumCapacity: availableCount)
                for slot in 0..<availableCount where table[frame(slot: slot)] == nil {
                    table[frame(slot: slot)] = slot
                }
                built = .table(table)
            }
            state = built
            return built
        }
    }

    func slot(of frame: UInt64) -> Int? {
        guard availableCount > 0 else { return nil }
        switch prepared() {
        case .table(let table):
            return table[frame]
        case .sortedPFN:
            var lo = 0, hi = availableCount
            while lo < hi {
                let mid = (lo + hi) / 2
                let p = pfn(slot: mid)
                if p == frame { return mid }
                if p < frame { lo = mid + 1 } else { hi = mid }
            }
            return nil
        }
    }

    /// Every usable slot's pfn and frame, in slot order (for tools that rewrite a core).
    public func slots() -> [(pfn: UInt64, frame: UInt64)] {
        (0..<availableCount).map { (pfn(slot: $0), frame(slot: $0)) }
    }

    /// Where `frame`'s page is in the core file (for tools that patch a copy of a core).
    public func fileOffset(of frame: UInt64) -> UInt64? {
        slot(of: frame).map { core.pages.offset + UInt64($0) * UInt64(XenCoreLayout.pageSize) }
    }

    /// The page in slot `slot`.
    public func page(slot: Int) -> UnsafeRawBufferPointer {
        core.file.bytes(at: core.pages.offset + UInt64(slot) * UInt64(XenCoreLayout.pageSize), count: XenCoreLayout.pageSize)!
    }

    public func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        guard let slot = slot(of: frame) else { return nil }
        return core.file.bytes(at: core.pages.offset + UInt64(slot) * UInt64(XenCoreLayout.pageSize), count: XenCoreLayout.pageSize)
    }

    public func whyMissing(_ frame: UInt64) -> String {
        let kind = isP2M ? "machine frame" : "guest frame"
        if availableCount == 0 { return "\(kind) 0x\(hex(frame)) is not in the core: it holds no guest memory" }
        if let window = armWindow { return "\(kind) 0x\(hex(frame)) is not in the core (it holds only guest frames \(window))" }
        if core.truncation != nil { return "\(kind) 0x\(hex(frame)) is not in the core (the core is truncated)" }
        return "\(kind) 0x\(hex(frame)) is not in the core"
    }

    /// xl's ARM writer copies only pfns 0x80000–0x87fff (xg_core_arm.c, a 2012 TODO).
    var armWindow: String? {
        guard core.machine == XenCoreLayout.emARM, availableCount > 0 else { return nil }
        let first = pfn(slot: 0), last = pfn(slot: availableCount - 1)
        guard first >= 0x80000, last < 0x88000 else { return nil }
        return "0x80000–0x87fff, the 128 MiB window xl dump-core copies on ARM"
    }

    /// A warning when the core cannot serve stack walks, and why.
    public var availabilityNote: String? {
        if availableCount == 0 {
            if core.machine == XenCoreLayout.emARM {
                return "this core holds registers only: every page slot is empty, as in every ARM core `xl dump-core` writes (it copies only guest frames 0x80000–0x87fff, below which a guest with ≤ 1 GiB of RAM has nothing); no stack can be read. Save a complete core of a live domain with `xenctx-swift --save-core FILE DOMID` (all guest RAM, ARM included)"
            }
            if pagesInFile > 0 && indexInFile < Int(clamping: core.header.pageCount) {
                let mib = (pagesInFile * XenCoreLayout.pageSize) >> 20
                return "this core was cut short: \(pagesInFile) of its \(core.header.pageCount) pages (\(mib) MiB) are in the file, but its frame index (\(core.frameIndex.name), which xl writes after the pages) is \(indexInFile == 0 ? "missing" : "cut to \(indexInFile) entries"), so no page can be placed; registers only"
            }
            return "this core holds no readable guest memory (\(core.header.pageCount) pages declared, none in the file); registers only"
        }
        if let window = armWindow {
            return "this core holds only guest frames \(window); the kernel image, its stacks and page tables normally lie outside it, so stacks may be unreadable"
        }
        return nil
    }
}
