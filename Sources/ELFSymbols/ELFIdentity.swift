import SafeFile
#if canImport(Glibc)
import Glibc
#endif

/// What an ELF file says it is, read from its header and notes with bounded reads: the
/// machine, the GNU build id, and whether it is a Linux kernel image. Checked before
/// `--vmlinux` is used, so another architecture's kernel or a program is refused with a
/// clear message rather than giving wrong names.
public struct ELFIdentity: Sendable, Equatable {
    public let machine: UInt16
    public let is64Bit: Bool
    /// NT_GNU_BUILD_ID, lowercase hex.
    public let buildID: String?
    /// A `Linux` note (build salt, since 4.19) or `__ksymtab` sections: a kernel image.
    public let isLinuxKernel: Bool

    public static let emX86_64: UInt16 = 62, emAArch64: UInt16 = 183, emARM: UInt16 = 40, em386: UInt16 = 3

    public var machineName: String {
        switch machine {
        case Self.emX86_64: return "x86_64"
        case Self.emAArch64: return "aarch64"
        case Self.emARM: return "arm"
        case Self.em386: return "i386"
        default: return "machine \(machine)"
        }
    }

    public struct ReadError: Error, CustomStringConvertible, Equatable {
        public let path: String
        public let reason: String
        public var description: String { "--vmlinux \(path): \(reason)" }
    }

    static let maxSections = 1 << 16
    static let maxNoteBytes = 1 << 16
    static let maxNames = 1 << 20

    public init(path: String) throws(ReadError) {
        func no(_ why: String) -> ReadError { ReadError(path: path, reason: why) }
        let fd: Int32, size: Int
        do { (fd, size) = try SafeFile.open(path, what: "a kernel ELF file") } catch { throw no(error.reason) }
        defer { close(fd) }
        try self.init(path: path, size: size) { offset, count in
            var b = [UInt8](repeating: 0, count: count)
            let n = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? b : nil
        }
    }

    /// The same from bytes in memory.
    public init(bytes: [UInt8], path: String = "(bytes)") throws(ReadError) {
        try self.init(path: path, size: bytes.count) { offset, count in Array(bytes[offset..<(offset + count)]) }
    }

    /// Parses through `pread`, which is only asked for ranges inside `size`.
    init(path: String, size: Int, pread: (Int, Int) -> [UInt8]?) throws(ReadError) {
        func no(_ why: String) -> ReadError { ReadError(path: path, reason: why) }
        func read(_ offset: Int, _ count: Int) -> [UInt8]? {
            guard offset >= 0, count >= 0, offset <= size, count <= size - offset else { return nil }
            return pread(offset, count)
        }
        guard let h = read(0, 64), h.count >= 52, h[0] == 0x7f, h[1] == 0x45, h[2] == 0x4c, h[3] == 0x46 else {
            throw no("not an ELF file (expected the guest kernel's vmlinux, e.g. from Debian's linux-image-*-dbg)")
        }
        guard h[5] == 1 else { throw no("a big-endian ELF file: not a kernel Xen runs") }
        let wide = h[4] == 2
        func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ b: [UInt8], _ o: Int) -> Int { u16(b, o) | u16(b, o + 2) << 16 }
        func u64(_ b: [UInt8], _ o: Int) -> Int { Int(clamping: UInt64(u32(b, o)) | UInt64(u32(b, o + 4)) << 32) }
        if u16(h, 16) == 4 { throw no("it is a core file (ELF ET_CORE): give it with --core, and the guest kernel's vmlinux with --vmlinux") }
        machine = UInt16(u16(h, 18))
        is64Bit = wide
        let shoff = wide ? u64(h, 0x28) : u32(h, 0x20)
        let shentsize = u16(h, wide ? 0x3a : 0x2e), shnum = u16(h, wide ? 0x3c : 0x30), shstrndx = u16(h, wide ? 0x3e : 0x32)
        guard shnum > 0, shnum <= Self.maxSections, shentsize == (wide ? 64 : 40), let table = read(shoff, shnum * shentsize) else {
            throw no("its section headers are missing or do not fit the file (not a vmlinux with sections)")
        }
        struct Section { let name: Int, type: Int, offset: Int, size: Int }
        let sections = (0..<shnum).map { i -> Section in
            let o = i * shentsize
            return wide ? Section(name: u32(table, o), type: u32(table, o + 4), offset: u64(table, o + 0x18), size: u64(table, o + 0x20))
                        : Section(name: u32(table, o), type: u32(table, o + 4), offset: u32(table, o + 0x10), size: u32(table, o + 0x14))
        }
        var names: [UInt8] = []
        if shstrndx < shnum, sections[shstrndx].size <= Self.maxNames, let n = read(sections[shstrndx].offset, sections[shstrndx].size) { names = n }
        func name(_ s: Section) -> String {
            guard s.name < names.count else { return "" }
            return String(decoding: names[s.name...].prefix { $0 != 0 }, as: UTF8.self)
        }
        var buildID: String? = nil
        var linuxNote = false
        for s in sections where s.type == 7 /* SHT_NOTE */ && s.size <= Self.maxNoteBytes {
            guard let notes = read(s.offset, s.size) else { continue }
            var p = 0
            while p + 12 <= notes.count {
                let namesz = u32(notes, p), descsz = u32(notes, p + 4), type = u32(notes, p + 8)
                let nameStart = p + 12, descStart = nameStart + ((namesz + 3) & ~3)
                guard namesz <= 256, descsz <= Self.maxNoteBytes, descStart + descsz <= notes.count else { break }
                let owner = String(decoding: notes[nameStart..<(nameStart + namesz)].prefix { $0 != 0 }, as: UTF8.self)
                if owner == "GNU" && type == 3 /* NT_GNU_BUILD_ID */ && descsz > 0 && descsz <= 64 {
                    buildID = notes[descStart..<(descStart + descsz)].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
                }
                if owner == "Linux" { linuxNote = true }
                p = descStart + ((descsz + 3) & ~3)
            }
        }
        self.buildID = buildID
        isLinuxKernel = linuxNote || sections.contains { ["__ksymtab", "__ksymtab_gpl", "__ex_table"].contains(name($0)) }
    }
}
