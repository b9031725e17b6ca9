import Foundation
import Synchronization
import Testing

/// The libxenctrl stand-in (`Tests/XenStandIn/xenstandin.c`), built once per test run, and
/// corpus cores served through it as live domains.
enum XenStandIn {
    static let source = Corpus.root.appendingPathComponent("Tests/XenStandIn/xenstandin.c")
    static let directory = Corpus.root.appendingPathComponent(".build/xen-standin")
    private static let built = Mutex<Result<String, StandInError>?>(nil)

    struct StandInError: Error, CustomStringConvertible { let description: String }

    /// The folder holding the stand-in under the names the live bridge loads.
    static func libraryDirectory() throws -> String {
        try built.withLock { cached in
            if let cached { return try cached.get() }
            let result = Result { () throws(StandInError) -> String in try build() }
            cached = result
            return try result.get()
        }
    }

    private static func build() throws(StandInError) -> String {
        let dir = directory.path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let object = dir + "/libxenstandin.so"
        var why = ""
        // The Swift toolchain brings clang; cc is the fallback. Warnings are errors: the
        // stand-in is built against Xen's own headers so every prototype is checked.
        for compiler in ["clang", "cc"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [compiler, "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o", object + ".new", source.path]
            let err = Pipe()
            p.standardError = err
            do { try p.run() } catch { why += "\(compiler): \(error)\n"; continue }
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            if p.terminationStatus == 0 {
                rename(object + ".new", object)
                for name in ["libxenctrl.so.4.17", "libxenforeignmemory.so.1", "libxenguest.so.4.17"] {
                    unlink(dir + "/" + name)
                    symlink("libxenstandin.so", dir + "/" + name)
                }
                return dir
            }
            why += "\(compiler): \(message)\n"
        }
        throw StandInError(description: "cannot build the Xen stand-in:\n\(why)")
    }

    /// A folder holding the stand-in under `names` only (a dom0 with another Xen release's
    /// sonames, or with none of Xen's libraries).
    static func libraryDirectory(named names: [String]) throws -> String {
        let standIn = try libraryDirectory() + "/libxenstandin.so"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xen-libs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for name in names { symlink(standIn, dir + "/" + name) }
        return dir
    }

    /// A corpus core served as domain 1.
    struct Domain {
        let caseName: String
        let core: String
        var environment: [String: String] = [:]

        init(_ caseName: String, file: String? = nil) throws {
            let c = Corpus.named(caseName)
            self.caseName = caseName
            core = try Corpus.corePath(c, file: file)
            // What a core lacks and Xen's HVM save record of the same moment holds.
            if let hvm = try? String(contentsOf: c.dir.appendingPathComponent("xen-hvmctx.txt"), encoding: .utf8) {
                environment["XENSTANDIN_HVM_CPU"] = "\(try Self.field("efer", in: hvm)):\(try Self.field("cr0", in: hvm))"
            }
        }

        /// The first `NAME 0xHEX` of xen-hvmctx's text (vCPU 0's CPU record comes first).
        static func field(_ name: String, in text: String) throws -> String {
            let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            let i = try #require(words.firstIndex { $0 == name }, "\(name) in xen-hvmctx.txt")
            return String(words[i + 1].dropFirst(2))
        }

        struct Run {
            let result: Tool.Result
            let events: [String]

            /// The controller pause count after the run, from the stand-in's own log.
            var pauseCount: Int {
                events.last { $0.hasPrefix("pause ") || $0.hasPrefix("unpause ") }
                    .flatMap { Int($0.split(separator: " ").last!) } ?? 0
            }
            var pauses: Int { events.filter { $0.hasPrefix("pause ") }.count }
            /// The pages of each `event` ("map", "unmap") made while the domain was paused, in order.
            func whilePaused(_ event: String) -> [Int] { sizes(of: event) { paused, _ in paused } }
            /// The same, made before the first pause.
            func beforePause(_ event: String) -> [Int] { sizes(of: event) { _, pausedYet in !pausedYet } }

            private func sizes(of event: String, where keep: (_ paused: Bool, _ pausedYet: Bool) -> Bool) -> [Int] {
                var paused = false, pausedYet = false, sizes: [Int] = []
                for e in events {
                    if e.hasPrefix("pause ") { paused = true; pausedYet = true } else if e.hasPrefix("unpause ") { paused = e != "unpause 0" }
                    else if keep(paused, pausedYet), e.hasPrefix(event + " "), let n = Int(e.dropFirst(event.count + 1)) { sizes.append(n) }
                }
                return sizes
            }
            /// Whether the domain was written or an unbalanced unpause was attempted.
            var misbehaved: [String] { events.filter { $0.hasPrefix("write-mapping") || $0.hasPrefix("unpause of") } }
        }

        /// The environment that serves this domain through the stand-in, logging to `log`.
        func environment(log: String, _ extra: [String: String] = [:]) throws -> [String: String] {
            var env = environment
            env["XENCTX_XEN_LIBDIR"] = try libraryDirectory()
            env["XENSTANDIN_CORE"] = core
            env["XENSTANDIN_LOG"] = log
            return env.merging(extra) { $1 }  // a test's own value wins (another library folder)
        }

        /// A fresh path for the stand-in's event log.
        static func newLog() -> String {
            FileManager.default.temporaryDirectory.appendingPathComponent("standin-\(UUID().uuidString).log").path
        }

        /// The stand-in's events so far, one per line.
        static func events(_ log: String) -> [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        /// Runs xenctx-swift on domain 1 (`{domid}` in `args` becomes 1) through the stand-in.
        func run(_ args: [String], environment extra: [String: String] = [:], timeout: Double = 120) throws -> Run {
            let log = Self.newLog()
            defer { unlink(log) }
            let result = try Tool.run(args.map { $0 == "{domid}" ? "1" : $0 }, timeout: timeout, environment: try environment(log: log, extra))
            return Run(result: result, events: Self.events(log))
        }

        /// Starts xenctx-swift on domain 1 holding its pause, sends `signal` once the stand-in
        /// has been paused, and returns how it ended and the stand-in's log.
        func interrupted(by signal: Int32, args: [String]) throws -> (reason: Process.TerminationReason, status: Int32, run: Run) {
            let log = Self.newLog()
            defer { unlink(log) }
            let p = Process()
            p.executableURL = Tool.binary
            p.arguments = args
            p.environment = ProcessInfo.processInfo.environment.merging(
                try environment(log: log, ["XENCTX_SWIFT_HOLD_PAUSE_MS": "30000"])) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let deadline = Date().addingTimeInterval(30)
            while !Self.events(log).contains("pause 1") && p.isRunning && Date() < deadline { usleep(10_000) }
            kill(p.processIdentifier, signal)
            let killer = DispatchWorkItem { kill(p.processIdentifier, SIGKILL) }
            DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: killer)
            p.waitUntilExit()
            killer.cancel()
            return (p.terminationReason, p.terminationStatus,
                    Run(result: Tool.Result(stdout: "", stderr: "", status: p.terminationStatus), events: Self.events(log)))
        }
    }
}
