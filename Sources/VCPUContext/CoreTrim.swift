#if canImport(Glibc)
import Glibc
#endif

/// A copy of a core that keeps only some of its pages: the same notes, vCPU contexts and
/// layout (so every reader of xl's cores reads it), with the kept pages in their slot order,
/// so a `.xen_pfn` index stays sorted, and a note of xenctx-swift's own saying what it kept.
public enum CoreTrim {
    public struct Result: Sendable, Equatable {
        /// Pages written, and pages of zeros kept as runs in a note instead.
        public let pages: Int
        public let zeroPages: Int
        public let bytes: Int
    }

    /// The note a trimmed core carries: xenctx-swift's own name, text saying what was kept.
    public static func note(_ text: String) -> (name: String, type: UInt32, descriptor: [UInt8]) {
        (XenCoreLayout.trimNoteName, XenCoreLayout.trimNoteType, Array(text.utf8.prefix(XenCoreLayout.maxTrimNoteBytes - 1)) + [0])
    }

    /// Writes `frames` of `core` (in the guest's numbering, as `CoreFrames` serves them; frames
    /// the core lacks are skipped) to `path`, which must not exist. Pages of zeros are kept
    /// as runs of frames in a second note: the searches by content read whole windows of
    /// memory a guest has never touched, and what they read must read the same on the copy.
    public static func write(core: XenCore, frames: Set<UInt64>, note: String, to path: String) throws -> Result {
        let source = CoreFrames(core: core)
        var slots: [Int] = [], zeros: [UInt64] = []
        for frame in frames {
            if let slot = source.slot(of: frame) {
                if isZero(source.page(slot: slot)) { zeros.append(frame) } else { slots.append(slot) }
            } else if source.isZero(frame) {
                zeros.append(frame)
            }
        }
        var runs = Self.runs(of: zeros)
        if runs.count > XenCoreLayout.maxZeroRuns {
            // Too scattered for the note: the core's own zero pages go back to being pages.
            slots += zeros.compactMap { source.slot(of: $0) }
            zeros = zeros.filter { source.slot(of: $0) == nil }
            runs = Self.runs(of: zeros)
            guard runs.count <= XenCoreLayout.maxZeroRuns else {
                throw CoreError(.unsupported, path: core.path, detail: "its zero pages lie in \(runs.count) runs, more than a trimmed core's note holds (\(XenCoreLayout.maxZeroRuns))")
            }
        }
        slots.sort()
        var contexts: [[UInt8]] = []
        for i in 0..<core.vcpuEntryCount {
            guard let c = core.contextBytes(entry: i) else { throw CoreError(.truncated, path: core.path, detail: "vCPU context \(i) is not in the file") }
            contexts.append(c.bytes)
        }
        var writer = DumpCoreWriter(machine: core.machine, magic: core.header.magic, entrySize: core.contextEntrySize,
                                    contexts: contexts, frames: slots.map { (pfn: source.pfn(slot: $0), gmfn: source.frame(slot: $0)) })
        writer.versionDescriptor = core.versionDescriptor
        writer.extraNotes = [Self.note(note)]
        if !runs.isEmpty {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(runs.count * 16)
            for run in runs { for v in [run.first, run.count] { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } } }
            writer.extraNotes.append((XenCoreLayout.trimNoteName, XenCoreLayout.trimZeroNoteType, bytes))
        }
        try writer.write(to: path) { i in Array(source.page(slot: slots[i])) }
        var st = stat()
        let bytes = stat(path, &st) == 0 ? Int(st.st_size) : 0
        return Result(pages: slots.count, zeroPages: zeros.count, bytes: bytes)
    }

    /// Ascending runs of consecutive frames.
    static func runs(of frames: [UInt64]) -> [XenCore.ZeroRun] {
        var runs: [XenCore.ZeroRun] = []
        for f in frames.sorted() {
            if let last = runs.last, last.first + last.count == f {
                runs[runs.count - 1] = XenCore.ZeroRun(first: last.first, count: last.count + 1)
            } else {
                runs.append(XenCore.ZeroRun(first: f, count: 1))
            }
        }
        return runs
    }

    static func isZero(_ page: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i + 8 <= page.count {
            if page.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
            i += 8
        }
        return true
    }
}
