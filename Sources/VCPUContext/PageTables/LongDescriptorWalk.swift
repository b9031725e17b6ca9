extension TableReader {
    /// The long-descriptor walk shared by ARMv7 LPAE and AArch64 (ARM ARM G5/D8): the
    /// number of levels follows from the VA size and the granule, the start level's index
    /// takes the bits left over (VA[vaBits-1:shift]); descriptors are tables (0b11 above
    /// level 3), blocks (0b01 at levels 1-2) and pages (0b11 at level 3). `table` is the
    /// start table, already aligned by the caller; `outputMask` is the output address size.
    func longDescriptorWalk(_ va: UInt64, vaBits: UInt64, granuleBits g: UInt64, table start: UInt64,
                            outputMask: UInt64, name: String) throws(MemoryFault) -> UInt64 {
        let stride = g - 3
        let levels = Int((vaBits - g + stride - 1) / stride)   // ceil
        let startLevel = 4 - levels
        guard (0...3).contains(startLevel) else { throw MemoryFault(address: va, reason: "unsupported translation geometry") }
        let granuleMask = (UInt64(1) << g) - 1
        var table = start
        for level in startLevel...3 {
            let shift = g + stride * UInt64(3 - level)
            let indexBits = level == startLevel ? vaBits - shift : stride
            let index = (va >> shift) & ((1 << indexBits) - 1)
            let e = try entry64(table: table, index: index, level: "\(name) L\(level)", covering: level == startLevel ? 0 : 1 << (shift + stride))
            switch (e & 3, level) {
            case (3, 3):
                return (e & outputMask & ~granuleMask) | (va & granuleMask)
            case (3, _):
                table = e & outputMask & ~granuleMask
            case (1, 1), (1, 2):
                let span = UInt64(1) << shift
                return (e & outputMask & ~(span - 1)) | (va & (span - 1))
            default:
                throw notPresent("\(name) L\(level)", index: index, entry: e, span: 1 << shift)
            }
        }
        throw MemoryFault(address: va, reason: "walk did not end at level 3")
    }
}
