import Testing
@testable import Symbols

struct SystemMapTests {
    let text = """
    0000000000000000 D __per_cpu_start
    000000000002f000 D __per_cpu_end
    ffffffff81000000 T _text
    ffffffff81000000 T startup_64
    ffffffff81001000 T _stext
    ffffffff81001000 T first_text
    ffffffff81001000 t also_at_first_text
    ffffffff81002000 t second
    ffffffff81003000 A an_absolute
             U undefined_symbol
    ffffffff81005000 w weak_thing
    ffffffff81f00000 T _etext
    ffffffff82000000 D data_thing
    ffffffff84430000 B _end
    this line is junk
    ffffffffa0001000 t mod_func\t[mymod]
    """

    var map: SystemMap { try! SystemMap(bytes: Array(text.utf8)) }

    @Test func markersAndTypes() {
        let m = map
        #expect(m.stext == 0xffff_ffff_8100_1000)
        #expect(m.etext == 0xffff_ffff_81f0_0000)
        #expect(m.text == 0xffff_ffff_8100_0000)
        #expect(m.end == 0xffff_ffff_8443_0000)
        #expect(!m.symbols.contains { $0.name == "an_absolute" })       // A: markers only
        #expect(!m.symbols.contains { $0.name == "weak_thing" })        // w: skipped
        #expect(m.skippedLines >= 1)
    }

    @Test func lookupFollowsUpstream() {
        let m = map
        #expect(m.lookup(0xffff_ffff_8100_1000)?.symbol.name == "_stext")            // exact: first in file order
        #expect(m.lookup(0xffff_ffff_8100_1010)?.symbol.name == "also_at_first_text") // else: last below
        #expect(m.lookup(0xffff_ffff_8100_2abc)?.offset == 0xabc)
    }

    @Test func noHugeOffsets() {
        let m = map
        #expect(m.lookup(0xffff_c900_4079_6ca8) == nil)            // between per-cpu symbols and _text
        #expect(m.lookup(0xffff_ffff_9000_0000) == nil)            // past _end
        #expect(m.lookup(0x10) == nil)                             // per-CPU offsets are not image addresses
    }

    @Test func kallsymsModules() {
        let r = map.lookup(0xffff_ffff_a000_1010)
        #expect(r?.symbol.name == "mod_func")
        #expect(r?.symbol.module == "mymod")
    }

    @Test func classifierMatchesUpstreamRules() {
        let m = map
        let c = KernelAddressClassifier(symbols: m, kernelStart: 0xffff_ffff_8000_0000, kernelStartSet: false, defaultEnd: ~0)
        #expect(c.classify(0xffff_ffff_8100_2000) == .text)
        #expect(c.classify(0xffff_ffff_8200_0000) == .data)
        #expect(c.classify(0xffff_8880_0000_0000) == .notKernel)
        #expect(c.symbolSuffix(0xffff_ffff_8100_2010, kind: .text) == " second+0x10")
        let k = KernelAddressClassifier(symbols: m, kernelStart: 0xffff_8000_0000_0000, kernelStartSet: true, defaultEnd: ~0)
        #expect(k.classify(0xffff_8880_0000_0000) == .text)      // -k: everything above is text
        let none = KernelAddressClassifier(symbols: nil, kernelStart: 0xc000_0000, kernelStartSet: false, defaultEnd: 0xffff_ffff)
        #expect(none.classify(0xc000_0001) == .text && none.classify(0xc000_0000) == .notKernel)
    }

    @Test func controlCharactersAreEscaped() {
        #expect(TerminalSafe.escape("ok\u{1b}[2Jname") == "ok\\x1b[2Jname")
        let m = try! SystemMap(bytes: Array("ffffffff81001000 T evil\u{07}name\n".utf8))
        let c = KernelAddressClassifier(symbols: m, kernelStart: 0, kernelStartSet: true, defaultEnd: ~0)
        #expect(c.symbolSuffix(0xffff_ffff_8100_1000, kind: .text) == " evil\\x07name")
    }

    /// The common `<16 digits> T name` shape is read by a fast path (eight digits at a time);
    /// every other shape upstream accepts goes the general way. Both must agree.
    @Test func everyLineShapeParsesAlike() throws {
        let lines = [
            ("0123456789abcdef T lower", 0x0123_4567_89ab_cdef as UInt64),
            ("FEDCBA9876543210 T upper", 0xfedc_ba98_7654_3210),
            ("fEdCbA9876543210 t mixed\r", 0xfedc_ba98_7654_3210),   // CRLF line
            ("0x00000000c1000000 T prefixed", 0xc100_0000),
            ("  ffffffff81000010 T indented", 0xffff_ffff_8100_0010),
            ("ffffffff81000020\tT\ttabs", 0xffff_ffff_8100_0020),
            ("c1000030 T thirty_two_bit", 0xc100_0030),
            ("ffffffff81000040 ? question", 0xffff_ffff_8100_0040),
        ]
        let m = try SystemMap(bytes: Array(lines.map(\.0).joined(separator: "\n").utf8))
        #expect(m.skippedLines == 0)
        for (line, address) in lines {
            let name = String(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last!).filter { $0 != "\r" }
            #expect(m.address(of: name) == address, "\(line)")
        }
        // Not hex, or no name: skipped on either path.
        let bad = try SystemMap(bytes: Array("ffffffff8100000g T notHex\nffffffff81000000 T \nffffffff81000000 T ok\n".utf8))
        #expect(bad.skippedLines == 2 && bad.symbols.map(\.name) == ["ok"])
    }

    @Test func malformedInputIsHandled() {
        #expect(throws: SystemMap.LoadError.self) { try SystemMap(bytes: Array("not a map\n\n".utf8)) }
        #expect(throws: SystemMap.LoadError.self) { try SystemMap(bytes: [UInt8]()) }
        // Random bytes and every truncation of a real-looking map never trap.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let junk = (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? SystemMap(bytes: junk)
        }
        let bytes = Array(text.utf8)
        for n in 0...bytes.count { _ = try? SystemMap(bytes: bytes.prefix(n)) }
    }
}
