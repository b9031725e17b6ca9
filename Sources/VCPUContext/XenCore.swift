/// An `xl dump-core` file: its ELF framing, Xen notes, vCPU contexts and guest frames.
///
/// The file is memory-mapped and validated against the checklist of the format note
/// (§9): every offset and size is checked against the file before anything is read,
/// sections are found by name, and counts in the header note must match the sections.
/// A core that is cut short keeps what is intact: if the notes and vCPU contexts are
/// present the registers are usable, and `truncation` says what was lost.
public final class XenCore: Sendable {
    public let file: MappedFile
    public let machine: UInt16
    public let header: DumpcoreHeader
    public let xenVersion: XenVersionNote
    public let prstatus: CoreSection
    public let sharedInfo: CoreSection?
    public let pages: CoreSection
    /// `.xen_p2m` (PV: pfn → machine frame pairs) or `.xen_pfn` (auto-translated: pfns).
    public let frameIndex: CoreSection
    /// Set when the file ends before the sections it declares (the writer was stopped).
    public let truncation: String?
    /// Facts a reader should know that are not errors (names inferred, and so on).
    public let notes: [String]
    /// The xen_version note's descriptor as written (a trimmed copy keeps it byte for byte).
    public let versionDescriptor: [UInt8]
    /// Set when xenctx-swift trimmed this core: what its note says it kept, and from what.
    public let trimNote: String?
    /// A trimmed core's all-zero frames (in `CoreFrames`' numbering), as ascending runs.
    public let zeroRuns: [ZeroRun]

    public struct ZeroRun: Sendable, Equatable {
        public let first: UInt64, count: UInt64
        public init(first: UInt64, count: UInt64) { (self.first, self.count) = (first, count) }
    }

    public var path: String { file.path }
    public var isPV: Bool { !header.isHVM }
    public var contextEntrySize: Int { Int(prstatus.entrySize) }
    public var vcpuEntryCount: Int { Int(header.vcpuCount) }

