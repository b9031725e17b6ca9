/// `--summary`: one line per vCPU (state, current task, where).
public enum SummaryText {
    public static func render(_ model: ReportModel) -> String {
        (model.verdict.map(verdictLine) ?? "") + (model.verdict.flatMap(lockupLine) ?? "") + vcpuLines(model)
    }

    /// `lockup: vcpu1's task …` when the verdict is something else (a panic that stopped it).
    static func lockupLine(_ v: ReportModel.Verdict) -> String? {
        guard let l = v.lockup, !(v.reason == "soft lockup" && v.message == nil) else { return nil }
        return "lockup: vcpu\(l.vcpu)'s task \(l.comm) (pid \(l.pid)) has run in the kernel for \(TaskText.seconds(UInt64(l.runningFor * 1e9))) without being scheduled out (soft-lockup threshold \(Int(l.threshold)) s)"
            + (l.reported ? "; the watchdog reported it" : "; no watchdog report in the log: inferred from the scheduler's clocks") + "\n"
    }

    /// `verdict: panic on vcpu0 in sh (pid 164) at [   14.958575]: Kernel panic - not syncing: …`
    static func verdictLine(_ v: ReportModel.Verdict) -> String {
        var s = "verdict: \(v.reason)"
        if let cpu = v.vcpu { s += " on vcpu\(cpu)" }
        if let comm = v.comm { s += " in \(comm)" + (v.pid.map { " (pid \($0))" } ?? "") }
        if let t = v.time { s += " at " + LogText.timestamp(UInt64((t * 1e9).rounded())).dropLast() }
        if let m = v.message { s += ": \(m)" }
        if let p = v.panic, p != v.message { s += "; then \(p)" }
        if v.message == nil, let why = v.evidence.last { s += ": \(why)" }
        if let taint = v.taint { s += " (\(taint)\(v.taintFrom == "log" ? " at the message" : ""))" }
        if let clock = v.wallClock, let up = v.uptime { s += "; dumped at \(clock), up \(Int(up.rounded())) s" }
        return s + "\n"
    }

    static func vcpuLines(_ model: ReportModel) -> String {
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(1, n - s.count)) }
        return model.vcpus.map { v in
            let task = v.task.map { "\($0.comm) (pid \($0.pid))" } ?? "-"
            var line = pad("vcpu\(v.id)", 8) + pad(v.state, 10) + pad(task, 26) + (v.at ?? "")
            while line.last == " " { line.removeLast() }
            return line + "\n"
        }.joined()
    }
}
