import Foundation
import Testing

/// KASLR and mismatched symbol tables, on a real core.
///
/// The lab's guests run without KASLR (PV guests have none; ARM ones boot `nokaslr`), so
/// the relocation is synthesised the other way round: the guest stays put and the
/// System.map is moved by a known offset. Detection must find exactly that offset and the
/// report must be the same as with the true map.
@Suite(.serialized)
struct KernelOffsetTests {
    func shiftedMap(_ c: Corpus.Case, by delta: Int64) throws -> String {
        let path = Corpus.cache.appendingPathComponent("maps/\(c.kernel).shifted\(delta).System.map").path
        if FileManager.default.fileExists(atPath: path) { return path }
        var out = ""
        for line in try String(contentsOfFile: try Corpus.mapPath(c), encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 2)
            guard parts.count == 3, let a = UInt64(parts[0], radix: 16) else { continue }
            let moved = UInt64(bitPattern: Int64(bitPattern: a) &+ delta)
            out += String(moved, radix: 16).leftPadded(16) + " \(parts[1]) \(parts[2])\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(arguments: [("x86-run1-lab-crash", Int64(-0x240_0000)), ("arm-full-a64-crash", Int64(0x1000_0000))])
    func relocatedKernelIsFoundAndApplied(_ name: String, _ mapShift: Int64) throws {
        let c = Corpus.named(name)
        let core = try Corpus.corePath(c)
        let truth = try Tool.run(["--core", core, "-s", try Corpus.mapPath(c), "--unwind", "auto", "-C", "--describe"])
        let moved = try Tool.run(["--core", core, "-s", try shiftedMap(c, by: mapShift), "--unwind", "auto", "-C", "--describe"])
        #expect(truth.stdout.contains("# symbols: the symbol table matches the guest"))
        let shown = String(-mapShift, radix: 16).replacingOccurrences(of: "-", with: "")
        #expect(moved.stdout.contains("# symbols: KASLR: the kernel was loaded \(mapShift < 0 ? "+" : "-")0x\(shown)"))
        func body(_ s: String) -> [Substring] { s.split(separator: "\n").filter { !$0.hasPrefix("#") } }
        #expect(body(moved.stdout) == body(truth.stdout))
    }

    @Test func symbolTableOfAnotherKernelIsReported() throws {
        let x86 = Corpus.named("x86-run1-lab-crash")
        let r = try Tool.run(["--core", try Corpus.corePath(x86), "-s", try Corpus.mapPath(Corpus.named("arm-full-a64-crash")), "-l", "0"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("the symbol table is from another build"))
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
