import VCPUContext

/// The kernel's BPF Type Format (`Documentation/bpf/btf.rst`): a header (magic 0xeb9f),
/// a section of type records and one of NUL-terminated names. Debian's x86_64 and arm64
/// kernels carry it (CONFIG_DEBUG_INFO_BTF) between `__start_BTF` and `__stop_BTF`; it
/// gives struct layouts with no vmlinux. Parsed with every offset, count and size checked.
public struct BTF: @unchecked Sendable {   // immutable; `owner` keeps `bytes` alive
    static let magic: UInt16 = 0xeb9f
    /// Debian's are ~5 MB; far more is not a kernel's BTF.
    public static let maxBytes = 64 << 20
    static let maxTypes = 1 << 21

    /// The BTF's bytes: in the core's own mapping when the guest's pages lie there in
    /// order (no 5 MB copy), else a copy; `owner` keeps whichever alive.
    let bytes: UnsafeRawBufferPointer
    let owner: any Sendable
    let typesStart: Int, typesEnd: Int, stringsStart: Int, stringsEnd: Int
    /// Where each type's record starts (type id i at index i - 1).
    let recordOffsets: [Int32]
    /// The structs' ids, for lookups by name (a fifth of a kernel's types).
    let structIDs: [Int32]

    public var typeCount: Int { recordOffsets.count }

    enum Kind: UInt32 {
        case int = 1, ptr, array, structure, union, enumeration, forward, typedef, volatile, const, restrict,
             function, functionProto, variable, dataSection, float, declTag, typeTag, enum64
    }

    /// A copy of `bytes`, owned by the BTF.
    final class Copy: @unchecked Sendable {   // immutable after init
        let buffer: UnsafeMutableRawBufferPointer
        init(_ bytes: [UInt8]) {
            buffer = .allocate(byteCount: max(1, bytes.count), alignment: 8)
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
        deinit { buffer.deallocate() }
    }

    public init(bytes: [UInt8]) throws(KernelDataError) {
        let copy = Copy(bytes)
        try self.init(borrowing: UnsafeRawBufferPointer(rebasing: copy.buffer[0..<bytes.count]), owner: copy)
    }

    /// BTF read in place from `bytes`, which stay valid while `owner` lives.
    public init(borrowing bytes: UnsafeRawBufferPointer, owner: any Sendable) throws(KernelDataError) {
        func no(_ why: String) -> KernelDataError { KernelDataError("BTF", why) }
        guard bytes.count >= 24, bytes.count <= Self.maxBytes else { throw no("\(bytes.count) bytes is not a kernel's BTF") }
        self.bytes = bytes
        self.owner = owner
        func u32(_ o: Int) -> Int { BTF.u32(bytes, o) }
        guard UInt16(bytes[0]) | UInt16(bytes[1]) << 8 == Self.magic else { throw no("no 0xeb9f magic: not BTF (or big-endian)") }
        guard bytes[2] == 1 else { throw no("version \(bytes[2]); only version 1 exists") }
        let hdrLen = u32(4)
        guard hdrLen >= 24, hdrLen <= 256, hdrLen <= bytes.count else { throw no("header length \(hdrLen) is not plausible") }
        let typeOff = u32(8), typeLen = u32(12), strOff = u32(16), strLen = u32(20)
        let total = bytes.count - hdrLen
        guard typeOff <= total, typeLen <= total - typeOff, strOff <= total, strLen <= total - strOff else {
            throw no("its type section (\(typeOff)+\(typeLen)) or string section (\(strOff)+\(strLen)) runs past its \(total) bytes")
        }
        typesStart = hdrLen + typeOff; typesEnd = typesStart + typeLen
        stringsStart = hdrLen + strOff; stringsEnd = stringsStart + strLen
        // One pass over the records: each kind says how much trails its 12-byte header.
        var offsets: [Int32] = []
        offsets.reserveCapacity(typeLen / 24)
        var structs: [Int32] = []
        var p = typesStart
        while p < typesEnd {
            guard p + 12 <= typesEnd, offsets.count < Self.maxTypes else { throw no("type record \(offsets.count + 1) runs past the type section") }
            let info = u32(p + 4)
            let vlen = info & 0xffff, kind = (info >> 24) & 0x1f
            let trailing: Int
            switch Kind(rawValue: UInt32(kind)) {
            case .int, .variable, .declTag: trailing = 4
            case .array: trailing = 12
            case .structure, .union, .dataSection, .enum64: trailing = 12 * vlen
            case .enumeration, .functionProto: trailing = 8 * vlen
            case .ptr, .forward, .typedef, .volatile, .const, .restrict, .function, .float, .typeTag: trailing = 0
            case nil: throw no("type \(offsets.count + 1) has unknown kind \(kind)")
            }
            offsets.append(Int32(p))   // p < maxBytes (64 MiB)
            if kind == Int(Kind.structure.rawValue) { structs.append(Int32(offsets.count)) }
            p += 12 + trailing
        }
        guard p == typesEnd else { throw no("the last type record runs past the type section") }
        recordOffsets = offsets
        structIDs = structs
    }

