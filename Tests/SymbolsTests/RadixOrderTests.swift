import Testing
@testable import Symbols

struct RadixOrderTests {
    /// Against the standard library's stable sort, on keys that share top bits (as kernel
    /// addresses do), keys that differ only there, and many equal keys.
    @Test(arguments: [0, 1, 2, 1000, 5000])
    func matchesAStableComparisonSort(count: Int) {
        var rng = Xorshift(seed: UInt64(count) &+ 1)
        let keys: [UInt64] = (0..<count).map { i in
            switch i % 4 {
            case 0: return 0xffff_ffff_8100_0000 | (rng.next() & 0xff_ffff)   // kernel text
            case 1: return rng.next() & 0x3_ffff                                 // per-CPU offsets
            case 2: return 0xffff_ffff_8100_0000 | (rng.next() & 0xf) << 4       // many equal keys
            default: return rng.next()                                            // anything
            }
        }
        let minor: [UInt16] = (0..<count).map { _ in UInt16(rng.next() & 0x101) }
        let expected = keys.indices.sorted { (keys[$0], minor[$0], $0) < (keys[$1], minor[$1], $1) }.map { Int32($0) }
        #expect(RadixOrder.stable(keys, from: RadixOrder.stable(small: minor)) == expected)
        #expect(RadixOrder.stable(keys) == keys.indices.sorted { (keys[$0], $0) < (keys[$1], $1) }.map { Int32($0) })
    }

    struct Xorshift {
        var state: UInt64
        init(seed: UInt64) { state = seed | 1 }
        mutating func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
    }
}
