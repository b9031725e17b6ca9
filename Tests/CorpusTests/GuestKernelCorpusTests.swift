import Foundation
import GuestKernel
import Symbols
import Testing
import VCPUContext

/// VMCOREINFO, kallsyms and the kernel log read from the corpus's full-RAM cores, against
/// the truth of each case: its System.map (from Debian's -dbg package) and its console.
@Suite(.serialized)
struct GuestKernelCorpusTests {
    static let fullRAM = ["x86-run1-lab-crash", "x86-run2-lab-crash-cpu1", "x86-run3-lab-crash-cpu1-savecore",
                          "arm-full-a64-crash", "arm-full-a32-crash", "arm-full-a32-crash-smp-bootoops1",
                          "x86-run10-pv612-crash-tasks", "x86-run10-pv510-crash-tasks", "x86-run10-pv510-hcpage-crash-tasks",
                          "x86-run11-xen420-pv612-crash-tasks", "x86-run11-xen420-hvm612-crash-tasks", "x86-run12-xen420-pvh612-crash-tasks", "x86-run15-why-hung-lockup-oom", "x86-run16-why612-hung-lockup-oom", "x86-run17-why-mutex-lockup",
                          "x86-run13-pvh510-crash-tasks", "x86-run13-hvm510-crash-tasks",
                          "arm-tasks612-a64-crash", "arm-tasks612-a32-crash-smp", "arm-tasks612-a64-16k-crash", "arm-why-a64-hung-lockup-oom", "arm-why612-a64-hung-lockup-oom", "arm-why612-a64-mutex-lockup"]
    /// HVM and PVH guests (`.xen_pfn` cores, HVM contexts): the log and traces from guest memory.
    static let hvmAndPVH = ["x86-run7-hvm64-boot", "x86-run8-hvm32-crash", "x86-run8-hvm32-live-tf",
                            "x86-run9-pvh64-crash", "x86-run9-hvm64-crash", "x86-run9-hvm64-live", "x86-run14-hvm32-510-crash"]
    /// Oopsed while booting, before VMCOREINFO was written (crash_save_vmcoreinfo_init is a
    /// subsys_initcall): everything must come from kallsyms found by content.
    static let noVMCOREINFO: Set = ["arm-full-a32-crash-smp-bootoops1"]

    static func kernel(_ name: String) throws -> GuestKernel {
        let c = Corpus.named(name)
        let guest = try Guest(core: XenCore(path: try Corpus.corePath(c)))
        return try #require(GuestKernel(guest: guest))
    }

    /// `ADDR TYPE NAME` lines of the case's System.map, as (address, type, name).
    static func mapLines(_ c: Corpus.Case) throws -> [(UInt64, Character, String)] {
        try String(contentsOfFile: try Corpus.mapPath(c), encoding: .utf8).split(separator: "\n").compactMap { line in
            let p = line.split(separator: " ")
            guard p.count >= 3, let a = UInt64(p[0], radix: 16), let t = p[1].first else { return nil }
            return (a, t, String(p[2]))
        }
    }

