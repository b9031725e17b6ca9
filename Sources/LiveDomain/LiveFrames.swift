import CXenLive
import Synchronization
import VCPUContext
#if canImport(Glibc)
import Glibc
#endif

/// Guest frames of a live domain, mapped read-only on first use and copied, so the
/// report can be printed after the domain is unpaused.
///
/// Each mapping is a hypercall (and its unmap, on ARM one hypercall per page), which costs
/// far more than the copy: a report searches the kernel image and reads its tables page by
/// page, 7 000 pages and more without a symbol file. So misses that run on from the last
/// mapping, upwards or downwards, map ahead in runs that double up to `maxRun`, as a
/// kernel's read-ahead does; a miss anywhere else maps that frame alone, so scattered reads
/// (page tables, the stack pages copied while the domain is paused) copy no more than they read.
///
/// What the pause costs is cut in three phases. Before it (`warming`), a walk on contexts
/// read from the running domain maps the frames it will likely need and keeps the mappings
/// open: a mapping shows a frame as it is now, not a copy. In the pause, a frame so mapped
/// is copied with no hypercall, and new mappings stay open too, so no unmap is paid there;
/// everything read before the pause is dropped, since the running domain may have changed
/// it. After the pause (`endPause`), the open mappings are unmapped, and every later miss
/// maps, copies and unmaps at once.
public final class LiveFrames: FrameSource, @unchecked Sendable {
    enum Phase: Sendable { case warming, paused, afterPause }

    let domid: UInt32
    static let maxRun = 64
    /// At most this many pages are copied in all (256 MiB): a report needs a few thousand.
    static let maxPages = 1 << 16
    /// At most this many pages are kept mapped at once (16 MiB): on a dom0 whose kernel backs
    /// foreign mappings with ballooned pages they cost its memory. The stacks need tens.
    static let maxOpenPages = 4096
    /// Frames one library call may map (xenlive_map_frames' bound).
    static let maxBatch = Int(XENLIVE_MAX_FRAMES)

    private struct State {
        var phase: Phase
        var pages: [UInt64: UnsafeMutableRawPointer] = [:]
        /// The copies, one allocation per mapping or per page, freed together when the source goes.
        var blocks: [UnsafeMutableRawPointer] = []
        var copied = 0
        /// Frames that could not be mapped, with Xen's errno (remembered: asked once).
        var failures: [UInt64: Int32] = [:]
        /// The frames of the last mapping, and the run length that mapped them.
        var last: Range<UInt64> = 0..<0
        var run = 1
        var mappings = 0
        /// Open mappings (made while warming or paused): each frame's page in one, and the
        /// mappings with their sizes, to unmap after the pause.
        var open: [UInt64: UnsafeRawPointer] = [:]
        var openMappings: [(UnsafeMutableRawPointer, Int)] = []
        var openPages = 0
        /// The counters when the pause began: what it cost is the difference.
        var atPause = (copied: 0, mappings: 0)
        var warmed = (pages: 0, mappings: 0)
    }
    private let lock: Mutex<State>

    /// A source that maps and copies on each miss (`afterPause`), or, `warming`, one that
    /// keeps its mappings open for the pause to come.
    public init(domid: UInt32, warming: Bool = false) {
        self.domid = domid
        lock = Mutex(State(phase: warming ? .warming : .afterPause))
    }

    deinit {
        lock.withLock { state in
            for (map, count) in state.openMappings { xenlive_unmap_frames(map, Int32(count)) }
            for b in state.blocks { free(b) }
        }
    }

    /// The domain is paused now: what was read of it running is forgotten (its copies stay
    /// allocated, for whoever holds them, but are never handed out again); its open mappings
    /// are what the pause reads.
    public func beginPause() {
        lock.withLock { state in
            guard state.phase == .warming else { return }
            state.warmed = (state.openPages, state.mappings)
            state.pages = [:]
            state.failures = [:]
            state.last = 0..<0
            state.run = 1
            state.copied = 0
            state.atPause = (0, state.mappings)
            state.phase = .paused
        }
    }

    /// The domain runs again: the open mappings are unmapped (out of the pause), and later
    /// misses are mapped, copied and unmapped at once.
    public func endPause() {
        lock.withLock { state in
            for (map, count) in state.openMappings { xenlive_unmap_frames(map, Int32(count)) }
            state.openMappings = []
            state.open = [:]
            state.openPages = 0
            state.phase = .afterPause
        }
    }

    /// Pages copied and the mappings (hypercalls) that copied them, all told, for --describe.
    var statistics: (pages: Int, mappings: Int) { lock.withLock { ($0.copied, $0.mappings) } }

    /// What the pause cost: the pages copied in it, the mappings made in it, and the pages
    /// and mappings made ready before it.
    public var pauseStatistics: (pages: Int, mappings: Int, warmedPages: Int, warmedMappings: Int) {
        lock.withLock { ($0.copied - $0.atPause.copied, $0.mappings - $0.atPause.mappings, $0.warmed.pages, $0.warmed.mappings) }
    }

