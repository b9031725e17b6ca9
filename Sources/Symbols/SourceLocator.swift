/// One source-level frame at an address: a function and where in it, innermost first when
/// functions were inlined.
public struct SourceFrame: Sendable, Equatable {
    public let function: String
    public let file: String
    public let line: Int
    public let inlined: Bool
    public init(function: String, file: String, line: Int, inlined: Bool) {
        self.function = function
        self.file = file
        self.line = line
        self.inlined = inlined
    }
}

/// Maps code addresses to source frames (DWARF, through elfutils, in `ELFSymbols`).
public protocol SourceLocator: Sendable {
    /// The frames at `address`, innermost inlined function first; empty when unknown.
    func frames(at address: UInt64) -> [SourceFrame]
}
