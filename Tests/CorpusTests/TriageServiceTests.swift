import Foundation
import Testing

/// The dom0 service that triages each new core (`contrib/systemd/`): its units pass
/// `systemd-analyze verify`, and its script appends one JSON line per new core, once.
struct TriageServiceTests {
    static let contrib = Corpus.root.appendingPathComponent("contrib/systemd")

    func shell(_ command: String, environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// systemd's own check of the units (the script's installed path replaced by the
    /// repository's, which verify requires to exist). Debian bookworm's systemd 252.
    @Test func unitsVerify() throws {
        let dir = NSTemporaryDirectory() + "xenctx-units-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: Self.contrib.appendingPathComponent("xenctx-triage.path").path, toPath: "\(dir)/xenctx-triage.path")
        let service = try String(contentsOf: Self.contrib.appendingPathComponent("xenctx-triage.service"), encoding: .utf8)
        #expect(service.contains("ExecStart=/usr/libexec/xenctx-swift/triage-new-cores\n"))
        try service.replacing("ExecStart=/usr/libexec/xenctx-swift/triage-new-cores", with: "ExecStart=\(Self.contrib.path)/triage-new-cores")
            .write(toFile: "\(dir)/xenctx-triage.service", atomically: true, encoding: .utf8)
        let r = try shell("systemd-analyze verify \(dir)/xenctx-triage.path \(dir)/xenctx-triage.service")
        #expect(r.status == 0, "\(r.output)")
    }

    /// Two cores and a stray file in the dump directory: three rows (the stray one with its
    /// error); a second run adds nothing; a new core adds its row.
    @Test func appendsEachNewCoreOnce() throws {
        let root = NSTemporaryDirectory() + "xenctx-service-\(getpid())"
        try? FileManager.default.removeItem(atPath: root)
        let dump = "\(root)/dump"
        try FileManager.default.createDirectory(atPath: dump, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        for c in ["x86-run1-lab-crash", "arm-tasks612-a64-crash"] {
            try FileManager.default.createSymbolicLink(atPath: "\(dump)/\(c).core", withDestinationPath: try Corpus.corePath(Corpus.named(c)))
        }
        try "junk\n".write(toFile: "\(dump)/stray", atomically: true, encoding: .utf8)
        let environment = ["XENCTX_DUMP_DIR": dump, "XENCTX_STATE_DIR": "\(root)/state", "XENCTX_JOURNAL": "\(root)/log/triage.jsonl",
                           "XENCTX_SWIFT": Tool.binary.path, "XENCTX_SETTLE_SECONDS": "0"]
        let script = Self.contrib.appendingPathComponent("triage-new-cores").path
        var r = try shell(script, environment: environment)
        #expect(r.status == 0, "\(r.output)")
        func rows() throws -> [[String: Any]] {
            try String(contentsOfFile: "\(root)/log/triage.jsonl", encoding: .utf8).split(separator: "\n")
                .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        }
        var journal = try rows()
        #expect(journal.count == 3)
        #expect(journal.filter { $0["reason"] as? String == "panic" }.count == 2)
        #expect(journal.contains { ($0["core"] as? String)?.hasSuffix("/stray") == true && $0["error"] != nil })
        r = try shell(script, environment: environment)
        let again = try rows()
        #expect(r.status == 0 && again.count == 3, "\(r.output)")
        try FileManager.default.createSymbolicLink(atPath: "\(dump)/third.core", withDestinationPath: try Corpus.corePath(Corpus.named("x86-run9-hvm64-live")))
        r = try shell(script, environment: environment)
        journal = try rows()
        #expect(r.status == 0 && journal.count == 4 && journal.last?["reason"] as? String == "running", "\(r.output)")
    }
}
