/// `--summary`: one line per vCPU (state, current task, where).
public enum SummaryText {
    public static func render(_ model: ReportModel) -> String {
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(1, n - s.count)) }
        return model.vcpus.map { v in
            let task = v.task.map { "\($0.comm) (pid \($0.pid))" } ?? "-"
            var line = pad("vcpu\(v.id)", 8) + pad(v.state, 10) + pad(task, 26) + (v.at ?? "")
            while line.last == " " { line.removeLast() }
            return line + "\n"
        }.joined()
    }
}
