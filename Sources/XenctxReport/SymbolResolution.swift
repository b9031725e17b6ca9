import GuestKernel
import Symbols
import VCPUContext

/// Where the report's symbols come from and whether they fit the guest: a System.map or
/// vmlinux the user gave (checked against what the guest says about itself), else the
/// guest's own kallsyms. Decided once, before the report; `facts` go to `--describe`,
/// `warnings` to stderr with exit status 1.
public struct SymbolResolution: Sendable {
    public var symbols: SystemMap?
    public var kernelOffset: KernelOffset?
    /// False when a vmlinux was found to be another build: its DWARF must not be used.
    public var vmlinuxFits = true
    public var symbolFacts: [String] = []
    /// The guest kallsyms' absolute symbols, when they were decoded.
    public var absoluteSymbols: [String: UInt64] = [:]
    public var warnings: [String] = []

    /// What the user gave.
    public struct Inputs: Sendable {
        public var map: SystemMap?
        public var mapPath: String?
        /// The vmlinux's path, build id and whether its symbols are `map` (no -s given).
        public var vmlinuxPath: String?
        public var vmlinuxBuildID: String?
        public var mapIsFromVmlinux = false
        /// Read kallsyms from guest memory when no file is given (off for upstream's exact output).
        public var guestSymbols = true
        /// The load offset the user gave (`--kaslr`), in place of the one found.
        public var offset: UInt64?
        public init() {}
    }

    public init(guest: Guest, kernel: GuestKernel?, inputs: Inputs) {
        let info = try? kernel?.vmcoreinfo.get().info
        let build = info.map { "Linux \($0.osRelease)" + ($0.buildID.map { ", build id \($0)" } ?? "") + ", \(guest.description.architecture.rawValue)" }
        var useGuest = inputs.map == nil && inputs.guestSymbols

        if let path = inputs.vmlinuxPath, let guestID = info?.buildID {
            if let id = inputs.vmlinuxBuildID, id != guestID {
                warnings.append("--vmlinux \(TerminalSafe.escape(path)) is another build: its build id is \(id), the guest runs \(build!); its symbols and source lines are not used")
                vmlinuxFits = false
            } else if let id = inputs.vmlinuxBuildID {
                symbolFacts.append("vmlinux: build id \(id) matches the guest's VMCOREINFO")
            } else {
                symbolFacts.append("vmlinux: has no build id note to check against the guest's (\(guestID))")
            }
        }

        if let map = inputs.map, vmlinuxFits || !inputs.mapIsFromVmlinux {
            let offset = inputs.offset.map { KernelOffset(finding: .verified(offset: $0, evidence: "given with --kaslr")) }
                ?? KernelOffset.detect(map: map, guest: guest, vmcoreinfo: info)
            let name = inputs.mapIsFromVmlinux ? "the vmlinux's symbol table" : "symbol table \(TerminalSafe.escape(inputs.mapPath ?? ""))"
            // Without _stext/_etext nothing counts as kernel text: stacks and traces would vanish.
            let noText = map.stext == 0 || map.etext == 0
            if noText {
                warnings.append("\(name) has no _stext/_etext: it cannot say where the kernel's text is, so no stack or call trace could be shown from it")
            }
            if offset.isMismatch { warnings.append("\(name): \(offset.describe); symbols will be wrong") }
            // The guest's own names are right where the file's are not.
            if (offset.isMismatch || noText) && inputs.guestSymbols, let kernel, case .success(let own) = kernel.symbols() {
                warnings.append("using the guest's own kallsyms (\(own.map.symbols.count) symbols) instead of \(name)")
                adopt(own, inPlaceOf: name)
                return
            }
            symbols = map.shifted(by: offset.offset)
            kernelOffset = offset
            return
        } else if inputs.map != nil {
            useGuest = inputs.guestSymbols
        }

        guard useGuest, let kernel else { return }
        switch kernel.symbols() {
        case .success(let own): adopt(own, inPlaceOf: nil)
        case .failure(let e):
            symbolFacts.append("symbols: none (no symbol file given, and \(e))")
            // Found but unreadable is no silent "no names": the tables may have been damaged.
            do { warnings.append("no symbols: the guest's own kallsyms could not be read (\(e)); frames are not named: give -s System.map or --vmlinux") }
        }
    }

    /// The guest's own kallsyms as the report's symbols.
    mutating func adopt(_ own: GuestKernel.Symbols, inPlaceOf file: String?) {
        symbols = own.map
        absoluteSymbols = own.absolute
        kernelOffset = KernelOffset(finding: .own)
        let origin = file.map { "\(own.how)), in place of \($0)" } ?? "\(own.how); \(own.encoding.rawValue) addresses; \(milliseconds(own.time)))"
        symbolFacts.append("symbols: \(own.map.symbols.count) from the guest's kallsyms (\(origin)")
    }
}

public func milliseconds(_ d: Duration) -> String {
    let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    return "\((ms * 100).rounded() / 100) ms"
}
