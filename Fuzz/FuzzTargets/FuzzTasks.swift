import GuestKernel
import VCPUContext

/// A made-up kernel's types for the task and module walks: the fuzzer varies memory, not
/// the layout (a layout comes from BTF, which has its own target). `Seeds.taskRing` lays
/// out a small real-shaped ring with it.
struct FuzzTypes: KernelTypes {
    var source: String { "fuzz types" }
    static let sizes = ["task_struct": 256, "inactive_task_frame": 56, "pt_regs": 168, "module": 128, "mod_kallsyms": 24]
    static let offsets: [String: [String: Int]] = [
        "task_struct": ["tasks": 0, "pid": 16, "tgid": 20, "comm": 32, "__state": 48, "real_parent": 56, "thread_group": 64,
                        "stack": 80, "thread.sp": 88, "exit_state": 96, "cpu": 100, "on_cpu": 104, "flags": 108],
        "inactive_task_frame": ["bp": 40, "ret_addr": 48],
        "pt_regs": ["ip": 128, "cs": 136, "flags": 144, "sp": 152, "ss": 160],
        "module": ["list": 8, "name": 24, "core_layout.base": 80, "core_layout.size": 88, "core_layout.text_size": 92, "kallsyms": 96,
                   "arch.orc_unwind_ip": 104, "arch.orc_unwind": 112, "arch.num_orcs": 120],
        "mod_kallsyms": ["symtab": 0, "num_symtab": 8, "strtab": 16],
    ]
    func size(of s: String) -> Int? { Self.sizes[s] }
    func offset(of path: String, in s: String) -> Int? { Self.offsets[s]?[path] }
    static func at(_ s: String, _ path: String) -> Int { offsets[s]![path]! }
}

extension FuzzTargets {
    /// The task list and module list walks, switched-out contexts and user entries over
    /// memory from the input; the header places init_task and the module list head.
    static func tasks(_ data: UnsafeRawBufferPointer) {
        var h = FuzzHeader(data)
        let wordSize = h.u8() & 1 == 0 ? 8 : 4
        // 4-byte words take 32-bit x86's paths too (its user-entry padding and stack size).
        let architecture: GuestArchitecture = wordSize == 8 ? .x86_64 : .x86_32
        let initTask = base &+ UInt64(h.u32() & 0x3_ffff)
        let modules = base &+ UInt64(h.u32() & 0x3_ffff)
        let memory = FuzzMemory(h.rest, firstFrame: base >> 12)
        let reader = KernelReader(memory: GuestMemory(frames: memory, translation: .identity), wordSize: wordSize)
        guard let layout = try? TaskLayout(types: FuzzTypes(), architecture: architecture, how: "fuzz"),
              let moduleLayout = try? ModuleLayout(types: FuzzTypes()) else { return }
        if case .success(let list) = TaskList.walk(reader: reader, layout: layout, initTask: initTask, idleTasks: [initTask &+ 0x100], maxTasks: 512) {
            for t in list.tasks.prefix(64) {
                _ = try? t.savedContext(reader: reader, layout: layout)
                _ = t.userEntry(reader: reader, layout: layout, architecture: architecture)
            }
        }
        _ = ModuleList.walk(reader: reader, layout: moduleLayout, head: modules)
    }
}

extension Seeds {
    /// A small task ring (init_task, init, a two-thread process) and one module with two
    /// function symbols, laid out with `FuzzTypes`: the shapes the walks meet in a guest.
    static func taskRing() -> [UInt8] {
        let base = FuzzTargets.base
        var mem = [UInt8](repeating: 0, count: 3 * 4096)
        func put(_ o: Int, _ v: UInt64, _ n: Int = 8) { for i in 0..<n { mem[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        func t(_ s: String) -> Int { FuzzTypes.at("task_struct", s) }
        let tasks = [(0x000, 0, "swapper/0", 0x200), (0x200, 1, "init", 0x400), (0x400, 7, "worker", 0x000), (0x600, 8, "worker", 0x000)]
        for (o, pid, comm, next) in tasks {
            put(o + t("tasks"), base + UInt64(next) + UInt64(t("tasks")))
            put(o + t("pid"), UInt64(pid), 4); put(o + t("tgid"), UInt64(pid == 8 ? 7 : pid), 4)
            for (i, c) in comm.utf8.enumerated() { mem[o + t("comm") + i] = c }
            put(o + t("__state"), 1, 4)
            put(o + t("real_parent"), base)
            put(o + t("stack"), base + 0x1000)
            put(o + t("thread.sp"), base + 0x1800)
        }
        // threads 7 and 8 share a group; the others are alone in theirs.
        for (o, g) in [(0x000, 0x000), (0x200, 0x200), (0x400, 0x600), (0x600, 0x400)] { put(o + t("thread_group"), base + UInt64(g + t("thread_group"))) }
        put(0x1800 + 48, base + 0x2000)       // inactive_task_frame.ret_addr
        // the module list head at 0x800, one module at 0x900
        func m(_ s: String) -> Int { FuzzTypes.at("module", s) }
        put(0x800, base + 0x900 + UInt64(m("list")))
        put(0x900 + m("list"), base + 0x800)
        for (i, c) in "rfkill".utf8.enumerated() { mem[0x900 + m("name") + i] = c }
        put(0x900 + m("core_layout.base"), base + 0x2000); put(0x900 + m("core_layout.size"), 0x1000, 4); put(0x900 + m("core_layout.text_size"), 0x800, 4)
        put(0x900 + m("kallsyms"), base + 0xa00)
        put(0xa00, base + 0xb00); put(0xa08, 2, 4); put(0xa10, base + 0xc00)
        for (i, (name, value)) in [(1, 0x2010), (13, 0x2100)].enumerated() {
            put(0xb00 + 24 * i, UInt64(name), 4); mem[0xb00 + 24 * i + 4] = 0x12; put(0xb00 + 24 * i + 8, base + UInt64(value))
        }
        for (i, c) in "\0rfkill_read\0rfkill_poll\0".utf8.enumerated() { mem[0xc00 + i] = c }
        return [0, 0, 0, 0, 0, 0, 0x08, 0, 0] + mem
    }
}
