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
}

extension FrameSource {
    /// Nothing to give back (pages copied in, as from a live domain).
    public func releaseResidentPages() {}
}