    public func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        // The page's address, not its pointer: Swift 6.0 refuses to send a pointer held by the state out of the lock.
        let address: UInt = lock.withLock { state in
            if let held = Self.held(frame, in: &state) { return UInt(bitPattern: held) }
            if state.failures[frame] != nil { return 0 }
            guard state.copied < Self.maxPages else { return 0 }
            let run = Self.nextRun(for: frame, after: state.last, run: state.run)
            // Never map again what is held, and never past the budget.
            var frames = Self.frames(of: run.range, around: frame).filter {
                state.pages[$0] == nil && state.open[$0] == nil && state.failures[$0] == nil
            }
            if frames.count > Self.maxPages - state.copied { frames = [frame] }
            state.last = run.range
            state.run = run.length
            if let e = Self.map(frames, domid: domid, into: &state) { state.failures[frame] = e }
            return Self.held(frame, in: &state).map { UInt(bitPattern: $0) } ?? 0
        }
        return UnsafeRawPointer(bitPattern: address).map { UnsafeRawBufferPointer(start: $0, count: 4096) }
    }

    public func heldPage(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        let address: UInt = lock.withLock { state in Self.held(frame, in: &state).map { UInt(bitPattern: $0) } ?? 0 }
        return UnsafeRawPointer(bitPattern: address).map { UnsafeRawBufferPointer(start: $0, count: 4096) }
    }

    /// The copy of `frame`, made now from an open mapping if need be (no hypercall).
    private static func held(_ frame: UInt64, in state: inout State) -> UnsafeMutableRawPointer? {
        if let copy = state.pages[frame] { return copy }
        guard let mapped = state.open[frame], state.copied < maxPages else { return nil }
        let copy = malloc(4096)!
        memcpy(copy, mapped, 4096)
        state.blocks.append(copy)
        state.pages[frame] = copy
        state.copied += 1
        return copy
    }

    /// Maps every frame not yet held in as few calls as the library allows (1 024 frames a
    /// call), within the page budget: the stack pages a paused domain's report needs, in one
    /// hypercall instead of one each. While warming, they are only mapped, not copied.
    public func prefetch(_ wanted: [UInt64]) {
        lock.withLock { state in
            var frames: [UInt64] = []
            var queued = Set<UInt64>()
            for f in wanted where state.pages[f] == nil && state.open[f] == nil && state.failures[f] == nil && queued.insert(f).inserted {
                frames.append(f)
            }
            frames = Array(frames.prefix(max(0, Self.maxPages - state.copied)))
            var start = 0
            while start < frames.count {
                let chunk = Array(frames[start..<min(start + Self.maxBatch, frames.count)])
                start += chunk.count
                Self.map(chunk, domid: domid, into: &state)
            }
        }
    }

    /// Maps `frames` in one call and keeps what Xen gave; a frame it refused is remembered
    /// with its errno. When the call itself fails, returns its errno and remembers nothing
    /// (which frame is to blame is the caller's to say). While warming or paused (and within
    /// `maxOpenPages`) the mapping stays open; paused, its frames are copied at once.
    @discardableResult
    private static func map(_ frames: [UInt64], domid: UInt32, into state: inout State) -> Int32? {
        var errs = [Int32](repeating: 0, count: frames.count)
        state.mappings += 1
        if state.phase != .afterPause && state.openPages + frames.count <= maxOpenPages {
            guard let map = xenlive_map_frames(domid, frames, Int32(frames.count), &errs) else { return errno }
            state.openMappings.append((map, frames.count))
            state.openPages += frames.count
            for (i, f) in frames.enumerated() {
                if errs[i] == 0 {
                    state.open[f] = UnsafeRawPointer(map + i * 4096)
                    if state.phase == .paused { _ = held(f, in: &state) }
                } else {
                    state.failures[f] = -errs[i]
                }
            }
            return nil
        }
        let buf = malloc(frames.count * 4096)!
        guard xenlive_read_frames(domid, frames, Int32(frames.count), buf, &errs) == 0 else {
            let e = errno
            free(buf)
            return e
        }
        var used = false
        for (i, f) in frames.enumerated() {
            if errs[i] == 0 {
                state.pages[f] = buf + i * 4096
                state.copied += 1
                used = true
            } else {
                state.failures[f] = -errs[i]   // a search through a hole then skips it without asking again
            }
        }
        if used { state.blocks.append(buf) } else { free(buf) }
        return nil
    }

    /// The frames to map for a miss at `frame`: a run twice the last one's length when the
    /// miss is the frame just past the last mapping's end (or just below its start, for a
    /// downward search), else the frame alone.
    static func nextRun(for frame: UInt64, after last: Range<UInt64>, run: Int) -> (range: Range<UInt64>, length: Int) {
        if !last.isEmpty && frame == last.upperBound {
            let n = min(run * 2, maxRun)
            let (end, overflow) = frame.addingReportingOverflow(UInt64(n))
            return overflow ? (frame..<frame + 1, 1) : (frame..<end, n)
        }
        if !last.isEmpty && frame &+ 1 == last.lowerBound {
            let n = min(run * 2, maxRun)
            return frame + 1 < UInt64(n) ? (frame..<frame + 1, 1) : (frame + 1 - UInt64(n)..<frame + 1, n)
        }
        return (frame..<frame + 1, 1)
    }

    /// The frames of `range`, the missed one first (so that it is the one a failure names).
    static func frames(of range: Range<UInt64>, around frame: UInt64) -> [UInt64] {
        [frame] + range.filter { $0 != frame }
    }

    public func whyMissing(_ frame: UInt64) -> String {
        let why = lock.withLock { $0.failures[frame] }.map { ": " + String(cString: strerror($0)) } ?? ""
        return "frame 0x\(hex(frame)) of domain \(domid) cannot be mapped\(why)"
    }
}
