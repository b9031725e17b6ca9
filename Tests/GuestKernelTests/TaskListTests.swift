@testable import GuestKernel
import Testing
import VCPUContext

/// The task walk over hostile memory: it ends, says where, and keeps what it read.
struct TaskListTests {
    /// A made-up task_struct: tasks at +0, pid +16, tgid +20, comm +32, state +48,
    /// real_parent +56, thread_group +64.
    struct Types: KernelTypes {
        var source: String { "test types" }
        func size(of s: String) -> Int? { s == "task_struct" ? 128 : nil }
        func offset(of path: String, in s: String) -> Int? {
            guard s == "task_struct" else { return nil }
            return ["tasks": 0, "pid": 16, "tgid": 20, "comm": 32, "__state": 48, "real_parent": 56, "thread_group": 64][path]
        }
    }

    static let base: UInt64 = 0x10_0000
    func task(_ m: TestMemory, _ i: Int, pid: UInt32, next: Int, thread: Int? = nil, comm: String = "t") {
        let a = Self.base + UInt64(i) * 0x100
        m.write64(a, Self.base + UInt64(next) * 0x100)
        m.write32(a + 16, pid); m.write32(a + 20, pid)
        m.write(a + 32, Array(comm.utf8) + [0])
        m.write32(a + 48, 1)
        m.write64(a + 56, Self.base)
        m.write64(a + 64, (thread.map { Self.base + UInt64($0) * 0x100 } ?? a) + 64)
    }

    func layout() throws -> TaskLayout { try TaskLayout(types: Types(), architecture: .x86_64, how: "test") }

    @Test func wholeRing() throws {
        let m = TestMemory()
        task(m, 0, pid: 0, next: 1, comm: "swapper/0")
        task(m, 1, pid: 1, next: 2, comm: "init")
        task(m, 2, pid: 2, next: 0, comm: "kthreadd")
        let list = try TaskList.walk(reader: m.reader(), layout: layout(), initTask: Self.base).get()
        #expect(list.tasks.map(\.pid) == [0, 1, 2])
        #expect(list.tasks.map(\.comm) == ["swapper/0", "init", "kthreadd"])
        #expect(list.tasks.allSatisfy { $0.state == "S" && $0.ppid == 0 })
        #expect(list.problems.isEmpty)
    }

    @Test func cycleThatMissesInitTask() throws {
        let m = TestMemory()
        task(m, 0, pid: 0, next: 1)
        task(m, 1, pid: 1, next: 2)
        task(m, 2, pid: 2, next: 1)   // loops back to 1, never to init_task
        let list = try TaskList.walk(reader: m.reader(), layout: layout(), initTask: Self.base).get()
        #expect(list.tasks.map(\.pid) == [0, 1, 2])
        #expect(list.problems.contains { $0.contains("loops back") })
    }

    @Test func threadGroupLoopAndBadPointers() throws {
        let m = TestMemory()
        task(m, 0, pid: 0, next: 1)
        task(m, 1, pid: 1, next: 9, thread: 3)     // threads 3 → 4 → 3: never back to 1
        task(m, 3, pid: 3, next: 0, thread: 4)
        task(m, 4, pid: 4, next: 0, thread: 3)
        // entry 9 is not a task (nothing there): the walk stops with what it has
        let list = try TaskList.walk(reader: m.reader(), layout: layout(), initTask: Self.base).get()
        #expect(list.tasks.map(\.pid) == [0, 1, 3, 4])
        #expect(list.problems.contains { $0.contains("loop") })
        #expect(list.problems.contains { $0.contains("unreadable") || $0.contains("does not hold a task") })
    }

    /// An entry whose next points to itself ended the walk without a word (5 of 63 tasks
    /// listed, exit 0): it is a problem, and so is a list shorter than the kernel's count.
    @Test func aSelfPointerAndAShortListAreProblems() throws {
        let m = TestMemory()
        task(m, 0, pid: 0, next: 1)
        task(m, 1, pid: 1, next: 1)   // points to itself: 2 is never reached
        task(m, 2, pid: 2, next: 0)
        let list = try TaskList.walk(reader: m.reader(), layout: layout(), initTask: Self.base, threadCount: 2).get()
        #expect(list.tasks.map(\.pid) == [0, 1])
        #expect(list.problems.contains { $0.contains("points to itself") }, "\(list.problems)")
        task(m, 1, pid: 1, next: 0)   // init_task -> 1 -> init_task: whole, but the kernel counts 2
        let short = try TaskList.walk(reader: m.reader(), layout: layout(), initTask: Self.base, threadCount: 2).get()
        #expect(short.tasks.map(\.pid) == [0, 1])
        #expect(short.problems == ["the kernel counts 2 threads (nr_threads), the task lists hold 1: a list is cut or was changing"])
        let whole = try TaskList.walk(reader: m.reader(), layout: layout(), initTask: Self.base, threadCount: 1).get()
        #expect(whole.problems.isEmpty)
    }

    @Test func garbageIsNotATask() throws {
        let m = TestMemory()
        m.write(Self.base, [UInt8](repeating: 0xff, count: 128))
        #expect(throws: KernelDataError.self) { try TaskList.walk(reader: m.reader(), layout: layout(), initTask: Self.base).get() }
        #expect(throws: KernelDataError.self) { try TaskList.walk(reader: m.reader(), layout: layout(), initTask: 0xdead_0000).get() }
    }

    @Test func bounded() throws {
        let m = TestMemory()
        for i in 0..<40 { task(m, i, pid: UInt32(i), next: i + 1) }
        task(m, 40, pid: 40, next: 0)
        let list = try TaskList.walk(reader: m.reader(), layout: layout(), initTask: Self.base, maxTasks: 10).get()
        #expect(list.tasks.count == 10)
        #expect(list.problems.contains("stopped after 10 tasks"))
    }

    @Test func stateLetters() {
        #expect(KernelTask.stateLetter(state: 0, exitState: 0) == "R")
        #expect(KernelTask.stateLetter(state: 1, exitState: 0) == "S")
        #expect(KernelTask.stateLetter(state: 2, exitState: 0) == "D")
        #expect(KernelTask.stateLetter(state: 0x402, exitState: 0) == "I")
        #expect(KernelTask.stateLetter(state: 4, exitState: 0) == "T")
        #expect(KernelTask.stateLetter(state: 0, exitState: 0x20) == "Z")
        #expect(KernelTask.stateLetter(state: 0x1000, exitState: 0) == "D")
    }
}
