import Foundation
import Testing
@testable import XenctxReport

/// `xenctx-swift triage`: many cores in one run, one row each, grouped by crash signature.
struct TriageTests {
    /// A directory of links to `cases`' cores, plus `extra` files.
    func directory(_ name: String, _ cases: [String], extra: [String: String] = [:]) throws -> String {
        let dir = NSTemporaryDirectory() + "xenctx-triage-\(getpid())-\(name)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for c in cases { try FileManager.default.createSymbolicLink(atPath: "\(dir)/\(c).core", withDestinationPath: try Corpus.corePath(Corpus.named(c))) }
        for (file, text) in extra { try text.write(toFile: "\(dir)/\(file)", atomically: true, encoding: .utf8) }
        return dir
    }

    /// Every crash case of the corpus is the same crash (sysrq-c: `panic` from
    /// sysrq_handle_crash): on 5.10, 6.1 and 6.12, x86_64 PV, PVH, HVM with KASLR, 32-bit
    /// x86, arm64 with 4 and 16 KiB pages and ARM32, one signature.
    @Test func theSameCrashHasOneSignature() throws {
        let dir = try directory("same", JSONReportTests.crashCases)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Tool.run(["triage", "--json", dir], timeout: 600)
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try r.stdout.split(separator: "\n").map { try JSONDecoder().decode(TriageRow.self, from: Data($0.utf8)) }
        #expect(rows.count == JSONReportTests.crashCases.count)
        for row in rows {
            #expect(row.reason == "panic" && row.message == "Kernel panic - not syncing: sysrq triggered crash", "\(row)")
            #expect(row.frames.first == "sysrq_handle_crash", "\(row.core): \(row.frames)")
        }
        #expect(Set(rows.map(\.signature)).count == 1, "\(rows.map { "\($0.core): \($0.signature ?? "-") \($0.frames)" })")
    }

    /// Different crashes differ; a file that is no core is a row with its error, the batch
    /// goes on, and the exit status says a core failed.
    @Test func differentCrashesAndBadFiles() throws {
        let dir = try directory("mixed", ["x86-run1-lab-crash", "arm-full-a32-crash-smp-bootoops1", "x86-run9-hvm64-live"],
                                extra: ["notes.txt": "not a core\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Tool.run(["triage", dir])
        #expect(r.status == 1)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("\(dir)/notes.txt: error: ") && $0.contains("not an ELF file") }, "\(r.stdout)")
        #expect(lines.contains { $0.hasPrefix("\(dir)/x86-run9-hvm64-live.core: - running") })
        let sysrq = try #require(lines.first { $0.hasPrefix("\(dir)/x86-run1-lab-crash.core: ") })
        let oops = try #require(lines.first { $0.hasPrefix("\(dir)/arm-full-a32-crash-smp-bootoops1.core: ") })
        #expect(oops.contains(" oops ") && oops.contains("Internal error: Oops: 80000206 [#1] SMP ARM"))
        #expect(sysrq.split(separator: " ")[1] != oops.split(separator: " ")[1])
        #expect(lines.contains("signatures:"))
    }

    @Test func numbersLeaveTheMessage() {
        #expect(CrashSignature.withoutNumbers("BUG: unable to handle page fault for address: ffffc90000a3b000")
                == "BUG: unable to handle page fault for address: #")
        #expect(CrashSignature.withoutNumbers("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [sh:97]")
                == "watchdog: BUG: soft lockup - CPU# stuck for #s! [sh:#]")
        #expect(CrashSignature.of(reason: "oops", message: "Oops: 0002 [#1] SMP", frames: ["a"])
                == CrashSignature.of(reason: "oops", message: "Oops: 0004 [#2] SMP", frames: ["a"]))
        #expect(CrashSignature.of(reason: "oops", message: nil, frames: ["a"]) != CrashSignature.of(reason: "oops", message: nil, frames: ["b"]))
    }
}
