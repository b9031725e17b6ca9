import Foundation
import Testing
import VCPUContext

/// The live path (`xenctx-swift DOMID`, `--save-core`) run against real corpus cores served
/// by the libxenctrl stand-in, for every guest kind: ARM32, AArch64, x86_64 PV, PVH (running, and crashed with a vCPU down) and HVM, 32-bit x86 HVM.
///
/// The stand-in speaks Xen's library interface (the headers' prototypes, errno and per-frame
/// error conventions) but is not Xen: these tests prove our logic against that interface;
/// `Scripts/lab-check.sh` (corpus/lab/) is the proof against a real hypervisor.
struct LiveStandInTests {
    /// One case of each guest kind, with guest RAM.
    static let kinds = ["arm-full-a32-crash", "arm-full-a64-crash", "x86-run1-lab-crash", "x86-run4-pvh-live", "x86-run7-hvm64-boot", "x86-run8-hvm32-crash",
                        "x86-run9-pvh64-crash"]

    struct Invocation: Sendable, CustomStringConvertible {
        let caseName: String
        let args: [String]
        var description: String { "\(caseName): \(args.joined(separator: " "))" }
    }

    /// The stored upstream option sets of each kind's case, plus the views upstream lacks.
    static let invocations: [Invocation] = kinds.flatMap { name -> [Invocation] in
        let c = Corpus.named(name)
        let stored = c.upstream.map { Invocation(caseName: name, args: $0.args) }
        let ours = [["-C", "{domid}"], ["--log", "{domid}"], ["--tasks", "{domid}"], ["--summary", "{domid}"], ["-C", "-n", "2", "-l", "MAX", "{domid}"]]
            .map { Invocation(caseName: name, args: $0) }
        return stored + ours
    }

    /// The same report live as from the core: stdout, stderr and exit status; the pause
    /// balanced, no mapping asked for writing.
    @Test(arguments: invocations)
    func liveEqualsCore(_ i: Invocation) throws {
        let domain = try XenStandIn.Domain(i.caseName)
        let live = try domain.run(try Tool.arguments(i.args, of: i.caseName, liveDomain: "1"))
        let core = try Tool.run(try Tool.arguments(i.args, of: i.caseName))
        #expect(live.result.stdout == core.stdout, "\(i)\n\(UpstreamEqualityTests.diff(core.stdout, live.result.stdout))")
        #expect(live.result.status == core.status, "\(i): live \(live.result.status), core \(core.status): \(live.result.stderr)")
        #expect(Self.errorLines(live.result.stderr) == Self.errorLines(core.stderr), "\(i)")
        #expect(live.pauses == 1 && live.pauseCount == 0, "\(i): \(live.events)")
        #expect(live.misbehaved.isEmpty, "\(i): \(live.misbehaved)")
    }

    /// Warnings name where a page was missing in each source's own words ("not in the
    /// core" against "cannot be mapped"); what they are about must be the same.
    static func errorLines(_ stderr: String) -> [String] {
        stderr.split(separator: "\n").map { line in
            var l = String(line)
            if let r = l.range(of: ": frame 0x") { l = String(l[..<r.lowerBound]) }
            return l
        }
    }

    /// A text report pauses only to copy the vCPUs' stack pages. Before pausing, a walk on the
    /// running domain's contexts maps them (and the page tables on the way) and keeps the
    /// mappings open, so in the pause they are copied with no call, and nothing is unmapped
    /// until it ends (on ARM an unmap is a hypercall per page). The stand-in's domain does
    /// not change, so the walk ahead finds every page the pause needs.
    @Test(arguments: kinds)
    func pauseCopiesStacksWithoutCalls(_ name: String) throws {
        let domain = try XenStandIn.Domain(name)
        let run = try domain.run(["--describe", "-C", "1"])
        #expect(run.result.status == 0 && run.pauses == 1 && run.pauseCount == 0)
        #expect(run.whilePaused("map").isEmpty && run.whilePaused("unmap").isEmpty, "\(name): \(run.events)")
        // Ahead: one call per page-table level (at most 5, all vCPUs together), one for the stacks.
        let ahead = run.beforePause("map")
        #expect(!ahead.isEmpty && ahead.count <= 6, "\(name): \(ahead)")
        // --describe says what the stand-in saw.
        #expect(run.result.stdout.contains(" pages copied with 0 new mappings, the copy took "), "\(name)")
        #expect(run.result.stdout.contains("; \(ahead.reduce(0, +)) pages were mapped before it in \(ahead.count) mappings"), "\(name): \(ahead)")
    }

