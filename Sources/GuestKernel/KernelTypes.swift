/// What the tool needs to know about the guest kernel's C types: struct sizes and where
/// members lie. Two sources answer it: the kernel's own BTF (x86_64 and arm64 kernels
/// carry it in memory) and a vmlinux's DWARF.
public protocol KernelTypes: Sendable {
    /// Where the answers come from, for `--describe` ("BTF", "DWARF").
    var source: String { get }
    /// `sizeof(struct name)`, nil when the struct is unknown.
    func size(of structName: String) -> Int?
    /// The byte offset of a member path such as `thread.sp` from the start of the struct,
    /// looking through anonymous struct and union members as C does; nil when absent.
    func offset(of path: String, in structName: String) -> Int?
    /// The element count and size of the array member at `path` (`mem` in `struct module`),
    /// nil when it is not an array or its shape is unknown.
    func arrayShape(of path: String, in structName: String) -> (count: Int, stride: Int)?
    /// The value of an enumerator (`NR_FREE_PAGES`), nil when no enum names it.
    func enumValue(_ name: String) -> Int?
}

extension KernelTypes {
    /// Sources that know no arrays (test and fuzz layouts) answer nil.
    public func arrayShape(of path: String, in structName: String) -> (count: Int, stride: Int)? { nil }
    /// Sources that know no enums answer nil.
    public func enumValue(_ name: String) -> Int? { nil }

    /// The first of `paths` the struct has (members renamed between kernel versions).
    func offset(ofAny paths: [String], in structName: String) -> (path: String, offset: Int)? {
        for p in paths { if let o = offset(of: p, in: structName) { return (p, o) } }
        return nil
    }
}
