import Synchronization

/// The frames of an `xl dump-core` file, found through `.xen_p2m` or `.xen_pfn`.
///
/// Nothing is indexed when the core is opened: counting the usable pages is a binary
/// search (both indexes are sorted by pfn with `~0` slots last). A `.xen_pfn` core is
/// searched in place: Xen's writer sorts it, and each 4 KiB block of the index a search
/// reads is checked to be in order (with its neighbours' edges) the first time, so an
/// unsorted index is found out where it is read and then indexed by runs; the cost
/// follows the lookups, not the core's size. A PV core's machine frames are indexed as
/// lookups need them (`FrameRunIndex`): runs of consecutive frames in consecutive slots,
/// from the first slot on, so a report that reads the guest's kernel pays for the slots it
/// reaches, not for the p2m of a 64 GiB guest or for how its frames are scattered.
public final class CoreFrames: FrameSource {
    let core: XenCore
    let isP2M: Bool
    let entryWidth: Int
    /// Usable slots: valid (not `~0`), with the index entry and the page inside the file.
    public let availableCount: Int
    /// Slots whose index entry, and whose page, are within the file (a cut core loses its
    /// index first: xl writes it after the pages).
    let indexInFile: Int, pagesInFile: Int
    private let state = Mutex(State())

    enum Lookup: Sendable, Equatable {
        case sortedPFN              // binary search in the mapped .xen_pfn, block by block checked
        case runs                   // frame → slot by runs (PV machine frames, or an unsorted index)
    }

