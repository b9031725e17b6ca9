import Synchronization
import VCPUContext

extension Report {
    /// Reads, through each online vCPU's page tables, every page a report's stack views
    /// start from: from the chosen stack pointer's page (and an ARM exception mode's
    /// fallback to sp_svc) to the top of its kernel stack plus `stackPages - 1` pages, and
    /// the code bytes around an x86 IP. A live guest's frame source keeps what it read,
    /// so this, done while the domain is paused, is the snapshot the report is printed
    /// from after unpausing (page-table pages included, since the walks read them).
    ///
    /// On a live domain each mapping call costs far more than its copy, so the walks go
    /// level by level for all vCPUs at once: every round translates all the pages through
    /// what is already held, then maps in one call every table the walks still lack; the
    /// stack pages then come in one last call. A few calls in all, however many vCPUs.
    public static func snapshotStacks(of guest: Guest, stackPages: Int) {
        guard let source = guest.frames else { return }
        let pages = stackPageAddresses(of: guest, stackPages: stackPages)
        let held = HeldFrames(source)
        var frames: [UInt64] = []
        var lastMisses: [UInt64]? = nil
        // Bounded: a walk has at most 5 levels; a round that asks for what the last one
        // asked for (frames the source refuses) ends the rounds.
        for _ in 0..<8 {
            frames = []
            var seen = Set<UInt64>()
            for (translation, va) in pages {
                if let pa = try? translation.translate(va, frames: held), seen.insert(pa >> 12).inserted {
                    frames.append(pa >> 12)
                }
            }
            let misses = held.takeMisses()
            if misses.isEmpty || misses == lastMisses { break }
            source.prefetch(misses)
            lastMisses = misses
        }
        source.prefetch(frames)
    }

    /// The page addresses the snapshot copies, each with the translation of its vCPU.
    static func stackPageAddresses(of guest: Guest, stackPages: Int) -> [(Translation, UInt64)] {
        let d = guest.description
        let threadSize = d.architecture.descriptor.kernelStackSize
        let extra = UInt64(max(0, min(stackPages, 65536) - 1)) * 4096
        var out: [(Translation, UInt64)] = []
        for v in guest.vcpus where v.isOnline {
            let translation = Translation.of(v.registers, guest: d)
            let choice = StackPointerChoice.choose(v.registers, guest: d)
            var pointers = [choice.address, choice.fallback].compactMap { $0 }
            if case .x86_64(let r) = v.registers { pointers.append(d.wordSize == 8 ? r.rip &- 21 : (r.rip &- 21) & 0xffff_ffff) }
            for sp in pointers where sp != 0 {
                let top = ((sp & ~(threadSize - 1)) &+ threadSize) &+ extra
                var page = sp & ~4095
                var n = 0
                // Bounded: at most the stack plus -n pages (65536 at most).
                while page < top && n <= 4 + 65536 {
                    out.append((translation, page))
                    page &+= 4096
                    n += 1
                }
            }
        }
        return out
    }
}

/// A source's pages as far as it holds them already; what a walk lacked is noted, to be
/// mapped together.
private final class HeldFrames: FrameSource {
    let inner: any FrameSource
    private let misses = Mutex<(order: [UInt64], set: Set<UInt64>)>(([], []))

    init(_ inner: any FrameSource) { self.inner = inner }

    func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        if let p = inner.heldPage(frame) { return p }
        misses.withLock { if $0.set.insert(frame).inserted { $0.order.append(frame) } }
        return nil
    }

    func whyMissing(_ frame: UInt64) -> String { inner.whyMissing(frame) }

    /// The frames missed since the last call, in the order the walks wanted them.
    func takeMisses() -> [UInt64] {
        misses.withLock { m in defer { m = ([], []) }; return m.order }
    }
}
