// Prints timings of the operations an outage depends on. Run through Benchmarks/run.sh,
// which builds in release mode and prepares the inputs. Figures are medians.
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
    var count = 0
    let t = try median(21) { count = try SystemMap.load(path: path).symbols.count }
    print("load System.map (\(count) symbols): \(ms(t)) median of 21")
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
default:
    print("usage: xenctx-bench open | map SYSTEM.MAP | report CORE SYSTEM.MAP")
    exit(64)
}
