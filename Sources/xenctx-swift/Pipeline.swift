import GuestKernel
import VCPUContext
import XenctxReport

/// How the report is printed: upstream's text, or a printer over the report's model.
enum OutputFormat {
    case text, json, summary
}

/// What a run prints, in order: stdout text, or a line for stderr.
enum Piece {
    case text(String)
    case note(String)
    case warning(String)
}

/// Prints one piece through the terminal gate.
func show(_ piece: Piece) {
    switch piece {
    case .text(let t): writeStdout(t)
    case .note(let n): note(n)
    case .warning(let w): warn(w)
    }
}

extension XenctxCommand {
    /// `--json` and `--summary` exclude each other (validate() says so).
    var format: OutputFormat { json ? .json : summary ? .summary : .text }

    /// The one pipeline, for a core and for a live domain alike: symbols decided against
    /// the guest, the report (or its model for --json and --summary) and the kernel views,
    /// handed to `emit` piece by piece as they are ready. Returns whether the report is
    /// partial (something said on stderr could not be read); throws when nothing can be shown.
    func report(_ guest: Guest, files: SymbolFiles, options: ReportOptions, emit: (Piece) -> Void) throws -> Bool {
        try checkAgainstGuest(guest)
        for w in guest.warnings { emit(.warning(w)) }
        var partial = !guest.warnings.isEmpty
        var prepared = try prepare(guest: guest, files: files, options: options)
        try resolveSymbolAddresses(&prepared.options)
        for n in prepared.notes { emit(.note(n)) }
        for w in prepared.warnings { emit(.warning(w)) }
        partial = partial || !prepared.warnings.isEmpty

        if format != .text {
            let out = modelText(Report(guest: guest, options: prepared.options), prepared, known: guest.warnings + prepared.warnings)
            emit(.text(out.text))
            for e in out.errors { emit(.warning(e)) }
            return partial || !out.errors.isEmpty
        }
        // One analysis for the report and the kernel views (BTF, modules and tasks found once).
        let analysis = reportWanted || prepared.options.tasks != nil || modules || meminfo || ctime ? Report(guest: guest, options: prepared.options) : nil
        if reportWanted, let analysis {
            do {
                try analysis.render { out in
                    for n in out.notes { emit(.note(n)) }
                    emit(.text(out.text))
                    for e in out.errors { emit(.warning(e)) }
                    if !out.errors.isEmpty { partial = true }
                }
            } catch {
                throw CommandFailure.from(error)
            }
        }
        for view in kernelViews(analysis, prepared) {
            switch view {
            case .shown(let out):
                for n in out.notes { emit(.note(n)) }
                emit(.text(out.text))
                for e in out.errors { emit(.warning(e)) }
                if !out.errors.isEmpty { partial = true }
            case .failed(let why, let alone):
                // Asked for alone, a view that cannot be made is the run's failure.
                if alone { throw CommandFailure.failed(why) }
                emit(.warning(why))
                partial = true
            }
        }
        return partial
    }
}
