import SafeFile
#if canImport(Glibc)
import Glibc
#endif

extension SystemMap {
    /// No System.map or kallsyms listing comes near this (Debian's are 3–5 MB).
    public static let maxFileSize = 256 << 20

    /// Reads and parses a System.map file: its kind and size are checked before anything
    /// is read (a FIFO, a device or a 1 TiB sparse file is refused at once), then it is
    /// mapped whole (bounded) and must look like a symbol table.
    public static func load(path: String) throws(LoadError) -> SystemMap {
        // Mapped, not read: the names are referenced where they are in the file.
        let mapping: ReadOnlyMapping
        do {
            let (fd, size) = try SafeFile.open(path, what: "a symbol table", maxSize: maxFileSize)
            defer { close(fd) }
            mapping = try ReadOnlyMapping(fd: fd, size: size, path: path, sequential: true)
        } catch {
            throw .cannotRead(path: path, reason: error.reason)
        }
        let bytes = mapping.bytes
        if bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46]) {
            throw .notASymbolTable(path: path, reason: "it is an ELF file (a vmlinux goes with --vmlinux, a core with --core)")
        }
        if bytes.prefix(4096).contains(0) {
            throw .notASymbolTable(path: path, reason: "it holds binary data (NUL bytes), not lines of text")
        }
        // A NUL anywhere means the file is not text from there on (a copy padded with zeros):
        // parsed as it is, the rest would be one long skipped "line", accepted without a word.
        // memchr stops at the first NUL, so a padded file costs only its text.
        if let base = bytes.baseAddress, let nul = memchr(base, 0, bytes.count) {
            let at = UnsafeRawPointer(nul) - UnsafeRawPointer(base)
            throw .notASymbolTable(path: path, reason: "a NUL byte at offset \(at) of its \(bytes.count) bytes: it is not text from there on (a damaged or zero-padded copy? `head -c \(at)` keeps the text before it)")
        }
        mapping.prefault()   // it looks like text: it is read whole next
        let map = try SystemMap(mapping: mapping, path: path)
        // A text file with a few lines that happen to parse is not a symbol table.
        if map.skippedLines > map.symbols.count {
            throw .notASymbolTable(path: path, reason: "only \(map.symbols.count) of its \(map.symbols.count + map.skippedLines) lines are `ADDRESS TYPE NAME`")
        }
        return map
    }
}
