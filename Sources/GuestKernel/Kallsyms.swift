import Symbols
import VCPUContext

/// The kernel's own symbol table (`kernel/kallsyms.c`, written by `scripts/kallsyms.c`),
/// decoded from guest memory into the same table a System.map gives.
///
/// Names are compressed: each entry of `kallsyms_names` is a length (one byte, or two
/// when the first has its high bit set, since Linux 6.1) and that many indices into a
/// table of 256 tokens (`kallsyms_token_table`, found through `kallsyms_token_index`).
/// The first character of an expanded name is its System.map type letter. Addresses are
/// `kallsyms_addresses[i]`, or `kallsyms_offsets[i]` from `kallsyms_relative_base`.
public enum Kallsyms {
    /// Where the tables are (from VMCOREINFO, Linux >= 6.0).
    public struct Tables: Sendable, Equatable {
        public var numSyms: UInt64
        public var names: UInt64
        public var tokenTable: UInt64
        public var tokenIndex: UInt64
        public var offsets: UInt64?
        public var relativeBase: UInt64?
        public var addresses: UInt64?

        public init(numSyms: UInt64, names: UInt64, tokenTable: UInt64, tokenIndex: UInt64,
                    offsets: UInt64? = nil, relativeBase: UInt64? = nil, addresses: UInt64? = nil) {
            self.numSyms = numSyms
            self.names = names
            self.tokenTable = tokenTable
            self.tokenIndex = tokenIndex
            self.offsets = offsets
            self.relativeBase = relativeBase
            self.addresses = addresses
        }

        public init?(vmcoreinfo v: VMCoreInfo) {
            guard let n = v.symbol("kallsyms_num_syms"), let names = v.symbol("kallsyms_names"),
                  let tt = v.symbol("kallsyms_token_table"), let ti = v.symbol("kallsyms_token_index") else { return nil }
            self.init(numSyms: n, names: names, tokenTable: tt, tokenIndex: ti, offsets: v.symbol("kallsyms_offsets"),
                      relativeBase: v.symbol("kallsyms_relative_base"), addresses: v.symbol("kallsyms_addresses"))
            guard addresses != nil || (offsets != nil && relativeBase != nil) else { return nil }
        }
    }

    /// Bounds no real kernel comes near (Debian's have ~95 000 symbols, 1.2 MB of names).
    public static let maxSymbols = 1 << 22
    public static let maxNameBytes = 512          // KSYM_NAME_LEN since Linux 6.1
    public static let maxNamesTable = 64 << 20
    static let maxTokenBytes = 128

    /// How addresses are stored; ABSOLUTE_PERCPU (x86_64 before 6.11) keeps per-CPU
    /// symbols as non-negative absolute offsets and the rest as negative relative ones.
    public enum AddressEncoding: String, Sendable { case absolute, relative, absolutePercpu = "relative, absolute per-CPU" }

    public struct Decoded: Sendable {
        /// Parallel arrays, in the tables' order: address, System.map type letter, and
        /// where the name ends in `nameBytes` (it starts where the one before ends): the
        /// names in one buffer, not a String each.
        public let addresses: [UInt64]
        public let types: [UInt8]
        public let nameBytes: [UInt8]
        public let nameEnds: [Int32]
        public let encoding: AddressEncoding
        public var count: Int { types.count }

        public func nameRange(_ i: Int) -> Range<Int> { (i == 0 ? 0 : Int(nameEnds[i - 1]))..<Int(nameEnds[i]) }
        public func name(_ i: Int) -> String { String(decoding: nameBytes[nameRange(i)], as: UTF8.self) }
        public var names: [String] { (0..<count).map(name) }
    }

    /// The 256 tokens, each a NUL-terminated string at its offset in `kallsyms_token_index`.
    static func readTokens(table: UInt64, index: UInt64, reader: KernelReader) throws(KernelDataError) -> [[UInt8]] {
        func fault(_ what: String, _ e: MemoryFault) -> KernelDataError { KernelDataError("kallsyms", "\(what) unreadable: \(e)") }
        let offsets: [UInt8]
        do { offsets = try reader.bytes(index, count: 512, limit: 512) } catch { throw fault("kallsyms_token_index", error) }
        var tokens: [[UInt8]] = []
        tokens.reserveCapacity(256)
        for i in 0..<256 {
            let offset = UInt64(offsets[2 * i]) | UInt64(offsets[2 * i + 1]) << 8
            let token: [UInt8]
            do { token = try reader.cString(table &+ offset, max: maxTokenBytes + 1) } catch { throw fault("kallsyms token \(i)", error) }
            guard token.count <= maxTokenBytes else { throw KernelDataError("kallsyms", "token \(i) is longer than \(maxTokenBytes) bytes: not a token table") }
            tokens.append(token)
        }
        return tokens
    }