    struct State {
        var lookup: Lookup? = nil
        var runIndex = FrameRunIndex()
        /// The `.xen_pfn` blocks found in order, copied, by block number: the search reads
        /// them here, and the file's pages are given back after the copy (the kernel maps a
        /// freshly written core's pages in large folios, up to 2 MiB per touched page of index).
        var checkedBlocks: [[UInt64]?] = []
        /// The last lookups, by the frame's low bits (a frame, and its slot or -1 when the
        /// core lacks it): every page-table walk reads the same few tables again.
        var recentFrames = [UInt64](repeating: 0, count: CoreFrames.recentLookups)
        var recentSlots = [Int](repeating: -2, count: CoreFrames.recentLookups)
    }
    static let recentLookups = 256
    /// Index entries per checked block: one 4 KiB page of `.xen_pfn`.
    static let blockEntries = 512

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
        // Give back the index pages the search touched (whole large folios of a fresh file).
        if usable > 0 { core.file.release(offset: index.offset & ~4095, count: Int(index.offset & 4095) + usable * entryWidth) }
    }

    /// The pfn recorded in slot `slot`.
    func pfn(slot: Int) -> UInt64 {
        core.file.bytes(at: core.frameIndex.offset + UInt64(slot * entryWidth), count: 8)!.le64(0)
    }

    /// The frame the guest's page tables use for slot `slot` (the gmfn for PV).
    func frame(slot: Int) -> UInt64 {
        core.file.bytes(at: core.frameIndex.offset + UInt64(slot * entryWidth) + (isP2M ? 8 : 0), count: 8)!.le64(0)
    }

    /// How frames are looked up now, and how many index blocks were checked (for tests).
    var lookupState: Lookup? { state.withLock { $0.lookup } }
    var checkedBlockCount: Int { state.withLock { $0.checkedBlocks.reduce(0) { $0 + ($1 == nil ? 0 : 1) } } }

    /// The index entries of the usable slots, in place.
    var indexBytes: UnsafeRawBufferPointer? { core.file.bytes(at: core.frameIndex.offset, count: availableCount * entryWidth) }

    /// The usable slots' entries, looking up the frame at `frameOffset` in each.
    func entries(frameOffset: Int) -> IndexEntries? {
        indexBytes.map { IndexEntries(bytes: $0, width: entryWidth, frameOffset: frameOffset, file: core.file, fileOffset: core.frameIndex.offset) }
    }

    /// Runs indexed so far, the slots they cover, and the bytes of the filters past them
    /// (for tests and benchmarks).
    public var indexedRuns: (runs: Int, slots: Int, filterBytes: Int) {
        state.withLock { ($0.runIndex.runs.count, $0.runIndex.indexed, $0.runIndex.tail?.bytes ?? 0) }
    }

    func slot(of frame: UInt64) -> Int? {
        guard availableCount > 0 else { return nil }
        return state.withLock { state -> Int? in
            let recent = Int(truncatingIfNeeded: frame) & (Self.recentLookups - 1)
            if state.recentFrames[recent] == frame, state.recentSlots[recent] != -2 {
                return state.recentSlots[recent] >= 0 ? state.recentSlots[recent] : nil
            }
            let slot = lookUp(frame, &state)
            state.recentFrames[recent] = frame
            state.recentSlots[recent] = slot ?? -1
            return slot
        }
    }

    private func lookUp(_ frame: UInt64, _ state: inout State) -> Int? {
        if state.lookup == nil { state.lookup = isP2M ? .runs : .sortedPFN }
        if state.lookup == .sortedPFN {
            guard let index = indexBytes else { return nil }
            if state.checkedBlocks.isEmpty { state.checkedBlocks = Array(repeating: nil, count: (availableCount + Self.blockEntries - 1) / Self.blockEntries) }
            switch searchSorted(frame, index: index, checked: &state.checkedBlocks) {
            case .found(let slot): return slot
            case .missing: return nil
            case .unsorted: state.lookup = .runs   // not Xen's sorted index: index it by runs
            }
        }
        guard let entries = entries(frameOffset: isP2M ? 8 : 0) else { return nil }
        return state.runIndex.slot(of: frame, in: entries)
    }

    enum SearchResult { case found(Int), missing, unsorted }

    /// Binary search of the `.xen_pfn` index, checking each block it reads (once).
    func searchSorted(_ frame: UInt64, index: UnsafeRawBufferPointer, checked: inout [[UInt64]?]) -> SearchResult {
        /// The pfn of `entry`, from its block's checked copy (nil: the block is out of order).
        func pfn(_ entry: Int) -> UInt64? {
            let block = entry / Self.blockEntries
            if let entries = checked[block] { return entries[entry - block * Self.blockEntries] }
            guard let entries = checkedBlock(block, index: index) else { return nil }
            checked[block] = entries
            return entries[entry - block * Self.blockEntries]
        }
        var lo = 0, hi = availableCount
        while lo < hi {
            let mid = (lo + hi) / 2
            guard let p = pfn(mid) else { return .unsorted }
            if p == frame { return .found(mid) }
            if p < frame { lo = mid + 1 } else { hi = mid }
        }
        // A miss: the entries that bound the frame are in checked blocks too.
        if lo > 0 && pfn(lo - 1) == nil { return .unsorted }
        if lo < availableCount && pfn(lo) == nil { return .unsorted }
        return .missing
    }

    /// Block `block`'s entries, copied, when they ascend and continue from the block before
    /// and into the one after; nil when they do not. The file's pages are given back.
    func checkedBlock(_ block: Int, index: UnsafeRawBufferPointer) -> [UInt64]? {
        let first = block * Self.blockEntries
        let start = max(0, first - 1)
        let end = min(availableCount, first + Self.blockEntries + 1)
        defer {
            // Whole pages around the block (a private read-only mapping refaults the same bytes).
            let from = (core.frameIndex.offset + UInt64(start * entryWidth)) & ~4095
            let to = min(UInt64(core.file.size), (core.frameIndex.offset + UInt64(end * entryWidth) + 4095) & ~4095)
            if to > from { core.file.release(offset: from, count: Int(to - from)) }
        }
        var entries: [UInt64] = []
        entries.reserveCapacity(Self.blockEntries)
        var previous: UInt64? = nil
        for i in start..<end {
            let p = index.le64(i * entryWidth)
            if let previous, p <= previous { return nil }
            previous = p
            if i >= first && i < first + Self.blockEntries { entries.append(p) }
        }
        return entries
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
        guard let slot = slot(of: frame) else { return isZero(frame) ? Self.zeroPage : nil }
        return core.file.bytes(at: core.pages.offset + UInt64(slot) * UInt64(XenCoreLayout.pageSize), count: XenCoreLayout.pageSize)
    }

    /// Whether a trimmed core records `frame` as a page of zeros (kept as a run, not a page).
    public func isZero(_ frame: UInt64) -> Bool {
        let runs = core.zeroRuns
        var lo = 0, hi = runs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if runs[mid].first + (runs[mid].count - 1) < frame { lo = mid + 1 } else { hi = mid }
        }
        return lo < runs.count && runs[lo].first <= frame
    }

    /// What a zero run's frames read as.
    nonisolated(unsafe) static let zeroPage: UnsafeRawBufferPointer = {
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: XenCoreLayout.pageSize, alignment: XenCoreLayout.pageSize)
        page.initializeMemory(as: UInt8.self, repeating: 0)
        return UnsafeRawBufferPointer(page)
    }()

    /// The kernel maps a core's pages in whole large folios (up to 2 MiB per page read):
    /// a search over the kernel image leaves far more resident than it read. A private
    /// read-only mapping refaults the same bytes, at the same addresses, when read again.
    public func releaseResidentPages() {
        core.file.release(offset: 0, count: core.file.size)
    }

    public func whyMissing(_ frame: UInt64) -> String {
        let kind = isP2M ? "machine frame" : "guest frame"
        if availableCount == 0 { return "\(kind) 0x\(hex(frame)) is not in the core: it holds no guest memory" }
        if let window = armWindow { return "\(kind) 0x\(hex(frame)) is not in the core (it holds only guest frames \(window))" }
        if core.truncation != nil { return "\(kind) 0x\(hex(frame)) is not in the core (the core is truncated)" }
        if core.trimNote != nil { return "\(kind) 0x\(hex(frame)) is not in the core (a trimmed core: it keeps only the pages its views read)" }
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
