import Testing
import VCPUContext
@testable import XenctxReport

/// #24: a vCPU is read once into a `VCPUAnalysis`, and the text and the report model are
/// both printed from that one value, in-process: the same frames in the same order, the
/// same symbols, registers named and task. (`JSONReportTests` checks the same end to end,
/// across two runs of the command.)
@Suite(.serialized)
struct OneAnalysisTests {
    /// An x86 PV 6.12 guest (ORC), an arm64 6.12 guest (frame records) and a 5.10 PVH guest,
    /// each with a crash, hung tasks or an idle vCPU: symbols from the core alone (kallsyms).
    @Test(arguments: ["x86-run16-why612-hung-lockup-oom", "arm-why612-a64-hung-lockup-oom", "x86-run13-pvh510-crash-tasks"])
    func textAndModelPrintTheSameAnalysis(_ name: String) throws {
        let guest = try Guest(core: XenCore(path: try Corpus.corePath(Corpus.named(name))))
        // As triage reads a core: every vCPU, symbols from the guest's own kallsyms.
        let options = ReportOptions.fromGuestItself(guest)
        try #require(options.symbols != nil, "\(name): no kallsyms")
        let report = Report(guest: guest, options: options)
        var traced = 0
        for v in guest.vcpus where v.isOnline {
            let analysis = report.analyseVCPU(v, mode: .context)
            let text = VCPUText(report: report, analysis: analysis).render(.context).text
            let entry = report.vcpuModel(analysis)
            let trace = text.components(separatedBy: "Call Trace:\n").dropFirst().first ?? ""
            let frames = entry.trace?.frames ?? []
            #expect(JSONReportTests.textFrames(Substring(trace)) == frames.map(\.address), "\(name) vcpu\(v.id)")
            for f in frames where f.reliable {
                let named = f.symbol.map { " \($0)" } ?? ""
                #expect(text.contains("[<\(f.address)>]\(named) "), "\(name) vcpu\(v.id): \(f.address)\(named) not in the text")
            }
            for r in entry.namedRegisters {
                #expect(text.contains(" \(r.value) \(r.symbol)\n"), "\(name) vcpu\(v.id): \(r.register) \(r.value) \(r.symbol)")
            }
            if let t = entry.task { #expect(text.contains("Task: \(t.comm) (pid \(t.pid), tgid \(t.tgid))\n"), "\(name) vcpu\(v.id)") }
            if frames.count > 1 && frames.contains(where: { $0.how != "registers" && $0.reliable }) { traced += 1 }
        }
        // Each case has a vCPU with a real trace past its registers: the comparison compared something.
        #expect(traced > 0, "\(name): no vCPU with an exact trace")
    }
}