    static func relative(_ o: Int32, _ base: UInt64) -> UInt64 { base &+ UInt64(UInt32(bitPattern: o)) }
    static func percpu(_ o: Int32, _ base: UInt64) -> UInt64 { o >= 0 ? UInt64(o) : base &- 1 &- UInt64(bitPattern: Int64(o)) }

    /// The encoding under which `count` offsets decode to addresses in order (as
    /// scripts/kallsyms sorts them); relative first, since per-CPU absolute offsets are
    /// also in order when every offset is non-negative.
    static func encoding(raw: [UInt8], count: Int, base: UInt64) -> AddressEncoding? {
        raw.withUnsafeBytes { b in
            func sorted(_ decode: (Int32, UInt64) -> UInt64) -> Bool {
                var last: UInt64 = 0
                for i in 0..<count {
                    let a = decode(b.loadUnaligned(fromByteOffset: i * 4, as: Int32.self), base)
                    if a < last { return false }
                    last = a
                }
                return true
            }
            if sorted(relative) { return .relative }
            if sorted(percpu) { return .absolutePercpu }
            return nil
        }
    }

    /// Decodes every symbol. `stext` (VMCOREINFO's `SYMBOL(_stext)`) decides between the
    /// relative encodings where known; otherwise the one that gives ordered addresses.
    public static func decode(tables t: Tables, reader: KernelReader, stext: UInt64?) throws(KernelDataError) -> Decoded {
        func fault(_ what: String, _ e: MemoryFault) -> KernelDataError { KernelDataError("kallsyms", "\(what) unreadable: \(e)") }
        let count: Int
        do { count = Int(try reader.u32(t.numSyms)) } catch { throw fault("kallsyms_num_syms", error) }
        guard count > 0, count <= maxSymbols else { throw KernelDataError("kallsyms", "kallsyms_num_syms is \(count): not a plausible symbol count (1 to \(maxSymbols))") }

        let tokens = try readTokens(table: t.tokenTable, index: t.tokenIndex, reader: reader)

        // Names: the table lies below the token table in every layout, so read it whole
        // when that bound is sane; otherwise in chunks as the decoder reaches them.
        var sink = NameSink(capacity: count)
        let span = t.tokenTable &- t.names
        if t.tokenTable > t.names, span <= UInt64(maxNamesTable), let table = try? reader.bytes(t.names, count: Int(span), limit: maxNamesTable) {
            try decodeNames(table, count: count, tokens: tokens, into: &sink)
        } else {
            var names = ChunkReader(reader: reader, base: t.names, limit: maxNamesTable)
            var table: [UInt8] = []
            // Gather the entries byte by byte (a slow path for unusual layouts), then decode.
            for i in 0..<count {
                do {
                    var length = Int(try names.next()); table.append(UInt8(length))
                    if length & 0x80 != 0 { let hi = try names.next(); table.append(hi); length = (length & 0x7f) | Int(hi) << 7 }
                    for _ in 0..<length { table.append(try names.next()) }
                } catch {
                    throw KernelDataError("kallsyms", "kallsyms_names (symbol \(i)) unreadable: \(error)")
                }
            }
            try decodeNames(table, count: count, tokens: tokens, into: &sink)
        }

        // Addresses.
        var addresses = [UInt64]()
        addresses.reserveCapacity(count)
        let encoding: AddressEncoding
        if let table = t.addresses {
            let w = reader.wordSize
            let raw: [UInt8]
            do { raw = try reader.bytes(table, count: count * w, limit: maxSymbols * 8) } catch { throw fault("kallsyms_addresses", error) }
            raw.withUnsafeBytes { b in
                for i in 0..<count {
                    addresses.append(w == 8 ? b.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                                            : UInt64(b.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                }
            }
            encoding = .absolute
        } else if let table = t.offsets, let baseAddress = t.relativeBase {
            let base: UInt64, raw: [UInt8]
            do { base = try reader.word(baseAddress) } catch { throw fault("kallsyms_relative_base", error) }
            do { raw = try reader.bytes(table, count: count * 4, limit: maxSymbols * 4) } catch { throw fault("kallsyms_offsets", error) }
            var usePercpu: Bool
            let stextName = Array("_stext".utf8)
            if let stext, let i = (0..<count).first(where: { i in
                let start = i == 0 ? 0 : Int(sink.nameEnds[i - 1])
                return Int(sink.nameEnds[i]) - start == stextName.count && sink.nameBytes[start..<Int(sink.nameEnds[i])].elementsEqual(stextName)
            }) {
                let o = raw.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i * 4, as: Int32.self) }
                if relative(o, base) == stext { usePercpu = false } else if percpu(o, base) == stext { usePercpu = true } else {
                    throw KernelDataError("kallsyms", "neither address encoding puts _stext at \(hex(stext)) where VMCOREINFO has it (relative base \(hex(base))): the tables do not belong together")
                }
            } else {
                guard let e = Kallsyms.encoding(raw: raw, count: count, base: base) else {
                    throw KernelDataError("kallsyms", "kallsyms_offsets decode to addresses out of order under every encoding: not an address table")
                }
                usePercpu = e == .absolutePercpu
            }
            raw.withUnsafeBytes { b in
                for i in 0..<count {
                    let o = b.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)
                    addresses.append(usePercpu ? percpu(o, base) : relative(o, base))
                }
            }
            encoding = usePercpu ? .absolutePercpu : .relative
        } else {
            throw KernelDataError("kallsyms", "neither kallsyms_addresses nor kallsyms_offsets with kallsyms_relative_base is known")
        }
        if let why = Self.implausible(addresses) { throw KernelDataError("kallsyms", why) }
        return Decoded(addresses: addresses, types: sink.types, nameBytes: sink.nameBytes, nameEnds: sink.nameEnds, encoding: encoding)
    }

    /// Why decoded addresses cannot be a kernel's, or nil. scripts/kallsyms sorts the
    /// table by address, and however many aliases a kernel has, most symbols have an
    /// address of their own: a table that is out of order, or nearly one address repeated
    /// (offsets overwritten with one value, which _stext's own check can still pass), is
    /// not an address table, and names taken from it would be wrong.
    static func implausible(_ addresses: [UInt64]) -> String? {
        var distinct = addresses.isEmpty ? 0 : 1
        for i in addresses.indices.dropFirst() {
            if addresses[i] < addresses[i - 1] {
                return "the addresses go back at symbol \(i) (\(hex(addresses[i - 1])) then \(hex(addresses[i]))): not the sorted table scripts/kallsyms writes"
            }
            if addresses[i] != addresses[i - 1] { distinct += 1 }
        }
        if addresses.count >= 64 && distinct * 4 < addresses.count {
            return "only \(distinct) distinct addresses for \(addresses.count) symbols: not an address table"
        }
        return nil
    }
}