    /// The little-endian u32 at `o`; 0 outside the bytes (every caller's offsets were
    /// checked against the sections already: this keeps a slip from reading past them).
    @inline(__always)
    static func u32(_ bytes: UnsafeRawBufferPointer, _ o: Int) -> Int {
        guard o >= 0, o <= bytes.count - 4 else { return 0 }
        return Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
    }

    func u32(_ o: Int) -> Int { BTF.u32(bytes, o) }

    /// Whether the name at `offset` is `wanted`, compared in place (most differ at once).
    func nameIs(_ offset: Int, _ wanted: [UInt8]) -> Bool {
        let start = stringsStart + offset
        guard offset >= 0, start < stringsEnd, stringsEnd - start > wanted.count else { return false }
        for (i, c) in wanted.enumerated() where bytes[start + i] != c { return false }
        return bytes[start + wanted.count] == 0
    }

    func record(_ id: Int) -> (at: Int, kind: Kind?, vlen: Int, kindFlag: Bool, sizeOrType: Int)? {
        guard id >= 1, id <= recordOffsets.count else { return nil }
        let at = Int(recordOffsets[id - 1]), info = u32(at + 4)
        return (at, Kind(rawValue: UInt32((info >> 24) & 0x1f)), info & 0xffff, info >> 31 != 0, u32(at + 8))
    }

    /// The value of the enumerator `name` in the first enum (32-bit) that has it.
    public func enumValue(_ name: String) -> Int? {
        let wanted = Array(name.utf8)
        for at in recordOffsets {
            let info = u32(Int(at) + 4)
            guard (info >> 24) & 0x1f == Int(Kind.enumeration.rawValue) else { continue }
            let vlen = info & 0xffff
            for i in 0..<vlen {
                let m = Int(at) + 12 + 8 * i
                if nameIs(u32(m), wanted) { return Int(Int32(truncatingIfNeeded: u32(m + 4))) }
            }
        }
        return nil
    }

    /// The first struct of that name.
    public func structID(named name: String) -> Int? {
        let wanted = Array(name.utf8)
        for id in structIDs where nameIs(u32(Int(recordOffsets[Int(id) - 1])), wanted) { return Int(id) }
        return nil
    }

    /// The byte offset of `member` in struct `id`, looking through anonymous struct and
    /// union members (and typedefs/qualifiers to them), as C does; nil for a bitfield.
    public func memberOffset(structID id: Int, member: String) -> Int? {
        memberOffset(id, Array(member.utf8), depth: 0)
    }

    func memberOffset(_ id: Int, _ name: [UInt8], depth: Int) -> Int? {
        member(id, name, depth: depth)?.offset
    }

