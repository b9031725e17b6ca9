import Foundation
import Testing

/// A guest kernel without BTF (Debian's armmp: arm-full-a32-crash) and no --vmlinux: its
/// vmlinux is asked of debuginfod by the build id VMCOREINFO gives, from a real `debuginfod`
/// server (Debian's package) that the test starts on 127.0.0.1, serving a directory with a
/// small kernel-like ARM ELF built here with that build id and a `struct task_struct` in
/// its DWARF. The real -dbg vmlinux served the same way is a lab check (corpus/lab/).
@Suite(.serialized)
struct DebuginfodTests {
    static let caseName = "arm-full-a32-crash"
    static let buildID = "45842c3f98264c16cd311fa5fe49fed7c6e00b2c"   // its VMCOREINFO's BUILD-ID

    /// A server on a free port over `dir`, stopped by the caller.
    final class Server {
        let process = Process()
        let url: String
        init(serving dir: URL, database: URL) throws {
            var port = 0
            // A port nobody listens on: bind, read it back, close (the server binds it next).
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
            port = Int(UInt16(bigEndian: addr.sin_port))
            close(s)
            url = "http://127.0.0.1:\(port)"
            process.executableURL = URL(fileURLWithPath: "/usr/bin/debuginfod")
            process.arguments = ["-F", dir.path, "-p", String(port), "-d", database.path, "-t", "1"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
        }
        // SIGKILL: debuginfod may take long to end its scanning threads on SIGTERM.
        deinit { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    static func kernelLikeELF(in dir: URL, buildID: String) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let c = dir.appendingPathComponent("k.c"), s = dir.appendingPathComponent("note.S")
        try "struct task_struct { long state; int pid; int tgid; char comm[16]; };\nstruct task_struct init_task;\nint _start(void) { return init_task.pid; }\n"
            .write(to: c, atomically: true, encoding: .utf8)
        try ".section .note.Linux, \"a\"\n.balign 4\n.long 6, 4, 0x100\n.asciz \"Linux\"\n.balign 4\n.long 0\n.section .note.GNU-stack, \"\"\n"
            .write(to: s, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["arm-linux-gnueabihf-gcc", "-g", "-nostdlib", "-static", "-Wl,--build-id=0x\(buildID)",
                       "-o", dir.appendingPathComponent("vmlinux").path, c.path, s.path]
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "arm-linux-gnueabihf-gcc could not build the test ELF")
        try FileManager.default.removeItem(at: c)
        try FileManager.default.removeItem(at: s)
    }

    static func scratch(_ name: String) throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-debuginfod-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: d)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    /// The tool with the server's URL and an empty cache of its own, until the server has
    /// indexed its directory (it scans in the background: at most 30 s).
    static func runUntilServed(_ args: [String], server: Server, cache: URL, until done: (Tool.Result) -> Bool) throws -> Tool.Result {
        var r: Tool.Result
        let start = Date()
        repeat {
            try? FileManager.default.removeItem(at: cache)
            r = try Tool.run(args, environment: ["DEBUGINFOD_URLS": server.url, "DEBUGINFOD_CACHE_PATH": cache.path, "DEBUGINFOD_TIMEOUT": "10"])
            if done(r) { return r }
            usleep(300_000)
        } while Date().timeIntervalSince(start) < 30
        return r
    }

    @Test func vmlinuxOfTheGuestsBuildIsFetched() throws {
        let dir = try Self.scratch("fetch")
        try Self.kernelLikeELF(in: dir.appendingPathComponent("served"), buildID: Self.buildID)
        let server = try Server(serving: dir.appendingPathComponent("served"), database: dir.appendingPathComponent("db.sqlite"))
        let core = try Corpus.corePath(Corpus.named(Self.caseName))
        let r = try Self.runUntilServed(["--core", core, "--describe", "-l", "0"], server: server, cache: dir.appendingPathComponent("cache")) {
            $0.stderr.contains("debuginfod gave (")
        }
        #expect(r.stderr.contains("note: the guest kernel has no BTF: its types and source lines come from the vmlinux of build id \(Self.buildID) that debuginfod gave ("), "\(r.stderr)")
        #expect(r.stdout.contains("(DWARF): task_struct.pid at +4, tgid at +8, comm at +12"), "\(r.stdout)")
        // It lies in the client's cache, where the next run finds it without asking.
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("cache/\(Self.buildID)/debuginfo").path))
    }

    /// A server that has no file of that build id: a warning naming it, exit status 1.
    @Test func aServerWithoutItIsAWarning() throws {
        let dir = try Self.scratch("missing")
        let other = "00112233445566778899aabbccddeeff00112233"
        try Self.kernelLikeELF(in: dir.appendingPathComponent("served"), buildID: other)
        let server = try Server(serving: dir.appendingPathComponent("served"), database: dir.appendingPathComponent("db.sqlite"))
        let core = try Corpus.corePath(Corpus.named(Self.caseName))
        // First wait until the server answers for the file it has, so that "not found" is its answer.
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/debuginfod-find")
        probe.arguments = ["debuginfo", other]
        probe.environment = ["DEBUGINFOD_URLS": server.url, "DEBUGINFOD_CACHE_PATH": dir.appendingPathComponent("probe").path]
        probe.standardOutput = FileHandle.nullDevice; probe.standardError = FileHandle.nullDevice
        var served = false
        for _ in 0..<100 where !served {
            // The client remembers a miss in its cache: each try starts from an empty one.
            try? FileManager.default.removeItem(at: dir.appendingPathComponent("probe"))
            let p = Process()
            p.executableURL = probe.executableURL; p.arguments = probe.arguments; p.environment = probe.environment
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            try p.run(); p.waitUntilExit()
            served = p.terminationStatus == 0
            if !served { usleep(300_000) }
        }
        try #require(served, "the test's debuginfod never served its file")
        let r = try Tool.run(["--core", core, "--describe", "-l", "0"],
                             environment: ["DEBUGINFOD_URLS": server.url, "DEBUGINFOD_CACHE_PATH": dir.appendingPathComponent("cache").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("warning: the guest kernel has no BTF, and debuginfod gave no vmlinux for it: build id \(Self.buildID): "), "\(r.stderr)")
    }

    /// Nothing is asked when DEBUGINFOD_URLS is unset or empty, or when the guest has BTF.
    @Test func nothingIsAskedWithoutURLsOrWithBTF() throws {
        let a32 = try Corpus.corePath(Corpus.named(Self.caseName))
        let unset = try Tool.run(["--core", a32, "--describe", "-l", "0"], environment: ["DEBUGINFOD_URLS": " "])
        #expect(!unset.stderr.contains("debuginfod"), "\(unset.stderr)")
        // A URL where no server listens: a guest with BTF never gets as far as asking it.
        let x86 = try Corpus.corePath(Corpus.named("x86-run1-lab-crash"))
        let btf = try Tool.run(["--core", x86, "--describe", "-l", "0"], environment: ["DEBUGINFOD_URLS": "http://127.0.0.1:9"])
        #expect(btf.status == 0 && !btf.stderr.contains("debuginfod"), "\(btf.stderr)")
    }
}
