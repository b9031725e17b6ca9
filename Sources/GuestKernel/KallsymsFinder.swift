import VCPUContext

/// Finds the kallsyms tables by their content, for kernels whose VMCOREINFO does not name
/// them (before Linux 6.0) or that died before writing VMCOREINFO (an oops at boot).
///
/// The token table holds every character that occurs in a symbol name as a token of its
/// own, so "0", "1", … "9" stand in a row there (tokens 0x30–0x39). From that run:
/// the token table's start and `kallsyms_token_index` are proved by each other (index[i]
/// is token i's offset); `kallsyms_markers` (the names-table offset of every 256th symbol,
/// starting with 0) lies below the token table; `kallsyms_num_syms` and `kallsyms_names`
/// are the count and table whose entries land exactly on those markers; and the address
/// table is the one, next to them, whose decoded addresses are in order.
public enum KallsymsFinder {
    static let digits: [UInt8] = Array("0\u{0}1\u{0}2\u{0}3\u{0}4\u{0}5\u{0}6\u{0}7\u{0}8\u{0}9\u{0}".utf8)
    /// At most this much of the image is searched below the token table for the other tables.
    static let maxBelow = 24 << 20
    /// The markers are searched for this far below the token table.
    static let markersWindow = 2 << 20
    /// Positions tried for names below markers candidates, in all: a real kernel's are found
    /// at once, while memory full of runs that look like markers would cost 150 000 each.
    static let maxWork = 1 << 25
    /// At most this much is read below token-table candidates in all (2 MiB each without
    /// markers, up to 24 MiB with): memory full of copies of a token table with its index
    /// gives up after a few dozen instead of searching below every copy.
    static let maxSearchedBelow = 96 << 20

    /// What one search has spent below its token-table candidates, against the bounds above.
    struct Budget {
        var searched = 0, candidates = 0, work = 0
        var exhausted: Bool { searched >= maxSearchedBelow || work >= maxWork }
    }

    public struct Found: Sendable, Equatable {
        public let tables: Kallsyms.Tables
        public let how: String
        public let pagesScanned: Int
    }

    public static func locate(guest: Guest, reader: KernelReader) throws(KernelDataError) -> Found {
        var lastReason = "the token table's run of digit tokens was not found"
        // Token tables are in .rodata: search upwards from the image's start.
        var previous: (va: UInt64, tail: [UInt8])? = nil
        var budget = Budget()
        let (found, pages) = reader.firstInKernelImage(guest: guest) { va, page -> Kallsyms.Tables? in
            var hits: [UInt64] = []
            var from = 0
            while let offset = find(digits, in: page, from: from) {
                hits.append(va &+ UInt64(offset))
                from = offset + 1
            }
            // A run that straddles the boundary with the page before.
            if let previous, previous.va + 4096 == va {
                let joined = previous.tail + Array(page.prefix(digits.count - 1))
                joined.withUnsafeBytes { j in
                    if let o = find(digits, in: j, from: 0) { hits.append(va &- UInt64(previous.tail.count) &+ UInt64(o)) }
                }
            }
            previous = (va, Array(page.suffix(digits.count - 1)))
            for hit in hits where !budget.exhausted {
                do throws(KernelDataError) {
                    return try tables(digitTokenAt: hit, reader: reader, budget: &budget)
                } catch {
                    lastReason = error.reason
                }
            }
            return nil
        }
        if let (result, window) = found {
            return Found(tables: result, how: "by content in \(window): token table at \(hex(result.tokenTable))", pagesScanned: pages)
        }
        if budget.exhausted {
            throw KernelDataError("kallsyms", "gave up after \(budget.candidates) token tables whose index fits but no names table does (\(budget.searched >> 20) MiB searched below them): \(lastReason)")
        }
        throw KernelDataError("kallsyms", "not found by content (\(pages) mapped pages searched): \(lastReason)")
    }

    /// The tables around a token table whose "0" token is at `zero`, or why not.
    public static func tables(digitTokenAt zero: UInt64, reader: KernelReader) throws(KernelDataError) -> Kallsyms.Tables {
        var budget = Budget()
        return try tables(digitTokenAt: zero, reader: reader, budget: &budget)
    }

