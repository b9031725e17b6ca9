import ArgumentParser
import LiveDomain
import VCPUContext
import XenctxReport
#if canImport(Glibc)
import Glibc
#endif

extension XenctxCommand {
    /// A live domain: pause only while contexts and the pages the report needs are
    /// copied (the report is rendered into memory then), unpause, then print.
    func runLive(domid: UInt32, options: ReportOptions, files: SymbolFiles) throws {
        let hv: LiveHypervisor
        do { hv = try LiveHypervisor() } catch { throw CommandFailure.from(error) }
        if noPause { warn("--no-pause: the domain keeps running, so registers and memory may come from different moments") }
        // Before pausing: a domain that does not exist, or a core that cannot be written, is said as such.
        do { _ = try hv.info(domid: domid) } catch { throw CommandFailure.from(error) }
        if let saveCore {
            do { try LiveHypervisor.checkWritable(saveCore, force: force) } catch { throw CommandFailure.from(error) }
            do {
                let (pages, paused) = try hv.whilePaused(domid: domid, pause: !noPause) {
                    try hv.saveCore(domid: domid, to: saveCore, force: force)
                }
                writeAll(2, "xenctx-swift: saved \(pages) pages of domain \(domid) to \(saveCore)\(paused.map { "; the domain was paused for \(milliseconds($0))" } ?? "")\n")
            } catch {
                throw CommandFailure.from(error)
            }
            return
        }
        var out: Report.Output
        var paused: Duration? = nil
        /// The whole report of a live guest, as text (or JSON) and error lines.
        func analyse(_ guest: Guest) throws -> Report.Output {
            try checkAgainstGuest(guest)
            var prepared = try prepare(guest: guest, files: files, options: options)
            try resolveSymbolAddresses(&prepared.options)
            let analysis = Report(guest: guest, options: prepared.options)
            if json || summary {
                var out = modelText(analysis, prepared, known: prepared.warnings).prefixingErrors(prepared.warnings)
                out.notes = prepared.notes + out.notes
                return out
            }
            var report = reportWanted ? try analysis.renderAll() : Report.Output()
            report.errors = prepared.warnings + report.errors
            report.notes = prepared.notes + report.notes
            for view in kernelViews(analysis, prepared) {
                switch view {
                case .shown(let out):
                    report.text += out.text
                    report.errors += out.errors
                case .failed(let why, let alone):
                    // Asked for alone, a view that cannot be made is the run's failure, as on a core.
                    if alone { throw CommandFailure.failed(why) }
                    report.errors.append(why)
                }
            }
            return report
        }
        do {
            // The domain is paused only while its contexts and the vCPUs' stack pages (and the
            // page-table pages that reach them) are copied; the analysis reads kernel text
            // and static data after unpausing. Views of changing kernel data (--tasks,
            // --modules, --log, --json, --summary) are read whole in the pause, for one moment.
            let wholeInPause = kernelViewsOnly || json || summary
            var captured: Guest? = nil
            var inPause = Report.Output()
            (inPause, paused) = try hv.whilePaused(domid: domid, pause: !noPause) { () throws -> Report.Output in
                let guest = try hv.guest(domid: domid)
                captured = guest
                var out = Report.Output()
                if wholeInPause {
                    out = try analyse(guest)
                } else {
                    Report.snapshotStacks(of: guest, stackPages: options.stackPages)
                }
                // Test hook for Scripts/lab-check.sh: hold the pause so a signal can arrive during it.
                if let hold = getenv("XENCTX_SWIFT_HOLD_PAUSE_MS").flatMap({ UInt32(String(cString: $0)) }) { usleep(min(hold, 60_000) * 1000) }
                return out
            }
            out = wholeInPause ? inPause : try analyse(captured!)
        } catch {
            throw CommandFailure.from(error)
        }
        for n in out.notes { note(n) }
        writeStdout(out.text)
        for e in out.errors { warn(e) }
        if options.describe, let paused {
            writeStdout("# domain \(domid) was paused for \(milliseconds(paused)) (\(kernelViewsOnly || json || summary ? "contexts copied and the whole report analysed, for one moment of the kernel's data" : "contexts and the vCPUs' stack pages copied, then unpaused before the analysis"))\n")
        }
        if !out.errors.isEmpty { throw CommandFailure.partial }
    }
}