    public convenience init(path: String) throws(CoreError) {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(CoreError) {
        self.file = file
        let path = file.path
        func fail(_ kind: CoreError.Kind, _ detail: String) -> CoreError {
            CoreError(kind, path: path, detail: detail)
        }

        // ELF identification and header.
        if file.size == 0 {
            throw fail(.empty, "the file is empty (0 bytes); was the dump interrupted before it started?")
        }
        let identCount = min(file.size, XenCoreLayout.elfHeaderSize)
        let ident = LittleEndianBytes(file.bytes(at: 0, count: identCount)!)
        let isELF = ident.count >= 4 && ident.bytes[0..<4] == [0x7f, 0x45, 0x4c, 0x46]
        if !isELF {
            if let magic = ident.read(UInt32.self, at: 0),
               UInt64(magic) == XenCoreLayout.magicPV || UInt64(magic) == XenCoreLayout.magicHVM {
                throw fail(.unsupported, "this is a pre-ELF xc_core file (Xen 3.0.x); only the ELF format of Xen ≥ 3.1 is supported")
            }
            // Cores are stored compressed (the corpus's, a support case's): say so, and how.
            let compressed: [(magic: [UInt8], name: String, tool: String)] = [
                ([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], "xz", "xz -dk"), ([0x1f, 0x8b], "gzip", "gzip -dk"),
                ([0x28, 0xb5, 0x2f, 0xfd], "zstd", "zstd -d"), ([0x42, 0x5a, 0x68], "bzip2", "bzip2 -dk")]
            if let c = compressed.first(where: { ident.count >= $0.magic.count && Array(ident.bytes[0..<$0.magic.count]) == $0.magic }) {
                throw fail(.notELF, "\(c.name)-compressed, not a core as such: decompress it first (\(c.tool) FILE) and give the result")
            }
            throw fail(.notELF, "not an ELF file (no \\x7fELF magic at offset 0); expected a core written by `xl dump-core`")
        }
        if file.size < XenCoreLayout.elfHeaderSize {
            throw fail(.truncated, "the file is \(file.size) bytes, shorter than an ELF header (64 bytes)")
        }
        let eh = ident
        guard eh.u8(4) == 2 else {
            throw fail(.notXenCore, "ELF class \(eh.u8(4)) (32-bit ELF): `xl dump-core` always writes ELFCLASS64, so this is not a Xen core")
        }
        guard eh.u8(5) == 1 else {
            throw fail(.notXenCore, "ELF data encoding \(eh.u8(5)) is not little-endian: not a Xen core")
        }
        let type = eh.u16(16)
        guard type == 4 else {
            let what = [1: "a relocatable object", 2: "an executable (a vmlinux?)", 3: "a shared object"][Int(type)] ?? "ELF type \(type)"
            throw fail(.notXenCore, "this is \(what), not a core file; pass the file written by `xl dump-core` with --core, and a kernel with -s/--vmlinux")
        }
        machine = eh.u16(18)
        guard [XenCoreLayout.emX86_64, XenCoreLayout.em386, XenCoreLayout.emARM].contains(machine) else {
            throw fail(.unsupported, "ELF machine \(machine) is not one Xen writes cores for (x86_64 62, i386 3, ARM 40)")
        }
        let shoff = eh.u64(40)
        let shentsize = Int(eh.u16(58))
        let shnum = Int(eh.u16(60))
        let shstrndx = Int(eh.u16(62))
        guard shentsize == XenCoreLayout.sectionHeaderSize else {
            throw fail(.malformed, "ELF header: section header size is \(shentsize), expected 64 (byte 58)")
        }
        guard shnum > 0, shnum <= XenCoreLayout.maxSections else {
            throw fail(.malformed, "ELF header: \(shnum) sections (byte 60); an xl core has 6 or 7")
        }
        guard shstrndx < shnum else {
            throw fail(.malformed, "ELF header: section name table index \(shstrndx) ≥ section count \(shnum) (byte 62)")
        }
        guard let table = file.bytes(at: shoff, count: shnum * shentsize) else {
            throw fail(.truncated, "the section header table (\(shnum) × 64 bytes at offset \(shoff)) lies beyond the end of the file (\(file.size) bytes)")
        }
        struct RawSection { let name: UInt32; let type: UInt32; let offset: UInt64; let size: UInt64; let entsize: UInt64 }
        let raw = (0..<shnum).map { i -> RawSection in
            let b = i * shentsize
            return RawSection(name: table.le32(b), type: table.le32(b + 4), offset: table.le64(b + 24),
                              size: table.le64(b + 32), entsize: table.le64(b + 56))
        }

        // Section names. `.shstrtab` is written last, so a truncated core loses it first;
        // then fall back on the fixed order every xl writer uses (xg_core.c), checked by type.
        var notes: [String] = []
        var names: [String]
        let strtab = raw[shstrndx]
        if let strings = file.bytes(at: strtab.offset, count: Int(clamping: strtab.size)), strtab.size <= 4096 {
            let s = Array(strings)
            names = raw.map { r in
                let start = Int(r.name)
                guard start < s.count else { return "" }
                let end = s[start...].firstIndex(of: 0) ?? s.count
                return String(decoding: s[start..<end], as: UTF8.self)
            }
        } else if let inferred = XenCore.inferNames(types: raw.map(\.type), entsizes: raw.map(\.entsize)) {
            names = inferred
            notes.append("section names inferred from xl's fixed section order: the name table at offset \(strtab.offset) is beyond the end of the file")
        } else {
            throw fail(.truncated, "the section name table (offset \(strtab.offset), \(strtab.size) bytes) is beyond the end of the file (\(file.size) bytes) and the sections are not in xl's order")
        }

        func section(_ name: String) throws(CoreError) -> CoreSection? {
            let matches = raw.indices.filter { names[$0] == name }
            if matches.count > 1 { throw fail(.malformed, "section \(name) appears \(matches.count) times") }
            guard let i = matches.first else { return nil }
            let r = raw[i]
            return CoreSection(name: name, offset: r.offset, size: r.size, entrySize: r.entsize,
                               isComplete: file.contains(offset: r.offset, count: r.size))
        }
        func required(_ name: String) throws(CoreError) -> CoreSection {
            guard let s = try section(name) else {
                throw fail(.notXenCore, "no \(name) section: this ELF core was not written by `xl dump-core` (sections: \(names.filter { !$0.isEmpty }.joined(separator: ", ")))")
            }
            return s
        }

        // Notes: the header note says how many vCPUs and pages the other sections hold.
        let noteSection = try required(".note.Xen")
        // xl writes about 1.4 KB of notes; a larger size is not copied, whatever it claims.
        guard noteSection.size <= XenCoreLayout.maxNoteBytes else {
            throw fail(.malformed, ".note.Xen claims \(noteSection.size) bytes; an xl core's notes are about 1.4 KB (at most \(XenCoreLayout.maxNoteBytes) are read)")
        }
        guard noteSection.isComplete, let noteBytes = file.bytes(at: noteSection.offset, count: Int(noteSection.size)) else {
            throw fail(.truncated, ".note.Xen (offset \(noteSection.offset), \(noteSection.size) bytes) extends beyond the end of the file (\(file.size) bytes)")
        }
        let parsedNotes = try XenCore.parseNotes(LittleEndianBytes(noteBytes), machine: machine, path: path)
        header = parsedNotes.header
        xenVersion = parsedNotes.version
        versionDescriptor = parsedNotes.versionDescriptor
        trimNote = parsedNotes.trimNote
        zeroRuns = parsedNotes.zeroRuns

        guard header.magic == XenCoreLayout.magicPV || header.magic == XenCoreLayout.magicHVM else {
            throw fail(.malformed, "dump-core header magic is 0x\(hex(header.magic)), expected 0xf00febed (PV) or 0xf00febee (HVM)")
        }
        guard header.pageSize == UInt64(XenCoreLayout.pageSize) else {
            throw fail(.unsupported, "page size \(header.pageSize) in the dump-core header; xl always writes 4096")
        }

        // vCPU contexts: must be whole, since registers are the least a report needs.
        prstatus = try required(".xen_prstatus")
        let entsize = Int(clamping: prstatus.entrySize)
        let expectedSizes = machine == XenCoreLayout.emARM ? XenCoreLayout.armEntrySizes : [XenCoreLayout.x86EntrySize]
        guard expectedSizes.contains(entsize) else {
            throw fail(.unsupported, ".xen_prstatus entry size is \(entsize) bytes; known layouts for this machine are \(expectedSizes.map(String.init).joined(separator: ", ")) bytes")
        }
        let (ctxBytes, ctxOverflow) = header.vcpuCount.multipliedReportingOverflow(by: UInt64(entsize))
        guard !ctxOverflow, prstatus.size == ctxBytes, header.vcpuCount > 0 else {
            throw fail(.malformed, ".xen_prstatus is \(prstatus.size) bytes but the header note declares \(header.vcpuCount) vCPUs of \(entsize) bytes")
        }
        guard prstatus.isComplete else {
            throw fail(.truncated, "the vCPU contexts (.xen_prstatus, offset \(prstatus.offset), \(prstatus.size) bytes) extend beyond the end of the file (\(file.size) bytes): the core was cut short before its registers")
        }

        sharedInfo = try section(".xen_shared_info")
        pages = try required(".xen_pages")
        let (pagesBytes, pagesOverflow) = header.pageCount.multipliedReportingOverflow(by: header.pageSize)
        guard !pagesOverflow, pages.size == pagesBytes else {
            throw fail(.malformed, ".xen_pages is \(pages.size) bytes but the header note declares \(header.pageCount) pages of \(header.pageSize) bytes")
        }
        let p2m = try section(".xen_p2m"), pfn = try section(".xen_pfn")
        switch (p2m, pfn) {
        case (let index?, nil):
            guard isPVMagic(header) else { throw fail(.malformed, "an HVM core (magic 0xf00febee) with a PV .xen_p2m index") }
            frameIndex = index
        case (nil, let index?):
            guard !isPVMagic(header) else { throw fail(.malformed, "a PV core (magic 0xf00febed) with an auto-translated .xen_pfn index") }
            frameIndex = index
        case (nil, nil):
            throw fail(.notXenCore, "neither .xen_p2m nor .xen_pfn: no frame index, so this is not an xl dump-core file")
        case (_?, _?):
            throw fail(.malformed, "both .xen_p2m and .xen_pfn are present; xl writes exactly one")
        }
        let entryWidth: UInt64 = frameIndex.name == ".xen_p2m" ? 16 : 8
        let (indexBytes, indexOverflow) = header.pageCount.multipliedReportingOverflow(by: entryWidth)
        guard !indexOverflow, frameIndex.size == indexBytes else {
            throw fail(.malformed, "\(frameIndex.name) is \(frameIndex.size) bytes but \(header.pageCount) pages need \(indexBytes)")
        }

        let end = raw.map { $0.offset &+ $0.size }.max() ?? 0
        if end > UInt64(file.size) {
            truncation = "the core is truncated: the file has \(file.size) bytes but its sections need \(end) (the writer was stopped); guest memory is \(frameIndex.isComplete ? "partly" : "not") available"
        } else {
            truncation = nil
        }
        self.notes = notes
    }

    /// The raw bytes of vCPU context entry `entry` (0-based, in the order Xen packed them).
    public func contextBytes(entry: Int) -> LittleEndianBytes? {
        guard entry >= 0, entry < vcpuEntryCount else { return nil }
        let offset = prstatus.offset + UInt64(entry) * prstatus.entrySize
        return file.bytes(at: offset, count: contextEntrySize).map(LittleEndianBytes.init)
    }

    // MARK: - helpers

    static func inferNames(types: [UInt32], entsizes: [UInt64]) -> [String]? {
        // [0] null, [1] .shstrtab, [2] .note.Xen, [3] .xen_prstatus, ([4] .xen_shared_info), pages, index
        guard types.count == 6 || types.count == 7, types[1] == 3, types[2] == 7 else { return nil }
        var names = ["", ".shstrtab", ".note.Xen", ".xen_prstatus"]
        if types.count == 7 { names.append(".xen_shared_info") }
        names.append(".xen_pages")
        switch entsizes.last {
        case 16: names.append(".xen_p2m")
        case 8: names.append(".xen_pfn")
        default: return nil
        }
        return names
    }

    struct ParsedNotes {
        let header: DumpcoreHeader; let version: XenVersionNote; let versionDescriptor: [UInt8]; let trimNote: String?
        let zeroRuns: [ZeroRun]
    }

    static func parseNotes(_ notes: LittleEndianBytes, machine: UInt16, path: String) throws(CoreError) -> ParsedNotes {
        func fail(_ detail: String) -> CoreError { CoreError(.malformed, path: path, detail: ".note.Xen: " + detail) }
        var offset = 0
        var header: DumpcoreHeader?
        var version: XenVersionNote?
        var format: UInt64?
        var versionDescriptor: [UInt8] = []
        var trimNote: String?
        var zeroRuns: [ZeroRun] = []
        // Each note is at least 12 bytes, so the loop ends within count/12 steps.
        while offset + 12 <= notes.count {
            let namesz = Int(notes.u32(offset)), descsz = Int(notes.u32(offset + 4)), type = notes.u32(offset + 8)
            let nameStart = offset + 12
            let descStart = nameStart + ((namesz + 3) & ~3)
            guard namesz <= notes.count, descsz <= notes.count, descStart + descsz <= notes.count else {
                throw fail("note at offset \(offset) declares name \(namesz) and descriptor \(descsz) bytes, past the end of the section (\(notes.count) bytes)")
            }
            let name = notes.cString(at: nameStart, length: namesz)
            if name == "Xen" {
                switch type {
                case XenCoreLayout.noteHeader:
                    guard descsz >= 32 else { throw fail("header note is \(descsz) bytes, expected 32") }
                    header = DumpcoreHeader(magic: notes.u64(descStart), vcpuCount: notes.u64(descStart + 8),
                                            pageCount: notes.u64(descStart + 16), pageSize: notes.u64(descStart + 24))
                case XenCoreLayout.noteXenVersion:
                    guard descsz >= 1276 else { throw fail("xen_version note is \(descsz) bytes, expected 1280") }
                    // A 32-bit guest's (or i386 toolstack's) core has `pagesize` 4 bytes early (xg_core.c).
                    let pageSizeOffset = (descsz == 1276 || machine == XenCoreLayout.em386) ? 1268 : 1272
                    version = XenVersionNote(major: notes.u64(descStart), minor: notes.u64(descStart + 8),
                                             extra: notes.cString(at: descStart + 16, length: 16),
                                             capabilities: notes.cString(at: descStart + 176, length: 1024),
                                             pageSize: notes.u64(descStart + pageSizeOffset))
                    versionDescriptor = Array(notes.bytes[descStart..<(descStart + descsz)])
                case XenCoreLayout.noteFormatVersion:
                    guard descsz >= 8 else { throw fail("format_version note is \(descsz) bytes, expected 8") }
                    format = notes.u64(descStart)
                default:
                    break
                }
            } else if name == XenCoreLayout.trimNoteName, type == XenCoreLayout.trimNoteType {
                trimNote = notes.cString(at: descStart, length: min(descsz, XenCoreLayout.maxTrimNoteBytes))
            } else if name == XenCoreLayout.trimNoteName, type == XenCoreLayout.trimZeroNoteType {
                guard descsz % 16 == 0, descsz / 16 <= XenCoreLayout.maxZeroRuns else {
                    throw fail("xenctx-swift's zero-page note is \(descsz) bytes: not whole runs of 16 bytes, or more than \(XenCoreLayout.maxZeroRuns)")
                }
                var end: UInt64? = nil
                for i in 0..<(descsz / 16) {
                    let first = notes.u64(descStart + 16 * i), count = notes.u64(descStart + 16 * i + 8)
                    // Ascending and apart, so that a lookup is a binary search.
                    guard count > 0, first <= UInt64.max - count, end.map({ first > $0 }) ?? true else {
                        throw fail("xenctx-swift's zero-page note: run \(i) (frame 0x\(hex(first)), \(count) pages) is empty, wraps, or is not above the run before it")
                    }
                    zeroRuns.append(ZeroRun(first: first, count: count))
                    end = first + count - 1
                }
            }
            offset = descStart + ((descsz + 3) & ~3)
        }
        guard let header else { throw fail("no XEN_ELFNOTE_DUMPCORE_HEADER note") }
        guard let version else { throw fail("no XEN_ELFNOTE_DUMPCORE_XEN_VERSION note") }
        guard let format else { throw fail("no XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION note") }
        guard format == XenCoreLayout.formatVersion01 else {
            throw CoreError(.unsupported, path: path, detail: ".note.Xen: dump-core format version 0x\(hex(format)); only 0.1 (the only one Xen has written) is known")
        }
        return ParsedNotes(header: header, version: version, versionDescriptor: versionDescriptor, trimNote: trimNote, zeroRuns: zeroRuns)
    }
}

private func isPVMagic(_ h: DumpcoreHeader) -> Bool { h.magic == XenCoreLayout.magicPV }
