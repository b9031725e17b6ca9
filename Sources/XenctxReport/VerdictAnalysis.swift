import GuestKernel
import Symbols
import VCPUContext

/// Why the guest died or hangs: the kernel's own words from its log (panic, oops, BUG,
/// lockup, hung task, OOM), the vCPU and task it names, the taint at the dump, checked
/// against what the vCPUs themselves show. Values only: `SummaryText` and the JSON print it.
extension Report {
    public func verdict(vcpus: [ReportModel.VCPUEntry], log: Result<KernelLog, KernelDataError>?) -> ReportModel.Verdict {
        var v = ReportModel.Verdict(reason: "unknown", evidence: [])
        let panicking = vcpus.first { $0.state == "panic" } ?? vcpus.first { $0.state == "oops" }
        taint(into: &v)
        switch guestClock() {
        case .success(let c):
            v.wallClock = WallClock.iso8601(c.realtime)
            v.uptime = (Double(c.boottime / 1_000_000) / 1000)
            v.evidence.append("wall clock and uptime from the guest's \(c.source)")
        case .failure(let e):
            v.evidence.append("no wall clock or uptime: \(e.reason)")
        }
        var events: [LogEvent] = []
        switch log {
        case .success(let l)?:
            let release = try? options.kernel?.vmcoreinfo.get().info.osRelease
            events = LogEvents.find(in: l.records, release: release)
            v.lastLogTime = l.records.last.map { Double($0.timestamp) / 1e9 }
            if let lost = l.lost, lost > 0 {
                v.evidence.append("the log's first \(lost) records were overwritten (the ring wrapped): an earlier fault may have been among them")
            }
        case .failure(let e)?:
            v.evidence.append("no kernel log to read the kernel's own words from: \(e.reason)")
        case nil:
            v.evidence.append("no kernel log: this core holds no guest memory")
        }
        // The log's clock (sched_clock) and the timekeeper's can drift apart (by seconds under
        // emulation): then the dump's uptime and `--log -T`'s times are only as good as that.
        if let up = v.uptime, let last = v.lastLogTime, last - up > 1 {
            v.evidence.append("the log's last record (at \(TaskText.seconds(UInt64(last * 1e9)))) is later than the timekeeper's uptime (\(TaskText.seconds(UInt64(up * 1e9)))): the two clocks drifted apart, so wall-clock times of records are off by up to \(Int((last - up).rounded(.up))) s")
        }
        // Named whatever the log says: a spin that touches the watchdog, or one on a vCPU that
        // a panic elsewhere stopped, never gets its report.
        let lockup = lockedUp(vcpus, reportedIn: events)
        v.lockup = lockup?.model
        let panic = events.last { $0.kind == .panic }
        // What made it panic: the last other event before the panic (an oops, a BUG, a
        // lockup with softlockup_panic, …); without a panic, the last event.
        let cause = panic.map { LogEvents.cause(of: $0, in: events) } ?? events.last
        guard let decisive = cause ?? panic else {
            if let lockup {
                v.reason = "soft lockup"
                v.vcpu = lockup.model.vcpu
                v.pid = lockup.model.pid; v.comm = lockup.model.comm
                v.evidence.append(lockup.why)
            } else if let p = panicking {
                v.reason = p.state
                v.vcpu = p.id
                v.pid = p.task?.pid; v.comm = p.task?.comm
                v.evidence.append("vcpu\(p.id) is in \(p.state) (\(p.at ?? "its trace")), and the log has no record of it")
            } else if log != nil, case .success? = log {
                v.reason = "running"
                v.evidence.append("no panic, oops, BUG, lockup, hung-task or OOM record in the log, and no vCPU in panic or oops")
            }
            return v
        }
        // Everything the log says happened, oldest first (a hung task, then a lockup, …).
        v.events = events.suffix(32).map { e in
            ReportModel.Verdict.Event(kind: e.kind.rawValue, message: TerminalSafe.escape(e.text), time: Double(e.timestamp) / 1e9,
                                      vcpu: e.cpu, pid: e.pid, comm: e.comm.map { TerminalSafe.escape($0) })
        }
        if events.count > 32 { v.evidence.append("the log holds \(events.count) events: the last 32 are listed") }
        v.reason = decisive.kind.rawValue
        v.message = TerminalSafe.escape(decisive.text)
        v.panic = panic.map { TerminalSafe.escape($0.text) }
        v.time = Double(decisive.timestamp) / 1e9
        // The kernel's CPU/PID/Comm line after the event, else the vCPU in panic.
        let header = decisive.cpu != nil ? decisive : (panic?.cpu != nil ? panic! : decisive)
        if let cpu = header.cpu {
            v.vcpu = cpu
            v.pid = header.pid
            v.comm = header.comm.map { TerminalSafe.escape($0) }
            v.evidence.append("vCPU and task from the kernel's line after it: CPU \(cpu), PID \(header.pid.map(String.init) ?? "?"), Comm \(v.comm ?? "?")")
            if let entry = vcpus.first(where: { $0.id == cpu }), let t = entry.task, t.pid != header.pid {
                v.evidence.append("vcpu\(cpu)'s current task at the dump is \(t.comm) (pid \(t.pid)), not the task the log names")
            }
        } else if let p = panicking {
            v.vcpu = p.id
            v.pid = p.task?.pid; v.comm = p.task?.comm
            v.evidence.append("vCPU from its state (\(p.state)): the log names no CPU after the message")
        }
        if let lockup { v.evidence.append(lockup.why) }
        if decisive.kind == .oops, let storm = Self.oopsStorm(ending: decisive, in: events) { v.evidence.append(storm) }
        if v.taint == nil, let t = header.taint {
            v.taint = TerminalSafe.escape(t)
            v.taintFrom = "log"
            v.evidence.append("taint from the kernel's line (tainted_mask is not in the symbols)")
        }
        return v
    }

