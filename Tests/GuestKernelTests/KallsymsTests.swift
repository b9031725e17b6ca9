import Testing
@testable import GuestKernel

/// kallsyms decoding on tables laid out in memory: a well-formed one, then hostile ones.
struct KallsymsTests {
    static let base: UInt64 = 0xffff_ffff_8200_0000
    static let tokenTable = base + 0x10000, tokenIndex = base + 0x11000
    static let names = base + 0x1000, offsets = base + 0x8000, relativeBase = base + 0x9000, numSyms = base + 0x9008

    /// Tokens: 0x01 = "_do_" (a multi-character token), every other byte its own character.
    static func memory(symbols: [(type: Character, name: String, offset: UInt32)]) -> TestMemory {
        let m = TestMemory()
        var table: [UInt8] = [], index: [UInt8] = []
        for t in 0..<256 {
            index += [UInt8(table.count & 0xff), UInt8(table.count >> 8)]
            table += (t == 1 ? Array("_do_".utf8) : [UInt8(t == 0 ? 0x20 : t)]) + [0]
        }
        m.write(tokenTable, table)
        m.write(tokenIndex, index)
        var namesBytes: [UInt8] = []
        for s in symbols {
            var tokens: [UInt8] = [s.type.asciiValue!]
            var rest = Array(s.name.utf8)[...]
            while !rest.isEmpty {
                if rest.starts(with: Array("_do_".utf8)) { tokens.append(1); rest = rest.dropFirst(4) } else { tokens.append(rest.removeFirst()) }
            }
            namesBytes += tokens.count < 0x80 ? [UInt8(tokens.count)] : [UInt8(tokens.count & 0x7f) | 0x80, UInt8(tokens.count >> 7)]
            namesBytes += tokens
        }
        m.write(names, namesBytes)
        for (i, s) in symbols.enumerated() { m.write32(offsets + UInt64(4 * i), s.offset) }
        m.write64(relativeBase, 0xffff_ffff_8100_0000)
        m.write32(numSyms, UInt32(symbols.count))
        return m
    }

    static let tables = Kallsyms.Tables(numSyms: numSyms, names: names, tokenTable: tokenTable, tokenIndex: tokenIndex,
                                        offsets: offsets, relativeBase: relativeBase)

    @Test func decodesNamesTypesAndAddresses() throws {
        let long = String(repeating: "x", count: 200)   // 201 tokens: a two-byte length (Linux 6.1)
        let m = Self.memory(symbols: [("T", "_stext", 0), ("t", "_do_work", 0x40), ("D", long, 0x1000)])
        let d = try Kallsyms.decode(tables: Self.tables, reader: m.reader(), stext: 0xffff_ffff_8100_0000)
        #expect(d.names == ["_stext", "_do_work", long])
        #expect(d.types == Array("TtD".utf8))
        #expect(d.addresses == [0xffff_ffff_8100_0000, 0xffff_ffff_8100_0040, 0xffff_ffff_8100_1000])
        #expect(d.encoding == .relative)
    }

    @Test func absurdCountIsRefused() {
        let m = Self.memory(symbols: [("T", "a", 0)])
        m.write32(Self.numSyms, 0xffff_fff0)
        #expect { try Kallsyms.decode(tables: Self.tables, reader: m.reader(), stext: nil) } throws: {
            "\($0)".contains("not a plausible symbol count")
        }
    }

    @Test func namesPastTheTableOrOverlongAreRefused() {
        // More symbols than names: the decoder runs off the end of what is there.
        let m = Self.memory(symbols: [("T", "a", 0), ("T", "b", 4)])
        m.write32(Self.numSyms, 50_000)
        #expect(throws: KernelDataError.self) { try Kallsyms.decode(tables: Self.tables, reader: m.reader(), stext: nil) }
        // A name of 0x7fff tokens of 4 bytes: far beyond KSYM_NAME_LEN.
        let m2 = Self.memory(symbols: [("T", "a", 0)])
        m2.write(Self.names, [0xff, 0xff] + [UInt8](repeating: 1, count: 0x7fff))
        #expect { try Kallsyms.decode(tables: Self.tables, reader: m2.reader(), stext: nil) } throws: {
            "\($0)".contains("longer than 512 bytes")
        }
    }

    @Test func tokenWithoutEndOrTypeThatIsNoLetterIsRefused() {
        let m = Self.memory(symbols: [("T", "a", 0)])
        m.write(Self.tokenTable, [UInt8](repeating: 0x41, count: 300))   // token 0 runs on
        #expect { try Kallsyms.decode(tables: Self.tables, reader: m.reader(), stext: nil) } throws: {
            "\($0)".contains("longer than 128 bytes")
        }
        let m2 = Self.memory(symbols: [("T", "a", 0)])
        m2.write(Self.names, [2, 0x21, UInt8(ascii: "a")])   // type "!"
        #expect { try Kallsyms.decode(tables: Self.tables, reader: m2.reader(), stext: nil) } throws: {
            "\($0)".contains("not a letter")
        }
    }

    @Test func addressesOutOfOrderUnderEveryEncodingAreRefused() {
        let m = Self.memory(symbols: [("T", "a", 0x100), ("T", "b", 0x80), ("T", "c", 0x200)])
        #expect { try Kallsyms.decode(tables: Self.tables, reader: m.reader(), stext: nil) } throws: {
            "\($0)".contains("out of order")
        }
        // And a VMCOREINFO _stext that neither encoding reaches: the tables do not belong together.
        let m2 = Self.memory(symbols: [("T", "_stext", 0)])
        #expect { try Kallsyms.decode(tables: Self.tables, reader: m2.reader(), stext: 0x1234) } throws: {
            "\($0)".contains("do not belong together")
        }
    }

    /// With VMCOREINFO's _stext only _stext's own offset was checked: a table out of order
    /// after it, or one value repeated, was taken.
    @Test func addressesAreCheckedWhenStextDecidesTheEncoding() {
        let m = Self.memory(symbols: [("T", "_stext", 0x100), ("T", "b", 0x80), ("T", "c", 0x200)])
        #expect { try Kallsyms.decode(tables: Self.tables, reader: m.reader(), stext: 0xffff_ffff_8100_0100) } throws: {
            "\($0)".contains("the addresses go back at symbol 1")
        }
        #expect(Kallsyms.implausible([UInt64](repeating: 0xffff_ffff_8100_0000, count: 100)) == "only 1 distinct addresses for 100 symbols: not an address table")
        #expect(Kallsyms.implausible((0..<100).map { 0xffff_ffff_8100_0000 + UInt64($0 / 2) * 16 }) == nil)
    }

    @Test func perCPUEncodingIsTold() throws {
        // x86_64 --absolute-percpu: per-CPU symbols non-negative absolute, the rest negative.
        let m = Self.memory(symbols: [("D", "fixed_percpu_data", 0), ("D", "cpu_number", 0x20), ("T", "_stext", UInt32(bitPattern: -1))])
        let d = try Kallsyms.decode(tables: Self.tables, reader: m.reader(), stext: nil)
        #expect(d.encoding == .absolutePercpu)
        #expect(d.addresses == [0, 0x20, 0xffff_ffff_8100_0000])
    }
}
