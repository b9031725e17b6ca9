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
        let info: LiveHypervisor.DomainInfo
        do { info = try hv.info(domid: domid) } catch { throw CommandFailure.from(error) }
        if let saveCore {
            do { try LiveHypervisor.checkWritable(saveCore, force: force) } catch { throw CommandFailure.from(error) }
            do {
                let (pages, paused) = try hv.whilePaused(domid: domid, pause: !noPause) { () throws -> Int in
                    guard trim else { return try hv.saveCore(domid: domid, to: saveCore, force: force) }
                    // The views run on the paused domain; what they read is what the core keeps.
                    let guest = try hv.guest(domid: domid)
                    let frames = TrimCommand.framesRead(by: guest, naming: [String(domid)])
                    guard let source = guest.frames else { throw CommandFailure.failed("domain \(domid): no guest memory to save") }
                    return try hv.saveTrimmedCore(domid: domid, frames: frames, source: source, note: TrimCommand.note, to: saveCore, force: force)
                }
                writeAll(2, "xenctx-swift: saved \(pages) pages\(trim ? " (trimmed to what the views read)" : "") of domain \(domid) to \(saveCore)\(paused.map { "; the domain was paused for \(milliseconds($0))" } ?? "")\n")
            } catch {
                throw CommandFailure.from(error)
            }
            return
        }
        var paused: Duration? = nil
        var partial = false
        var captured: Guest? = nil
        var copiedInPause: (pages: Int, mappings: Int, warmedPages: Int, warmedMappings: Int)? = nil
        // Where the pause went, for --describe: reading the contexts, then copying memory.
        var contextsTime: Duration? = nil, memoryTime: Duration? = nil
        let wholeInPause = kernelViewsOnly || format != .text
        // Before pausing, the stacks are walked on contexts read from the running domain,
        // and the frames the walk reached stay mapped: in the pause, what did not move
        // since is copied without a hypercall. Nothing read then is kept; the pause reads
        // the contexts again and walks again.
        let frames = LiveFrames(domid: domid, warming: !noPause)
        if !noPause, let running = try? hv.guest(domid: domid, known: info, frames: frames) {
            Report.snapshotStacks(of: running, stackPages: options.stackPages)
        }
        // After the unpause (whilePaused has returned or thrown): the mappings kept open are unmapped.
        defer { frames.endPause() }
        do {
            // The domain is paused only while its contexts and the vCPUs' stack pages (and the
            // page-table pages that reach them) are copied; the report reads kernel text and
            // static data after unpausing. Views of changing kernel data (--tasks, --modules,
            // --log, --json, --summary) are read whole in the pause, for one moment, and
            // printed after it.
            var pieces: [Piece] = []
            do {
                (partial, paused) = try hv.whilePaused(domid: domid, pause: !noPause) { () throws -> Bool in
                    let clock = ContinuousClock()
                    let t0 = clock.now
                    frames.beginPause()
                    let guest = try hv.guest(domid: domid, known: info, frames: frames)
                    let t1 = clock.now
                    contextsTime = t1 - t0
                    captured = guest
                    var partial = false
                    if wholeInPause {
                        partial = try report(guest, files: files, options: options) { pieces.append($0) }
                    } else {
                        Report.snapshotStacks(of: guest, stackPages: options.stackPages)
                    }
                    copiedInPause = frames.pauseStatistics
                    memoryTime = clock.now - t1
                    // Test hook for Scripts/lab-check.sh: hold the pause so a signal can arrive during it.
                    if let hold = getenv("XENCTX_SWIFT_HOLD_PAUSE_MS").flatMap({ UInt32(String(cString: $0)) }) { usleep(min(hold, 60_000) * 1000) }
                    return partial
                }
            } catch {
                pieces.forEach(show)    // what was said before the failure
                throw error
            }
            if wholeInPause {
                pieces.forEach(show)
            } else {
                partial = try report(captured!, files: files, options: options, emit: show)
            }
        } catch {
            throw CommandFailure.from(error)
        }
        if options.describe, let guest = captured, let read = LiveHypervisor.pagesRead(by: guest) {
            writeStdout("# \(read.pages) pages of domain \(domid) copied in \(read.mappings) mappings (runs of consecutive frames are mapped together)\n")
        }
        if options.describe, let paused {
            let stop = hv.lastPauseCall.map { "; the pause call returned in \(milliseconds($0))" } ?? ""
            let contexts = contextsTime.map { "; vCPU contexts read in \(milliseconds($0))" } ?? ""
            let copied = copiedInPause.map { c in
                "; \(c.pages) pages copied with \(c.mappings) new mappings" + (memoryTime.map { ", \(wholeInPause ? "the analysis" : "the copy") took \(milliseconds($0))" } ?? "")
                    + "; \(c.warmedPages) pages were mapped before it in \(c.warmedMappings) mappings, by a walk of the running domain"
            } ?? ""
            writeStdout("# domain \(domid) was paused for \(milliseconds(paused)) (\(wholeInPause ? "contexts copied and the whole report analysed, for one moment of the kernel's data" : "contexts and the vCPUs' stack pages copied, then unpaused before the analysis")\(stop)\(contexts)\(copied))\n")
        }
        if partial { throw CommandFailure.partial }
    }
}
