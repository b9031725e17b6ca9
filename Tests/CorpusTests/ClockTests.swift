import Foundation
import Testing
@testable import VCPUContext

/// The guest's wall clock and uptime at the dump (`verdict.wallClock`, `verdict.uptime`,
/// `--summary`, `--log -T`), from its own timekeeper, against what Xen recorded.
struct ClockTests {
    static func verdict(_ args: [String]) throws -> [String: Any] {
        let r = try Tool.run(args + ["--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        return try #require(doc["verdict"] as? [String: Any])
    }

    static func seconds(_ iso: String) throws -> Double {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return try #require(f.date(from: iso)).timeIntervalSince1970
    }

    /// A PV guest sets its clock from Xen's wall clock as it boots and then moves its vCPU
    /// info out of the shared page, so the core's `.xen_shared_info` keeps Xen's time of the
    /// guest's boot (wc_sec + vCPU 0's system_time, from the moment it moved): the guest's
    /// own boot time (wall clock minus uptime) must be that, within the seconds its early
    /// boot takes under the lab's emulation. And the uptime is the log's clock: the panic's
    /// record is at most a tick after the timekeeper's last update.
    @Test(arguments: ["x86-run15-why-hung-lockup-oom", "x86-run10-pv510-crash-tasks", "x86-run10-pv612-crash-tasks",
                      "x86-run11-xen420-pv612-crash-tasks", "x86-run5-lab-crash-tasks", "x86-run1-lab-crash",
                      "x86-run16-why612-hung-lockup-oom"])
    func pvBootTimeIsXens(_ name: String) throws {
        let path = try Corpus.corePath(Corpus.named(name))
        let v = try Self.verdict(["--core", path])
        let wall = try Self.seconds(try #require(v["wallClock"] as? String))
        let uptime = try #require(v["uptime"] as? Double)
        let core = try XenCore(path: path)
        let shared = try #require(core.sharedInfo.flatMap { core.file.bytes(at: $0.offset, count: 4096) })
        // x86_64 shared_info: vcpu_info[32] of 64 bytes (vcpu_time_info at 32: system_time at
        // 48), evtchn_pending and evtchn_mask (512 each), then wc_version, wc_sec, wc_nsec; wc_sec_hi at 3084.
        let systemTime = Double(shared.le64(48)) / 1e9
        let wc = Double(UInt64(shared.le32(3076)) | UInt64(shared.le32(3084)) << 32) + Double(shared.le32(3080)) / 1e9
        let xenBoot = wc + systemTime, guestBoot = wall - uptime
        #expect(xenBoot - guestBoot > -1 && xenBoot - guestBoot < 10, "\(name): Xen \(xenBoot), guest \(guestBoot)")
        let last = try #require(v["lastLogTime"] as? Double)
        #expect(abs(uptime - last) < 1, "\(name): uptime \(uptime), last record \(last)")
        #expect((v["evidence"] as? [String])?.contains { $0.hasPrefix("wall clock and uptime from the guest's tk_core.timekeeper at ") } == true)
    }

    /// `--log -T` prints each record as `dmesg -T` does: `[Sat Dec  5 12:25:52 2026] `, the
    /// guest's boot time (wall clock minus uptime) plus the record's timestamp, in TZ.
    @Test func ctimeAsDmesgPrintsIt() throws {
        let path = try Corpus.corePath(Corpus.named("x86-run15-why-hung-lockup-oom"))
        let v = try Self.verdict(["--core", path])
        let boot = try Self.seconds(try #require(v["wallClock"] as? String)) - (try #require(v["uptime"] as? Double))
        let plain = try Tool.run(["--core", path, "--log"])
        let dated = try Tool.run(["--core", path, "--log", "-T"], environment: ["TZ": "UTC"])
        #expect(dated.status == 0, "\(dated.stderr)")
        let plainLines = plain.stdout.split(separator: "\n"), datedLines = dated.stdout.split(separator: "\n")
        #expect(plainLines.count == datedLines.count && plainLines.count > 100)
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "EEE MMM d HH:mm:ss yyyy"
        for (p, d) in zip(plainLines, datedLines).prefix(400) {
            let m = try #require(p.firstMatch(of: /^\[ *([0-9]+)\.([0-9]{6})\] (.*)$/))
            var expected = f.string(from: Date(timeIntervalSince1970: (boot + Double(m.1)! + Double(m.2)! / 1e6).rounded(.down)))
            // %e: the day of the month padded with a space.
            if let day = expected.firstMatch(of: /^(\w{3} \w{3}) ([0-9])\ /) { expected = "\(day.1)  \(day.2) " + expected.dropFirst(day.0.count) }
            // Rounding of the boot time's milliseconds may move a second; the text is the same.
            #expect(d.hasSuffix("] " + m.3), "\(d)")
            let shown = String(d.dropFirst().prefix(expected.count))
            func parse(_ text: String) -> Double { f.date(from: text.replacingOccurrences(of: "  ", with: " "))?.timeIntervalSince1970 ?? -1e9 }
            #expect(shown == expected || abs(parse(shown) - parse(expected)) <= 1, "\(d) vs \(expected)")
        }
    }

    /// arm64's kallsyms names no data symbols, so tk_core is found only in a System.map: -T
    /// without one fails and says so; with it, the clock is read (6.1 and 6.12).
    @Test func arm64NeedsTheMapForTheClock() throws {
        let c = Corpus.named("arm-why-a64-hung-lockup-oom")
        let path = try Corpus.corePath(c)
        var r = try Tool.run(["--core", path, "--log", "-T"])
        #expect(r.status == 2 && r.stderr.contains("no wall-clock times for -T: tk_core is not in the symbols"), "\(r.stderr)")
        let v = try Self.verdict(["--core", path])
        #expect(v["wallClock"] == nil && (v["evidence"] as? [String])?.contains { $0.hasPrefix("no wall clock or uptime: tk_core is not in the symbols") } == true)
        for name in ["arm-why-a64-hung-lockup-oom", "arm-tasks612-a64-crash", "arm-why612-a64-hung-lockup-oom"] {
            let c = Corpus.named(name)
            r = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "--summary"])
            let first = String(r.stdout.split(separator: "\n").first ?? "")
            let m = try #require(first.firstMatch(of: /; dumped at (\S+), up ([0-9]+) s$/), "\(first)")
            let panic = try #require(first.firstMatch(of: /\ at \[ *([0-9.]+)\]/))
            // The panic's record, at most a tick after the last update (the emulated arm64 timer
            // runs unevenly: within a few seconds).
            #expect(abs(Double(m.2)! - Double(panic.1)!) < 5, "\(first)")
            #expect(try Self.seconds(String(m.1)) > 1.79e9)
        }
    }

    @Test func ctimeGoesWithTheTextLog() throws {
        let path = try Corpus.corePath(Corpus.named("x86-run1-lab-crash"))
        var r = try Tool.run(["--core", path, "-T"])
        #expect(r.status == 64 && r.stderr.contains("give it with --log"))
        r = try Tool.run(["--core", path, "--log", "-T", "--json"])
        #expect(r.status == 64 && r.stderr.contains("wallClock and uptime"))
    }
}