extension Kallsyms {
    /// Expands `count` compressed names from `table` into `sink`, with each type letter.
    /// Tokens are flattened into one buffer, names built in a fixed buffer.
    /// Where decoded names go: an inout value, not a closure over variables (which would
    /// check exclusive access at run time on every append).
    struct NameSink {
        var types: [UInt8] = [], nameBytes: [UInt8] = [], nameEnds: [Int32] = []
        init(capacity: Int) {
            types.reserveCapacity(capacity)
            nameEnds.reserveCapacity(capacity)
            nameBytes.reserveCapacity(capacity * 24)
        }
        mutating func emit(_ type: UInt8, _ name: UnsafeBufferPointer<UInt8>) {
            types.append(type)
            nameBytes.append(contentsOf: name)
            nameEnds.append(Int32(truncatingIfNeeded: nameBytes.count))   // count * maxNameBytes < 2^31
        }
    }

    static func decodeNames(_ table: [UInt8], count: Int, tokens: [[UInt8]], into sink: inout NameSink) throws(KernelDataError) {
        var flat: [UInt8] = []
        var start = [Int](repeating: 0, count: 257)
        for (i, t) in tokens.enumerated() { start[i] = flat.count; flat += t }
        start[256] = flat.count
        flat += [UInt8](repeating: 0, count: 8)   // so every token can be read as 8 bytes
        var failure: KernelDataError? = nil
        table.withUnsafeBufferPointer { b in
            flat.withUnsafeBufferPointer { f in
              start.withUnsafeBufferPointer { starts in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxNameBytes + maxTokenBytes) { name in
                    var p = 0
                    for i in 0..<count {
                        guard p < b.count else { failure = KernelDataError("kallsyms", "kallsyms_names ends before symbol \(i) of \(count)"); return }
                        var length = Int(b[p]); p += 1
                        if length & 0x80 != 0 {
                            guard p < b.count else { failure = KernelDataError("kallsyms", "kallsyms_names ends inside symbol \(i)"); return }
                            length = (length & 0x7f) | Int(b[p]) << 7; p += 1
                        }
                        guard length > 0, p + length <= b.count else {
                            failure = KernelDataError("kallsyms", "symbol \(i) has \(length == 0 ? "an empty name" : "a name past the end of kallsyms_names")"); return
                        }
                        var n = 0
                        for j in p..<(p + length) {
                            let t = Int(b[j])
                            let tokenStart = starts[t], tokenLength = starts[t + 1] - tokenStart
                            guard n + tokenLength <= maxNameBytes else {
                                failure = KernelDataError("kallsyms", "symbol \(i)'s name is longer than \(maxNameBytes) bytes: not a kallsyms table"); return
                            }
                            // Tokens are a few bytes: most are copied as one 8-byte word (the
                            // name buffer has a token's room past its limit, `flat` 8 bytes of
                            // padding past its last token), longer ones a word at a time.
                            var k = 0
                            repeat {
                                let word = UnsafeRawPointer(f.baseAddress! + (tokenStart &+ k)).loadUnaligned(as: UInt64.self)
                                UnsafeMutableRawPointer(name.baseAddress! + (n &+ k)).storeBytes(of: word, as: UInt64.self)
                                k &+= 8
                            } while k < tokenLength
                            n += tokenLength
                        }
                        p += length
                        guard n >= 2 else { failure = KernelDataError("kallsyms", "symbol \(i) has no name after its type letter"); return }
                        let type = name[0]
                        guard (type | 0x20) >= UInt8(ascii: "a") && (type | 0x20) <= UInt8(ascii: "z") || type == UInt8(ascii: "?") else {
                            failure = KernelDataError("kallsyms", "symbol \(i) has type byte \(type), not a letter: not a kallsyms table"); return
                        }
                        sink.emit(type, UnsafeBufferPointer(rebasing: name[1..<n]))
                    }
                }
              }
            }
        }
        if let failure { throw failure }
    }
}

