import Foundation
@testable import FuzzTargets
import GuestKernel
import Testing
import VCPUContext

/// The fuzz harness on every build: seeds cut from the real cases, and each target run
/// over its seeds (what `Scripts/fuzz.sh` starts from, and a guard that the harness works).
@Suite(.serialized)
struct FuzzSeedTests {
    @Test func everyTargetRunsOverSeedsFromRealCases() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-seeds-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cores = try ["x86-run1-lab-crash", "arm-full-a64-crash", "arm-full-a32-crash"].map { try Corpus.corePath(Corpus.named($0)) }
        let maps = try ["x86-run1-lab-crash", "arm-full-a64-crash"].map { try Corpus.mapPath(Corpus.named($0)) }
        let written = try Seeds.make(cores: cores, maps: maps, into: dir)
        #expect(written >= 20)
        for target in FuzzTargets.names {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/\(target)")) ?? []
            #expect(!files.isEmpty, "no seeds for \(target)")
            for f in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(target)/\(f)"))
                data.withUnsafeBytes { FuzzTargets.run(target, $0) }
            }
        }
        // The core seed is a real slice: the report it gives reads the same stack.
        let seed = "\(dir)/core/lab-crash.core"
        let r = try Tool.run(["--core", seed, "--unwind", "scan", "-l", "1"])
        #expect(r.stdout.contains("[<ffffffff81a442b5>] <--"))
    }
}

/// The locators target's seed is the shape it claims: in its lowmem, kallsyms is found by
/// its token table (the 300 symbols' tables laid out as 6.1's) and VMCOREINFO as text above.
struct FuzzLocatorSeedTests {
    @Test func locatorSeedHoldsWhatTheSearchesFind() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-locator-seeds-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Seeds.make(cores: [try Corpus.corePath(Corpus.named("arm-full-a32-crash"))], maps: [], into: dir)
        let seed = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/locators/a32-crash.core"))
        try seed.withUnsafeBytes { bytes in
            let lowmem = FuzzLowmem(bytes)
            let guest = Guest(description: GuestDescription(architecture: .arm32, isPV: false, layout: .arm(entrySize: 352), protectedMode: true, wordSize: 4, evidence: []),
                              vcpus: [], frames: lowmem, warnings: [], facts: [])
            let reader = KernelReader(memory: GuestMemory(frames: lowmem, translation: lowmem.translation), wordSize: 4)
            let info = try VMCoreInfoLocator.locate(guest: guest, reader: reader)
            #expect(info.address & 0xfff == 0 && info.address > 0xc000_1000 && info.info.osRelease == "6.1.0-50-armmp-lpae", "\(info)")
            let found = try KallsymsFinder.locate(guest: guest, reader: reader)
            #expect(found.tables.numSyms == 0xc000_0000 + 300 * 4 + 4, "\(found)")
        }
    }
}

/// The tasks target's seed is the shape it claims: a ring the walks read whole.
struct FuzzTaskSeedTests {
    @Test func taskRingSeedWalks() throws {
        let seed = Seeds.taskRing()
        let memory = seed.dropFirst(9).withUnsafeBytes { FuzzMemory($0, firstFrame: FuzzTargets.base >> 12) }
        let reader = KernelReader(memory: GuestMemory(frames: memory, translation: .identity), wordSize: 8)
        let layout = try TaskLayout(types: FuzzTypes(), architecture: .x86_64, how: "fuzz")
        let list = try TaskList.walk(reader: reader, layout: layout, initTask: FuzzTargets.base).get()
        #expect(list.tasks.map(\.pid) == [0, 1, 7, 8])
        #expect(list.problems.isEmpty)
        #expect(try list.tasks[1].savedContext(reader: reader, layout: layout).ip == FuzzTargets.base + 0x2000)
        let modules = ModuleList.walk(reader: reader, layout: try ModuleLayout(types: FuzzTypes()), head: FuzzTargets.base + 0x800)
        #expect(modules.modules.map(\.name) == ["rfkill"])
        #expect(modules.modules.first?.symbols.map(\.name) == ["rfkill_read", "rfkill_poll"])
        #expect(modules.problems.isEmpty)
    }

    /// Fuzzing finding (tasks target, Fuzz/regressions/tasks): a module whose base and size
    /// run past the top of the address space made its text range trap (upper < lower bound).
    /// The seed's module moved there: a problem named, no module, no trap.
    @Test func moduleRunningPastTheTopIsAProblem() throws {
        var seed = Seeds.taskRing()
        let at = 9 + 0x900 + FuzzTypes.at("module", "core_layout.base")
        for i in 0..<8 { seed[at + i] = UInt8(truncatingIfNeeded: UInt64(0xffff_ffff_ffff_f800) >> (8 * UInt64(i))) }
        let memory = seed.dropFirst(9).withUnsafeBytes { FuzzMemory($0, firstFrame: FuzzTargets.base >> 12) }
        let reader = KernelReader(memory: GuestMemory(frames: memory, translation: .identity), wordSize: 8)
        let modules = ModuleList.walk(reader: reader, layout: try ModuleLayout(types: FuzzTypes()), head: FuzzTargets.base + 0x800)
        #expect(modules.modules.isEmpty)
        #expect(modules.problems.contains { $0.contains("module rfkill has no readable or plausible base and size") }, "\(modules.problems)")
    }
}

/// Every input a fuzzing run found (Fuzz/regressions/TARGET/), replayed: each must return,
/// without hanging or trapping. The unwind one placed the ARM32 exception-index search at
/// an address above Int64.max, where converting it trapped (prel31 now wraps). The printk ones are rings whose garbage head and tail ids made the reader walk
/// 4 million unreadable descriptors, noting each (now: at most one pass from tail to head,
/// 2^20 descriptors, and 64 unreadable in a row end it). The tasks one is a module whose
/// base and size run past the top of the address space (its text range trapped).
struct FuzzRegressionTests {
    @Test func findingsStayFixed() throws {
        let root = Corpus.root.appendingPathComponent("Fuzz/regressions")
        var replayed = 0
        for target in try FileManager.default.contentsOfDirectory(atPath: root.path) {
            for f in try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(target).path) {
                let data = try Data(contentsOf: root.appendingPathComponent("\(target)/\(f)"))
                let clock = ContinuousClock()
                let t = clock.measure { data.withUnsafeBytes { FuzzTargets.run(target, $0) } }
                #expect(t < .seconds(10), "\(target)/\(f) took \(t): it hangs again")   // a hang guard, not a speed test
                replayed += 1
            }
        }
        #expect(replayed >= 3)
    }
}