    /// The member's offset and type id in struct or union `id`, through anonymous members.
    func member(_ id: Int, _ name: [UInt8], depth: Int = 0) -> (offset: Int, type: Int)? {
        guard depth < 8, let r = resolve(id), r.kind == .structure || r.kind == .union else { return nil }
        for i in 0..<r.vlen {
            let m = r.at + 12 + 12 * i
            let nameOff = u32(m), type = u32(m + 4), raw = u32(m + 8)
            let bitOffset = r.kindFlag ? raw & 0xff_ffff : raw
            if nameOff == 0 {
                if let inner = member(type, name, depth: depth + 1) { return (bitOffset / 8 + inner.offset, inner.type) }
            } else if nameIs(nameOff, name) {
                return bitOffset % 8 == 0 ? (bitOffset / 8, type) : nil
            }
        }
        return nil
    }

    /// Through typedefs and qualifiers to the type they name (bounded).
    func resolve(_ id: Int) -> (at: Int, kind: Kind?, vlen: Int, kindFlag: Bool, sizeOrType: Int)? {
        var current = id
        for _ in 0..<16 {
            guard let r = record(current) else { return nil }
            switch r.kind {
            case .typedef, .volatile, .const, .restrict, .typeTag: current = r.sizeOrType
            default: return r
            }
        }
        return nil
    }
}

extension BTF: KernelTypes {
    public var source: String { "BTF" }

    public func size(of structName: String) -> Int? {
        guard let id = structID(named: structName), let r = record(id) else { return nil }
        return r.sizeOrType
    }

    public func offset(of path: String, in structName: String) -> Int? {
        guard var id = structID(named: structName) else { return nil }
        var total = 0
        for part in path.split(separator: ".") {
            guard let m = member(throughArrays(id), Array(part.utf8)) else { return nil }
            total += m.offset
            id = m.type
        }
        return total
    }

    public func arrayShape(of path: String, in structName: String) -> (count: Int, stride: Int)? {
        guard var id = structID(named: structName) else { return nil }
        for part in path.split(separator: ".") {
            guard let m = member(throughArrays(id), Array(part.utf8)) else { return nil }
            id = m.type
        }
        guard let r = resolve(id), r.kind == .array else { return nil }
        let count = u32(r.at + 20)      // struct btf_array { type, index_type, nelems }
        guard let stride = byteSize(u32(r.at + 12)), stride > 0, count > 0, count <= 1 << 16 else { return nil }
        return (count, stride)
    }

    /// The size of a struct, union, int, enum or pointer type (through typedefs and qualifiers).
    func byteSize(_ id: Int) -> Int? {
        guard let r = resolve(id) else { return nil }
        switch r.kind {
        case .structure, .union, .int, .enumeration: return r.sizeOrType
        case .ptr: return nil
        default: return nil
        }
    }

    /// An array's first element type, as a member path goes through it: `mem.base` is
    /// `mem[0].base` (6.4's `struct module` keeps its text in `mem[MOD_TEXT]`, element 0).
    func throughArrays(_ id: Int) -> Int {
        var current = id
        for _ in 0..<4 {
            guard let r = resolve(current), r.kind == .array else { return current }
            current = u32(r.at + 12)     // struct btf_array { type, index_type, nelems }
        }
        return current
    }
}

extension BTF {
    /// The symbols `locate` bounds its search by, when the symbol table has them.
    public static let boundSymbols: Set<String> = ["__start_BTF", "__stop_BTF", "_etext", "_sinittext", "__init_begin", "_sdata", "_end"]

