import Foundation
import Testing

/// ARM call traces against the guest kernel's own backtrace in its console log.
///
/// Truth: `console.log` of each case whose core holds guest RAM. For each CPU that printed
/// a backtrace, the functions it printed must appear, in order, among the functions of
/// that vCPU's `Call Trace:` (a scan lists more, never fewer). Kernel quirks allowed:
/// the frames of the dumping code itself (`unwind_backtrace`, `show_stack`,
/// `dump_stack_lvl`, `dump_stack`, `dump_backtrace`) have returned by the time the core
/// is written, so they are left out; a trailing raw address (`from 0x40401914`, the
/// physical-address entry of a secondary CPU) has no symbol.
@Suite(.serialized)
struct ConsoleTraceTests {
    static let cases = Corpus.cases.filter { $0.isARM && $0.hasRAM && !$0.running }
    static let dumpers: Set<String> = ["unwind_backtrace", "show_stack", "dump_stack_lvl", "dump_stack", "dump_backtrace"]

    @Test("both ARM guest widths are covered") func coverage() {
        #expect(Self.cases.contains { $0.arch == "a64" })
        #expect(Self.cases.contains { $0.arch == "a32" })
    }

    @Test(arguments: cases.map(\.name))
    func callTraceContainsConsoleBacktrace(_ name: String) throws {
        let c = Corpus.named(name)
        var console = try c.consoleText()
        // From the crash on, where the lab triggered one: the why case's earlier reports
        // (lockup, OOM) show moments long gone on the same CPU.
        if let trigger = console.range(of: "Trigger a crash") { console = String(console[trigger.upperBound...]) }
        let traces = Self.consoleTraces(console, before: try Self.symbolBefore(mapPath: try Corpus.mapPath(c)))
        #expect(!traces.isEmpty, "no backtrace in \(name)'s console")
        let result = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "-C", "-l", "0"])
        #expect(result.status == 0, "\(result.stderr)")
        for (cpu, functions) in traces {
            let expected = functions.filter { !Self.dumpers.contains($0) }
            let ours = Self.traceFunctions(result.stdout, vcpu: cpu)
            var i = ours.startIndex
            for f in expected {
                guard let found = ours[i...].firstIndex(where: { Self.matches($0, f) }) else {
                    Issue.record("\(name) vcpu\(cpu): \(f) missing (or out of order) in our trace \(ours)")
                    break
                }
                i = ours.index(after: found)
            }
        }
    }

    /// Functions that never return: a call to one is the last instruction of its caller.
    static let noreturn: Set<String> = ["panic", "vpanic", "do_exit", "make_task_dead", "kthread_exit", "do_group_exit", "__stack_chk_fail"]

    /// The kernel's ARM backtraces name a return address as it is (`%pS`), so the caller of a
    /// noreturn function is printed as the function after it, at +0x0 (`panic from
    /// sysrq_reset_seq_param_set+0x0/0x90`); xenctx-swift names the call site, as `%pB`
    /// does. `before` gives the symbol that precedes a name in the System.map. A name that is
    /// there more than once is told apart by the size the kernel prints (`+0x0/0x70`, the
    /// distance to the next symbol); where that does not tell either (6.12 arm64 has two local
    /// `trace_suspend_resume` of 0x70 bytes), the callers it could be, as `a|b` (`matches`).
    static func symbolBefore(mapPath: String) throws -> (String, String?) -> String? {
        let lines = try String(contentsOfFile: mapPath, encoding: .utf8).split(separator: "\n")
        var text: [(UInt64, String)] = []
        for l in lines {
            let f = l.split(separator: " ")
            guard f.count >= 3, "tT".contains(f[1]), let a = UInt64(f[0], radix: 16) else { continue }
            text.append((a, String(f[2])))
        }
        var previous: [String: Set<String>] = [:], previousBySize: [String: Set<String>] = [:]
        for i in text.indices.dropFirst() {
            let name = text[i].1
            previous[name, default: []].insert(text[i - 1].1)
            if i + 1 < text.count { previousBySize["\(name)/0x\(String(text[i + 1].0 - text[i].0, radix: 16))", default: []].insert(text[i - 1].1) }
        }
        return { name, size in (size.flatMap { previousBySize["\(name)/\($0)"] } ?? previous[name]).map { $0.sorted().joined(separator: "|") } }
    }

    /// Whether our frame's function is the console's (`a|b`: either).
    static func matches(_ ours: String, _ console: String) -> Bool {
        console.split(separator: "|").contains { $0 == ours }
    }

    /// `CPU: N PID:` starts a report; ARM32 prints `A from B+0x…`, arm64 ` A+0x…/0x…`.
    /// With `before`, a return address at +0x0 after a noreturn function is named by the
    /// function before it (see `symbolBefore`). `console` as `Corpus.Case.consoleText()` gives it.
    static func consoleTraces(_ console: String, before: ((String, String?) -> String?)? = nil) -> [(Int, [String])] {
        var traces: [(Int, [String])] = []
        var cpu: Int? = nil
        var functions: [String] = []
        func flush() {
            if let cpu, !functions.isEmpty { traces.append((cpu, functions)) }
            functions = []
        }
        for raw in console.split(separator: "\n") {
            guard let close = raw.firstIndex(of: "]") else { continue }
            let line = raw[raw.index(after: close)...]
            if let r = line.range(of: "CPU: "), line.contains(" PID: ") {
                flush()
                cpu = Int(line[r.upperBound...].prefix { $0.isNumber })
                continue
            }
            // A sysrq-t task's stack (`task:COMM state:S …`) is no CPU's backtrace.
            if line.contains("task:") && line.contains(" state:") {
                flush()
                cpu = nil
                continue
            }
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { continue }
            let words = line.split(separator: " ")
            func add(_ token: Substring) {
                var name = String(token.split(separator: "+").first ?? "")
                let size = token.split(separator: "/").dropFirst().first.map(String.init)
                if let before, token.contains("+0x0/"), let previous = functions.last, noreturn.contains(previous), let caller = before(name, size) {
                    name = caller
                }
                functions.append(name)
            }
            if words.count == 3 && words[1] == "from" {
                if functions.isEmpty { functions.append(String(words[0])) }
                if !words[2].hasPrefix("0x") { add(words[2]) }
            } else if words.count == 1, words[0].contains("+"), words[0].contains("/0x") {
                add(words[0])
            }
        }
        flush()
        return traces
    }

    /// Function names of one vCPU's Call Trace (`[<addr>] name+0xoff`).
    static func traceFunctions(_ output: String, vcpu: Int) -> [String] {
        guard let start = output.range(of: "vcpu\(vcpu):\n") else { return [] }
        let block = output[start.upperBound...].prefix { _ in true }
        let end = block.range(of: "\nvcpu\(vcpu + 1)")?.lowerBound ?? block.endIndex
        guard let trace = block[..<end].range(of: "Call Trace:\n") else { return [] }
        return block[trace.upperBound..<end].split(separator: "\n").compactMap { line in
            // `?` marks what an exact unwind could not prove (scanned leftovers): not the trace.
            guard let close = line.range(of: ">] "), !line[close.upperBound...].hasPrefix("?") else { return nil }
            let sym = line[close.upperBound...].split(separator: " ").first ?? ""
            return String(sym.split(separator: "+").first ?? sym)
        }
    }
}
