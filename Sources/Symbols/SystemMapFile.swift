#if canImport(Glibc)
import Glibc
#endif

extension SystemMap {
    /// Reads and parses a System.map file (read whole: they are a few MB).
    public static func load(path: String) throws(LoadError) -> SystemMap {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotRead(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .cannotRead(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            // A System.map is a few MB; refuse to read a multi-GB file given by mistake.
            if bytes.count > 512 << 20 { throw .cannotRead(path: path, reason: "larger than 512 MiB: not a symbol table") }
        }
        return try SystemMap(bytes: bytes, path: path)
    }
}