    /// When the oops named is not the kernel's first (`[#N]`, N > 1), the earlier ones are
    /// nearer the cause: the earliest the log still holds, or that the log holds none.
    static func oopsStorm(ending last: LogEvent, in events: [LogEvent]) -> String? {
        guard let n = LogEvents.oopsNumber(last.text), n > 1 else { return nil }
        let numbered = events.compactMap { e in e.kind == .oops ? LogEvents.oopsNumber(e.text).map { (event: e, number: $0) } : nil }
        guard let first = numbered.first, first.number < n else {
            return "this is oops #\(n) by the kernel's count, and the log holds no earlier one: the first \(n - 1) are lost, and the first of them is nearer the cause"
        }
        let lost = first.number > 1 ? "; #1 to #\(first.number - 1) are not in the log" : ""
        return "this is oops #\(n) by the kernel's count, the last of \(numbered.count) in the log; the earliest it holds, #\(first.number) at \(TaskText.seconds(first.event.timestamp)), is nearer the cause\(lost): \(TerminalSafe.escape(first.event.text))"
    }

    /// A vCPU whose task has run in the kernel longer than the soft-lockup watchdog allows
    /// without being scheduled out: the watchdog's own thread would have switched it out
    /// every few seconds, so it could not run there. Inferred, and said so.
    func lockedUp(_ vcpus: [ReportModel.VCPUEntry], reportedIn events: [LogEvent]) -> (model: ReportModel.Verdict.Lockup, why: String)? {
        let thresh = classifier.symbols?.address(of: "watchdog_thresh").flatMap { at in KernelReader(guest: guest).flatMap { try? $0.u32(at) } }
        let seconds = Double(2 * Int(thresh ?? 10))
        guard thresh != 0 else { return nil }       // the watchdog is off
        let candidates = vcpus.filter { v in
            (v.online ? !["idle", "user"].contains(v.state) : v.lastState == "stopped") && (v.task?.runningFor ?? 0) >= seconds && v.task?.pid != 0
        }
        guard let v = candidates.max(by: { ($0.task?.runningFor ?? 0) < ($1.task?.runningFor ?? 0) }), let t = v.task, let ran = t.runningFor else { return nil }
        let reported = events.contains { $0.kind == .softLockup && $0.pid == t.pid }
        let why = "vcpu\(v.id)'s task \(t.comm) (pid \(t.pid)) has run in the kernel for \(TaskText.seconds(UInt64(ran * 1e9))) without being scheduled out, past the soft-lockup threshold of \(Int(seconds)) s (2 × watchdog_thresh\(thresh == nil ? ", taken as the default 10" : " \(thresh!)")); "
            + (reported ? "the watchdog reported it" : "the log has no watchdog report of it (inferred from the scheduler's clocks)")
        return (ReportModel.Verdict.Lockup(vcpu: v.id, pid: t.pid, comm: t.comm, runningFor: ran, threshold: seconds, reported: reported), why)
    }

    /// `tainted_mask` at the dump, where the symbols name it.
    func taint(into v: inout ReportModel.Verdict) {
        guard let at = classifier.symbols?.address(of: "tainted_mask") else { return }
        guard let reader = KernelReader(guest: guest), let mask = Taint.read(reader: reader, address: at) else {
            v.evidence.append("tainted_mask at \(hex(at)) is unreadable")
            return
        }
        v.taint = Taint.text(mask)
        v.taintFrom = "tainted_mask"
        v.evidence.append("taint from tainted_mask at \(hex(at)) (\(hex(mask)))")
    }
}
