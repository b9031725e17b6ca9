import Foundation
import Testing
@testable import ELFSymbols

/// Types from DWARF as the task and module views ask for them, on a small ELF built here:
/// 6.4's `struct module` with its text in `mem[MOD_TEXT]`, an array of structs.
struct DWARFTypeTests {
    static let source = """
        struct module_memory { void *base; unsigned int size; int ro; };
        enum { MOD_TEXT, MOD_DATA, MOD_RODATA, MOD_RO_AFTER_INIT, MOD_INIT_TEXT, MOD_INIT_DATA, MOD_INIT_RODATA, MOD_MEM_NUM_TYPES };
        struct module { int state; char name[56]; struct module_memory mem[MOD_MEM_NUM_TYPES]; };
        struct module the_module;
        void _start(void) { for (;;) ; }

        """

    @Test func arraysOfStructsInMemberPaths() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-dwarftypes-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let src = dir.appendingPathComponent("module.c"), out = dir.appendingPathComponent("module.elf")
        try Self.source.write(to: src, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["gcc", "-g", "-O0", "-fno-pie", "-no-pie", "-nostdlib", "-static", "-o", out.path, src.path]
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0)
        let elf = try ELFFile(path: out.path)
        #expect(elf.memberOffset("mem.base", in: "module") == 64)       // mem[0].base
        #expect(elf.memberOffset("mem.size", in: "module") == 72)
        #expect(elf.arrayShape("mem", in: "module").map { [$0.count, $0.stride] } == [7, 16])
        #expect(elf.arrayShape("name", in: "module").map { [$0.count, $0.stride] } == [56, 1])
        #expect(elf.arrayShape("state", in: "module") == nil)
        #expect(elf.memberOffset("mem.nothing", in: "module") == nil)
    }
}
