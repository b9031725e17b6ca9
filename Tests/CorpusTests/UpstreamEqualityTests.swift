import Foundation
import Symbols
import Testing
import VCPUContext

/// Every upstream xenctx output stored with a case, against xenctx-swift on the case's core
/// with `--unwind scan` (upstream's method, symbols only from -s).
///
/// Truth: upstream's stdout, captured in the lab on the same paused domain (PROVENANCE).
/// Our additions are removed before comparing: the `Stack pointer:`/`Stack note:` lines
/// and, on ARM (where upstream prints registers only), the stack after the TTBR1 line.
/// Known, documented divergences are applied to the expectation in `expectation(for:)`.
@Suite(.serialized)
struct UpstreamEqualityTests {
    static let runs: [Corpus.UpstreamRun] = Corpus.cases.flatMap(\.upstream)

    @Test("corpus holds the lab cases") func corpusIsPresent() {
        #expect(Corpus.cases.count >= 14)
        #expect(Self.runs.count >= 100)
    }

    @Test(arguments: runs)
    func matchesUpstream(_ run: Corpus.UpstreamRun) throws {
        let c = Corpus.named(run.caseName)
        // `--unwind scan`: upstream's method and inputs exactly (no symbols from guest memory);
        // `--kaslr 0`: the System.map's addresses as they are, as upstream takes them (a
        // relocated kernel's symbols are shifted by default: README, divergences).
        let kaslr = run.args.contains("-s") ? ["--kaslr", "0"] : []
        let result = try Tool.run(try Tool.arguments(for: run) + ["--unwind", "scan"] + kaslr)
        #expect(!HostileInputTests.hasRawControl(result.stdout + result.stderr), "raw control bytes in the output")
        let ours = Self.withoutAdditions(result.stdout, arm: c.isARM)
        let expected = try expectation(for: run, ours: ours, stderr: result.stderr)

        if c.name == "x86-run1-lab-crash-cpu1" {
            // The core was cut at 50 MB of 269 MB: registers are intact, memory is not.
            // Each vCPU block must be a prefix of upstream's and hold the whole register block.
            let ourBlocks = Self.blocks(ours), expBlocks = Self.blocks(expected)
            #expect(ourBlocks.count == expBlocks.count)
            for (o, e) in zip(ourBlocks, expBlocks) {
                let complete = o.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
                let upstream = e.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
                // Like upstream, a read that fails mid-line leaves that line unterminated.
                let whole = complete.dropLast(), last = complete.last ?? ""
                #expect(Array(upstream.prefix(whole.count)) == Array(whole), "\(run): vCPU block is not a prefix of upstream's")
                #expect(upstream.count > whole.count && upstream[whole.count].hasPrefix(last), "\(run): last line is not a prefix of upstream's")
                if !run.args.contains("-m") && !run.args.contains("-d") {
                    #expect(complete.contains { $0.hasPrefix(" gs: ") || $0.hasPrefix("dr7: ") }, "register block incomplete")
                }
            }
            return
        }
        #expect(ours == expected, "\(run)\n\(Self.diff(expected, ours))")
        #expect(result.status == 0 || !result.stderr.isEmpty, "partial exit without saying why")
    }

