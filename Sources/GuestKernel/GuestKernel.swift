import Symbols
import VCPUContext

/// What a guest kernel says about itself in its own memory: VMCOREINFO, its symbol
/// table (kallsyms) and its log. Found on demand and cached by the caller; no file from
/// the user is needed.
public struct GuestKernel: Sendable {
    public let guest: Guest
    /// VMCOREINFO, or why it could not be found.
    public let vmcoreinfo: Result<LocatedVMCoreInfo, KernelDataError>
    /// Time spent finding VMCOREINFO.
    public let locateTime: Duration
    /// kallsyms searched for by content while looking for VMCOREINFO (ARM32's upward
    /// search): found, or why not; nil when no search ran.
    let kallsymsByContent: Result<KallsymsFinder.Found, KernelDataError>?

    /// Finds VMCOREINFO (first through `vmcoreinfoPointer`, a symbol file's
    /// `vmcoreinfo_data`, when given); nil when the guest has no memory to read.
    public init?(guest: Guest, vmcoreinfoPointer: UInt64? = nil) {
        guard let reader = KernelReader(guest: guest) else { return nil }
        self.guest = guest
        let clock = ContinuousClock()
        let start = clock.now
        var found: Result<KallsymsFinder.Found, KernelDataError>? = nil
        vmcoreinfo = Result { () throws(KernelDataError) in try VMCoreInfoLocator.locate(guest: guest, reader: reader, kallsyms: &found, pointerHint: vmcoreinfoPointer) }
        locateTime = clock.now - start
        kallsymsByContent = found
        guest.frames?.releaseResidentPages()   // the search's pages, read once
    }

    func reader() -> KernelReader {
        // `init?` proved the guest has memory.
        KernelReader(guest: guest)!
    }

    /// The kernel's symbols from kallsyms, as a System.map-style table.
    public struct Symbols: Sendable {
        public let map: SystemMap
        public let tables: Kallsyms.Tables
        public let encoding: Kallsyms.AddressEncoding
        /// How the tables were found (through VMCOREINFO, or by content).
        public let how: String
        /// Absolute symbols, which a symbol table skips: on x86_64 the per-CPU variables
        /// (`current_task`), whose values are offsets into each CPU's area.
        public let absolute: [String: UInt64]
        public let time: Duration
    }

    /// kallsyms through VMCOREINFO's symbols (Linux >= 6.0), else found by content.
    public func symbols() -> Result<Symbols, KernelDataError> {
        let clock = ContinuousClock()
        let start = clock.now
        let info = try? vmcoreinfo.get().info
        return Result { () throws(KernelDataError) in
            let reader = reader()
            let tables: Kallsyms.Tables, how: String
            if let info, let t = Kallsyms.Tables(vmcoreinfo: info) {
                (tables, how) = (t, "through VMCOREINFO")
            } else {
                let found: KallsymsFinder.Found
                if let known = kallsymsByContent { found = try known.get() } else { found = try KallsymsFinder.locate(guest: guest, reader: reader) }
                let why = info == nil ? "no VMCOREINFO" : "VMCOREINFO does not name them"
                (tables, how) = (found.tables, "\(found.how) (\(why))")
            }
            let decoded = try Kallsyms.decode(tables: tables, reader: reader, stext: info?.symbol("_stext"))
            guest.frames?.releaseResidentPages()   // the tables' pages, read once
            let map: SystemMap
            do { map = try SystemMap(addresses: decoded.addresses, types: decoded.types, nameBytes: decoded.nameBytes, nameEnds: decoded.nameEnds, path: "the guest's kallsyms") } catch {
                throw KernelDataError("kallsyms", "\(error)")
            }
            var absolute: [String: UInt64] = [:]
            for i in decoded.types.indices where decoded.types[i] | 0x20 == UInt8(ascii: "a") { absolute[decoded.name(i)] = decoded.addresses[i] }
            return Symbols(map: map, tables: tables, encoding: decoded.encoding, how: how, absolute: absolute, time: clock.now - start)
        }
    }

    /// The kernel log: the lockless ring (5.10+) or log_buf, whichever VMCOREINFO
    /// describes. Without VMCOREINFO (a kernel that died before writing it), the ring is
    /// found through kallsyms' `prb` and read with the layout of Linux 5.10–6.x.
    public func log(symbols: SystemMap? = nil) -> Result<KernelLog, KernelDataError> {
        Result { () throws(KernelDataError) in
            let info: VMCoreInfo
            var assumed = false
            switch vmcoreinfo {
            case .success(let located): info = located.info
            case .failure(let e):
                if let prb = symbols?.address(of: "prb") {
                    info = PrintkRing.assumedLayout(prb: prb, wordSize: guest.description.wordSize)
                    assumed = true
                } else {
                    do {
                        let found = try PrintkRing.locateStatic(guest: guest, reader: reader())
                        return KernelLog(records: found.log.records,
                                         source: found.log.source + ", found by its shape in the kernel image (no VMCOREINFO: \(e.reason); no prb symbol)",
                                         skipped: found.log.skipped, notes: found.log.notes)
                    } catch {
                        throw KernelDataError("kernel log", "VMCOREINFO was not found (\(e.reason)), no symbol names prb, and \(error)")
                    }
                }
            }
            let log: KernelLog
            if info.symbol("prb") != nil {
                log = try PrintkRing.read(vmcoreinfo: info, reader: reader())
            } else if info.symbol("log_buf") != nil {
                log = try LegacyLogBuffer.read(vmcoreinfo: info, reader: reader())
            } else {
                throw KernelDataError("kernel log", "VMCOREINFO names neither prb nor log_buf")
            }
            guard assumed else { return log }
            return KernelLog(records: log.records, source: log.source + ", found through kallsyms with the layout of Linux 5.10–6.x (no VMCOREINFO)",
                             skipped: log.skipped, notes: log.notes)
        }
    }
}
