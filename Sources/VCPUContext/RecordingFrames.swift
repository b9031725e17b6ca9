import Synchronization

/// A frame source that remembers which frames were read through it: what a trimmed core
/// must keep so that the same views read the same bytes again.
public final class RecordingFrames: FrameSource {
    public let inner: any FrameSource
    private let seen = Mutex(Set<UInt64>())

    public init(_ inner: any FrameSource) { self.inner = inner }

    public func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        guard let p = inner.page(frame) else { return nil }
        seen.withLock { _ = $0.insert(frame) }
        return p
    }

    public func whyMissing(_ frame: UInt64) -> String { inner.whyMissing(frame) }
    public func releaseResidentPages() { inner.releaseResidentPages() }
    public func prefetch(_ frames: [UInt64]) { inner.prefetch(frames) }

    public func heldPage(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        guard let p = inner.heldPage(frame) else { return nil }
        seen.withLock { _ = $0.insert(frame) }
        return p
    }

    /// The frames read so far (in the guest's numbering: machine frames for PV).
    public var frames: Set<UInt64> { seen.withLock { $0 } }
}

extension Guest {
    /// The same guest read through other frames (a recorder over its own).
    public func withFrames(_ frames: any FrameSource) -> Guest {
        Guest(description: description, vcpus: vcpus, frames: frames, warnings: warnings, facts: facts)
    }
}
