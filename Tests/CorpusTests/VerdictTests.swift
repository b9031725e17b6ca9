import Foundation
import Testing

/// The verdict (`--summary`'s first line, `verdict` in JSON) against what each guest's
/// kernel printed on its console: the panic or oops line, the CPU/PID/Comm line after it,
/// its timestamp and its taint.
struct VerdictTests {
    @Test(arguments: JSONReportTests.crashCases)
    func panicAsTheConsoleSaysIt(_ name: String) throws {
        let c = Corpus.named(name)
        let console = try c.consoleText()
        let afterTrigger = console[try #require(console.range(of: "Trigger a crash")).upperBound...]
        let panic = try #require(afterTrigger.firstMatch(of: /\[ *([0-9]+\.[0-9]+)\] (Kernel panic - not syncing: [^\n]*)/))
        let header = try #require(afterTrigger.firstMatch(of: /CPU: ([0-9]+) (?:UID: 0 )?PID: ([0-9]+) Comm: (\S+) (Not tainted|Tainted: [A-Z ]*[A-Z])/))
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--summary"])
        #expect(r.status == 0, "\(r.stderr)")
        let first = String(r.stdout.prefix { $0 != "\n" })
        let time = String(repeating: " ", count: max(0, 12 - panic.1.count)) + panic.1
        let expected = "verdict: panic on vcpu\(header.1) in \(header.3) (pid \(header.2)) at [\(time)]: \(panic.2) (\(header.4)"
        #expect(first.hasPrefix(expected), "\(name):\n\(first)\n\(expected)")
    }

    /// An oops in early boot that killed init: the oops is the reason, the panic follows it,
    /// and the taint is the oops line's, said to be from before the oops' own.
    @Test func oopsThenPanic() throws {
        let c = Corpus.named("arm-full-a32-crash-smp-bootoops1")
        let console = try c.consoleText()
        #expect(console.contains("[    1.827105] Internal error: Oops: 80000206 [#1] SMP ARM\n"))
        #expect(console.contains("[    1.828058] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-50-armmp-lpae"))
        #expect(console.contains("[    1.949459] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n"))
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let v = try #require(doc["verdict"] as? [String: Any])
        #expect(v["reason"] as? String == "oops")
        #expect(v["message"] as? String == "Internal error: Oops: 80000206 [#1] SMP ARM")
        #expect(v["panic"] as? String == "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b")
        #expect(v["vcpu"] as? Int == 0 && v["pid"] as? Int == 1 && v["comm"] as? String == "swapper/0")
        #expect(v["taint"] as? String == "Not tainted" && v["taintFrom"] as? String == "log")
        #expect(abs((v["time"] as? Double ?? 0) - 1.827105) < 1e-6)
    }

    /// Guests dumped while running: nothing in the log or on the vCPUs says they stopped.
    @Test(arguments: ["x86-run9-hvm64-live", "x86-run4-pvh-live"])
    func runningGuest(_ name: String) throws {
        let c = Corpus.named(name)
        let console = try c.consoleText()
        #expect(!console.contains("Kernel panic") && !console.contains("Oops") && !console.contains("BUG: "))
        let r = try Tool.run(["--core", try Corpus.corePath(c), "--summary"])
        let first = String(r.stdout.split(separator: "\n").first ?? "")
        #expect(first.hasPrefix("verdict: running: no panic, oops, BUG, lockup, hung-task or OOM record in the log, and no vCPU in panic or oops (Not tainted); dumped at "), "\(r.stdout)")
        // A running guest's uptime is at least its log's last record's time.
        let up = try #require(first.firstMatch(of: /, up ([0-9]+) s$/)).1
        let last = try #require(try Tool.run(["--core", try Corpus.corePath(c), "--log"]).stdout.split(separator: "\n").last?.firstMatch(of: /^\[ *([0-9]+)\./)).1
        #expect(Int(up)! >= Int(last)!, "\(first)")
    }
}
