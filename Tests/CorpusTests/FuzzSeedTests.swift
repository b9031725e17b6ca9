import ELFSymbols
import Foundation
@testable import FuzzTargets
import GuestKernel
import Testing
import VCPUContext
import XenctxReport

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
            // Cut from the cases, or kept in the tree (Fuzz/seeds/TARGET, made by a script).
            let kept = Corpus.root.appendingPathComponent("Fuzz/seeds/\(target)").path
            let files = [dir + "/" + target, kept].flatMap { d in ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).map { "\(d)/\($0)" } }
            #expect(!files.isEmpty, "no seeds for \(target)")
            for f in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: f))
                data.withUnsafeBytes { FuzzTargets.run(target, $0) }
            }
        }
        // The core seed is a real slice: the report it gives reads the same stack.
        let seed = "\(dir)/core/lab-crash.core"
        let r = try Tool.run(["--core", seed, "--unwind", "scan", "-l", "1"])
        #expect(r.stdout.contains("[<ffffffff81a442b5>] <--"), "\(r.stderr)")
    }
}

/// The cfi target's seeds are what they claim: a CPU stopped in leaf() of a real x86_64
/// (.debug_frame and .eh_frame), aarch64 and ARMv7 build of Fuzz/cfi/cfi.c, whose stack
/// libdwfl's unwinder, fed through our bridge, walks back through middle() and outer() to
/// _start (Fuzz/cfi/make-seeds.py laid the stacks out from each build's CFI).
struct FuzzCFISeedTests {
    @Test(arguments: ["x86_64", "x86_64-eh", "aarch64", "armv7a"])
    func cfiSeedsUnwindToStart(_ name: String) throws {
        let seed = try Data(contentsOf: Corpus.root.appendingPathComponent("Fuzz/seeds/cfi/\(name).seed"))
        let bytes = [UInt8](seed)
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
        let count = Int(bytes[0]), registers = (0..<32).map { u64(1 + 8 * $0) }
        let pc = u64(257), stackAt = u64(265), stackLength = Int(bytes[273]) | Int(bytes[274]) << 8
        let stack = Array(bytes[275..<(275 + stackLength)]), image = Array(bytes[(275 + stackLength)...])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-cfi-\(name)-\(getpid()).elf").path
        try Data(image).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let elf = try ELFFile(path: path)
        let width = image[4] == 1 ? 4 : 8
        let (pcs, stop) = elf.unwindCFI(registers: Array(registers.prefix(count)), pc: pc, maxFrames: 16) { a in
            guard a >= stackAt, a - stackAt + UInt64(width) <= UInt64(stack.count) else { return nil }
            let o = Int(a - stackAt)
            return (0..<width).reduce(UInt64(0)) { $0 | UInt64(stack[o + $1]) << (8 * UInt64($1)) }
        }
        let map = try elf.symbolTable()
        let names = pcs.map { map.lookup($0)?.symbol.name ?? "?" }
        #expect(names.prefix(4) == ["leaf", "middle", "outer", "_start"], "\(name): \(pcs.map { String($0, radix: 16) }) \(names) stop: \(stop)")
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

/// The seeds of the printkring, layouts and kerneloffset targets are the shapes they claim:
/// each, decoded as its target decodes it, reads what the real guest holds.
struct FuzzSeedKernelTests {
    static func guest(_ name: String) throws -> (Guest, GuestKernel, KernelReader) {
        let guest = try Guest(core: XenCore(path: Corpus.corePath(Corpus.named(name))))
        return (guest, try #require(GuestKernel(guest: guest)), try #require(KernelReader(guest: guest)))
    }

    /// The ring's last six records where the kernel keeps them, read with VMCOREINFO's
    /// layout; the same log as the boot-time ring found by its shape, and as 5.4's log_buf.
    @Test(arguments: ["x86-run1-lab-crash", "arm-full-a64-crash", "arm-full-a32-crash"])
    func printkRingSeedsHoldTheRealRecords(_ name: String) throws {
        let (_, kernel, reader) = try Self.guest(name)
        let log = try kernel.log().get()
        let seed = try #require(Seeds.printkRingSeed(kernel: kernel, reader: reader))
        let ring = try seed.withUnsafeBytes { bytes in
            var h = FuzzHeader(bytes)
            let wordSize = h.u8() & 1 == 0 ? 8 : 4
            let info = try VMCoreInfo(text: Array(h.take(Int(h.u16()))))
            let memory = FuzzRegions(&h)
            return try PrintkRing.read(vmcoreinfo: info, reader: KernelReader(memory: GuestMemory(frames: memory, translation: .identity), wordSize: wordSize))
        }
        #expect(ring.records.map(\.text) == log.records.suffix(6).map(\.text))
        #expect(ring.skipped == 0)
        let found = try Seeds.staticRingSeed(log).withUnsafeBytes { bytes in
            let lowmem = FuzzLowmem(UnsafeRawBufferPointer(rebasing: bytes[3...]))
            let guest = Guest(description: FuzzTargets.description(.arm32), vcpus: [], frames: lowmem, warnings: [], facts: [])
            return try PrintkRing.locateStatic(guest: guest, reader: KernelReader(memory: GuestMemory(frames: lowmem, translation: lowmem.translation), wordSize: 4))
        }
        #expect(found.address == 0xc000_0000)
        #expect(found.log.records.map(\.text) == log.records.prefix(6).map { Array($0.text.prefix(200)) })
        for wrapped in [false, true] {
            let legacy = try Seeds.legacyLogSeed(log, osRelease: "5.4", wrapped: wrapped).withUnsafeBytes { bytes in
                var h = FuzzHeader(bytes)
                _ = h.u8()
                let info = try VMCoreInfo(text: Array(h.take(Int(h.u16()))))
                let memory = FuzzRegions(&h)
                return try LegacyLogBuffer.read(vmcoreinfo: info, reader: KernelReader(memory: GuestMemory(frames: memory, translation: .identity), wordSize: 8))
            }
            #expect(legacy.records.map(\.text) == log.records.prefix(6).map { Array($0.text.prefix(200)) }, "wrapped: \(wrapped)")
            #expect(legacy.notes.isEmpty, "wrapped: \(wrapped)")
        }
    }

    /// The BTF cut to the layouts' structs gives every architecture's task and module layout
    /// as the whole BTF does; the memory kept gives each vCPU's current task as the guest
    /// does, and a task ring from init_task that the walk reads whole.
    @Test(arguments: ["x86-run1-lab-crash", "arm-full-a64-crash", "x86-run10-pv612-crash-tasks", "arm-tasks612-a64-crash"])
    func layoutsSeedKeepsTheLayoutsAndTheTasks(_ name: String) throws {
        let (guest, kernel, reader) = try Self.guest(name)
        let own = try kernel.symbols().get()
        let whole = try BTF.locate(guest: guest, reader: reader, symbols: own.map.addresses(of: ["__start_BTF", "__stop_BTF", "_etext"])).btf
        let seed = try #require(Seeds.layoutsSeeds(guest: guest, kernel: kernel, reader: reader))
        try seed.withUnsafeBytes { bytes in
            let c = try #require(LayoutsCase(bytes))
            #expect(c.architecture == guest.description.architecture)
            #expect(c.btf.typeCount * 100 < whole.typeCount, "\(c.btf.typeCount) of \(whole.typeCount) types kept")
            for a in FuzzTargets.architectures {
                let (cut, full) = (try TaskLayout(types: c.btf, architecture: a, how: ""), try TaskLayout(types: whole, architecture: a, how: ""))
                #expect(cut == full, "\(a): \(cut) differs from \(full)")
            }
            #expect(try ModuleLayout(types: c.btf) == ModuleLayout(types: whole))
            let layout = try #require(c.layout)
            let real = CurrentTask.all(guest: guest, reader: reader, layout: try TaskLayout(types: whole, architecture: c.architecture, how: ""),
                                       symbols: own.map, absolute: own.absolute)
            let cut = CurrentTask.all(guest: c.guest, reader: c.reader, layout: layout, symbols: c.symbols, absolute: c.absolute)
            for id in real.keys { #expect(try cut[id]?.get().address == real[id]?.get().address, "vcpu\(id)") }
            let list = try TaskList.walk(reader: c.reader, layout: layout, initTask: c.initTask, maxTasks: 64).get()
            #expect(list.tasks.first?.pid == 0 && list.tasks.count >= 4, "\(list.tasks.map(\.comm))")
            #expect(list.problems.isEmpty, "\(list.problems)")
        }
    }

    /// The 32-bit seeds (written BTF): the ring, init's switch frame and user entry, the
    /// current task (ARM32: by the stack holding SP_svc; x86_32: per-CPU current_task), a module.
    @Test(arguments: [GuestArchitecture.arm32, .x86_32])
    func layouts32SeedsWalk(_ a: GuestArchitecture) throws {
        try Seeds.layouts32(a).withUnsafeBytes { bytes in
            let c = try #require(LayoutsCase(bytes))
            let layout = try #require(c.layout)
            #expect(c.architecture == a)
            let list = try TaskList.walk(reader: c.reader, layout: layout, initTask: c.initTask).get()
            #expect(list.tasks.map(\.comm) == ["swapper/0", "init"])
            #expect(list.problems.isEmpty, "\(list.problems)")
            #expect((layout.threadGroup == nil) == (a == .x86_32) && (layout.threadNode != nil) == (a == .x86_32))
            #expect(try list.tasks[1].savedContext(reader: c.reader, layout: layout).ip == 0xc010_0040)
            #expect(list.tasks[1].userEntry(reader: c.reader, layout: layout, architecture: a) != nil)
            let current = CurrentTask.all(guest: c.guest, reader: c.reader, layout: layout, symbols: c.symbols, absolute: c.absolute)
            #expect(try current[0]?.get().comm == "init")
            let modules = ModuleList.walk(reader: c.reader, layout: try #require(c.moduleLayout), head: c.modules)
            #expect(modules.modules.first?.symbols.map(\.name) == ["rfkill_read", "rfkill_poll"])
        }
    }

    /// Each kerneloffset seed finds the offset it claims (VMCOREINFO's symbols; linux_banner
    /// in place; linux_banner 16 MiB up), and its report names the real trace's frames.
    @Test func kernelOffsetSeedsFindTheirOffsets() throws {
        let (guest, kernel, reader) = try Self.guest("x86-run1-lab-crash")
        let seeds = Seeds.kernelOffsetSeeds(guest: guest, kernel: kernel, reader: reader, maps: [try Corpus.mapPath(Corpus.named("x86-run1-lab-crash"))])
        #expect(seeds.map(\.0) == ["6.1.0-56-amd64.System.map-m-d", "6.1.0-56-amd64.System.map-banner-all", "6.1.0-56-amd64.System.map-kaslr"])
        for (name, seed) in seeds {
            try seed.withUnsafeBytes { bytes in
                let c = KernelOffsetCase(bytes)
                let offset = try #require(c.offset())
                guard case .verified(let found, let evidence) = offset.finding else { Issue.record("\(name): \(offset.describe)"); return }
                #expect(found == (name.hasSuffix("kaslr") ? 16 << 20 : 0), "\(name): \(offset.describe)")
                #expect(evidence.contains(name.hasSuffix("m-d") ? "symbols VMCOREINFO names agree" : "linux_banner"), "\(name): \(evidence)")
                let out = try c.report(offset: offset).renderAll()
                #expect(out.text.contains("panic+0x286"), "\(name): \(out.text)")
            }
        }
    }
}

/// Every input a fuzzing run found (Fuzz/regressions/TARGET/), replayed: each must return,
/// without hanging or trapping. The unwind one placed the ARM32 exception-index search at
/// an address above Int64.max, where converting it trapped (prel31 now wraps). The printk ones are rings whose garbage head and tail ids made the reader walk
/// 4 million unreadable descriptors, noting each (now: at most one pass from tail to head,
/// 2^20 descriptors, and 64 unreadable in a row end it). The tasks one is a module whose
/// base and size run past the top of the address space (its text range trapped).
struct FuzzRegressionTests {
    /// The built xenctx-fuzz (beside xenctx-swift): each input is replayed in a process of
    /// its own, so one that traps or hangs again fails this test with its name instead of
    /// taking the whole test run down with it (or holding it forever).
    static let replayer: URL? = {
        let url = Tool.binary.deletingLastPathComponent().appendingPathComponent("xenctx-fuzz")
        return FileManager.default.isExecutableFile(atPath: url.path) ? url : nil
    }()

    @Test func findingsStayFixed() throws {
        let root = Corpus.root.appendingPathComponent("Fuzz/regressions")
        var replayed = 0
        for target in try FileManager.default.contentsOfDirectory(atPath: root.path) {
            for f in try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(target).path) {
                let path = root.appendingPathComponent("\(target)/\(f)")
                let clock = ContinuousClock()
                if let replayer = Self.replayer {
                    let p = Process()
                    p.executableURL = replayer
                    p.arguments = [target, "--replay", path.path]
                    p.standardOutput = FileHandle.nullDevice
                    p.standardError = FileHandle.nullDevice
                    let start = clock.now
                    try p.run()
                    let pid = p.processIdentifier
                    let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
                    DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: watchdog)
                    p.waitUntilExit()
                    watchdog.cancel()
                    let t = clock.now - start
                    let returned = p.terminationReason == .exit && p.terminationStatus == 0
                    #expect(returned, "\(target)/\(f): the replay \(p.terminationStatus == SIGKILL ? "hung (killed after 30 s)" : "ended with status \(p.terminationStatus) (\(p.terminationReason == .uncaughtSignal ? "signal" : "exit"))")")
                    if returned { #expect(t < .seconds(10), "\(target)/\(f) took \(t): it hangs again") }   // a hang guard, not a speed test
                } else {
                    let data = try Data(contentsOf: path)
                    let t = clock.measure { data.withUnsafeBytes { FuzzTargets.run(target, $0) } }
                    #expect(t < .seconds(10), "\(target)/\(f) took \(t): it hangs again")
                }
                replayed += 1
            }
        }
        #expect(replayed >= 3)
    }
}
