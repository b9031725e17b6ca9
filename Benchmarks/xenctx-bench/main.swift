// Prints timings of the operations an outage depends on. Run through Benchmarks/run.sh,
// which builds in release mode and prepares the inputs. Figures are medians.
import Foundation   // String(format:) for the figures
import ELFSymbols
import GuestKernel
import Symbols
import VCPUContext
import XenctxReport
#if canImport(Glibc)
import Glibc
#endif

func median(_ n: Int, _ body: () throws -> Void) rethrows -> Duration {
    var times: [Duration] = []
    let clock = ContinuousClock()
    for _ in 0..<n { times.append(try clock.measure(body)) }
    return times.sorted()[n / 2]
}

/// The median wall time (ms) and the largest max RSS (KiB) of `runs` runs of a command,
/// its output discarded.
func timeCommand(_ command: [String], runs: Int, rss measureRSS: Bool = true) -> (Double, Int) {
    // GNU time measures the child's own peak RSS (a spawned child's rusage would carry
    // this process's, which has just written a 64 GiB core's index).
    let rssFile = "/tmp/xenctx-bench-rss.txt"
    // (Without it, the command's own time alone: no wrapper process to start.)
    let argv = measureRSS && access("/usr/bin/time", X_OK) == 0 ? ["/usr/bin/time", "-f", "%M", "-o", rssFile] + command : command
    var times: [Double] = []
    var rss = 0
    for _ in 0..<runs {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var cargs = argv.map { strdup($0) } + [nil]
        let clock = ContinuousClock()
        let start = clock.now
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cargs, environ)
        guard rc == 0 else { print("posix_spawn \(argv[0]): \(String(cString: strerror(rc)))"); return (-1, 0) }
        var status: Int32 = 0
        var usage = rusage()
        wait4(pid, &status, 0, &usage)
        let d = clock.now - start
        // A failed command measures nothing (a path it cannot open ends at once).
        guard status == 0 else {
            print("\(command.joined(separator: " ")): exit status \(status >> 8): not timed")
            for p in cargs { free(p) }
            posix_spawn_file_actions_destroy(&actions)
            return (-1, 0)
        }
        times.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
        if let text = try? String(contentsOfFile: rssFile, encoding: .utf8), let kb = Int(text.split(separator: "\n").last ?? "") {
            rss = max(rss, kb)
        } else {
            rss = max(rss, usage.ru_maxrss)
        }
        for p in cargs { free(p) }
        posix_spawn_file_actions_destroy(&actions)
    }
    times.sort()
    return (times[times.count / 2], rss)
}

/// Reads the first two numbers of /proc/self/statm.
func vfscanf_wrapper(_ f: UnsafeMutablePointer<FILE>, _ a: UnsafeMutablePointer<Int>, _ b: UnsafeMutablePointer<Int>) -> Int32 {
    var line = [CChar](repeating: 0, count: 256)
    guard fgets(&line, 256, f) != nil else { return 0 }
    let parts = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: " ")
    guard parts.count >= 2, let x = Int(parts[0]), let y = Int(parts[1]) else { return 0 }
    a.pointee = x; b.pointee = y
    return 2
}

