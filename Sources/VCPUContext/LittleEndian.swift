/// Little-endian reads from a byte buffer, bounds-checked.
///
/// The Xen ABI and every `xl dump-core` file are little-endian (ELFDATA2LSB), on every
/// architecture Xen supports; decoding goes through this type so the assumption sits
/// in one place and no read can run past the buffer.
public struct LittleEndianBytes: Sendable {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ buffer: UnsafeRawBufferPointer) { self.bytes = Array(buffer) }

    public var count: Int { bytes.count }

    /// Reads an unsigned integer of `T`'s width at `offset`; nil if it does not fit.
    public func read<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, at offset: Int) -> T? {
        let width = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - width else { return nil }
        var value: T = 0
        for i in 0..<width {
            value |= T(bytes[offset + i]) << (8 * i)
        }
        return value
    }

    /// Like `read`, for offsets the caller has already validated against a fixed layout.
    /// Out-of-range offsets read as zero rather than trapping.
    public func u64(_ offset: Int) -> UInt64 { read(UInt64.self, at: offset) ?? 0 }
    public func u32(_ offset: Int) -> UInt32 { read(UInt32.self, at: offset) ?? 0 }
    public func u16(_ offset: Int) -> UInt16 { read(UInt16.self, at: offset) ?? 0 }
    public func u8(_ offset: Int) -> UInt8 { read(UInt8.self, at: offset) ?? 0 }

    /// A NUL-padded C string field of `length` bytes (possibly without a terminator).
    public func cString(at offset: Int, length: Int) -> String {
        guard offset >= 0, length >= 0, offset <= bytes.count - length else { return "" }
        let field = bytes[offset..<(offset + length)]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: field[field.startIndex..<end], as: UTF8.self)
    }
}

extension UnsafeRawBufferPointer {
    /// Unaligned little-endian load; the caller guarantees the range.
    @inline(__always)
    func le64(_ offset: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
    @inline(__always)
    func le32(_ offset: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    @inline(__always)
    func le16(_ offset: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
}
