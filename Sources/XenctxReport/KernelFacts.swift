import GuestKernel
import StackWalk
import Symbols
import Synchronization
import VCPUContext

/// What every view of one guest shares about its kernel: the symbols with the loaded
/// modules', the kernel's types and task layout, its unwind tables, each vCPU's current
/// task and what kind of guest it is. Worked out once, on first use (`Lazy`), so that a view
/// which needs none of it (`-m`, `-d`) does not pay for it; immutable after.
final class KernelFacts: Sendable {
    // Each as the `Report` property of the same name says.
    let classifier: KernelAddressClassifier
    let kernelOffset: KernelOffset?
    let unwindTables: UnwindTables
    let taskLayout: Result<TaskLayout, KernelDataError>?
    let lockLayout: LockLayout?
    let kernelTypes: (any KernelTypes)?
    let modules: ModuleList?
    let modulesMissing: String?
    let currentTasks: [Int: Result<CurrentTask, KernelDataError>]
    let guestSummary: String
    let guestKindEvidence: String?

    init(guest: Guest, options: ReportOptions) {
        let arch = guest.description.architecture
        // Resolved symbols are already at the guest's addresses; a bare map is checked here.
        let resolved = options.kernelOffset != nil
        let offset = options.kernelOffset ?? options.symbols.map { KernelOffset.detect(map: $0, guest: guest) }
        kernelOffset = offset
        let imageSymbols = resolved ? options.symbols : options.symbols.map { $0.shifted(by: offset?.offset ?? 0) }
        var symbols = imageSymbols
        var types: Result<any KernelTypes, KernelDataError>? = nil
        var moduleList: ModuleList? = nil
        var modulesMissing: String? = "no kernel types were looked for"
        let reader = options.kernel != nil && (!options.upstreamExact || options.tasks != nil) ? KernelReader(guest: guest) : nil
        // Types (for tasks) come from the guest's BTF (x86_64 and arm64 kernels have it);
        // with them, the loaded modules, whose symbols and text join the image's.
        if let reader {
            let bounds = imageSymbols?.addresses(of: BTF.boundSymbols.union(["modules"])) ?? [:]
            let located = Result { () throws(KernelDataError) in try BTF.locate(guest: guest, reader: reader, symbols: bounds) }
            // The guest's own BTF first; else the DWARF of a --vmlinux that fits the guest.
            switch (located, options.kernelTypes) {
            case (.failure(let noBTF), let dwarf?):
                types = .success(dwarf)
                taskLayout = Result { () throws(KernelDataError) in
                    try TaskLayout(types: dwarf, architecture: arch, how: "the vmlinux (the guest has no BTF: \(noBTF.reason))")
                }
            default:
                types = located.map { $0.btf as any KernelTypes }
                taskLayout = located.flatMap { found in
                    Result { () throws(KernelDataError) in
                        try TaskLayout(types: found.btf, architecture: arch, how: "BTF at \(hex(found.address)), found \(found.how) (\(found.btf.typeCount) types)")
                    }
                }
            }
            lockLayout = (try? types?.get()).map { LockLayout(types: $0) }
            kernelTypes = try? types?.get()
            switch (types, bounds["modules"]) {
            case (.success(let kernelTypes)?, let head?):
                do {
                    let layout = try ModuleLayout(types: kernelTypes)
                    let list = ModuleList.walk(reader: reader, layout: layout, head: head)
                    moduleList = list
                    modulesMissing = nil
                    symbols = symbols?.merging(list.modules.flatMap { m in m.symbols.map { SystemMap.Symbol(address: $0.address, name: $0.name, module: m.name) } })
                } catch {
                    modulesMissing = error.description
                }
            case (.success?, nil):
                modulesMissing = "the symbols do not name the `modules` list head (kallsyms without data symbols, as on Debian's arm64, does not: give -s System.map)"
            case (.failure(let e)?, _):
                modulesMissing = "no kernel types: \(e)"
            case (nil, _):
                break
            }
        } else {
            taskLayout = nil
            lockLayout = nil
            kernelTypes = nil
        }
        modules = moduleList
        self.modulesMissing = modulesMissing
        var classifier = KernelAddressClassifier(
            symbols: symbols,
            kernelStart: options.kernelStart ?? guest.defaultKernelStart,
            kernelStartSet: options.kernelStart != nil,
            defaultEnd: KernelStart.defaultEnd(for: arch),
            textOnlyFromSymbols: arch.descriptor.textOnlyFromSymbols)
        classifier.moduleText = moduleList?.modules.flatMap(\.code) ?? []
        self.classifier = classifier
        let needsTables = [.auto, .exidx, .orc].contains(options.unwind) || options.tasks != nil
        var tables = UnwindTables(symbols: imageSymbols, architecture: arch, guest: needsTables ? guest : nil)
        if let orc = tables.orc, let memory = KernelReader(guest: guest)?.memory {
            tables.orc = orc.detectingFormat(memory: memory)
        }
        // Modules are built by the same objtool as the kernel: their entries read the same way.
        let format = tables.orc?.format, unformatted = tables.orc?.unformatted
        // One table per module, for its core text and, while it loads, its init text.
        tables.moduleORC = moduleList?.modules.flatMap { m -> [(Range<UInt64>, ORCUnwinder.Tables)] in
            guard let o = m.orc else { return [] }
            let t = ORCUnwinder.Tables(ipTable: o.ip, stopIPTable: o.ip &+ UInt64(o.count) * 4, entries: o.entries, format: format, unformatted: unformatted)
            return m.code.map { ($0, t) }
        } ?? []
        unwindTables = tables
        (guestSummary, guestKindEvidence) = Report.guestKind(guest: guest, reader: reader, symbols: imageSymbols)
        if let reader, let layout = taskLayout {
            currentTasks = (try? layout.get()).map { CurrentTask.all(guest: guest, reader: reader, layout: $0, symbols: imageSymbols, absolute: options.absoluteSymbols) } ?? [:]
        } else {
            currentTasks = [:]
        }
    }

}

/// An object made once, on first use, then shared: after the first, a use is one atomic
/// load (views ask for the classifier once per stack word). Two threads that ask first at
/// the same moment may both make it; one is kept.
final class Lazy<Value: AnyObject & Sendable>: Sendable {
    private let stored = AtomicLazyReference<Value>()
    private let make: @Sendable () -> Value
    init(_ make: @escaping @Sendable () -> Value) { self.make = make }
    var value: Value { stored.load() ?? stored.storeIfNil(make()) }
}