    static func tables(digitTokenAt zero: UInt64, reader: KernelReader, budget: inout Budget) throws(KernelDataError) -> Kallsyms.Tables {
        func no(_ why: String) -> KernelDataError { KernelDataError("kallsyms", why) }
        // Tokens 0x30…0xff, forwards from "0".
        let after: [UInt8]
        do { after = try reader.bytes(zero, count: 208 * Kallsyms.maxTokenBytes, limit: 1 << 16) } catch {
            // Near the end of a mapping: take what is there.
            guard let shorter = try? reader.bytes(zero, count: 4096 - Int(zero & 0xfff) + 4096, limit: 1 << 16) else { throw no("unreadable after a digit run") }
            after = shorter
        }
        var lengths: [Int: Int] = [:]     // token → length with its NUL
        var p = 0
        for token in 0x30...0xff {
            guard let nul = after[p...].firstIndex(of: 0), nul > p, nul - p <= Kallsyms.maxTokenBytes else { throw no("token \(token) is not a short string") }
            lengths[token] = nul - p + 1
            p = nul + 1
        }
        let tableEnd = zero &+ UInt64(p)
        // kallsyms_token_index follows, aligned: index[0x30…] must give these offsets.
        for align in [UInt64(1), 2, 4, 8] {
            let indexAddress = (tableEnd &+ align &- 1) & ~(align - 1)
            guard let raw = try? reader.bytes(indexAddress, count: 512, limit: 512) else { continue }
            let index = (0..<256).map { Int(raw[2 * $0]) | Int(raw[2 * $0 + 1]) << 8 }
            guard index[0] == 0, index[0x30] >= 2 * 0x30 else { continue }
            let consistent = (0x30..<0xff).allSatisfy { index[$0 + 1] - index[$0] == lengths[$0]! }
                && (0..<0x30).allSatisfy { index[$0 + 1] > index[$0] + 1 && index[$0 + 1] - index[$0] <= Kallsyms.maxTokenBytes + 1 }
            guard consistent else { continue }
            let tokenTable = zero &- UInt64(index[0x30])
            budget.candidates += 1
            return try namesAndAddresses(tokenTable: tokenTable, tokenIndex: indexAddress, reader: reader, budget: &budget)
        }
        throw no("no kallsyms_token_index follows the token table candidate at \(hex(zero))")
    }