/// `count` machine frames from 0x1000_0000 in the order a p2m of `shape` holds them: 0 one
/// long run; 8 runs of 8 with a gap after each, descending; N > 0 otherwise runs of 1...N
/// frames (N = 1: single frames) shuffled (splitmix64, fixed seed: the same core each time).
func extraMachineFrames(_ count: Int, shape: Int) -> [UInt64] {
    let base: UInt64 = 0x1000_0000
    if shape == 0 { return (0..<UInt64(count)).map { base + $0 } }
    if shape == 8 {
        let runs = UInt64((count + 7) / 8)
        return (0..<UInt64(count)).map { base + (runs - 1 - $0 / 8) * 9 + $0 % 8 }
    }
    var seed: UInt64 = 29
    func next() -> UInt64 {
        seed &+= 0x9e37_79b9_7f4a_7c15
        var z = seed
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    var runs: [(start: UInt64, length: UInt64)] = []
    var at: UInt64 = 0
    while at < UInt64(count) {
        let length = min(UInt64(count) - at, 1 + next() % UInt64(shape))
        runs.append((at, length)); at += length
    }
    for i in stride(from: runs.count - 1, to: 0, by: -1) { runs.swapAt(i, Int(next() % UInt64(i + 1))) }
    var out: [UInt64] = []
    out.reserveCapacity(count)
    for r in runs { for k in 0..<r.length { out.append(base + r.start + k) } }
    return out
}

func ms(_ d: Duration) -> String {
    let v = Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15
    return v < 1 ? "\((v * 1000).rounded() / 1000) ms" : "\((v * 100).rounded() / 100) ms"
}

/// A sparse core of `pages` guest pages: headers, contexts and index written, pages left as holes.
func sparseCore(pages: Int, path: String) throws {
    unlink(path)
    let writer = DumpCoreWriter(machine: XenCoreLayout.emARM, magic: XenCoreLayout.magicHVM, entrySize: 352,
                                contexts: [[UInt8](repeating: 0, count: 352)],
                                frames: (0..<pages).map { (pfn: 0x40000 + UInt64($0), gmfn: 0) })
    try writer.write(to: path) { _ in nil }
}

let args = CommandLine.arguments.dropFirst()
switch args.first {
case "open":
    for (label, pages) in [("128 MiB", 32768), ("4 GiB", 1 << 20)] {
        let path = "/tmp/xenctx-bench-\(pages).core"
        try sparseCore(pages: pages, path: path)
        let t = try median(101) { _ = try Guest(core: XenCore(path: path)) }
        let first = try median(11) {
            let g = try Guest(core: XenCore(path: path))
            _ = g.frames?.page(0x40000 + UInt64(pages) - 1)
        }
        print("open core (\(label), sparse): \(ms(t)) median of 101; open + first page lookup: \(ms(first))")
        unlink(path)
    }
case "map":
    guard let path = args.dropFirst().first else { print("usage: xenctx-bench map SYSTEM.MAP"); exit(64) }
    // Resident memory of one loaded map against the file's size (statm: pages resident).
    func resident() -> Int {
        guard let f = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(f) }
        var size = 0, rss = 0
        _ = withUnsafeMutablePointer(to: &size) { s in withUnsafeMutablePointer(to: &rss) { r in vfscanf_wrapper(f, s, r) } }
        return rss * 4096
    }
    // One load first, dropped: the parser's code pages are not the map's memory.
    _ = try SystemMap.load(path: path)
    let before = resident()
    let kept = try SystemMap.load(path: path)
    let after = resident()
    var st = stat()
    stat(path, &st)
    print("load System.map: resident +\(String(format: "%.1f", Double(after - before) / 1_048_576)) MiB for a \(String(format: "%.1f", Double(st.st_size) / 1_048_576)) MiB file (\(String(format: "%.2f", Double(after - before) / Double(st.st_size)))x); \(kept.symbols.count) symbols")
    var count = 0
    let t = try median(21) { count = try SystemMap.load(path: path).symbols.count }
    print("load System.map (\(count) symbols): \(ms(t)) median of 21")
    // Issue #11's yardstick: merely reading and splitting the file once, as awk does (its
    // whole run, start-up included), side by side.
    // Interleaved, one of each in turn: this VM's speed drifts between seconds.
    if access("/usr/bin/awk", X_OK) == 0 {
        var ours: [Double] = [], awk: [Double] = []
        for _ in 0..<21 {
            let one = try median(1) { _ = try SystemMap.load(path: path) }
            ours.append(Double(one.components.seconds) * 1e3 + Double(one.components.attoseconds) / 1e15)
            awk.append(timeCommand(["/usr/bin/awk", "{n++} END {print n}", path], runs: 1, rss: false).0)
        }
        ours.sort(); awk.sort()
        let (o, a) = (ours[10], awk[10])
        print("  interleaved with awk reading and splitting it once (its whole run), medians of 21: \(String(format: "%.2f", o)) vs \(String(format: "%.2f", a)) ms: \(String(format: "%.2f", o / a))x awk's")
    }
    // Unsorted input (kallsyms with modules): eight copies of the map, each moved by its own
    // offset and named as a module, once in address order and once with the lines shuffled.
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
    var eight: [String] = []
    for copy in 0..<8 {
        for line in lines {
            let f = line.split(separator: " ", maxSplits: 2)
            guard f.count == 3, let a = UInt64(f[0], radix: 16) else { continue }
            eight.append(String(format: "%016llx", a &+ UInt64(copy) << 36) + " \(f[1]) \(f[2])\t[copy\(copy)]")
        }
    }
    var rng = SystemRandomNumberGenerator()
    let shuffled = eight.shuffled(using: &rng)
    let sortedPath = "/tmp/xenctx-bench-map8-sorted", shuffledPath = "/tmp/xenctx-bench-map8-shuffled"
    try (eight.joined(separator: "\n") + "\n").write(toFile: sortedPath, atomically: true, encoding: .utf8)
    try (shuffled.joined(separator: "\n") + "\n").write(toFile: shuffledPath, atomically: true, encoding: .utf8)
    let tSorted = try median(11) { _ = try SystemMap.load(path: sortedPath) }
    let tShuffled = try median(11) { _ = try SystemMap.load(path: shuffledPath) }
    print("load the same map 8 times over with [module] suffixes (\(eight.count) symbols): in order \(ms(tSorted)), shuffled \(ms(tShuffled)) (\(String(format: "%.2f", tShuffled / tSorted))x), medians of 11")
    unlink(sortedPath); unlink(shuffledPath)
case "vmlinux":
    // --vmlinux's symbol table: the ELF's .symtab as a System.map-style table, in-process.
    guard let path = args.dropFirst().first else { print("usage: xenctx-bench vmlinux VMLINUX"); exit(64) }
    var count = 0
    let tOpen = try median(11) { _ = try ELFFile(path: path) }
    let tTable = try median(11) { let elf = try ELFFile(path: path); count = try elf.symbolTable().symbols.count }
    print("open vmlinux: \(ms(tOpen)); open and build its symbol table (\(count) symbols): \(ms(tTable)) (medians of 11)")
case "report":
    let rest = Array(args.dropFirst())
    guard rest.count == 2 else { print("usage: xenctx-bench report CORE SYSTEM.MAP"); exit(64) }
    let map = try SystemMap.load(path: rest[1])
    var options = ReportOptions()
    options.symbols = map
    options.stackTrace = true
    options.allVCPUs = true
    var bytes = 0
    let t = try median(21) {
        let guest = try Guest(core: XenCore(path: rest[0]))
        bytes = try Report(guest: guest, options: options).renderAll().text.utf8.count
    }
    print("full -s MAP -S -C report on \(rest[0].split(separator: "/").last!) (System.map preloaded, \(bytes) bytes out): \(ms(t)) median of 21")
case "kernel":
    // What the guest says about itself, phase by phase, on a real core.
    guard let path = args.dropFirst().first else { print("usage: xenctx-bench kernel CORE"); exit(64) }
    let guest = try Guest(core: XenCore(path: path))
    guard let reader = KernelReader(guest: guest) else { print("no guest memory"); exit(1) }
    _ = guest.frames?.page(0)   // build the frame index first: its cost is the core's, not ours
    var located: LocatedVMCoreInfo? = nil
    let tLocate = median(21) { located = try? VMCoreInfoLocator.locate(guest: guest, reader: reader) }
    let name = path.split(separator: "/").last!
    if let located {
        print("\(name): find VMCOREINFO: \(ms(tLocate)) (\(located.pagesScanned) pages of the image window)")
    } else {
        print("\(name): no VMCOREINFO: search of the image window \(ms(tLocate))")
    }
    let tables = located.flatMap { Kallsyms.Tables(vmcoreinfo: $0.info) }
    let tFind = median(5) { _ = try? KallsymsFinder.locate(guest: guest, reader: reader) }
    print("\(name): find kallsyms by content (no VMCOREINFO needed): \(ms(tFind))")
    let found = try tables ?? KallsymsFinder.locate(guest: guest, reader: reader).tables
    var count = 0
    let tDecode = try median(11) { count = try Kallsyms.decode(tables: found, reader: reader, stext: located?.info.symbol("_stext")).count }
    print("\(name): decode kallsyms (\(count) symbols, names and addresses): \(ms(tDecode))")
    let decoded = try Kallsyms.decode(tables: found, reader: reader, stext: located?.info.symbol("_stext"))
    let tMap = try median(11) { _ = try SystemMap(addresses: decoded.addresses, types: decoded.types, nameBytes: decoded.nameBytes, nameEnds: decoded.nameEnds, path: "kallsyms") }
    print("\(name): build the symbol table from them: \(ms(tMap))")
    let kernel = GuestKernel(guest: guest)!
    let map = try? kernel.symbols().get().map
    var records = 0
    let tLog = median(11) { records = (try? kernel.log(symbols: map).get().records.count) ?? -1 }
    print("\(name): read the kernel log (\(records) records): \(ms(tLog))")
case "grow":
    // VMCOREINFO's search must not grow with RAM: the same guest in 4 GiB and 64 GiB cores
    // (the real pages, then sparse holes), timed after the core's frame index is built.
    guard let path = args.dropFirst().first else { print("usage: xenctx-bench grow CORE"); exit(64) }
    let core = try XenCore(path: path)
    let guest = try Guest(core: core)
    let frames = guest.frames as! CoreFrames
    let real = frames.slots()
    for (label, total) in [("as is", real.count), ("4 GiB", 1 << 20), ("64 GiB", 1 << 24)] where total >= real.count {
        let out = "/tmp/xenctx-bench-grow-\(total).core"
        var all = real.map { (pfn: $0.pfn, gmfn: $0.frame) }
        let lastPFN = real.map(\.pfn).max() ?? 0
        all += (0..<UInt64(total - real.count)).map { (pfn: lastPFN + 1 + $0, gmfn: core.isPV ? 0x1000_0000 + $0 : 0) }
        let writer = DumpCoreWriter(machine: core.machine, magic: core.isPV ? XenCoreLayout.magicPV : XenCoreLayout.magicHVM,
                                    entrySize: core.contextEntrySize, contexts: (0..<core.vcpuEntryCount).map { Array(core.contextBytes(entry: $0)!.bytes) },
                                    frames: all)
        try writer.write(to: out) { i in i < real.count ? Array(frames.page(slot: i)) : nil }
        let grown = try Guest(core: XenCore(path: out))
        let clock = ContinuousClock()
        let tIndex = clock.measure { _ = grown.frames?.page(0) }
        let reader = KernelReader(guest: grown)!
        var pages = 0
        let t = median(11) { pages = (try? VMCoreInfoLocator.locate(guest: grown, reader: reader).pagesScanned) ?? -1 }
        print("\(path.split(separator: "/").last!) \(label) (\(total) pages): find VMCOREINFO \(ms(t)) (\(pages) pages searched); first page lookup, which builds the core's frame index: \(ms(tIndex))")
        unlink(out)
    }
case "frames":
    // Issue #11's rows: the whole `-C` command on a real core and on the same guest grown to
    // 4 GiB and 64 GiB (the real pages, then sparse holes), PV with its p2m in long runs or
    // fragmented into ~2M short runs out of order; the report reads the real pages only.
    let list = Array(args)
    guard list.count >= 3 else { print("usage: xenctx-bench frames XENCTX-SWIFT CORE..."); exit(64) }
    let tool = list[1]
    for path in list.dropFirst(2) {
        let core = try XenCore(path: path)
        let frames = try Guest(core: core).frames as! CoreFrames
        let real = frames.slots()
        let name = path.split(separator: "/").last!
        // Shapes of the extra p2m: 0 one long run; 8 runs of 8 with gaps, descending; 16 and 1
        // runs of 1...16 frames (or single frames) in a shuffled order (issue #29's shapes).
        var rows: [(String, Int, Int)] = [("as is", real.count, 0), ("4 GiB", 1 << 20, 0), ("64 GiB", 1 << 24, 0)]
        if core.isPV {
            rows.append(("64 GiB, p2m in ~2M short runs", 1 << 24, 8))
            rows.append(("64 GiB, p2m in shuffled runs of 1-16", 1 << 24, 16))
            rows.append(("64 GiB, p2m of single frames, shuffled", 1 << 24, 1))
        }
        var baseline: Double? = nil
        for (label, total, shape) in rows where total >= real.count {
            var probes: [UInt64] = []
            let out = "/tmp/xenctx-bench-frames-\(total)-\(shape).core"
            unlink(out)
            if total > real.count || shape != 0 {
                var all = real.map { (pfn: $0.pfn, gmfn: $0.frame) }
                let lastPFN = real.map(\.pfn).max() ?? 0
                let extra = total - real.count
                let gmfns = core.isPV ? extraMachineFrames(extra, shape: shape) : [UInt64](repeating: 0, count: extra)
                probes = shape == 0 ? [] : stride(from: 0, to: extra, by: max(1, extra / 1000)).map { gmfns[$0] }
                all += (0..<extra).map { (pfn: lastPFN + 1 + UInt64($0), gmfn: gmfns[$0]) }
                let writer = DumpCoreWriter(machine: core.machine, magic: core.isPV ? XenCoreLayout.magicPV : XenCoreLayout.magicHVM,
                                            entrySize: core.contextEntrySize, contexts: (0..<core.vcpuEntryCount).map { Array(core.contextBytes(entry: $0)!.bytes) },
                                            frames: all)
                try writer.write(to: out) { i in i < real.count ? Array(frames.page(slot: i)) : nil }
            } else {
                symlink(realpath(path, nil).map { String(cString: $0) } ?? path, out)   // absolute: out is in /tmp
            }
            // Drop the new file from the page cache's favour: read it once before timing.
            _ = try? Guest(core: XenCore(path: out)).frames?.page(0)
            let (t, rss) = timeCommand([tool, "-C", "--core", out], runs: 7)
            guard t >= 0 else { continue }
            let ratio = baseline.map { String(format: " (%.2fx %@)", t / $0, "the core as is") } ?? ""
            if baseline == nil { baseline = t }
            print("\(name) \(label) (\(total) pages): whole -C \(String(format: "%.1f", t)) ms, max RSS \(rss / 1024) MiB\(ratio)")
            // `trim` of the same core: every view it serves, run once, then the copy written.
            let trimmed = "/tmp/xenctx-bench-trimmed.core"
            let (tt, trss) = timeCommand([tool, "trim", "--force", out, trimmed], runs: 3)
            var st = stat()
            if tt >= 0, stat(trimmed, &st) == 0 {
                print("  trim: \(String(format: "%.1f", tt)) ms, max RSS \(trss / 1024) MiB, copy of \(st.st_size) bytes (\(String(format: "%.3f", Double(st.st_size) * 100 / Double(total * 4096)))% of the guest's pages)")
            }
            unlink(trimmed)
            if !probes.isEmpty {
                // Lookups the report never makes, at the cost a hostile guest could force:
                // frames spread over the whole p2m, then frames in none of it.
                let f = try Guest(core: XenCore(path: out)).frames as! CoreFrames
                let clock = ContinuousClock()
                let tReal = clock.measure { _ = f.page(real[0].frame) }
                let tFirst = clock.measure { _ = f.page(probes[0]) }
                var found = 0
                let tHits = clock.measure { for p in probes.dropFirst() where f.page(p) != nil { found += 1 } }
                let tAgain = clock.measure { for p in probes.dropFirst() where f.page(p) == nil { found -= 1 } }
                let tMiss = clock.measure { for p in probes where f.page(0x2000_0000 + p) != nil { found -= 1 } }
                let (runs, slots, filters) = f.indexedRuns
                func each(_ d: Duration, _ n: Int) -> String { String(format: "%.1f µs each", Double(d.components.attoseconds) / 1e12 / Double(n) + Double(d.components.seconds) * 1e6 / Double(n)) }
                print("  lookups in process: the guest's first \(ms(tReal)); the first past them \(ms(tFirst)); \(probes.count - 1) more across the p2m \(each(tHits, probes.count - 1)) (\(found) found), again \(each(tAgain, probes.count - 1)), \(probes.count) in none \(each(tMiss, probes.count)); index: \(runs) runs over \(slots) slots (\((runs * 16) >> 20) MiB), filters \(filters >> 20) MiB")
            }
            if getenv("XENCTX_BENCH_KEEP") == nil { unlink(out) }
        }
    }
default:
    print("usage: xenctx-bench open | map SYSTEM.MAP | report CORE SYSTEM.MAP | kernel CORE | grow CORE | frames XENCTX-SWIFT CORE...")
    exit(64)
}
