#if canImport(Glibc)
import Glibc
#endif

/// A copy of a core that keeps only some of its pages: the same notes, vCPU contexts and
/// layout (so every reader of xl's cores reads it), with the kept pages in their slot order,
/// so a `.xen_pfn` index stays sorted, and a note of xenctx-swift's own saying what it kept.
public enum CoreTrim {
    public struct Result: Sendable, Equatable {
        public let pages: Int
        public let bytes: Int
    }

    /// The note a trimmed core carries: xenctx-swift's own name, text saying what was kept.
    public static func note(_ text: String) -> (name: String, type: UInt32, descriptor: [UInt8]) {
        (XenCoreLayout.trimNoteName, XenCoreLayout.trimNoteType, Array(text.utf8.prefix(XenCoreLayout.maxTrimNoteBytes - 1)) + [0])
    }

    /// Writes `frames` of `core` (in the guest's numbering, as `CoreFrames` serves them; frames
    /// the core lacks are skipped) to `path`, which must not exist.
    public static func write(core: XenCore, frames: Set<UInt64>, note: String, to path: String) throws -> Result {
        let source = CoreFrames(core: core)
        let slots = frames.compactMap { source.slot(of: $0) }.sorted()
        var contexts: [[UInt8]] = []
        for i in 0..<core.vcpuEntryCount {
            guard let c = core.contextBytes(entry: i) else { throw CoreError(.truncated, path: core.path, detail: "vCPU context \(i) is not in the file") }
            contexts.append(c.bytes)
        }
        var writer = DumpCoreWriter(machine: core.machine, magic: core.header.magic, entrySize: core.contextEntrySize,
                                    contexts: contexts, frames: slots.map { (pfn: source.pfn(slot: $0), gmfn: source.frame(slot: $0)) })
        writer.versionDescriptor = core.versionDescriptor
        writer.extraNotes = [Self.note(note)]
        try writer.write(to: path) { i in Array(source.page(slot: slots[i])) }
        var st = stat()
        let bytes = stat(path, &st) == 0 ? Int(st.st_size) : 0
        return Result(pages: slots.count, bytes: bytes)
    }
}
