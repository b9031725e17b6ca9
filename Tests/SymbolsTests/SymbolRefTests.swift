import Testing
@testable import Symbols

/// Symbols as values: what the text prints and what triage and --summary read by name.
struct SymbolRefTests {
    @Test func textAndFunction() {
        #expect(SymbolRef(name: "panic", offset: 0x286, module: nil).text == "panic+0x286")
        #expect(SymbolRef(name: "panic", offset: 0, module: nil).text == "panic")
        #expect(SymbolRef(name: "rfkill_fop_read", offset: 0xc9, module: "rfkill").text == "rfkill_fop_read+0xc9 [rfkill]")
        #expect(SymbolRef(name: "__handle_sysrq.cold", offset: 4, module: nil).function == "__handle_sysrq")
        #expect(SymbolRef(name: "foo.isra.0", offset: 4, module: nil).function == "foo")
        // A name from guest memory reaches every printer escaped.
        #expect(SymbolRef(name: "evil\u{1b}[2J", offset: 1, module: "m\u{7}").text == "evil\\x1b[2J+0x1 [m\\x07]")
    }

    /// The classifier's values and its text agree: ` name+0xoff`, and a return address by the
    /// call before it (a noreturn call ends its caller).
    @Test func classifierGivesValuesAndText() throws {
        let map = try SystemMap(bytes: Array("ffffffff81000000 T _stext\nffffffff81000100 T caller\nffffffff81000200 T next\nffffffff81001000 T _etext\nffffffff82000000 B _end\n".utf8))
        let c = KernelAddressClassifier(symbols: map, kernelStart: 0xffff_ffff_8000_0000, kernelStartSet: false, defaultEnd: ~0)
        #expect(c.symbol(0xffff_ffff_8100_0110, kind: .text) == SymbolRef(name: "caller", offset: 0x10, module: nil))
        #expect(c.symbolSuffix(0xffff_ffff_8100_0110, kind: .text) == " caller+0x10")
        #expect(c.returnAddressSymbol(0xffff_ffff_8100_0200) == SymbolRef(name: "caller", offset: 0x100, module: nil))
        #expect(c.returnAddressSuffix(0xffff_ffff_8100_0200) == " caller+0x100")
        #expect(c.symbol(0x1000, kind: .text) == nil && c.symbolSuffix(0x1000, kind: .text) == "")
    }
}
