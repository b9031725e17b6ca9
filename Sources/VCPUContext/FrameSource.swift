/// Guest memory by frame: the pages a guest's page tables point at.
///
/// For PV guests the page tables hold machine frames (MFNs); for HVM and ARM guests they
/// hold guest frames (GFNs/IPAs). A source answers in the numbering its guest uses, so the
/// walkers never need to know which.
public protocol FrameSource: Sendable {
    /// The 4 KiB page of `frame`, or nil if the source does not hold it. The bytes stay
    /// valid, unchanged, for as long as the source lives (readers may keep them).
    func page(_ frame: UInt64) -> UnsafeRawBufferPointer?
    /// Why `frame` is missing, in words for the user.
    func whyMissing(_ frame: UInt64) -> String
    /// Gives back the resident pages a phase of reading has left mapped, where the source
    /// can map them again on the next read (a core's mapping); bytes handed out stay valid.
    func releaseResidentPages()
    /// Makes the source hold `frames` (those it can), at the least cost it has: a live
    /// domain maps them in one call instead of one per page, which is what keeps the pause
    /// short. Frames it cannot hold stay missing, and a later `page` says why.
    func prefetch(_ frames: [UInt64])
    /// The page of `frame` if the source already holds it, at no cost; nil when reading it
    /// would cost a call (or it is missing). Lets a reader learn, without mapping, what to map.
    func heldPage(_ frame: UInt64) -> UnsafeRawBufferPointer?
}

extension FrameSource {
    /// Nothing to give back (pages copied in, as from a live domain).
    public func releaseResidentPages() {}

    /// A source whose pages cost no call each (a core's mapping) reads them as asked.
    public func prefetch(_ frames: [UInt64]) {
        for frame in frames.prefix(1 << 16) { _ = page(frame) }
    }

    /// Every page is at hand.
    public func heldPage(_ frame: UInt64) -> UnsafeRawBufferPointer? { page(frame) }
}