    /// Upstream's text, adjusted for the divergences we keep on purpose.
    func expectation(for run: Corpus.UpstreamRun, ours: String, stderr: String) throws -> String {
        var text = try Corpus.upstreamText(run)
        let c = Corpus.named(run.caseName)
        // 1. With -s and -k, upstream symbolises any address above kernel_start with the
        //    nearest lower symbol, e.g. `__per_cpu_end+0x40796ca8` for a stack address; we
        //    print no symbol outside the kernel image [_text, _end].
        if run.args.contains("-k") && run.args.contains("-s") {
            let map = try SystemMap(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: Corpus.mapPath(c)))))
            text = Self.dropSymbolsOutsideImage(text, text: map.text, end: map.end ?? ~0)
        }
        // 2. x86-run2: upstream (live) says `vcpu0 offline` (the vCPU had done VCPUOP_down),
        //    but a PV core's VGCF_online is sticky: Xen ORs the boot-time vgc_flags into it
        //    (xen/arch/x86/domctl.c arch_get_info_guest), so a core cannot show it. Our
        //    block for vcpu0 stands where upstream has the offline line.
        if c.name == "x86-run2-lab-crash-cpu1" && run.args.contains("-C"),
           let ourBlock = Self.vcpuBlock(ours, id: 0) {
            text = text.replacingOccurrences(of: "vcpu0 offline\n\n", with: ourBlock)
        }
        // 3. A stack dump that stops at a page it cannot read (`-n 2 -l MAX` reaching the
        //    guard page above a stack): upstream prints no trace for that vCPU; ours follows
        //    the dump with the trace over the words that were read. Everything before our
        //    trace must still equal upstream's block.
        // Each vCPU's first unreadable address (its block's dump stopped there).
        var unreadable: [Int: UInt64] = [:]
        for m in stderr.matches(of: /vcpu([0-9]+): cannot read ([0-9a-f]+): not mapped/) {
            if let id = Int(m.1), let a = UInt64(m.2, radix: 16), unreadable[id] == nil { unreadable[id] = a }
        }
        text = Self.spliceTracesAfterStoppedDumps(upstream: text, ours: ours, unreadable: unreadable, core: try Corpus.corePath(c))
        // 6. `-m`/`-d` at an address the guest does not map (here the System.map's address of
        //    a KASLR kernel's linux_banner): upstream's translation answers 0 on an HVM/PVH
        //    guest and it dumps guest frame 0 as if it were there; ours stops at the first
        //    unreadable word with a warning. Ours must be upstream's up to that point, and
        //    the rest of upstream's words guest frame 0's at the same offsets in the page
        //    (zeros on most guests; the BIOS's interrupt vectors, f000ff53, on 5.10's HVM).
        if c.arch.hasPrefix("x") && (run.args.contains("-m") || run.args.contains("-d")) {
            let u = text.split(separator: "\n", omittingEmptySubsequences: false), o = ours.split(separator: "\n", omittingEmptySubsequences: false)
            let cut = o.last == "" ? o.dropLast() : o[...]
            if u.count > cut.count, let last = cut.last, Array(u.prefix(cut.count - 1)) == Array(cut.dropLast()), u[cut.count - 1].hasPrefix(last) {
                // Ours stopped at the line's first word here, so its ASCII column holds nothing of ours.
                let rest = ([u[cut.count - 1].dropFirst(last.count)] + u[cut.count...]).joined(separator: "\n")
                let flag = run.args.contains("-m") ? "-m" : "-d"
                if let i = run.args.firstIndex(of: flag), i + 1 < run.args.count,
                   let start = UInt64(run.args[i + 1].replacingOccurrences(of: "0x", with: ""), radix: 16),
                   try Self.frameZeroWords(rest[...], afterWordsOf: ours, from: start, core: try Corpus.corePath(c)) {
                    text = ours
                }
            }
        }
        // 5. A vCPU that never started is in no core (Xen writes contexts of started vCPUs
        //    only): upstream, live, ends `-C` with `vcpuN offline` for it; a core has no vcpuN.
        if run.args.contains("-C") {
            var blocks = Self.blocks(text)
            while let last = blocks.last, last.hasPrefix("vcpu"), last.trimmingCharacters(in: .newlines).hasSuffix(" offline"),
                  let id = last.dropFirst(4).split(separator: " ").first, !ours.contains("vcpu\(id):\n"), !ours.contains("vcpu\(id) offline") {
                blocks.removeLast()
            }
            // Blocks end with a newline each; cut, the text is the part before the removed header.
            let joined = blocks.joined()
            if joined.count < text.count { text = joined }
        }
        // 7. A named vCPU that is down (x86-run9-pvh64: vCPU 1, taken down by the panic's
        //    stop IPI): upstream prints nothing (libxc's error on stderr); ours says on stderr
        //    that it is offline and shows the last context Xen holds for it (issue #13, 4).
        //    Upstream has no truth for that context, so what is checked is what is known:
        //    a dump of kernel memory reads the same through any vCPU's page tables (upstream's
        //    run on vCPU 0 is the expectation), and the registers are those of the panic's
        //    stop IPI (in stop_this_cpu, the trace through the reboot vector's handler; with
        //    -f, upstream's frame-pointer walk, rbp is no frame pointer there: one frame).
        if text.isEmpty, let id = run.args.last, run.args.count >= 2, run.args[run.args.count - 2] == "{domid}",
           stderr.contains("note: vcpu\(id) is offline: what follows is the last context Xen holds for it") {
            if ours.hasPrefix("Memory (address ") || ours.hasPrefix("Stack:") {
                let onVCPU0 = Array(run.args.dropLast()) + ["0"]
                if let run0 = c.upstream.first(where: { $0.args == onVCPU0 }) { text = try Corpus.upstreamText(run0) }
            } else if let first = ours.split(separator: "\n").first, first.hasPrefix(c.arch == "x86" ? "eip: " : "rip: "), first.contains(" stop_this_cpu+"),
                      !ours.contains("Call Trace:") || ours.contains("sysvec_reboot+") || run.args.contains("-f") {
                text = ours
            }
        }
        // 4. A 32-bit HVM/PVH guest on 64-bit Xen, no -s and no -k: upstream takes the 64-bit
        //    default kernel_start (it chooses by the size of Xen's context), so the kernel's
        //    eip (c1dab93b) is not kernel text to it and it prints no stack; ours uses the
        //    guest's c0000000. Our stack and trace stand where upstream has none; the rest
        //    of each block must be upstream's.
        if c.arch == "x86" && !run.args.contains("-s") && !run.args.contains("-k") {
            text = Self.spliceStacksUpstreamOmits(upstream: text, ours: ours)
        }
        //    With -s the same kernel_start makes upstream's scan take no word below _stext for
        //    text, where ours takes [c0000000, _end] as upstream does for a guest whose
        //    kernel_start it knows (x86-run14-hvm32-510: a word c06b626d in the dumped data).
        //    Ours must be upstream's plus such unnamed scan frames only.
        if c.arch == "x86" && run.args.contains("-s") && !run.args.contains("-k") && ours != text {
            let map = try SystemMap(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: Corpus.mapPath(c)))))
            let stext = map.address(of: "_stext") ?? 0
            let kept = ours.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
                guard let m = line.wholeMatch(of: /[0-9a-f]{8}:   \[<([0-9a-f]{8})>\]/), let a = UInt64(m.1, radix: 16) else { return true }
                return !(a >= 0xc000_0000 && a < stext)
            }
            if kept.joined(separator: "\n") == text { text = ours }
        }
        return text
    }

    /// Ours with each vCPU's `Stack:` section (through its trace) where upstream's block,
    /// otherwise equal, has none.
    static func spliceStacksUpstreamOmits(upstream: String, ours: String) -> String {
        spliceBlocks(upstream: upstream, ours: ours) { u, o in
            guard !u.contains("Stack:\n"), let start = o.range(of: "\nStack:\n"),
                  // The section ends at the first empty line after its trace.
                  let trace = o.range(of: "Trace:\n", range: start.upperBound..<o.endIndex),
                  let end = o.range(of: "\n\n", range: trace.upperBound..<o.endIndex) else { return false }
            return String(o[..<start.lowerBound]) + String(o[end.lowerBound...]) == u
        }
    }

    /// Ours where a vCPU's dump stopped at `unreadable` (the first address it could not
    /// read) and upstream's block is, up to there, the same: either upstream printed no trace
    /// (x86-run4: the dump ended its block), or it read the page as guest frame 0 and went on
    /// (x86-run9: zero words to the end of the range, then its trace over them all). Then our
    /// trace must be upstream's without the lines of words at or above `unreadable`.
    static func spliceTracesAfterStoppedDumps(upstream: String, ours: String, unreadable byVCPU: [Int: UInt64], core: String) -> String {
        spliceBlocks(upstream: upstream, ours: ours) { u, o in
            guard u.hasPrefix("vcpu"), u.contains("Stack:\n"),
                  let r = o.range(of: "\nCall Trace:\n") ?? o.range(of: "\nStack Trace:\n") else { return false }
            let head = String(o[..<r.lowerBound])
            #expect(o[r.upperBound...].contains("<--"), "the trace after a stopped dump is empty")
            if !u.contains("Trace:\n") { return u == head || u == head + "\n" }
            // Upstream went on: our dump is a prefix of its dump (the last line cut where the
            // read failed), and the traces agree below the unreadable address.
            let id = u.dropFirst(4).prefix { $0.isNumber }
            guard let unreadable = Int(id).flatMap({ byVCPU[$0] }), let ur = u.range(of: "\n" + o[r.lowerBound...].dropFirst().prefix { $0 != "\n" } + "\n") else { return false }
            let uHead = u[..<ur.lowerBound], uTrace = u[ur.lowerBound...]
            let cut = head.hasSuffix("\n") ? head.dropLast() : head[...]
            guard uHead.hasPrefix(cut), (try? Self.frameZeroWords(uHead.dropFirst(cut.count), printed: 0, from: unreadable, core: core)) == true else { return false }
            let kept = uTrace.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
                guard let colon = line.firstIndex(of: ":"), let a = UInt64(line[..<colon], radix: 16) else { return true }
                return a < unreadable
            }
            return kept.joined(separator: "\n") == String(o[r.lowerBound...])
        }
    }

    /// Whether the rest of a dump (the rest of the line where ours stopped, then whole lines)
    /// is zero words only: addresses aside, and ASCII columns (after two spaces) only dots,
    /// but for the cut line's when `cutLineColumnIsOurs` (it also decodes our words before the cut).
    /// Whether the words of `rest` (upstream's dump after ours stopped) are guest frame 0's
    /// at the offsets the dump's addresses have in their pages, counting on from `start` past
    /// the words `ours` printed, or `printed` words (each word as wide as the guest's).
    static func frameZeroWords(_ rest: Substring, afterWordsOf ours: String? = nil, printed: Int = 0, from start: UInt64, core path: String) throws -> Bool {
        let guest = try Guest(core: XenCore(path: path))
        let width = guest.description.wordSize
        guard let frame0 = guest.frames?.page(0) else { return false }
        let skipped = ours.map { words($0.split(separator: "\n").dropFirst().joined(separator: "\n")[...], width: width).count } ?? printed
        let expected = words(rest, width: width)
        guard !expected.isEmpty else { return false }
        return expected.enumerated().allSatisfy { i, w in
            let offset = Int((start &+ UInt64((skipped + i) * width)) & 0xfff)
            guard offset + width <= 4096 else { return false }
            let value = (0..<width).reduce(UInt64(0)) { $0 | UInt64(frame0[offset + $1]) << (8 * UInt64($1)) }
            return value == w
        }
    }

    /// The hexadecimal words of a dump's lines (not their addresses or ASCII columns).
    static func words(_ text: Substring, width: Int) -> [UInt64] {
        text.split(separator: "\n").flatMap { line -> [UInt64] in
            let body = line.firstMatch(of: /^ ?[0-9a-f]+:/).map { line[$0.range.upperBound...] } ?? line
            let hexPart = body.range(of: "  ").map { body[..<$0.lowerBound] } ?? body
            return hexPart.split(separator: " ").filter { $0.count == 2 * width }.compactMap { UInt64($0, radix: 16) }
        }
    }


    /// Upstream's text with our vCPU block in place of each of its blocks that `accept`
    /// takes as a documented divergence of ours; upstream's as it is when none is.
    static func spliceBlocks(upstream: String, ours: String, accept: (_ upstream: String, _ ours: String) -> Bool) -> String {
        let theirs = blocks(upstream), mine = blocks(ours)
        guard theirs.count == mine.count else { return upstream }
        var spliced = false
        let text = zip(theirs, mine).map { u, o -> String in
            guard accept(u, o) else { return u }
            spliced = true
            return o
        }.joined()
        // blocks() ends every block with a newline: rejoined text is used only when it changed.
        return spliced ? String(text.dropLast()) : upstream
    }

    static func withoutAdditions(_ s: String, arm: Bool) -> String {
        let lines = s.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("Stack pointer: ") && !$0.hasPrefix("Stack note: ") && !$0.hasPrefix("Task: ") }
        guard arm else { return lines.joined(separator: "\n") }
        // Per vCPU block: keep up to the TTBR1 line and the block's closing blank lines.
        var out: [Substring] = [], block: [Substring] = []
        func flush() {
            guard !block.isEmpty else { return }
            let trailing = block.reversed().prefix { $0.isEmpty }.count
            if let ttbr1 = block.firstIndex(where: { $0.hasPrefix("TTBR1:") }) {
                out += block[...ttbr1] + Array(repeating: "", count: trailing)
            } else {
                out += block
            }
            block = []
        }
        for line in lines {
            if isHeader(line) { flush() }
            block.append(line)
        }
        flush()
        return out.joined(separator: "\n")
    }

    /// The output split at `vcpuN:` headers (one block without -C).
    static func blocks(_ s: String) -> [String] {
        var blocks: [String] = [], current = ""
        for line in s.split(separator: "\n", omittingEmptySubsequences: false) {
            if isHeader(line) && !current.isEmpty { blocks.append(current); current = "" }
            current += line + "\n"
        }
        if !current.isEmpty { blocks.append(current) }
        return blocks
    }

    static func isHeader(_ line: Substring) -> Bool {
        line.hasPrefix("vcpu") && (line.hasSuffix(":") || line.hasSuffix(" offline"))
    }

    static func vcpuBlock(_ s: String, id: Int) -> String? {
        guard let start = s.range(of: "vcpu\(id):\n") else { return nil }
        let rest = s[start.lowerBound...]
        let end = rest.range(of: "\nvcpu\(id + 1)")?.lowerBound ?? rest.endIndex
        return String(rest[..<end]) + "\n"
    }

    static func dropSymbolsOutsideImage(_ s: String, text: UInt64, end: UInt64) -> String {
        func inImage(_ hexString: Substring) -> Bool {
            guard let a = UInt64(hexString, radix: 16) else { return true }
            return a >= text && a <= end
        }
        return s.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
            if let open = line.range(of: "[<"), let close = line.range(of: ">]", range: open.upperBound..<line.endIndex),
               close.upperBound < line.endIndex, !inImage(line[open.upperBound..<close.lowerBound]) {
                return line.hasSuffix(" <--") ? line[..<close.upperBound] + " <--" : line[..<close.upperBound]
            }
            // `rip: ADDR sym+0xhuge`, `cs:eip: SEL:ADDR sym+0xhuge` (x86 lines that name a register's value).
            let words = line.split(separator: " ", omittingEmptySubsequences: false)
            if words.count == 3, ["rip:", "cs:eip:"].contains(words[0]), !inImage(words[1].split(separator: ":").last ?? "") {
                return line[..<words[1].endIndex]
            }
            if line.hasPrefix(" gs: "), let at = line.range(of: " @ ") {
                let fields = line[at.upperBound...].split(separator: "/", omittingEmptySubsequences: false)
                if fields.count == 3 {
                    let kernelPart = fields[1].split(separator: " ", maxSplits: 1)
                    let k = fields[0], u = kernelPart.first ?? ""
                    let kSym = kernelPart.count > 1 && inImage(k) ? " " + kernelPart[1] : ""
                    let uSym = !fields[2].isEmpty && inImage(u) ? fields[2] : ""
                    return line[..<at.upperBound] + "\(k)/\(u)\(kSym)/\(uSym)"
                }
            }
            return line
        }.joined(separator: "\n")
    }

    static func diff(_ expected: String, _ actual: String) -> String {
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
        for i in 0..<max(e.count, a.count) where i >= e.count || i >= a.count || e[i] != a[i] {
            return "first difference at line \(i + 1):\n  upstream: \(i < e.count ? String(e[i]) : "<end>")\n  ours:     \(i < a.count ? String(a[i]) : "<end>")"
        }
        return "(equal)"
    }
}
