import CDwarf

/// elfutils' debuginfod client: a kernel's `-dbg` vmlinux by its build id, from the servers
/// `DEBUGINFOD_URLS` names (as gdb and drgn fetch theirs), kept in the client's own cache.
public enum Debuginfod {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The servers to ask (`DEBUGINFOD_URLS`'s value), or nil when none are set (then nothing is fetched).
    public static func urls(_ value: String?) -> String? {
        guard let u = value, !u.allSatisfy({ $0 == " " || $0 == "\t" }) else { return nil }
        return u
    }

    /// The cached file's path. The build id is sent to the servers as it is written in the
    /// request's URL, so it must be plain lowercase hex of a plausible length (guest memory
    /// said it).
    public static func findDebuginfo(buildID: String, progress: Bool) throws(Failure) -> String {
        let bytes = Array(buildID.utf8)
        guard bytes.count >= 2, bytes.count <= 128, bytes.count % 2 == 0,
              bytes.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw Failure(description: "the build id is not lowercase hex of 2 to 128 digits")
        }
        var path = [CChar](repeating: 0, count: 4096)
        var err = [CChar](repeating: 0, count: 512)
        let rc = dib_find_debuginfo(buildID, progress ? 1 : 0, &path, path.count, &err, err.count)
        guard rc == 0 else { throw Failure(description: Self.string(err)) }
        return Self.string(path)
    }

    static func string(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
