import SafeFile
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file mapped read-only into memory.
///
/// Cores are hundreds of MiB to many GiB and mostly untouched by a report, so they are
/// mapped, never read whole: opening costs the same for any size (see Benchmarks/).
/// `MAP_PRIVATE` + `PROT_READ` means nothing we do can write the file.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    private let base: UnsafeRawPointer?
    /// Whether `base` is an allocation of ours (`init(copying:)`) rather than a mapping.
    private let owned: Bool
    /// The mapping `base` points into (nil for a copy or an empty file).
    private let mapping: ReadOnlyMapping?

    /// A copy of `bytes` standing in for a file (fuzzing and tests: no file, same reader).
    public init(copying bytes: UnsafeRawBufferPointer, path: String) {
        self.path = path
        size = bytes.count
        owned = true
        mapping = nil
        guard size > 0, let source = bytes.baseAddress else { base = nil; return }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        copy.copyMemory(from: source, byteCount: size)
        base = UnsafeRawPointer(copy)
    }

    public init(path: String) throws(CoreError) {
        self.path = path
        let fd: Int32, fileSize: Int
        do { (fd, fileSize) = try SafeFile.open(path, what: "a core file (one that can be mapped)") } catch {
            throw CoreError(.cannotOpen, path: path, detail: error.reason)
        }
        defer { close(fd) }
        size = fileSize
        owned = false
        do { mapping = try ReadOnlyMapping(fd: fd, size: size, path: path) } catch {
            throw CoreError(.cannotOpen, path: path, detail: error.reason)
        }
        base = mapping?.bytes.baseAddress.map(UnsafeRawPointer.init)
    }

    deinit {
        // A mapping is given back by its own deinit.
        if owned, let base { UnsafeMutableRawPointer(mutating: base).deallocate() }
    }

    /// Maps `[offset, offset+count)` in one call before a pass reads it whole (a fault per
    /// 64 KiB costs more than the reading); ignored where the kernel lacks it (< 5.14).
    public func prefault(offset: UInt64, count: Int) {
        guard let base, !owned, count > 0, offset <= UInt64(size), UInt64(count) <= UInt64(size) - offset else { return }
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page, end = min(UInt64(size), (offset + UInt64(count) + page - 1) / page * page)
        _ = madvise(UnsafeMutableRawPointer(mutating: base + Int(start)), Int(end - start), SafeFile.madvisePopulateRead)
    }

    /// Gives back the resident pages of `[offset, offset+count)` (after a one-time pass
    /// over a large index): a read-only private mapping refaults them from the file if
    /// they are read again, so nothing is lost.
    public func release(offset: UInt64, count: Int) {
        guard let base, !owned, count > 0, offset <= UInt64(size), UInt64(count) <= UInt64(size) - offset else { return }
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page, end = (offset + UInt64(count)) / page * page
        guard end > start else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + Int(start)), Int(end - start), MADV_DONTNEED)
    }

    /// The bytes `[offset, offset+count)`, or nil when any part lies outside the file.
    public func bytes(at offset: UInt64, count: Int) -> UnsafeRawBufferPointer? {
        guard let base, count >= 0, offset <= UInt64(size), UInt64(count) <= UInt64(size) - offset else {
            return count == 0 && offset <= UInt64(size) ? UnsafeRawBufferPointer(start: nil, count: 0) : nil
        }
        return UnsafeRawBufferPointer(start: base + Int(offset), count: count)
    }

    /// Whether `[offset, offset+count)` lies inside the file (overflow-safe).
    public func contains(offset: UInt64, count: UInt64) -> Bool {
        offset <= UInt64(size) && count <= UInt64(size) - offset
    }
}
