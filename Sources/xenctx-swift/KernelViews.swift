import GuestKernel
import XenctxReport

/// The kernel's views (`--tasks`/`--task`, `--modules`, `--log`) and the model views
/// (`--json`, `--summary`): what each prints, or why it cannot.
extension XenctxCommand {
    struct NoLog: Error { let why: String }

    /// One kernel view's result: its text (with a heading when more is printed), or why
    /// there is none and whether it was the only thing asked for (then the run fails).
    enum ViewResult {
        case shown(Report.Output)
        case failed(why: String, alone: Bool)
    }

    /// `--tasks`/`--task`, `--modules` and `--log`, in that order, after the report.
    func kernelViews(_ analysis: Report?, _ prepared: Prepared) -> [ViewResult] {
        var views: [ViewResult] = []
        if let request = prepared.options.tasks, let analysis {
            switch taskText(report: analysis, prepared: prepared, request: request) {
            case .success(var out):
                out.text = (reportWanted ? (hung ? "Hung tasks:\n" : "Tasks:\n") : "") + out.text
                views.append(.shown(out))
            case .failure(let no): views.append(.failed(why: no.why, alone: !(reportWanted || log || modules)))
            }
        }
        if modules, let analysis {
            switch moduleText(report: analysis, prepared: prepared) {
            case .success(var out):
                out.text = (reportWanted || prepared.options.tasks != nil ? "Modules:\n" : "") + out.text
                views.append(.shown(out))
            case .failure(let no): views.append(.failed(why: no.why, alone: !(reportWanted || log || prepared.options.tasks != nil)))
            }
        }
        if meminfo, let analysis {
            switch analysis.memInfoText() {
            case .success(var out):
                out.text = (reportWanted || prepared.options.tasks != nil || modules ? "Memory:\n" : "") + out.text
                views.append(.shown(out))
            case .failure(let e): views.append(.failed(why: "no memory summary: \(e.reason)", alone: !(reportWanted || log || modules || prepared.options.tasks != nil)))
            }
        }
        if log {
            switch logText(prepared, clock: ctime ? analysis : nil) {
            case .success(var out):
                out.text = (reportWanted || tasks || task != nil || hung || modules || meminfo ? "Kernel log:\n" : "") + out.text
                views.append(.shown(out))
            case .failure(let no): views.append(.failed(why: no.why, alone: !reportWanted))
            }
        }
        return views
    }

    /// `--json` or `--summary`: the model of the report and the views asked for, and the
    /// errors met beyond `known` (warnings already given).
    func modelText(_ analysis: Report, _ prepared: Prepared, known: [String]) -> Report.Output {
        var request = Report.ModelRequest(modules: modules, verdict: true, memory: meminfo)
        var errors = known
        if log {
            // The same reading and words as --log's text.
            switch readLog(prepared) {
            case .success(let (l, problems)): request.log = l; errors += problems
            case .failure(let no): errors.append(no.why)
            }
        }
        let model = analysis.model(request, errors: errors)
        return Report.Output(text: format == .json ? JSONText.render(model) : SummaryText.render(model), errors: Array(model.errors.dropFirst(known.count)))
    }

    /// The task list or stacks, or one line saying why there are none.
    func taskText(report: Report, prepared: Prepared, request: Report.TaskRequest) -> Result<Report.Output, NoLog> {
        guard prepared.kernel != nil else {
            return .failure(NoLog(why: Report.noMemory.tasks))
        }
        switch report.taskText(request) {
        case .success(let out): return .success(out)
        // A pid that is not there is no failure of the list: say just that.
        case .failure(let e): return .failure(NoLog(why: e.what.hasPrefix("--task") || e.what == "hung tasks" ? "\(e)" : "no task list: \(e)"))
        }
    }

    /// The loaded modules, or one line saying why there is no list.
    func moduleText(report: Report, prepared: Prepared) -> Result<Report.Output, NoLog> {
        guard prepared.kernel != nil else {
            return .failure(NoLog(why: Report.noMemory.modules))
        }
        switch report.moduleText() {
        case .success(let out): return .success(out)
        case .failure(let e): return .failure(NoLog(why: "no module list: \(e.reason)"))
        }
    }

    /// The kernel log as text, with what stopped or skipped its records as errors, or one
    /// line saying why there is none.
    /// With -T (`clock` given), times are wall-clock times from the guest's own boot time,
    /// or the log fails: a log with times other than asked for would mislead.
    func logText(_ prepared: Prepared, clock: Report? = nil) -> Result<Report.Output, NoLog> {
        var boot: UInt64? = nil
        if let clock {
            switch clock.guestClock() {
            case .success(let c): boot = c.bootRealtime
            case .failure(let e): return .failure(NoLog(why: "no wall-clock times for -T: \(e.reason)"))
            }
        }
        return readLog(prepared).map { Report.Output(text: LogText.render($0.0, bootRealtime: boot), errors: $0.1, notes: $0.0.lostNote.map { ["kernel log: \($0)"] } ?? []) }
    }

    /// The kernel log with its problems, or why there is none (the text's and JSON's words).
    func readLog(_ prepared: Prepared) -> Result<(KernelLog, [String]), NoLog> {
        guard let kernel = prepared.kernel else {
            return .failure(NoLog(why: Report.noMemory.log))
        }
        switch kernel.log(symbols: prepared.options.symbols) {
        case .success(let log): return Self.checked(log).map { (log, $0) }
        case .failure(let e): return .failure(NoLog(why: "no kernel log: \(e)"))
        }
    }

    /// A ring read without a single record is no log (an empty text with exit 0 said
    /// nothing); records it could not read are problems of the log shown.
    static func checked(_ log: KernelLog) -> Result<[String], NoLog> {
        if log.records.isEmpty {
            let why = log.notes.first.map { ": \($0)" } ?? (log.skipped > 0 ? ": \(log.skipped) descriptors, none committed" : ": it is empty")
            return .failure(NoLog(why: "no kernel log: no record could be read from the \(log.source)\(why)"))
        }
        return .success(log.notes.map { "kernel log: \($0)" })
    }
}
