import ArgumentParser
import Foundation
import SafeFile
import XenctxReport

/// `xenctx-swift triage PATH…`: many cores at once, one row each, then the rows grouped by
/// crash signature. Cores are read in parallel (one per CPU); a core that cannot be read is
/// a row with its error and does not stop the batch.
struct TriageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xenctx-swift triage",
        abstract: "Triage many cores: each core's kernel, verdict and crash signature, then the cores grouped by signature.",
        discussion: """
        PATH is a core or a directory of cores (its regular files, not its subdirectories; \
        xl writes cores to /var/lib/xen/dump). Everything comes from the guest itself: no symbol \
        file is taken. The signature hashes the verdict's reason, the kernel's message with its \
        numbers taken out and the crashing vCPU's top five reliable frames (panic and backtrace \
        helpers skipped, offsets and compiler suffixes dropped): the same crash has the same \
        signature across boots, KASLR offsets and rebuilds.

        Exit status: 0 every core read; 1 some core could not be read or says nothing; 64 usage error.
        """)

    @Argument(help: ArgumentHelp("Cores, or directories of cores.", valueName: "PATH"))
    var paths: [String]

    @Flag(name: .customLong("json"), help: "One JSON object per core (JSON lines) instead of the table.")
    var json = false

    @Option(name: .customLong("jobs"), help: ArgumentHelp("Cores read at once (default: the number of CPUs).", valueName: "N"))
    var jobs: Int?

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one core or directory") }
        if let jobs, !(1...256).contains(jobs) { throw ValidationError("--jobs \(jobs): needs to be 1 to 256") }
    }

    /// The cores named: files as given, directories' regular files sorted by name.
    func cores() -> [String] {
        var out: [String] = []
        for p in paths {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDirectory), isDirectory.boolValue {
                let names = ((try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []).sorted()
                for n in names {
                    let full = (p as NSString).appendingPathComponent(n)
                    var sub: ObjCBool = false
                    if FileManager.default.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue { out.append(full) }
                }
            } else {
                out.append(p)
            }
        }
        return out
    }

    func run() throws {
        let cores = cores()
        let width = min(jobs ?? ProcessInfo.processInfo.activeProcessorCount, max(1, cores.count))
        let rows = Self.analyse(cores, jobs: width)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for row in rows { writeStdout(String(decoding: try encoder.encode(row), as: UTF8.self) + "\n") }
        } else {
            writeStdout(Self.table(rows))
        }
        if rows.contains(where: { $0.error != nil }) { throw CommandFailure.partial }
    }

    /// Each core analysed on one of `jobs` threads, in the order given.
    static func analyse(_ cores: [String], jobs: Int) -> [TriageRow] {
        let results = TriageResults(count: cores.count)
        DispatchQueue.concurrentPerform(iterations: jobs) { worker in
            var i = worker
            while i < cores.count {
                results.set(i, TriageRow.analyse(path: cores[i]))
                i += jobs
            }
        }
        return results.rows
    }

    static func table(_ rows: [TriageRow]) -> String {
        var s = ""
        for r in rows {
            if let e = r.error, r.signature == nil {
                s += "\(r.core): error: \(e)\n"
                continue
            }
            s += "\(r.core): \(r.signature ?? "-") \(r.reason ?? "-")"
            s += r.kernel.map { " Linux \($0)" } ?? ""
            s += r.vcpu.map { " vcpu\($0)" } ?? ""
            s += r.task.map { " \($0)" } ?? ""
            s += r.message.map { ": \($0)" } ?? ""
            s += r.frames.isEmpty ? "" : " [\(r.frames.joined(separator: " ← "))]"
            s += r.error.map { " (\($0))" } ?? ""
            s += "\n"
        }
        var groups: [String: [TriageRow]] = [:]
        for r in rows { if let sig = r.signature { groups[sig, default: []].append(r) } }
        guard !groups.isEmpty else { return s }
        s += "\nsignatures:\n"
        for (sig, members) in groups.sorted(by: { ($0.value.count, $1.key) > ($1.value.count, $0.key) }) {
            let first = members[0]
            s += "\(sig) \(members.count) core\(members.count == 1 ? "" : "s"): \(first.reason ?? "-")\(first.message.map { ": \($0)" } ?? "")"
            s += first.frames.isEmpty ? "" : " [\(first.frames.joined(separator: " ← "))]"
            s += "\n"
        }
        return s
    }
}

/// The rows, written by the workers (each to its own index).
final class TriageResults: @unchecked Sendable {
    private var storage: [TriageRow?]
    private let lock = NSLock()
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ row: TriageRow) { lock.lock(); storage[i] = row; lock.unlock() }
    var rows: [TriageRow] { lock.lock(); defer { lock.unlock() }; return storage.compactMap { $0 } }
}