    /// A domain whose memory changes between the walk ahead and the pause (the stand-in shows
    /// every page complemented until the pause, and the mappings still open true from then):
    /// the walk ahead follows garbage, the pause maps what it missed in a few calls, and the
    /// report is the unchanged domain's. Nothing read before the pause reaches the report.
    @Test(arguments: kinds)
    func pauseForgetsWhatTheRunningDomainShowed(_ name: String) throws {
        let domain = try XenStandIn.Domain(name)
        let plain = try domain.run(["-C", "1"])
        let changed = try domain.run(["-C", "1"], environment: ["XENSTANDIN_CHANGES_AT_PAUSE": "1"])
        #expect(changed.result.status == plain.result.status && changed.pauses == 1 && changed.pauseCount == 0)
        #expect(changed.result.stdout == plain.result.stdout, "\(UpstreamEqualityTests.diff(plain.result.stdout, changed.result.stdout))")
        #expect(changed.result.stderr == plain.result.stderr)
        let maps = changed.whilePaused("map")
        #expect(!maps.isEmpty && maps.count <= 6, "\(name): \(maps)")
        #expect(changed.whilePaused("unmap").isEmpty, "\(name): \(changed.events)")
    }

    /// `--save-core` of each kind, read back with `--core`, gives the live report; an ARM
    /// core (written by us, since xl's ARM writer saves no RAM) equals byte for byte the
    /// complete core the lab's writer made of the same domain.
    @Test(arguments: kinds + ["arm-full-a32-crash-smp-bootoops1", "arm-tasks-a64-crash"])
    func saveCoreReadsBackTheSame(_ name: String) throws {
        let domain = try XenStandIn.Domain(name)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("savecore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let saved = dir.appendingPathComponent("saved.core").path
        let save = try domain.run(["--save-core", saved, "1"])
        #expect(save.result.status == 0, "\(save.result.stderr)")
        #expect(save.result.stderr.contains("saved ") && save.result.stderr.contains("pages of domain 1 to \(saved)"))
        #expect(save.pauses == 1 && save.pauseCount == 0 && save.misbehaved.isEmpty, "\(save.events)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["saved.core"], "no partial file left")

        let live = try domain.run(["-C", "--tasks", "1"])
        let readBack = try Tool.run(["-C", "--tasks", "--core", saved])
        #expect(readBack.status == live.result.status)
        #expect(readBack.stdout == live.result.stdout, "\(UpstreamEqualityTests.diff(live.result.stdout, readBack.stdout))")
        if Corpus.named(name).isARM {
            #expect(FileManager.default.contentsEqual(atPath: saved, andPath: domain.core), "\(name): the saved core differs from the lab's")
        } else if name == "x86-run4-pvh-live" {
            // PVH is written by our batched writer, not xl's: the same frames, pages and contexts
            // as xl's core (which also has a `.xen_shared_info` page and invalid trailing slots).
            let ours = try XenCore(path: saved), xl = try XenCore(path: domain.core)
            let ourFrames = CoreFrames(core: ours), xlFrames = CoreFrames(core: xl)
            let valid = xlFrames.slots().enumerated().filter { $0.element.pfn != XenCoreLayout.invalidFrame }
            #expect(ourFrames.slots().map(\.pfn) == valid.map(\.element.pfn))
            let differing = zip(0..<ourFrames.availableCount, valid).filter { mine, theirs in
                !ourFrames.page(slot: mine).elementsEqual(xlFrames.page(slot: theirs.offset))
            }
            #expect(differing.isEmpty, "\(differing.count) pages differ")
            for entry in 0..<xl.vcpuEntryCount {
                #expect(ours.contextBytes(entry: entry)?.bytes == xl.contextBytes(entry: entry)?.bytes)
            }
        }
        // An existing file is kept unless --force.
        let again = try domain.run(["--save-core", saved, "1"])
        #expect(again.result.status == 2 && again.result.stderr.contains("--force") && again.pauseCount == 0)
        let forced = try domain.run(["--save-core", saved, "--force", "1"])
        #expect(forced.result.status == 0)
    }

    /// `--save-core FILE --trim`: the views run on the paused domain and the core keeps what
    /// they read (ARM and PVH written from the live copies; PV trimmed from libxenguest's whole
    /// core, written beside FILE and removed): read back, the report is the live one.
    @Test(arguments: ["arm-full-a64-crash", "x86-run4-pvh-live", "x86-run1-lab-crash"])
    func trimmedSaveReadsBackTheSame(_ name: String) throws {
        let domain = try XenStandIn.Domain(name)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("savecore-trim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let saved = dir.appendingPathComponent("saved.core").path
        let save = try domain.run(["--save-core", saved, "--trim", "1"])
        #expect(save.result.status == 0, "\(save.result.stderr)")
        #expect(save.result.stderr.contains("pages (trimmed to what the views read) of domain 1 to \(saved)"), "\(save.result.stderr)")
        #expect(save.pauses == 1 && save.pauseCount == 0 && save.misbehaved.isEmpty, "\(save.events)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["saved.core"], "no partial or whole file left")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: saved)[.size] as? Int)
        #expect(size < 20 << 20, "\(size) bytes")
        for args in [["-C", "--tasks"], ["--log"], ["--summary"]] {
            let live = try domain.run(args + ["1"])
            let readBack = try Tool.run(args + ["--core", saved])
            #expect(readBack.status == live.result.status)
            #expect(readBack.stdout == live.result.stdout, "\(args): \(UpstreamEqualityTests.diff(live.result.stdout, readBack.stdout))")
        }
        #expect(try Tool.run(["--core", saved, "--describe", "-C"]).stdout.contains("# trimmed by xenctx-swift: the pages read by: "))
        #expect(try Tool.run(["--trim", "1"]).status == 64)
    }

    struct Failure: Sendable, CustomStringConvertible {
        let caseName: String
        let args: [String]
        let environment: [String: String]
        let status: Int32
        let message: String
        var description: String { "\(caseName) \(environment) \(args.joined(separator: " "))" }
    }

    /// Each injected failure: one clear message, its exit status, the pause undone, no crash.
    static let failures: [Failure] = ["x86-run1-lab-crash", "arm-full-a64-crash"].flatMap { name -> [Failure] in [
        Failure(caseName: name, args: ["-C", "1"], environment: ["XENSTANDIN_FAIL": "xc_interface_open"], status: 2,
                message: "cannot open the Xen control interface: Input/output error"),
        Failure(caseName: name, args: ["-C", "1"], environment: ["XENSTANDIN_FAIL": "xc_domain_pause"], status: 2,
                message: "pausing domain 1 failed: Input/output error"),
        // Both domains have 2 vCPUs, whose contexts are read once before the pause (what fails
        // then only costs the walk ahead) and again in it: the 4th call is vCPU 1's in the pause.
        Failure(caseName: name, args: ["-C", "1"], environment: ["XENSTANDIN_FAIL": "xc_vcpu_getcontext@4"], status: 2,
                message: "getting vCPU 1's context failed: Input/output error"),
        Failure(caseName: name, args: ["-C", "7"], environment: [:], status: 2, message: "no domain with id 7 (see `xl list`)"),
        // Mappings that fail after the first few frames: the report says which page it could not read.
        Failure(caseName: name, args: ["-C", "1"], environment: ["XENSTANDIN_FAIL": "xenforeignmemory_map@4"], status: 1,
                message: "cannot be mapped: Input/output error"),
        Failure(caseName: name, args: ["-C", "1"], environment: ["XENSTANDIN_MAP_FAIL_AFTER": "3"], status: 1,
                message: "cannot be mapped: Bad address"),
        // The domain is destroyed while the tool runs.
        Failure(caseName: name, args: ["-C", "1"], environment: ["XENSTANDIN_VANISH_AFTER": "3"], status: 2,
                message: "domain 1 went away while it was being read"),
        Failure(caseName: name, args: ["--save-core", "/nonexistent-dir/x.core", "1"], environment: [:], status: 2,
                message: "cannot write in /nonexistent-dir: No such file or directory"),
        // A device is never replaced, even with --force.
        Failure(caseName: name, args: ["--save-core", "/dev/null", "--force", "1"], environment: [:], status: 2,
                message: "/dev/null is not a regular file: not replaced"),
    ] } + [
        // x86 asks Xen which vCPUs are up (a PV context's flag is sticky); ARM's context says
        // it afresh, so ARM never asks, and a failing vCPU info call costs it nothing.
        Failure(caseName: "x86-run1-lab-crash", args: ["-C", "1"], environment: ["XENSTANDIN_FAIL": "xc_vcpu_getinfo@3"], status: 2,
                message: "getting vCPU 0's state failed: Input/output error"),
        Failure(caseName: "arm-full-a64-crash", args: ["-C", "1"], environment: ["XENSTANDIN_FAIL": "xc_vcpu_getinfo"], status: 0,
                message: ""),
        // An ARM save whose mapping fails halfway must not leave a core with holes in the guest's RAM.
        Failure(caseName: "arm-full-a64-crash", args: ["--save-core", "{tmp}", "1"], environment: ["XENSTANDIN_MAP_FAIL_AFTER": "5000"],
                status: 2, message: "(the core would miss it) failed: Bad address"),
        Failure(caseName: "arm-full-a64-crash", args: ["--save-core", "{tmp}", "1"], environment: ["XENSTANDIN_FAIL": "xenforeignmemory_map@100"],
                status: 2, message: "failed: Input/output error"),
        Failure(caseName: "x86-run1-lab-crash", args: ["--save-core", "{tmp}", "1"], environment: ["XENSTANDIN_FAIL": "xc_domain_dumpcore"],
                status: 2, message: "xc_domain_dumpcore failed: Input/output error"),
    ]

    @Test(arguments: failures)
    func injectedFailure(_ f: Failure) throws {
        let domain = try XenStandIn.Domain(f.caseName)
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("failed-\(UUID().uuidString).core").path
        defer { unlink(target) }
        let r = try domain.run(f.args.map { $0 == "{tmp}" ? target : $0 }, environment: f.environment)
        #expect(r.result.status == f.status, "\(f): \(r.result.stderr)")
        #expect(f.message.isEmpty ? r.result.stderr.isEmpty : r.result.stderr.contains(f.message), "\(f): \(r.result.stderr)")
        // A destroyed domain has no pause count left to balance.
        #expect(r.pauseCount == 0 || r.events.contains("domain destroyed"), "\(f): \(r.events)")
        #expect(r.misbehaved.isEmpty, "\(f): \(r.misbehaved)")
        if f.message.hasPrefix("no domain") || f.message.hasPrefix("cannot write") { #expect(r.pauses == 0, "\(f): paused before the check") }
        #expect(access(target, F_OK) != 0, "a failed save left \(target)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)
            .filter { $0.hasPrefix((target as NSString).lastPathComponent + ".partial") }
        #expect(leftovers.isEmpty)
    }

    /// A signal while the domain is paused unpauses it before the default action ends the tool.
    @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
    func signalDuringThePauseUnpauses(_ signal: Int32) throws {
        for name in ["x86-run1-lab-crash", "arm-full-a32-crash"] {
            let domain = try XenStandIn.Domain(name)
            let (reason, status, run) = try domain.interrupted(by: signal, args: ["-C", "1"])
            #expect(reason == .uncaughtSignal && status == signal, "\(name): \(reason) \(status)")
            #expect(run.pauses == 1 && run.pauseCount == 0, "\(name): \(run.events)")
            #expect(run.misbehaved.isEmpty)
        }
    }

    /// `--no-pause` never pauses; the report is still the core's.
    @Test func noPauseNeverPauses() throws {
        let domain = try XenStandIn.Domain("arm-full-a64-crash")
        let r = try domain.run(["--no-pause", "-C", "1"])
        #expect(r.result.status == 0 && r.pauses == 0 && r.misbehaved.isEmpty)
        #expect(r.result.stderr.contains("--no-pause"))
        #expect(r.result.stdout == (try Tool.run(["-C", "--core", domain.core])).stdout)
    }
}