    /// The kernel's BTF in guest memory: between `__start_BTF` and `__stop_BTF` when the
    /// symbols name them, else found in the kernel image by its header (magic, version 1,
    /// 24-byte header) with sections that fit. BTF is read-only data, after the kernel's
    /// text: with `_etext` known (kallsyms without KALLSYMS_ALL keeps it), the search
    /// starts there instead of reading the whole text first.
    public static func locate(guest: Guest, reader: KernelReader, symbols: [String: UInt64]) throws(KernelDataError) -> (btf: BTF, address: UInt64, how: String) {
        if let start = symbols["__start_BTF"], let stop = symbols["__stop_BTF"], stop > start {
            guard stop - start <= UInt64(maxBytes) else { throw KernelDataError("BTF", "__start_BTF…__stop_BTF spans \(stop - start) bytes") }
            return (try read(reader, start, count: Int(stop - start)), start, "between __start_BTF and __stop_BTF")
        }
        let header: [UInt8] = [0x9f, 0xeb, 1, 0, 24, 0, 0, 0]
        var lastError: KernelDataError? = nil
        // Bytes of failed candidates parsed so far: memory full of headers that pass the
        // cheap checks below still costs at most this much before the search gives up.
        var parsed = 0
        var candidates = 0
        // .BTF is read-only data: above the text, below the init sections (`_sinittext` is
        // in every kallsyms), .data and the image's end, on every architecture's layout.
        // Stopping there spares a kernel without BTF a search through all the RAM after its
        // image (the rest of 64 MiB of lowmem on 32-bit guests).
        let end = ["_sinittext", "__init_begin", "_sdata", "_end"].compactMap { symbols[$0] }.filter { $0 > (symbols["_etext"] ?? 0) }.min()
        let (found, _) = reader.firstInKernelImage(guest: guest, from: symbols["_etext"], to: end) { va, page -> (BTF, UInt64)? in
            var from = 0
            while let o = find(header, in: page, from: from) {
                from = o + 1
                let at = va + UInt64(o)
                guard parsed < 2 * maxBytes else { return nil }
                guard let h = try? reader.bytes(at, count: 24, limit: 24),
                      let size = plausibleSize(header: h, at: at, reader: reader) else { continue }
                candidates += 1
                do throws(KernelDataError) {
                    return (try read(reader, at, count: size), at)
                } catch {
                    lastError = error
                    parsed += size
                }
            }
            return nil
        }
        if found == nil, parsed >= 2 * maxBytes {
            throw KernelDataError("BTF", "gave up after \(candidates) headers in the kernel image that fit but hold no valid BTF (\(parsed >> 20) MiB parsed): give --vmlinux with DWARF")
        }
        if let ((btf, at), window) = found { return (btf, at, "by its header in \(window)") }
        throw lastError ?? KernelDataError("BTF", "none in the kernel image (kernels built without CONFIG_DEBUG_INFO_BTF, such as Debian's armmp and 686 ones, have none: give --vmlinux with DWARF)")
    }

    /// The size a BTF header at `at` gives, if it follows the rules the kernel itself
    /// enforces when it loads BTF (`btf_check_sec_info`, `btf_parse_str_sec`): the two
    /// sections back to back from offset 0 with no gap, the strings beginning and ending
    /// with NUL. Two bytes read per candidate instead of a parse of up to 64 MiB.
    static func plausibleSize(header h: [UInt8], at: UInt64, reader: KernelReader) -> Int? {
        func field(_ o: Int) -> Int { Int(h[o]) | Int(h[o + 1]) << 8 | Int(h[o + 2]) << 16 | Int(h[o + 3]) << 24 }
        let typeOff = field(8), typeLen = field(12), strOff = field(16), strLen = field(20)
        let backToBack = (typeOff == 0 && strOff == typeLen) || (strOff == 0 && typeOff == strLen)
        let size = 24 + typeLen + strLen
        guard backToBack, strLen > 0, size > 1024, size <= maxBytes else { return nil }
        let strings = at &+ 24 &+ UInt64(strOff)
        guard let first = try? reader.bytes(strings, count: 1, limit: 1), first == [0],
              let last = try? reader.bytes(strings &+ UInt64(strLen - 1), count: 1, limit: 1), last == [0] else { return nil }
        return size
    }

    /// The BTF at `va`: in place where the frame source holds it as one run (a core), else copied.
    static func read(_ reader: KernelReader, _ va: UInt64, count: Int) throws(KernelDataError) -> BTF {
        if let frames = reader.memory.frames, let run = reader.inPlace(va, count: count, limit: maxBytes) {
            return try BTF(borrowing: run, owner: frames)
        }
        let bytes: [UInt8]
        do { bytes = try reader.bytes(va, count: count, limit: maxBytes) } catch { throw KernelDataError("BTF", "unreadable: \(error)") }
        return try BTF(bytes: bytes)
    }
}
