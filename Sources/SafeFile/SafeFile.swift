#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opening a file the user named, as hostile input: never blocking on a FIFO or a device,
/// never trusting a size before it is checked. One place for every input file (cores,
/// symbol tables, kernel ELFs).
public enum SafeFile {
    /// madvise(MADV_POPULATE_READ) (Linux 5.14): map a range's pages in one call. Glibc's
    /// headers in bookworm name it, Swift's Glibc module does not.
    public static let madvisePopulateRead: Int32 = 22
    public struct OpenError: Error, CustomStringConvertible, Equatable, Sendable {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Why a file cannot be written at a path: what it is, and the words for it.
    public struct OutputProblem: Error, CustomStringConvertible, Equatable, Sendable {
        public enum Kind: Sendable { case isInput, exists, notRegularFile, folderNotWritable }
        public let kind: Kind
        public let description: String
    }

    /// Why a file cannot be written at `path` (a new core, a trimmed copy), or nil: it is
    /// `input` itself, it exists and `force` was not given, it exists and is not a regular
    /// file (a device or a FIFO is never replaced), or its folder is not writable.
    public static func outputProblem(_ path: String, force: Bool, input: (path: String, name: String)? = nil) -> OutputProblem? {
        var a = stat(), b = stat()
        if let input, stat(input.path, &a) == 0, stat(path, &b) == 0, a.st_dev == b.st_dev, a.st_ino == b.st_ino {
            return OutputProblem(kind: .isInput, description: "\(path) is \(input.name) itself: give another file")
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard force else { return OutputProblem(kind: .exists, description: "\(path) exists: give --force to replace it") }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                return OutputProblem(kind: .notRegularFile, description: "\(path) is not a regular file: not replaced")
            }
        }
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        guard access(folder, W_OK) == 0 else {
            return OutputProblem(kind: .folderNotWritable, description: "cannot write in \(folder): \(String(cString: strerror(errno)))")
        }
        return nil
    }

    /// Opens `path` read-only. `O_NONBLOCK` makes opening a FIFO return at once, and the
    /// kind is checked with `fstat` on the opened descriptor (no race with the name) before
    /// any read: only regular files are accepted, and none larger than `maxSize`. `what`
    /// names what the file should be, for the message ("a core", "a System.map").
    public static func open(_ path: String, what: String, maxSize: Int? = nil) throws(OpenError) -> (fd: Int32, size: Int) {
        func no(_ reason: String) -> OpenError { OpenError(path: path, reason: reason) }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw no(String(cString: strerror(errno))) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw no(String(cString: strerror(e)))
        }
        let kind: String?
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = nil
        case S_IFDIR: kind = "a directory"
        case S_IFIFO: kind = "a FIFO"
        case S_IFCHR: kind = "a character device"
        case S_IFBLK: kind = "a block device"
        case S_IFSOCK: kind = "a socket"
        default: kind = "not a regular file"
        }
        if let kind {
            close(fd)
            throw no("it is \(kind), not \(what)")
        }
        let size = Int(st.st_size)
        // procfs and sysfs report size 0 for files that read as text (/proc/kallsyms): taken
        // as they are, they would be empty; and they describe this machine, not a guest.
        if size == 0, let fs = pseudoFilesystem(st) {
            close(fd)
            throw no("a file of \(fs), whose size reads as 0 and which describes this machine, not a guest; to use it anyway, copy it to a file first")
        }
        if let maxSize, size > maxSize {
            close(fd)
            throw no("\(size) bytes: larger than \(what) can be (\(maxSize >> 20) MiB at most)")
        }
        // Back to blocking reads: a regular file never blocks, and callers expect full reads.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, size)
    }

    /// "procfs" or "sysfs" when the file (`st`) is on the same filesystem as /proc or /sys
    /// (Swift's Glibc module has no statfs for the filesystem's magic number).
    static func pseudoFilesystem(_ st: stat) -> String? {
        for (name, probe) in [("procfs", "/proc/self"), ("sysfs", "/sys/kernel")] {
            var p = stat()
            if stat(probe, &p) == 0, p.st_dev == st.st_dev { return name }
        }
        return nil
    }

    /// The whole of a file opened by `open`, read with a bound the caller has checked.
    public static func readAll(fd: Int32, size: Int, path: String) throws(OpenError) -> [UInt8] {
        var failure: OpenError? = nil
        // Read straight into the array's storage: zeroing it first would touch every page twice.
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var done = 0
            while done < size {
                let n = pread(fd, buffer.baseAddress! + done, size - done, off_t(done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    failure = OpenError(path: path, reason: n < 0 ? String(cString: strerror(errno)) : "the file ended early (it is changing)")
                    break
                }
                done += n
            }
            initialized = failure == nil ? size : 0
        }
        if let failure { throw failure }
        return bytes
    }
}

/// A whole file mapped read-only (`MAP_PRIVATE` + `PROT_READ`: nothing can write the file),
/// for what is read in place rather than copied: cores, a System.map's names. Unmapped when
/// the last reference goes.
public final class ReadOnlyMapping: @unchecked Sendable {
    public let bytes: UnsafeBufferPointer<UInt8>

    /// Maps `size` bytes of `fd` (opened by `SafeFile.open`, so a regular file of a checked
    /// size); `sequential` for a file that is read once from start to end.
    public init(fd: Int32, size: Int, path: String, sequential: Bool = false) throws(SafeFile.OpenError) {
        guard size > 0 else { bytes = UnsafeBufferPointer(start: nil, count: 0); return }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw SafeFile.OpenError(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        if sequential { madvise(p, size, MADV_SEQUENTIAL) }
        bytes = UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: size)
    }

    /// Maps every page now, in one call, for a file about to be read whole (a fault per
    /// 64 KiB costs more); ignored by kernels before 5.14.
    public func prefault() {
        if let base = bytes.baseAddress { _ = madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, SafeFile.madvisePopulateRead) }
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
