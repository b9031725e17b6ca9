import Testing
@testable import GuestKernel

/// BTF built in the test: a task_struct with pid and tgid inside an anonymous union, comm,
/// a typedef to it; then hostile variants.
struct BTFTests {
    /// Types: 1 int, 2 anonymous union {pid, tgid}, 3 struct task_struct {state; <2>; comm},
    /// 4 typedef task_t → 3. Strings: "", "int", "pid", "tgid", "task_struct", "comm", "state", "task_t".
    static func build(mutate: (inout [UInt8]) -> Void = { _ in }) -> [UInt8] {
        var strings: [UInt8] = [0]
        func str(_ s: String) -> UInt32 { let o = UInt32(strings.count); strings += Array(s.utf8) + [0]; return o }
        let sInt = str("int"), sPid = str("pid"), sTgid = str("tgid"), sTask = str("task_struct"), sComm = str("comm"), sState = str("state"), sT = str("task_t")
        var types: [UInt8] = []
        func u32(_ v: UInt32) { for i in 0..<4 { types.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
        u32(sInt); u32(1 << 24); u32(4); u32(32)                                  // 1: int, 4 bytes
        u32(0); u32(5 << 24 | 2); u32(8); u32(sPid); u32(1); u32(0); u32(sTgid); u32(1); u32(32)   // 2: union {pid; tgid@4}
        u32(sTask); u32(4 << 24 | 3); u32(40)
        u32(sState); u32(1); u32(0); u32(0); u32(2); u32(64); u32(sComm); u32(1); u32(128)        // 3: struct
        u32(sT); u32(8 << 24); u32(3)                                              // 4: typedef
        var b: [UInt8] = [0x9f, 0xeb, 1, 0]
        func h(_ v: Int) { for i in 0..<4 { b.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        h(24); h(0); h(types.count); h(types.count); h(strings.count)
        b += types + strings
        mutate(&b)
        return b
    }

    @Test func findsMembersThroughAnonymousUnions() throws {
        let btf = try BTF(bytes: Self.build())
        let task = try #require(btf.structID(named: "task_struct"))
        #expect(btf.memberOffset(structID: task, member: "pid") == 8)
        #expect(btf.memberOffset(structID: task, member: "tgid") == 12)
        #expect(btf.memberOffset(structID: task, member: "comm") == 16)
        #expect(btf.memberOffset(structID: task, member: "nothing") == nil)
        #expect(btf.typeCount == 4)
    }

    @Test func hostileBTFGetsAClearError() {
        #expect(throws: KernelDataError.self) { try BTF(bytes: Self.build { $0[0] = 0 }) }          // magic
        #expect(throws: KernelDataError.self) { try BTF(bytes: Self.build { $0[12] = 0xff; $0[13] = 0xff }) }  // type section past the end
        #expect(throws: KernelDataError.self) { try BTF(bytes: Self.build { $0[24 + 7] = 0x1f }) }  // unknown kind 31
        #expect(throws: KernelDataError.self) { try BTF(bytes: Self.build { $0[24 + 16 + 4] = 0xff }) }  // union vlen 255 runs past
        #expect(throws: KernelDataError.self) { try BTF(bytes: Array(Self.build().prefix(20))) }
    }

    @Test func typeLoopsAndDeepNestingEnd() throws {
        // typedef 4 → 4: resolving it must end.
        let loop = try BTF(bytes: Self.build { b in let at = 24 + 16 + 36 + 48; b[at + 8] = 4 })
        #expect(loop.memberOffset(structID: 4, member: "pid") == nil)
        // The union's members point back at the union (type 2 → 2): the depth bound ends it.
        let cycle = try BTF(bytes: Self.build { b in b[24 + 16 + 12 + 4] = 2; b[24 + 16 + 12 + 16] = 2 })
        #expect(cycle.memberOffset(structID: 2, member: "nothing") == nil)
    }
}

/// 6.4's `struct module` keeps its text in `mem[MOD_TEXT]`, an array of structs: a member
/// path goes through the array to its first element (`mem.base` is `mem[0].base`).
struct BTFArrayPathTests {
    @Test func memberPathsGoThroughArrays() throws {
        var strings: [UInt8] = [0]
        func str(_ s: String) -> UInt32 { let o = UInt32(strings.count); strings += Array(s.utf8) + [0]; return o }
        let sInt = str("int"), sMM = str("module_memory"), sBase = str("base"), sSize = str("size"), sModule = str("module"),
            sName = str("name"), sMem = str("mem")
        var types: [UInt8] = []
        func u32(_ v: UInt32) { for i in 0..<4 { types.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
        u32(sInt); u32(1 << 24); u32(4); u32(32)                                                // 1: int
        u32(sMM); u32(4 << 24 | 2); u32(8); u32(sBase); u32(1); u32(0); u32(sSize); u32(1); u32(32)  // 2: struct module_memory {base; size@4}
        u32(0); u32(3 << 24); u32(0); u32(2); u32(1); u32(7)                                    // 3: module_memory[7]
        u32(sModule); u32(4 << 24 | 2); u32(64); u32(sName); u32(1); u32(0); u32(sMem); u32(3); u32(64)  // 4: struct module {name; mem@8}
        var b: [UInt8] = [0x9f, 0xeb, 1, 0]
        func h(_ v: Int) { for i in 0..<4 { b.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        h(24); h(0); h(types.count); h(types.count); h(strings.count)
        b += types + strings
        let btf = try BTF(bytes: b)
        #expect(btf.offset(of: "mem.base", in: "module") == 8)
        #expect(btf.offset(of: "mem.size", in: "module") == 12)
        #expect(btf.offset(of: "mem", in: "module") == 8)
        #expect(btf.offset(of: "mem.nothing", in: "module") == nil)
        #expect(btf.offset(of: "name.base", in: "module") == nil)      // an int has no members
        #expect(btf.arrayShape(of: "mem", in: "module").map { [$0.count, $0.stride] } == [7, 8])
        #expect(btf.arrayShape(of: "name", in: "module") == nil)
    }
}
