import Foundation
import Symbols
import Testing
@testable import ELFSymbols

/// file:line and inlined frames through libdw, on small ELFs the tests build with gcc and
/// Debian's cross compilers. Truth: the source below (line numbers are part of the test)
/// and, independently, `eu-addr2line -f -i` on the same address.
struct DWARFLineTests {
    static let source = """
    volatile int global_v = 5;
    static inline __attribute__((always_inline)) int leaf(int x) {
        return x * global_v + 3;
    }
    static inline __attribute__((always_inline)) int middle(int x) {
        return leaf(x + 1) + 7;
    }
    __attribute__((noinline)) int outer(int x) {
        return middle(x) * 2;
    }
    int main(void) { return outer(global_v); }
    void _start(void) { main(); for (;;) {} }

    """

    static let compilers = [("x86_64", "gcc"), ("aarch64", "aarch64-linux-gnu-gcc"), ("armhf", "arm-linux-gnueabihf-gcc")]

    func build(_ arch: String, _ cc: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-dwarf-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let src = dir.appendingPathComponent("inline.c"), out = dir.appendingPathComponent("inline-\(arch).elf")
        try Self.source.write(to: src, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [cc, "-g", "-O2", "-fno-pie", "-no-pie", "-nostdlib", "-static", "-o", out.path, src.path]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "\(cc) could not build the test ELF (Scripts/setup.sh installs the cross compilers)")
        return out.path
    }

    func addr2line(_ elf: String, _ address: UInt64) throws -> [String] {
        let p = Process(), pipe = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/eu-addr2line")
        p.arguments = ["-f", "-i", "-e", elf, "0x" + String(address, radix: 16)]
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test(arguments: compilers)
    func inlineChainIsExact(_ arch: String, _ cc: String) throws {
        let path = try build(arch, cc)
        let elf = try ELFFile(path: path)
        #expect(elf.hasDWARF)
        let map = try elf.symbolTable()
        let outer = try #require(map.symbols.first { $0.name == "outer" })
        let next = map.symbols.first { $0.address > outer.address }?.address ?? outer.address + 256
        // An address of outer's code that lies in leaf's inlined body.
        let candidates = (outer.address..<min(next, outer.address + 512)).lazy.map { ($0, elf.frames(at: $0)) }
        let (address, frames) = try #require(candidates.first { $0.1.first?.function == "leaf" })
        #expect(frames == [
            SourceFrame(function: "leaf", file: frames[0].file, line: 3, inlined: true),
            SourceFrame(function: "middle", file: frames[0].file, line: 6, inlined: true),
            SourceFrame(function: "outer", file: frames[0].file, line: 9, inlined: false),
        ])
        #expect(frames[0].file.hasSuffix("inline.c"))
        // eu-addr2line -f -i prints function and file:line pairs, innermost first (an inlined
        // function's name line reads "leaf inlined at FILE:LINE:COL in outer").
        let oracle = try addr2line(path, address)
        #expect(oracle.count == 6)
        for (i, f) in frames.enumerated() where oracle.count == 6 {
            #expect(oracle[2 * i].split(separator: " ").first.map(String.init) == f.function)
            #expect(oracle[2 * i + 1].hasSuffix("inline.c:\(f.line)") || oracle[2 * i + 1].contains("inline.c:\(f.line):"))
        }
        #expect(map.lookup(outer.address + 1)?.symbol.name == "outer")
    }

    @Test func notAnELFFile() {
        #expect(throws: ELFFile.OpenError.self) { try ELFFile(path: "/etc/passwd") }
    }

    func run(_ argv: [String], in dir: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Debian-style debug info: DWARF moved by dwz into a supplementary file
    /// (.gnu_debugaltlink), and DWARF split off into a .gnu_debuglink file. The inlined
    /// names live in the supplementary file (eu-addr2line prints `??` for them here).
    @Test func dwzAndDebuglink() throws {
        let a = try build("dwz-a", "gcc")
        let dir = (a as NSString).deletingLastPathComponent
        let b = dir + "/inline-dwz-b.elf"
        try? FileManager.default.removeItem(atPath: b)
        try FileManager.default.copyItem(atPath: a, toPath: b)
        let common = dir + "/common.debug"
        try? FileManager.default.removeItem(atPath: common)
        try #require(try run(["dwz", "-m", common, "-M", common, a, b], in: dir) == 0, "dwz (Scripts/setup.sh installs it)")
        let sections = Process(), pipe = Pipe()
        sections.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sections.arguments = ["readelf", "-S", a]
        sections.standardOutput = pipe
        try sections.run()
        let table = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sections.waitUntilExit()
        #expect(table.contains(".gnu_debugaltlink"), "dwz did not move DWARF into a supplementary file")
        let split = dir + "/inline-split.elf", debug = dir + "/inline-split.debug"
        try? FileManager.default.removeItem(atPath: split)
        try FileManager.default.copyItem(atPath: a, toPath: split)
        try #require(try run(["objcopy", "--only-keep-debug", split, debug], in: dir) == 0)
        try #require(try run(["objcopy", "--strip-debug", "--add-gnu-debuglink=" + debug, split], in: dir) == 0)
        for path in [a, split] {
            let elf = try ELFFile(path: path)
            let map = try elf.symbolTable()
            let outer = try #require(map.symbols.first { $0.name == "outer" })
            let frames = (outer.address..<outer.address + 64).lazy.map { elf.frames(at: $0) }.first { $0.first?.line == 3 }
            #expect(frames?.map(\.function) == ["leaf", "middle", "outer"], "\(path)")
            #expect(frames?.map(\.line) == [3, 6, 9], "\(path)")
        }
    }
}