/// Sequential bytes of a guest table of unknown length, fetched a chunk at a time and
/// never past `limit` bytes from its start.
struct ChunkReader {
    let reader: KernelReader
    let base: UInt64
    let limit: Int
    var chunk: [UInt8] = []
    var chunkStart = 0
    var position = 0
    static let chunkSize = 64 << 10

    init(reader: KernelReader, base: UInt64, limit: Int) {
        self.reader = reader
        self.base = base
        self.limit = limit
    }

    mutating func next() throws -> UInt8 {
        if position - chunkStart >= chunk.count {
            guard position < limit else { throw KernelDataError("kallsyms", "the names table runs past \(limit) bytes: not a kallsyms table") }
            // Up to the next chunk boundary of the address space, so a chunk never
            // reaches into an unmapped page beyond the table's last page needlessly.
            let start = base &+ UInt64(position)
            let n = min(Self.chunkSize - Int(start & UInt64(Self.chunkSize - 1)), limit - position)
            do {
                chunk = try reader.bytes(start, count: n, limit: Self.chunkSize)
            } catch {
                // The chunk reaches an unreadable page: take what is left of this page only.
                chunk = try reader.bytes(start, count: min(n, 4096 - Int(start & 0xfff)), limit: Self.chunkSize)
            }
            chunkStart = position
        }
        let b = chunk[position - chunkStart]
        position += 1
        return b
    }
}