    @Test(arguments: fullRAM)
    func vmcoreinfoIsFoundInTheImage(_ name: String) throws {
        let k = try Self.kernel(name)
        if Self.noVMCOREINFO.contains(name) {
            #expect(throws: KernelDataError.self) { try k.vmcoreinfo.get() }
            return
        }
        let located = try k.vmcoreinfo.get()
        #expect(located.info.osRelease == Corpus.named(name).kernel)
        #expect(located.info.pageSize == (name.contains("-16k") ? 16384 : 4096))
        #expect(located.info.buildID?.count == 40)
        #expect(located.how.contains("vmcoreinfo_data"))
        // The prb, kallsyms and _stext addresses it gives are the System.map's, moved by the
        // KASLR offset it gives (x86-run11-xen420-hvm612: 0x1f000000, as the panic printed).
        let map = try SystemMap.load(path: try Corpus.mapPath(Corpus.named(name)))
        let shift = located.info.kernelOffset ?? 0
        if name == "x86-run11-xen420-hvm612-crash-tasks" { #expect(shift == 0x1f00_0000) }
        // VMCOREINFO names kallsyms' tables since 6.0 (5.10's does not: they are found by content).
        for symbol in ["prb", "_stext", "kallsyms_names", "kallsyms_token_table", "init_uts_ns"]
            where located.info.symbol(symbol) != nil || !symbol.hasPrefix("kallsyms_") {
            #expect(located.info.symbol(symbol) == map.address(of: symbol).map { $0 &+ shift }, "\(symbol)")
        }
    }

    /// With a System.map, `vmcoreinfo_data` is read where the map puts it and no page is
    /// searched; a hint that leads nowhere (another build's address) falls back to the search.
    @Test(arguments: fullRAM)
    func vmcoreinfoThroughTheMapsPointer(_ name: String) throws {
        guard !Self.noVMCOREINFO.contains(name) else { return }
        let c = Corpus.named(name)
        let guest = try Guest(core: XenCore(path: try Corpus.corePath(c)))
        let map = try SystemMap.load(path: try Corpus.mapPath(c))
        let searched = try #require(GuestKernel(guest: guest)).vmcoreinfo.get()
        let shift = searched.info.kernelOffset ?? 0
        let hinted = try #require(GuestKernel(guest: guest, vmcoreinfoPointer: map.address(of: "vmcoreinfo_data").map { $0 &+ shift })).vmcoreinfo.get()
        #expect(hinted.address == searched.address && hinted.pagesScanned == 0)
        #expect(hinted.how.contains("from the symbol file"))
        let wrong = try #require(GuestKernel(guest: guest, vmcoreinfoPointer: map.address(of: "linux_banner"))).vmcoreinfo.get()
        #expect(wrong.address == searched.address && wrong.how == searched.how)
    }

    /// The guest's kallsyms is the System.map less documented kinds of symbol:
    /// - x86_64: per-CPU variables, which kallsyms stores as absolute ('A', --absolute-percpu)
    ///   and a symbol table skips like every absolute symbol; and kallsyms' own tables
    ///   (kallsyms_offsets … kallsyms_token_index), which do not exist when it is generated.
    /// - 5.10: the compiler's local labels (`.LC0`), which kallsyms kept and mksysmap drops.
    /// - arm64 and armmp: every non-text symbol (Debian builds them without
    ///   CONFIG_KALLSYMS_ALL, so kallsyms holds text symbols only), text symbols outside
    ///   the ranges scripts/kallsyms keeps ([_stext, _etext] and [_sinittext, _einittext]:
    ///   _text, .exit.text, the entry trampoline, the ARM vectors page), and the names it
    ///   ignores (ARM mapping symbols `$x`/`$d`, `__efistub_*`, `__kvm_nvhe_*`, linker thunks).
    @Test(arguments: fullRAM)
    func kallsymsIsTheSystemMapLessDocumentedKinds(_ name: String) throws {
        let c = Corpus.named(name)
        let k = try Self.kernel(name)
        let own = try k.symbols().get()
        let named = (try? k.vmcoreinfo.get())?.info.symbol("kallsyms_names") != nil
        #expect(own.how.contains(named ? "through VMCOREINFO" : "by content"), "\(own.how)")
        // 5.10's kallsyms also keeps the compiler's local labels (`.LC0`, data), which the
        // System.map leaves out (scripts/mksysmap drops ` .L` names).
        let ours = Set(own.map.symbols.filter { !$0.name.hasPrefix(".L") }.map { "\($0.address) \($0.name)" })
        // The image's symbols moved by the KASLR offset (per-CPU ones are offsets, not moved).
        let shift = (try? k.vmcoreinfo.get())?.info.kernelOffset ?? 0
        let lines = try Self.mapLines(c).filter { !"UvwAa".contains($0.1) }.map { ($0.0 >= 0xffff_ffff_8000_0000 ? $0.0 &+ shift : $0.0, $0.1, $0.2) }
        let theirs = Set(lines.map { "\($0.0) \($0.2)" })
        #expect(ours.subtracting(theirs).isEmpty, "kallsyms symbols not in the map: \(ours.subtracting(theirs).prefix(5))")
        func at(_ name: String) -> UInt64 { lines.first { $0.2 == name }?.0 ?? 0 }
        let percpuEnd = at("__per_cpu_end")
        let kept = [at("_stext")..<at("_etext"), at("_sinittext")..<at("_einittext")]
        let ignored = ["$", "__efistub_", "__kvm_nvhe_", "__AArch64ADRPThunk_", "__ARMV7PILongThunk_", "__ThumbV7PILongThunk_"]
        let unexplained = lines.filter { line in
            guard !ours.contains("\(line.0) \(line.2)") else { return false }
            if line.2.hasPrefix("kallsyms_") && "Dd".contains(line.1) { return false }
            if c.arch == "x64" { return line.0 > percpuEnd }
            guard "tTW".contains(line.1) else { return false }   // ARM: kallsyms holds text only
            return !ignored.contains { line.2.hasPrefix($0) } && kept.contains { $0.contains(line.0) }
        }
        #expect(unexplained.isEmpty, "\(unexplained.count) map symbols missing from kallsyms unexplained: \(unexplained.prefix(8).map { "\(String($0.0, radix: 16)) \($0.1) \($0.2)" })")
        // And by content, without VMCOREINFO, the same tables are found.
        let reader = try #require(KernelReader(guest: k.guest))
        #expect(try KallsymsFinder.locate(guest: k.guest, reader: reader).tables == own.tables)
    }

    /// `--log` equals the kernel's console lines (timestamp and text), for every record both
    /// hold, in order: the console shows what was printed at the console loglevel, the ring
    /// holds every record.
    @Test(arguments: fullRAM + hvmAndPVH)
    func logEqualsTheConsole(_ name: String) throws {
        let c = Corpus.named(name)
        let result = try Tool.run(["--core", try Corpus.corePath(c), "--log"])
        #expect(result.status == 0, "\(result.stderr)")
        let ours = result.stdout.split(separator: "\n").map(String.init)
        let console = try c.consoleText()
            .split(separator: "\n").map(String.init)
            .filter { $0.range(of: #"^\[ *[0-9]+\.[0-9]{6}\] "#, options: .regularExpression) != nil }
            // As --log prints them: a control byte the kernel logged (x86-run15's \x7f) escaped.
            .map { TerminalSafe.escape($0, allowTab: true) }
        let ourSet = Set(ours)
        let shared = console.filter { ourSet.contains($0) }
        // Every console line is in the log (the lab's consoles print at loglevel 7).
        #expect(shared.count == console.count, "console lines not in --log: \(console.filter { !ourSet.contains($0) }.prefix(5))")
        // In the same order.
        let consoleSet = Set(console)
        #expect(ours.filter { consoleSet.contains($0) } == shared)
        // The log ends with the kernel's last words.
        #expect(ours.last.map { console.contains($0) } == true)
        #expect(ours.allSatisfy { $0.hasPrefix("[") })
    }

    /// With no symbol file, the exact traces are the same frames, each named by a symbol
    /// that starts where the System.map's does at the same offset. Where several symbols
    /// share an address (`cpu_v7_do_idle` and `cpu_ca15_do_idle`), kallsyms names it as the
    /// kernel does (its first alias) and a System.map as upstream does (the last one).
    @Test(arguments: fullRAM + hvmAndPVH)
    func tracesFromGuestMemoryEqualThoseFromTheMap(_ name: String) throws {
        let c = Corpus.named(name)
        let core = try Corpus.corePath(c)
        let own = try Tool.run(["--core", core, "--unwind", "auto", "-C", "-l", "0"])
        // With --describe, whose `#` lines say where a relocated kernel (KASLR; a 32-bit one its
        // decompressor moved) runs: the map's addresses shifted by that offset.
        let withMap = try Tool.run(["--core", core, "-s", try Corpus.mapPath(c), "--describe", "--unwind", "auto", "-C", "-l", "0"])
        #expect(own.status == 0, "\(own.stderr)")
        let mapReport = withMap.stdout.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("#") }.joined(separator: "\n")
        var shift: UInt64 = 0
        if let m = withMap.stdout.firstMatch(of: /# .*loaded ([+-])0x([0-9a-f]+) from the symbol table/), let v = UInt64(m.2, radix: 16) {
            shift = m.1 == "+" ? v : 0 &- v
        }
        let map = try SystemMap.load(path: try Corpus.mapPath(c))
        // Static functions share names across files: a name may start at several places.
        let starts = Dictionary(grouping: map.symbols, by: \.name).mapValues { $0.map { $0.address &+ shift } }
        /// Each trace line as (address, start of the named symbol + offset), or the line itself.
        func frames(_ s: String) -> [String] {
            s.split(separator: "\n").filter { $0.contains("[<") || $0.hasPrefix("-- ") || $0.hasPrefix("vcpu") }.map { line in
                guard let open = line.range(of: "[<"), let close = line.range(of: ">]") else { return String(line) }
                let address = String(line[open.upperBound..<close.lowerBound])
                let rest = line[close.upperBound...].split(separator: " ").first.map(String.init) ?? ""
                let parts = rest.split(separator: "+")
                guard let symbol = parts.first, let candidates = starts[String(symbol)], let value = UInt64(address, radix: 16) else { return "\(address) \(rest)" }
                let offset = parts.count > 1 ? UInt64(parts[1].dropFirst(2), radix: 16) ?? 0 : 0
                let start = candidates.first { $0 + offset == value } ?? candidates[0]
                return "\(address) = \(String(start + offset, radix: 16))"
            }
        }
        let ours = frames(own.stdout)
        #expect(ours.count > 3)
        #expect(ours == frames(mapReport))
        // Every named frame's symbol + offset is the frame's address.
        for f in ours where f.contains(" = ") {
            let p = f.split(separator: " ")
            #expect(p[0].drop { $0 == "0" } == p[2].drop { $0 == "0" }, "\(f)")
        }
        #expect(own.stdout.contains(c.exactMethodTag))
    }
}
