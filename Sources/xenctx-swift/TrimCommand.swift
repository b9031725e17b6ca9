import ArgumentParser
import Foundation
import SafeFile
import VCPUContext
#if canImport(Glibc)
import Glibc
#endif

/// `xenctx-swift trim CORE OUT`: a copy of a core with only the pages the views read. The
/// views run once each on the core through a recorder of the frames they read (page tables,
/// kernel image parts found by content, stacks, tasks, the log ring, modules); what they
/// read is what the copy keeps, so the same views on the copy read the same bytes.
struct TrimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xenctx-swift trim",
        abstract: "Write a small copy of a core holding only the pages xenctx-swift's views read.",
        discussion: """
        The copy is a core in the same `xl dump-core` layout, with the same vCPU contexts and Xen \
        notes, plus a note saying it was trimmed (and one listing the pages that were all zeros, as \
        runs of frames, instead of keeping them: other readers of xl's cores see those as absent). Every view named below prints the same on the copy \
        as on the core: -C (registers, stacks, call traces, --describe), --log, --tasks --stack, \
        --modules, --meminfo, --hung, --summary and --json. Other reads (-m and -d anywhere, more \
        stack pages with -n) may reach pages the copy does not hold; they say so. Everything comes \
        from the guest itself: no symbol file is taken.

        Exit status: 0 written; 2 the core cannot be read or OUT cannot be written; 64 usage error.
        """)

    @Argument(help: ArgumentHelp("The core to trim (written by `xl dump-core` or --save-core).", valueName: "CORE"))
    var core: String

    @Argument(help: ArgumentHelp("Where to write the trimmed core.", valueName: "OUT"))
    var out: String

    @Flag(name: .customLong("force"), help: "Replace OUT if it exists.")
    var force = false

    /// The views the copy serves, as command lines: each run once on the core.
    static let views: [[String]] = [
        ["-C", "--stack-trace", "--describe", "--log", "--tasks", "--stack", "--modules", "--meminfo"],
        ["-C", "--json", "--log", "--tasks", "--stack", "--modules"],
        ["-C", "--summary"],
        ["--hung"],
    ]

    func run() throws {
        let source: XenCore
        let guest: Guest
        do {
            source = try XenCore(path: core)
            guest = try Guest(core: source)
        } catch {
            throw CommandFailure.from(error)
        }
        // A copy must read as the core does: one without the guest's memory, cut short, or
        // holding only xl's ARM window would lose what its warnings (the core's only ones) say.
        if !guest.warnings.isEmpty {
            throw CommandFailure.failed("cannot trim \(core): \(guest.warnings.joined(separator: "; "))")
        }
        try Self.checkOutput(out, core: core, force: force)
        let frames = Self.framesRead(by: guest, naming: ["--core", core])
        let tmp = out + ".partial-\(getpid())"
        unlink(tmp)
        defer { unlink(tmp) }
        let result: CoreTrim.Result
        do {
            result = try CoreTrim.write(core: source, frames: frames, note: Self.note, to: tmp)
        } catch {
            throw CommandFailure.failed("cannot write \(out): \(error)")
        }
        guard rename(tmp, out) == 0 else {
            throw CommandFailure.failed("cannot rename \(tmp) to \(out): \(String(cString: strerror(errno)))")
        }
        let pages = Int(source.header.pageCount)
        let zeros = result.zeroPages == 0 ? "" : " and \(result.zeroPages) pages of zeros as runs"
        writeAll(2, "xenctx-swift: kept \(result.pages) of \(pages) pages (\(percent(result.pages, of: pages)))\(zeros) in \(out), \(result.bytes) bytes\n")
    }

    /// What the trim note says the copy holds.
    static var note: String { "the pages read by: " + views.map { $0.joined(separator: " ") }.joined(separator: "; ") }

    /// The frames `views` read of `guest` (named on their command lines by `naming`: the
    /// core's path, or the live domain's id). A view that fails reads the same on the copy.
    static func framesRead(by guest: Guest, naming: [String]) -> Set<UInt64> {
        guard let frames = guest.frames else { return [] }
        let recorder = RecordingFrames(frames)
        let traced = guest.withFrames(recorder)
        for view in views {
            guard let command = try? XenctxCommand.parseAsRoot(naming + view) as? XenctxCommand else { continue }
            _ = try? command.report(traced, files: XenctxCommand.SymbolFiles(), options: command.reportOptions(), emit: { _ in })
        }
        return recorder.frames
    }

    /// OUT must not be CORE (whatever the path says), nor exist unless --force; its folder writable.
    static func checkOutput(_ out: String, core: String, force: Bool) throws {
        guard let problem = SafeFile.outputProblem(out, force: force, input: (core, "the core")) else { return }
        throw problem.kind == .isInput ? CommandFailure.usage(problem.description) : CommandFailure.failed(problem.description)
    }

    private func percent(_ part: Int, of whole: Int) -> String {
        whole == 0 ? "0%" : String(format: "%.1f%%", Double(part) * 100 / Double(whole))
    }
}