    /// Below the token table: markers, then names with their count before them, then the
    /// address table (6.1's order: offsets, relative_base, num_syms, names, markers, …).
    ///
    /// The markers end right below the token table, or below `kallsyms_seqs_of_names` (3
    /// bytes a symbol, 6.2–6.3): within `markersWindow` in every layout. Only that much is
    /// searched for them; the names below are then read as far as the markers say they go.
    /// So a candidate with no markers costs 2 MiB, and one with markers the size of its names.
    static func namesAndAddresses(tokenTable: UInt64, tokenIndex: UInt64, reader: KernelReader, budget: inout Budget) throws(KernelDataError) -> Kallsyms.Tables {
        func no(_ why: String) -> KernelDataError { KernelDataError("kallsyms", why) }
        let w = UInt64(reader.wordSize)
        // The bytes from `start` (4-aligned) up to the token table; less where the image's
        // mapping begins closer.
        func readBelow(_ span: Int) -> (start: UInt64, bytes: [UInt8])? {
            var span = span
            while span >= 4096 {
                let start = (tokenTable &- UInt64(span)) & ~3
                if let b = try? reader.bytes(start, count: Int(truncatingIfNeeded: tokenTable &- start), limit: maxBelow + 8) {
                    budget.searched += b.count
                    return (start, b)
                }
                span /= 2
            }
            return nil
        }
        guard let near = readBelow(markersWindow) else { throw no("the memory below the token table at \(hex(tokenTable)) is unreadable") }
        let tokenLengths = tokenByteCounts(tokenTable: tokenTable, tokenIndex: tokenIndex, reader: reader)
        var wide = near
        var found: (names: UInt64, numSyms: UInt64, count: Int)? = nil
        var lastReason = "no kallsyms_markers within \(near.bytes.count >> 10) KiB below the token table at \(hex(tokenTable))"
        var failure: KernelDataError? = nil
        near.bytes.withUnsafeBytes { (nb: UnsafeRawBufferPointer) -> Void in
            func u32(_ at: Int) -> UInt32 { nb.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
            // Markers: a 0, then offsets rising by at least 2 bytes a symbol (256 per step).
            var m = (nb.count - 4) & ~3
            while m >= 0 {
                defer { m -= 4 }
                guard u32(m) == 0 else { continue }
                var markers: [Int] = [0]
                var j = m + 4
                while j + 4 <= nb.count {
                    let v = Int(u32(j)), last = markers.last!
                    guard v > last + 511, v - last <= 256 * 600 else { break }
                    markers.append(v)
                    j += 4
                }
                guard markers.count >= 2 else { continue }
                let k = markers.count
                let markersAt = near.start &+ UInt64(m)
                // The markers end at the token table (up to alignment), or where
                // kallsyms_seqs_of_names (3 bytes for each of 256(k-1)+1…256k symbols) does.
                let gap = nb.count - j
                guard gap < 16 || (gap > 3 * 256 * (k - 1) && gap <= 3 * 256 * k + 16) else { continue }
                // The names end at the markers; symbol 256(k-1)'s group starts markers[k-1]
                // above the names' start, and the last group holds at most 256 names.
                guard markersAt > UInt64(markers[k - 1]) + 8 else { continue }
                let lowest = markersAt &- UInt64(markers[k - 1]) &- UInt64(256 * 600) &- 8
                let needed = tokenTable &- max(lowest, tokenTable &- UInt64(maxBelow))
                // As far down as is readable (the image may begin closer): the names must fit in it.
                if wide.start > tokenTable &- needed, let b = readBelow(Int(needed)), b.start < wide.start { wide = b }
                do throws(KernelDataError) {
                    if let t = try names(in: wide, markersAt: markersAt, markers: markers, tokenLengths: tokenLengths, work: &budget.work, tokenTable: tokenTable, wordSize: w) {
                        found = t
                        return
                    }
                } catch {
                    failure = error
                    return
                }
                lastReason = "no kallsyms_names fits the kallsyms_markers candidate at \(hex(markersAt)) below the token table at \(hex(tokenTable))"
            }
        }
        if let failure { throw failure }
        guard let found else { throw no(lastReason) }
        return try addresses(names: found.names, numSyms: found.numSyms, count: found.count, tokenTable: tokenTable,
                             tokenIndex: tokenIndex, wordSize: w, reader: reader)
    }

    /// num_syms and the names below markers at `markersAt`: the positions where a count
    /// that fits the markers is followed by that many names ending at the markers.
    static func names(in region: (start: UInt64, bytes: [UInt8]), markersAt: UInt64, markers: [Int], tokenLengths: [Int],
                      work: inout Int, tokenTable: UInt64, wordSize w: UInt64) throws(KernelDataError) -> (names: UInt64, numSyms: UInt64, count: Int)? {
        let b = region.bytes
        let m = Int(markersAt &- region.start)
        let k = markers.count
        func u32(_ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 | Int(b[at + 2]) << 16 | Int(b[at + 3]) << 24 }
        let lastGroupStart = m - markers[k - 1]           // names offset of symbol 256(k-1), relative to m
        guard lastGroupStart > 8 else { return nil }
        let lowestNames = max(8, lastGroupStart - 256 * 600)
        var n = lastGroupStart - 1
        while n >= lowestNames {
            defer { n -= 1 }
            work += 1
            guard work < maxWork else {
                throw KernelDataError("kallsyms", "gave up below the token table at \(hex(tokenTable)): too many runs that look like kallsyms_markers but fit no names table")
            }
            // Names start right after num_syms, or after the padding to a word.
            let namesStart = n
            guard namesStart % 4 == 0 || (namesStart % Int(w) == 0) else { continue }
            for countAt in [namesStart - 4, namesStart - Int(w)] where countAt >= 0 && countAt % 4 == 0 {
                let count = u32(countAt)
                guard count > 256 * (k - 1), count <= 256 * k else { continue }
                work += count
                guard let end = walkNames(b, from: namesStart, count: count, markers: markers, tokenLengths: tokenLengths),
                      end <= m, m - end < 8 else { continue }
                return (region.start &+ UInt64(namesStart), region.start &+ UInt64(countAt), count)
            }
        }
        return nil
    }

    /// How many bytes each token expands to (a name's length is checked on the way);
    /// empty when the tokens cannot be read, which no names walk then fits.
    static func tokenByteCounts(tokenTable: UInt64, tokenIndex: UInt64, reader: KernelReader) -> [Int] {
        ((try? Kallsyms.readTokens(table: tokenTable, index: tokenIndex, reader: reader)) ?? []).map(\.count)
    }

    /// Walks `count` name entries from `start`; nil unless every 256th lands on its marker
    /// and every name is of a plausible length.
    static func walkNames(_ b: [UInt8], from start: Int, count: Int, markers: [Int], tokenLengths: [Int]) -> Int? {
        guard tokenLengths.count == 256 else { return nil }
        var p = start
        for i in 0..<count {
            if i % 256 == 0 { guard p - start == markers[i / 256] else { return nil } }
            guard p < b.count else { return nil }
            var length = Int(b[p]); p += 1
            if length & 0x80 != 0 { guard p < b.count else { return nil }; length = (length & 0x7f) | Int(b[p]) << 7; p += 1 }
            guard length > 0, p + length <= b.count else { return nil }
            var bytes = 0
            for t in b[p..<(p + length)] { bytes += tokenLengths[Int(t)] }
            guard bytes >= 2, bytes <= Kallsyms.maxNameBytes else { return nil }
            p += length
        }
        return p
    }

    /// The address table next to names: offsets + relative_base below num_syms (up to
    /// 6.x), kallsyms_addresses below num_syms (without base-relative), or offsets +
    /// relative_base after the token index (later kernels). The one whose decoded
    /// addresses are in order, as scripts/kallsyms sorts them, wins.
    static func addresses(names: UInt64, numSyms: UInt64, count: Int, tokenTable: UInt64, tokenIndex: UInt64,
                          wordSize w: UInt64, reader: KernelReader) throws(KernelDataError) -> Kallsyms.Tables {
        var candidates: [Kallsyms.Tables] = []
        let base = Kallsyms.Tables(numSyms: numSyms, names: names, tokenTable: tokenTable, tokenIndex: tokenIndex)
        let relativeBase = (numSyms &- w) & ~(w - 1)
        var t = base
        t.relativeBase = relativeBase
        t.offsets = relativeBase &- UInt64(4 * count)
        candidates.append(t)
        t = base
        t.addresses = (numSyms &- UInt64(count) &* w) & ~(w - 1)
        candidates.append(t)
        t = base
        t.offsets = (tokenIndex &+ 515) & ~3
        t.relativeBase = (t.offsets! &+ UInt64(4 * count) &+ w &- 1) & ~(w - 1)
        candidates.append(t)
        for c in candidates where inOrder(c, count: count, reader: reader) { return c }
        throw KernelDataError("kallsyms", "found names (\(count) symbols at \(hex(names))) but no address table in order next to them")
    }

    /// Whether a candidate address table decodes to non-decreasing addresses under one of
    /// the encodings (checked on the whole table: a wrong guess is out of order at once).
    static func inOrder(_ t: Kallsyms.Tables, count: Int, reader: KernelReader) -> Bool {
        if let table = t.addresses {
            let w = reader.wordSize
            guard let raw = try? reader.bytes(table, count: count * w, limit: Kallsyms.maxSymbols * 8) else { return false }
            return raw.withUnsafeBytes { b in
                var last: UInt64 = 0
                for i in 0..<count {
                    let a = w == 8 ? b.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) : UInt64(b.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                    if a < last || a == 0 { return false }
                    last = a
                }
                return last >= 0xc000_0000
            }
        }
        guard let offsets = t.offsets, let relativeBase = t.relativeBase,
              let base = try? reader.word(relativeBase), base != 0,
              let raw = try? reader.bytes(offsets, count: count * 4, limit: Kallsyms.maxSymbols * 4) else { return false }
        return Kallsyms.encoding(raw: raw, count: count, base: base) != nil
    }
}
