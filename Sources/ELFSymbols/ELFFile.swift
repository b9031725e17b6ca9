#if canImport(Glibc)
import Glibc
#endif
import CDwarf
import StackWalk
import Symbols
import Synchronization

/// A kernel ELF (`vmlinux`, with or without DWARF) opened through elfutils' libdwfl.
///
/// Addresses are looked up as they come (libdw indexes a compilation unit only when an
/// address falls in it), so a 600 MB Debian `-dbg` vmlinux costs what the trace touches.
public final class ELFFile: SourceLocator, @unchecked Sendable {
    public let path: String
    private let h: UnsafeMutableRawPointer
    /// libdwfl handles are not thread-safe: one lookup at a time.
    private let lock = Mutex(())
    public let hasDWARF: Bool

    public enum OpenError: Error, CustomStringConvertible {
        case libdw(String), open(path: String, reason: String)
        public var description: String {
            switch self {
            case .libdw(let why): return "--vmlinux needs elfutils' libdw: \(why)"
            case .open(let path, let why): return "cannot open \(path) as an ELF file: \(why)"
            }
        }
    }

    public init(path: String) throws(OpenError) {
        self.path = path
        var err = [CChar](repeating: 0, count: 512)
        guard dwb_load(&err, err.count) == 0 else { throw .libdw(String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
        guard let h = dwb_open(path, &err, err.count) else { throw .open(path: path, reason: String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
        self.h = h
        hasDWARF = dwb_has_dwarf(h) != 0
    }

    deinit { dwb_close(h) }

    /// The ELF symbol table as a System.map-style table.
    public func symbolTable() throws(SystemMap.LoadError) -> SystemMap {
        try lock.withLock { _ throws(SystemMap.LoadError) in
            var s = dwb_symbol()
            // Names are read in place (libdwfl owns them while the file is open); an
            // executable's stay there: the table refers to its string table, kept alive by self.
            var base: UnsafePointer<CChar>? = nil, size = 0
            let strings = dwb_symbol_strings(h, &base, &size) != 0 && base != nil
                ? (bytes: UnsafeBufferPointer(start: UnsafeRawPointer(base!).assumingMemoryBound(to: UInt8.self), count: size), owner: self as any Sendable)
                : nil
            return try SystemMap(count: Int(dwb_symbol_count(h)), path: path, strings: strings) { i in
                guard dwb_get_symbol(h, Int32(i), &s) != 0, let name = s.name else { return nil }
                return (s.address, UInt8(bitPattern: s.type), UnsafeBufferPointer(start: UnsafeRawPointer(name).assumingMemoryBound(to: UInt8.self), count: s.name_length))
            }
        }
    }

    public func frames(at address: UInt64) -> [SourceFrame] {
        var buf = [dwb_frame](repeating: dwb_frame(), count: 16)
        let n = lock.withLock { _ in Int(dwb_lookup(h, address, &buf, Int32(buf.count))) }
        return buf.prefix(max(0, n)).map { f in
            func text<T>(_ t: T) -> String { withUnsafeBytes(of: t) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
            return SourceFrame(function: text(f.function), file: text(f.file), line: Int(f.line), inlined: f.inlined != 0)
        }
    }
}

extension ELFFile {
    /// `sizeof(struct name)` from the DWARF, nil when no definition is found.
    public func structSize(_ name: String) -> Int? {
        let n = lock.withLock { _ in dwb_struct_size(h, name) }
        return n < 0 ? nil : n
    }

    /// The byte offset of a member path (`thread.sp`) in `struct name`, from the DWARF.
    public func arrayShape(_ path: String, in name: String) -> (count: Int, stride: Int)? {
        var count = 0, stride = 0
        let rc = lock.withLock { _ in dwb_array_shape(h, name, path, &count, &stride) }
        return rc == 0 && count > 0 && count <= 1 << 16 && stride > 0 ? (count, stride) : nil
    }

    public func memberOffset(_ path: String, in name: String) -> Int? {
        let n = lock.withLock { _ in dwb_member_offset(h, name, path) }
        return n < 0 ? nil : n
    }
}

extension ELFFile: CFIUnwinder {
    /// Unwinds with the ELF's DWARF CFI (.debug_frame/.eh_frame) through libdwfl, reading
    /// guest memory through `read`. Returns the pcs, innermost first, and why it stopped.
    public func unwindCFI(registers: [UInt64], pc: UInt64, maxFrames: Int = 256,
                          read: @escaping (UInt64) -> UInt64?) -> (pcs: [UInt64], stop: String) {
        final class Box { let read: (UInt64) -> UInt64?; init(_ r: @escaping (UInt64) -> UInt64?) { read = r } }
        let box = Unmanaged.passRetained(Box(read))
        defer { box.release() }
        var pcs = [UInt64](repeating: 0, count: maxFrames)
        var err = [CChar](repeating: 0, count: 256)
        let n = lock.withLock { _ in
            registers.withUnsafeBufferPointer { regs in
                dwb_unwind(h, regs.baseAddress, Int32(regs.count), pc, { ctx, address, value in
                    let box = Unmanaged<Box>.fromOpaque(ctx!).takeUnretainedValue()
                    guard let v = box.read(address) else { return -1 }
                    value!.pointee = v
                    return 0
                }, box.toOpaque(), &pcs, Int32(maxFrames), &err, err.count)
            }
        }
        return (Array(pcs.prefix(max(0, Int(n)))), String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}
