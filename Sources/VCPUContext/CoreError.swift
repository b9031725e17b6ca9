/// Why a core file could not be used, with where in the file and what to do next.
///
/// Every message names the file, the offending structure and (where it helps) the byte
/// offset, so a support engineer can tell a truncated copy from a wrong file type.
public struct CoreError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable, Equatable {
        case cannotOpen        // open/stat/mmap failed
        case empty             // zero-length file
        case notELF            // no ELF magic
        case notXenCore        // ELF, but not an `xl dump-core` file
        case malformed         // a header, table or note is inconsistent
        case truncated         // the file ends before a structure it declares
        case unsupported       // well-formed, but a layout this tool does not know
    }

    public let kind: Kind
    public let path: String
    public let detail: String

    public init(_ kind: Kind, path: String, detail: String) {
        self.kind = kind
        self.path = path
        self.detail = detail
    }

    public var description: String { "\(path): \(detail)" }
}
