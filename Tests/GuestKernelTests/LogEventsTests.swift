import Testing
@testable import GuestKernel

/// The kernel's words for why it stopped, picked out of log records, and its taint printed
/// as print_tainted() prints it.
struct LogEventsTests {
    func record(_ text: String, _ ns: UInt64) -> LogRecord {
        LogRecord(sequence: nil, timestamp: ns, level: nil, facility: nil, text: Array(text.utf8), caller: nil, subsystem: nil, device: nil)
    }

    /// x86's oops: the BUG line, #PF lines, the Oops line and the header naming the task.
    @Test func oopsWithHeader() {
        let records = [record("BUG: kernel NULL pointer dereference, address: 0000000000000000", 1),
                       record("#PF: supervisor write access in kernel mode", 2),
                       record("Oops: 0002 [#1] PREEMPT SMP NOPTI", 3),
                       record("CPU: 1 PID: 97 Comm: sh Tainted: G      D W         6.1.0-56-amd64 #1 Debian 6.1.158-1", 4),
                       record("Kernel panic - not syncing: Fatal exception", 5)]
        let events = LogEvents.find(in: records, release: "6.1.0-56-amd64")
        #expect(events.map(\.kind) == [.bug, .oops, .panic])
        // The BUG line's header search stops at the next event: it names no task.
        #expect(events[0].cpu == nil)
        #expect(events[1].cpu == 1 && events[1].pid == 97 && events[1].comm == "sh")
        #expect(events[1].taint == "Tainted: G      D W")
        #expect(events[2].cpu == nil)
    }

    @Test func lockupsHungAndOOM() {
        let events = LogEvents.find(in: [
            record("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [sh:97]", 1),
            record("INFO: task sync:123 blocked for more than 120 seconds.", 2),
            record("Out of memory: Killed process 321 (stress) total-vm:1000kB", 3),
            record("NMI watchdog: Watchdog detected hard LOCKUP on cpu 0", 4),
            record("kernel BUG at mm/slub.c:123!", 5),
            record("an ordinary line", 6)])
        #expect(events.map(\.kind) == [.softLockup, .hung, .oom, .hardLockup, .bug])
    }

    /// An OOM kill's header is the one after "invoked oom-killer:", before its memory and
    /// task tables; the next report's header (a BUG right after) is not its; the event names
    /// the victim its message names, the header the task that asked and its CPU.
    @Test func oomHeaderComesBeforeTheKill() {
        let events = LogEvents.find(in: [
            record("sh invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0", 1),
            record("CPU: 1 PID: 120 Comm: sh Tainted: G           OE      6.1.0-56-amd64 #1 Debian 6.1.158-1", 2),
            record("Mem-Info:", 3),
            record("[    224]     0   224    17570    17088   139264        0          1000 tail", 4),
            record("Out of memory: Killed process 224 (tail) total-vm:70280kB, anon-rss:68352kB", 5),
            record("Out of memory: Killed process 225 (tail2) total-vm:70280kB", 6),
            record("BUG: kernel NULL pointer dereference, address: 0000000000000000", 7),
            record("CPU: 0 PID: 97 Comm: insmod Not tainted 6.1.0-56-amd64 #1 Debian 6.1.158-1", 8)], release: "6.1.0-56-amd64")
        #expect(events.map(\.kind) == [.oom, .oom, .bug])
        #expect(events[0].cpu == 1 && events[0].pid == 224 && events[0].comm == "tail" && events[0].taint == "Tainted: G           OE")
        // The second kill has no "invoked" line of its own: its victim only.
        #expect(events[1].cpu == nil && events[1].pid == 225 && events[1].comm == "tail2")
        #expect(events[2].cpu == 0 && events[2].pid == 97)
    }

    /// Hostile records: only the first 512 bytes of a record's first line are looked at,
    /// and a header with garbage fields yields what parses.
    @Test func hostileRecords() {
        let long = "Kernel panic - not syncing: " + String(repeating: "x", count: 100_000)
        let events = LogEvents.find(in: [record(long, 1), record("CPU: z PID: -- Comm:", 2)])
        #expect(events.count == 1 && events[0].text.utf8.count == 512)
        #expect(events[0].cpu == nil && events[0].pid == nil && events[0].comm == nil)
    }

    /// A panic's cause is the event of the same incident, not one long before it.
    @Test func causeIsTheSameIncident() {
        var records = [record("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [sh:97]", 10_000_000_000)]
        records += (0..<300).map { record("sysrq-t line \($0)", 20_000_000_000) }
        records.append(record("Kernel panic - not syncing: sysrq triggered crash", 30_000_000_000))
        let events = LogEvents.find(in: records)
        #expect(LogEvents.cause(of: events[1], in: events) == nil)
        let oops = LogEvents.find(in: [record("Oops: 0002 [#1] SMP", 1_000_000_000), record("Modules linked in:", 1_000_000_001),
                                       record("Kernel panic - not syncing: Fatal exception", 1_500_000_000)])
        #expect(LogEvents.cause(of: oops[1], in: oops)?.kind == .oops)
    }

    @Test func taintAsTheKernelPrintsIt() {
        #expect(Taint.text(0) == "Not tainted")
        #expect(Taint.text(1 << 7) == "Tainted: G      D")                 // TAINT_DIE
        #expect(Taint.text(1 << 7 | 1 << 9) == "Tainted: G      D W")       // and TAINT_WARN
        #expect(Taint.text(1) == "Tainted: P")
        #expect(Taint.text(1 << 40) == "Tainted: G (and bits 40)")
    }
}

/// A ring that wrapped says how many records it lost (#25 item 7): the oldest record it
/// keeps is numbered by the records written since boot.
struct LogLostTests {
    func log(_ sequences: [UInt64?]) -> KernelLog {
        KernelLog(records: sequences.map { LogRecord(sequence: $0, timestamp: 0, level: nil, facility: nil, text: [], caller: nil, subsystem: nil, device: nil) },
                  source: "test", skipped: 0, notes: [])
    }

    @Test func wrappedRingSaysWhatItLost() {
        #expect(log([0, 1, 2]).lostNote == nil)
        #expect(log([1234, 1235]).lost == 1234)
        #expect(log([1234, 1235]).lostNote == "the ring wrapped: its first 1234 records (since boot) were overwritten; the oldest kept is record 1234")
        #expect(log([nil, nil]).lost == nil && log([]).lostNote == nil)   // log_buf before 5.10: not numbered
    }

    /// The kernel's oops count as die() prints it, on x86, arm64 and ARM; nothing from lines
    /// without one or with a malformed one.
    @Test func oopsNumberAsDiePrintsIt() {
        #expect(LogEvents.oopsNumber("Oops: 0000 [#1] PREEMPT SMP NOPTI") == 1)
        #expect(LogEvents.oopsNumber("Internal error: Oops: 0000000096000004 [#12] SMP") == 12)
        #expect(LogEvents.oopsNumber("Internal error: Oops: 206 [#601] SMP ARM") == 601)
        for text in ["Oops: 0000 PREEMPT SMP", "[#] x", "[#12", "[#12x]", "[#1234567890]", "", "["] {
            #expect(LogEvents.oopsNumber(text) == nil, "\(text)")
        }
    }
}
