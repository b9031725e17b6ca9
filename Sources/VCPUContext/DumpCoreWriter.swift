#if canImport(Glibc)
import Glibc
#endif

/// Writes files in the `xl dump-core` layout (tools/libs/guest/xg_core.c): ELF header,
/// section headers, `.note.Xen`, `.xen_prstatus`, page-aligned `.xen_pages`, then
/// `.xen_p2m` or `.xen_pfn`, then `.shstrtab`, so every reader of xl's cores reads these.
///
/// Pages are streamed; a page the provider returns nil for is left as a hole (a sparse
/// file), which is how the benchmark makes multi-GiB cores cheaply.
public struct DumpCoreWriter {
    public var machine: UInt16
    public var magic: UInt64
    public var entrySize: Int
    public var contexts: [[UInt8]]
    /// One entry per page slot: pfn (and, for PV, the machine frame).
    public var frames: [(pfn: UInt64, gmfn: UInt64)]
    public var xenMajor: UInt64 = 4
    public var xenMinor: UInt64 = 17
    public var capabilities = "xen-3.0-aarch64 xen-3.0-armv7l "
    /// The rest of the version note, as Xen answers XENVER_extraversion (16 bytes),
    /// XENVER_compile_info (144), XENVER_changeset (64) and XENVER_platform_parameters.
    public var extraVersion: [UInt8] = []
    public var compileInfo: [UInt8] = []
    public var changeset: [UInt8] = []
    public var virtStart: UInt64 = 0
    public var formatVersion: UInt64 = XenCoreLayout.formatVersion01
    /// The xen_version descriptor to write as it is (a copy of another core's), instead of
    /// one built from the fields above.
    public var versionDescriptor: [UInt8]? = nil
    /// Notes after Xen's own (name, type, descriptor).
    public var extraNotes: [(name: String, type: UInt32, descriptor: [UInt8])] = []

    public init(machine: UInt16, magic: UInt64, entrySize: Int, contexts: [[UInt8]], frames: [(pfn: UInt64, gmfn: UInt64)]) {
        self.machine = machine
        self.magic = magic
        self.entrySize = entrySize
        self.contexts = contexts
        self.frames = frames
    }

    var isPV: Bool { magic == XenCoreLayout.magicPV }

    /// Everything before `.xen_pages`, and the offsets of what follows.
    public func layout() -> (head: [UInt8], pagesOffset: Int, indexOffset: Int, tail: [UInt8]) {
        let names = ["", ".shstrtab", ".note.Xen", ".xen_prstatus", ".xen_pages", isPV ? ".xen_p2m" : ".xen_pfn"]
        var strtab: [UInt8] = [0]
        var nameOffsets: [UInt32] = [0]
        for n in names.dropFirst() { nameOffsets.append(UInt32(strtab.count)); strtab += Array(n.utf8) + [0] }
        var notes: [UInt8] = []
        func note(_ type: UInt32, _ desc: [UInt8], name: String = "Xen") {
            let n = Array(name.utf8) + [0]
            notes += le(UInt32(n.count)) + le(UInt32(desc.count)) + le(type)
            notes += n + [UInt8](repeating: 0, count: (4 - n.count % 4) % 4)
            notes += desc + [UInt8](repeating: 0, count: (4 - desc.count % 4) % 4)
        }
        note(XenCoreLayout.noteNone, [])
        note(XenCoreLayout.noteHeader, le(magic) + le(UInt64(contexts.count)) + le(UInt64(frames.count)) + le(UInt64(4096)))
        var version = [UInt8](repeating: 0, count: 1280)
        version.replaceSubrange(0..<8, with: le(xenMajor))
        version.replaceSubrange(8..<16, with: le(xenMinor))
        let caps = Array(capabilities.utf8.prefix(1023))
        version.replaceSubrange(176..<(176 + caps.count), with: caps)
        func put(_ bytes: [UInt8], at offset: Int, limit: Int) {
            let b = bytes.prefix(limit)
            version.replaceSubrange(offset..<(offset + b.count), with: b)
        }
        put(extraVersion, at: 16, limit: 16)
        put(compileInfo, at: 32, limit: 144)
        put(changeset, at: 1200, limit: 64)
        version.replaceSubrange(1264..<1272, with: le(virtStart))
        version.replaceSubrange(1272..<1280, with: le(UInt64(4096)))
        note(XenCoreLayout.noteXenVersion, versionDescriptor ?? version)
        note(XenCoreLayout.noteFormatVersion, le(formatVersion))
        for n in extraNotes { note(n.type, n.descriptor, name: n.name) }

        let shnum = names.count
        let noteOffset = 64 + 64 * shnum
        let prOffset = noteOffset + notes.count
        let prSize = contexts.count * entrySize
        let pagesOffset = (prOffset + prSize + 4095) & ~4095
        let indexOffset = pagesOffset + 4096 * frames.count
        let indexSize = frames.count * (isPV ? 16 : 8)
        let strOffset = indexOffset + indexSize

        var head = [UInt8](repeating: 0, count: 64)
        head.replaceSubrange(0..<9, with: [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 1])
        head.replaceSubrange(16..<18, with: le(UInt16(4)))
        head.replaceSubrange(18..<20, with: le(machine))
        head.replaceSubrange(20..<24, with: le(UInt32(1)))
        head.replaceSubrange(40..<48, with: le(UInt64(64)))
        head.replaceSubrange(52..<54, with: le(UInt16(64)))
        head.replaceSubrange(54..<56, with: le(UInt16(56)))
        head.replaceSubrange(58..<60, with: le(UInt16(64)))
        head.replaceSubrange(60..<62, with: le(UInt16(shnum)))
        head.replaceSubrange(62..<64, with: le(UInt16(1)))
        func shdr(_ i: Int, type: UInt32, offset: Int, size: Int, entsize: Int, align: Int) -> [UInt8] {
            var h = [UInt8](repeating: 0, count: 64)
            h.replaceSubrange(0..<4, with: le(nameOffsets[i]))
            h.replaceSubrange(4..<8, with: le(type))
            h.replaceSubrange(24..<32, with: le(UInt64(offset)))
            h.replaceSubrange(32..<40, with: le(UInt64(size)))
            h.replaceSubrange(48..<56, with: le(UInt64(align)))
            h.replaceSubrange(56..<64, with: le(UInt64(entsize)))
            return h
        }
        head += [UInt8](repeating: 0, count: 64)
        head += shdr(1, type: 3, offset: strOffset, size: strtab.count, entsize: 0, align: 0)
        head += shdr(2, type: 7, offset: noteOffset, size: notes.count, entsize: 0, align: 0)
        head += shdr(3, type: 1, offset: prOffset, size: prSize, entsize: entrySize, align: 8)
        head += shdr(4, type: 1, offset: pagesOffset, size: 4096 * frames.count, entsize: 4096, align: 4096)
        head += shdr(5, type: 1, offset: indexOffset, size: indexSize, entsize: isPV ? 16 : 8, align: 8)
        head += notes
        for c in contexts { head += Array(c.prefix(entrySize)) + [UInt8](repeating: 0, count: max(0, entrySize - c.count)) }
        head += [UInt8](repeating: 0, count: pagesOffset - head.count)

        var tail: [UInt8] = []
        tail.reserveCapacity(indexSize + strtab.count)
        for f in frames { tail += le(f.pfn); if isPV { tail += le(f.gmfn) } }
        tail += strtab
        return (head, pagesOffset, indexOffset, tail)
    }

