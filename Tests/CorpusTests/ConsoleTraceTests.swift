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
    static let cases = Corpus.cases.filter { $0.isARM && $0.hasRAM }
    static let dumpers: Set<String> = ["unwind_backtrace", "show_stack", "dump_stack_lvl", "dump_stack", "dump_backtrace"]

    @Test("both ARM guest widths are covered") func coverage() {
        #expect(Self.cases.contains { $0.arch == "a64" })
        #expect(Self.cases.contains { $0.arch == "a32" })
    }

    @Test(arguments: cases.map(\.name))
    func callTraceContainsConsoleBacktrace(_ name: String) throws {
        let c = Corpus.named(name)
        let console = try String(contentsOf: c.dir.appendingPathComponent("console.log"), encoding: .utf8)
        let traces = Self.consoleTraces(console)
        #expect(!traces.isEmpty, "no backtrace in \(name)'s console")
        let result = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "-C", "-l", "0"])
        #expect(result.status == 0, "\(result.stderr)")
        for (cpu, functions) in traces {
            let expected = functions.filter { !Self.dumpers.contains($0) }
            let ours = Self.traceFunctions(result.stdout, vcpu: cpu)
            var i = ours.startIndex
            for f in expected {
                guard let found = ours[i...].firstIndex(of: f) else {
                    Issue.record("\(name) vcpu\(cpu): \(f) missing (or out of order) in our trace \(ours)")
                    break
                }
                i = ours.index(after: found)
            }
        }
    }

    /// `CPU: N PID:` starts a report; ARM32 prints `A from B+0x…`, arm64 ` A+0x…/0x…`.
    static func consoleTraces(_ console: String) -> [(Int, [String])] {
        var traces: [(Int, [String])] = []
        var cpu: Int? = nil
        var functions: [String] = []
        func flush() {
            if let cpu, !functions.isEmpty { traces.append((cpu, functions)) }
            functions = []
        }
        // Serial consoles end lines with CRLF, which Swift treats as one Character.
        for raw in console.replacingOccurrences(of: "\r", with: "").split(separator: "\n") {
            guard let close = raw.firstIndex(of: "]") else { continue }
            let line = raw[raw.index(after: close)...]
            if let r = line.range(of: "CPU: "), line.contains(" PID: ") {
                flush()
                cpu = Int(line[r.upperBound...].prefix { $0.isNumber })
                continue
            }
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { continue }
            let words = line.split(separator: " ")
            if words.count == 3 && words[1] == "from" {
                if functions.isEmpty { functions.append(String(words[0])) }
                let caller = words[2].split(separator: "+").first.map(String.init) ?? ""
                if !caller.hasPrefix("0x") { functions.append(caller) }
            } else if words.count == 1, let plus = words[0].firstIndex(of: "+"), words[0].contains("/0x") {
                functions.append(String(words[0][..<plus]))
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
            guard let close = line.range(of: ">] ") else { return nil }
            let sym = line[close.upperBound...].split(separator: " ").first ?? ""
            return String(sym.split(separator: "+").first ?? sym)
        }
    }
}
