import Foundation
import Synchronization
import Testing

/// The real cases in corpus/: their files, and decompressed copies in a cache.
///
/// Cores and maps are stored xz-compressed; the first test that needs one decompresses it
/// (sparse, with `xz -dc`) into `.build/corpus-cache/` (or `$XENCTX_CORPUS_CACHE`).
enum Corpus {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let corpus = root.appendingPathComponent("corpus")
    static let cache: URL = {
        if let dir = ProcessInfo.processInfo.environment["XENCTX_CORPUS_CACHE"] { return URL(fileURLWithPath: dir) }
        return root.appendingPathComponent(".build/corpus-cache")
    }()

    struct UpstreamRun: Sendable, CustomStringConvertible {
        let caseName: String
        let args: [String]
        let stdoutFile: String
        var description: String { "\(caseName): xenctx \(args.joined(separator: " "))" }
    }

    struct Case: Sendable {
        let name: String
        let arch: String
        let kernel: String
        let core: String
        /// `has_ram` is true, false, or a sentence (partial/truncated cores).
        let hasRAM: Bool
        let upstream: [UpstreamRun]
        /// `running: true` in case.json: a guest inspected while it ran (no crash, so its
        /// console holds no panic backtrace).
        var running = false
        var dir: URL { corpus.appendingPathComponent("cases/\(name)") }
        var isARM: Bool { arch == "a64" || arch == "a32" }
        /// The guest's console, its serial consoles' CRLF line ends made "\n": Swift takes
        /// "\r\n" as one Character, which `split(separator: "\n")` does not split.
        func consoleText() throws -> String {
            try String(contentsOf: dir.appendingPathComponent("console.log"), encoding: .utf8).replacingOccurrences(of: "\r\n", with: "\n")
        }
        /// How an exact trace of this kernel marks its frames: ORC on x86_64, frame pointers
        /// on 32-bit x86, frame records on AArch64, EHABI tables on ARM32.
        var exactMethodTag: String { ["a64", "x86"].contains(arch) ? " (fp)\n" : arch == "a32" ? " (exidx)\n" : " (orc)\n" }
    }

    static let cases: [Case] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: corpus.appendingPathComponent("cases").path)) ?? []
        return names.sorted().compactMap { name in
            let url = corpus.appendingPathComponent("cases/\(name)/case.json")
            guard let data = try? Data(contentsOf: url),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            let runs = (json["upstream"] as? [[String: Any]] ?? []).map {
                UpstreamRun(caseName: name, args: $0["args"] as? [String] ?? [], stdoutFile: $0["stdout"] as? String ?? "")
            }
            return Case(name: name, arch: json["arch"] as? String ?? "", kernel: json["kernel"] as? String ?? "",
                        core: json["core"] as? String ?? "", hasRAM: (json["has_ram"] as? Bool) == true, upstream: runs,
                        running: (json["running"] as? Bool) == true)
        }
    }()

    static func named(_ name: String) -> Case { cases.first { $0.name == name }! }

    private static let decompressLock = Mutex(())

    /// The decompressed copy of a `.xz` file, made once.
    static func decompressed(_ xz: URL, as name: String) throws -> String {
        try decompressLock.withLock { _ in
            let out = cache.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: out.path) { return out.path }
            try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
            let tmp = out.path + ".partial"
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "xz -dc \"$0\" > \"$1\"", xz.path, tmp]
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: xz.path]) }
            try FileManager.default.moveItem(atPath: tmp, toPath: out.path)
            return out.path
        }
    }

    static func corePath(_ c: Case, file: String? = nil) throws -> String {
        let f = file ?? c.core
        return try decompressed(c.dir.appendingPathComponent(f), as: "\(c.name)/\(f.replacingOccurrences(of: ".xz", with: ""))")
    }

    static func mapPath(_ c: Case) throws -> String {
        try decompressed(corpus.appendingPathComponent("maps/\(c.kernel).System.map.xz"), as: "maps/\(c.kernel).System.map")
    }

    static func upstreamText(_ run: UpstreamRun) throws -> String {
        try String(contentsOf: named(run.caseName).dir.appendingPathComponent(run.stdoutFile), encoding: .utf8)
    }
}

/// Runs the built xenctx-swift.
enum Tool {
    static let binary: URL = {
        // Test bundles and executables share the build products directory.
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("xenctx-swift")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return Corpus.root.appendingPathComponent(".build/debug/xenctx-swift")
    }()

    struct Result { let stdout: String; let stderr: String; let status: Int32 }

    /// Runs the tool; one that has not ended after `timeout` seconds is killed (SIGKILL,
    /// status 9), so a regression that blocks (on a FIFO, say) fails instead of hanging.
    static func run(_ args: [String], timeout: Double = 120, environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        // debuginfod is asked only by the tests that start their own server.
        var inherited = ProcessInfo.processInfo.environment
        inherited["DEBUGINFOD_URLS"] = nil
        p.environment = inherited.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let pid = p.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        defer { watchdog.cancel() }
        // Read both pipes to the end before waiting, so a large report cannot block the child.
        let errData = Mutex(Data())
        let reader = Thread { errData.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() } }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while reader.isExecuting || !reader.isFinished { usleep(1000) }
        let result = Result(stdout: String(decoding: outData, as: UTF8.self),
                            stderr: errData.withLock { String(decoding: $0, as: UTF8.self) }, status: p.terminationStatus)
        // Whatever a test feeds the tool, nothing it prints may drive a terminal.
        #expect(!HostileInputTests.hasRawControl(result.stdout + result.stderr), "raw control bytes in the output of \(args)")
        return result
    }

    /// Upstream arguments for a case, with the domain replaced by `--core FILE`.
    static func arguments(for run: Corpus.UpstreamRun) throws -> [String] {
        try arguments(run.args, of: run.caseName)
    }

    /// `args` with `{map}` made the case's map and `{domid}` its core (`--core FILE`), or
    /// `liveDomain` when the case is served as a live domain.
    static func arguments(_ args: [String], of caseName: String, liveDomain: String? = nil) throws -> [String] {
        let c = Corpus.named(caseName)
        return try args.flatMap { a -> [String] in
            switch a {
            case "{domid}": return try liveDomain.map { [$0] } ?? ["--core", try Corpus.corePath(c)]
            case "{map}": return [try Corpus.mapPath(c)]
            default: return [a]
            }
        }
    }
}