    /// The whole file in memory (for small cores in tests).
    public func bytes(page: (Int) -> [UInt8]?) -> [UInt8] {
        let l = layout()
        var out = l.head
        for slot in frames.indices { out += page(slot) ?? [UInt8](repeating: 0, count: 4096) }
        return out + l.tail
    }

    public enum WriteError: Error, CustomStringConvertible {
        case io(path: String, reason: String)
        public var description: String {
            switch self { case .io(let path, let reason): return "cannot write \(path): \(reason)" }
        }
    }

    /// Writes the core to `path` (created exclusively: an existing file is never replaced).
    public func write(to path: String, page: (Int) -> [UInt8]?) throws(WriteError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        func put(_ bytes: [UInt8], at offset: Int) throws(WriteError) { try pwriteAll(fd, bytes, at: offset, path: path) }
        let l = layout()
        try put(l.head, at: 0)
        for slot in frames.indices {
            if let p = page(slot) { try put(Array(p.prefix(4096)), at: l.pagesOffset + slot * 4096) }
        }
        try put(l.tail, at: l.indexOffset)
    }
}

extension DumpCoreWriter {
    /// Writes a core whose pages arrive one at a time (`next` returns nil at the end), for
    /// sources that learn which frames exist only by mapping them. `.xen_pages` starts at
    /// an offset that does not depend on the page count, so pages are written first and
    /// the headers last. Auto-translated (`.xen_pfn`) cores only. Returns the page count.
    public func writeStreaming(to path: String, next: () throws -> (pfn: UInt64, page: [UInt8])?) throws -> Int {
        var w = self
        w.frames = []
        let pagesOffset = w.layout().pagesOffset
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WriteError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        func put(_ bytes: [UInt8], at offset: Int) throws { try pwriteAll(fd, bytes, at: offset, path: path) }
        var frames: [(pfn: UInt64, gmfn: UInt64)] = []
        while let (pfn, page) = try next() {
            try put(Array(page.prefix(4096)) + [UInt8](repeating: 0, count: max(0, 4096 - page.count)), at: pagesOffset + frames.count * 4096)
            frames.append((pfn: pfn, gmfn: pfn))
        }
        w.frames = frames
        let l = w.layout()
        precondition(l.pagesOffset == pagesOffset)
        try put(l.head, at: 0)
        try put(l.tail, at: l.indexOffset)
        return frames.count
    }
}

/// Writes all of `bytes` at `offset`, retrying short writes and EINTR.
private func pwriteAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws(DumpCoreWriter.WriteError) {
    let ok = bytes.withUnsafeBytes { buf -> Bool in
        var done = 0
        while done < buf.count {
            let n = pwrite(fd, buf.baseAddress! + done, buf.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }
    if !ok { throw .io(path: path, reason: String(cString: strerror(errno))) }
}

private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
