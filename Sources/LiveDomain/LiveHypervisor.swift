import CXenLive
import Synchronization
import SafeFile
import VCPUContext
#if canImport(Glibc)
import Glibc
#endif

/// A Xen host seen from dom0, through libxenctrl loaded at run time.
///
/// Read-only: it pauses and unpauses (reference-counted, as upstream), reads vCPU
/// contexts and maps guest frames read-only; it never writes a domain.
public final class LiveHypervisor: @unchecked Sendable {
    /// The raw contexts of the started vCPUs read by the last `guest(domid:)`, for `--save-core`.
    public private(set) var lastContexts: [[UInt8]] = []
    /// What the last `guest(domid:)` learnt of the hypervisor and the guest kind.
    public private(set) var lastFacts: SourceFacts? = nil
    /// How long the last pause call took to return: Xen waits for the domain's vCPUs to stop,
    /// so a busy domain's pause starts with this.
    public private(set) var lastPauseCall: Duration? = nil

    /// Checks the host, loads the libraries and opens the handles, in that order, so the
    /// first thing that is missing is the one reported. With `XENCTX_XEN_LIBDIR` the
    /// libraries are loaded from that folder (a Xen installed elsewhere, or the tests'
    /// stand-in), and whether this host can reach Xen is theirs to say.
    public init() throws(LiveError) {
        let libraryDirectory = getenv("XENCTX_XEN_LIBDIR").map { String(cString: $0) }
        if libraryDirectory == nil {
            let fm = access("/proc/xen/privcmd", F_OK) == 0 || access("/dev/xen/privcmd", F_OK) == 0
            guard fm else { throw .notXen }
            guard geteuid() == 0 else { throw .notRoot }
        }
        try Self.loadLibraries(from: libraryDirectory)
        guard xenlive_open() == 0 else { throw .cannotOpen(String(cString: strerror(errno))) }
        xen = Self.hypervisorFacts()
    }

    /// Xen's version and capabilities, read once when opened: they cannot change while the
    /// tool runs, and every call inside a pause lengthens it.
    let xen: (major: UInt32, minor: UInt32, capabilities: String)

    /// Loads libxenctrl and libxenforeignmemory and resolves every function the live path
    /// uses (testable on any machine that has the libraries, Xen or not).
    public static func loadLibraries(from directory: String? = nil) throws(LiveError) {
        var err = [CChar](repeating: 0, count: 512)
        guard xenlive_load(directory, &err, err.count) == 0 else {
            throw .librariesMissing(String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }

    public struct DomainInfo: Sendable {
        public let domid: UInt32
        public let isHVM: Bool
        public let maxVCPUID: Int
        public let pages: UInt64
        public let flags: UInt32
    }

    public func info(domid: UInt32) throws(LiveError) -> DomainInfo {
        if domid == 0 { throw .dom0 }
        var raw = xenlive_dominfo()
        switch xenlive_getinfo(domid, &raw) {
        case 0: break
        case -2: throw .noSuchDomain(domid)
        default: throw .hypercall(what: "getting domain \(domid)'s info", errno: errno)
        }
        if raw.flags & UInt32(XENLIVE_DOMINF_DYING) != 0 { throw .dying(domid) }
        return DomainInfo(domid: domid, isHVM: raw.flags & UInt32(XENLIVE_DOMINF_HVM) != 0, maxVCPUID: Int(raw.max_vcpu_id),
                          pages: raw.tot_pages, flags: raw.flags)
    }

    /// Runs `body` with the domain paused (unless `pause` is false) and unpauses on every
    /// path: normal return, a thrown error, and SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGPIPE
    /// (a C handler unpauses before the default action). Returns how long it was paused.
    public func whilePaused<T>(domid: UInt32, pause: Bool, _ body: () throws -> T) throws -> (T, Duration?) {
        guard pause else { return (try body(), nil) }
        xenlive_install_signal_handlers()
        let clock = ContinuousClock()
        let start = clock.now
        guard xenlive_pause_recorded(domid) == 0 else { throw failure("pausing domain \(domid)", domid: domid) }
        defer { xenlive_unpause_recorded(domid) }
        lastPauseCall = clock.now - start
        let result = try body()
        return (result, clock.now - start)
    }

    /// The error for a call on `domid` that failed with errno: the domain's disappearance
    /// when Xen says ESRCH and the domain is indeed gone, else the call's own failure.
    func failure(_ what: String, domid: UInt32) -> LiveError {
        let saved = errno
        if saved == ESRCH {
            var raw = xenlive_dominfo()
            if xenlive_getinfo(domid, &raw) == -2 || raw.flags & UInt32(XENLIVE_DOMINF_DYING) != 0 { return .vanished(domid) }
        }
        return .hypercall(what: what, errno: saved)
    }

    /// What the hypervisor runs on, which decides the layout of its vCPU contexts.
    public enum Architecture: Sendable, Equatable {
        case x86, arm

        /// The host this tool was built for: a real dom0 runs on its hypervisor's architecture.
        static var host: Architecture {
            #if arch(x86_64) || arch(i386)
            return .x86
            #else
            return .arm
            #endif
        }

        /// From XENVER_capabilities ("xen-3.0-x86_64 hvm-3.0-x86_32 …", "xen-3.0-aarch64 xen-3.0-armv7l"),
        /// so a hypervisor is read in its own layout whatever the host (the tests' stand-in
        /// serves ARM cores to an x86 host); the host's own when Xen does not say.
        public static func of(capabilities: String) -> Architecture {
            if capabilities.contains("x86_64") || capabilities.contains("x86_32") { return .x86 }
            if capabilities.contains("aarch64") || capabilities.contains("armv7") { return .arm }
            return host
        }

        /// `sizeof(vcpu_guest_context_any_t)` of a toolstack of this architecture: the
        /// bridge's own on the host's architecture, else the Xen 4.17 layout.
        var contextSize: Int {
            self == .host ? xenlive_context_size() : (self == .x86 ? XenCoreLayout.x86EntrySize : XenCoreLayout.armEntrySizes[0])
        }
        var machine: UInt16 { self == .x86 ? XenCoreLayout.emX86_64 : XenCoreLayout.emARM }
    }

    /// Xen's version and capabilities (what a core's version note holds).
    static func hypervisorFacts() -> (major: UInt32, minor: UInt32, capabilities: String) {
        var caps = [CChar](repeating: 0, count: 1024)
        _ = xenlive_capabilities(&caps, caps.count)
        var major: UInt32 = 0, minor: UInt32 = 0
        _ = xenlive_version(&major, &minor)
        return (major, minor, String(decoding: caps.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// Reads everything a report starts from: the kind of guest and every vCPU's context.
    /// Memory is read on demand through the returned guest's frames.
    /// `known` is the domain's info read before pausing (its kind and vCPU count do not
    /// change), which saves a call inside the pause; `frames` a source to read memory
    /// through (one warmed before the pause), else a new one.
    public func guest(domid: UInt32, known: DomainInfo? = nil, frames: LiveFrames? = nil) throws(LiveError) -> Guest {
        let info: DomainInfo
        if let known { info = known } else { info = try self.info(domid: domid) }
        let architecture = Architecture.of(capabilities: xen.capabilities)
        let size = architecture.contextSize
        var files: [(Int, RegisterFile?, Bool)] = []
        var rawContexts: [[UInt8]] = []
        var machine = architecture.machine
        let layout: ContextLayout
        if architecture == .x86 {
            var width: UInt32 = 8
            if !info.isHVM {
                guard xenlive_guest_width(domid, &width) == 0 else { throw failure("xc_domain_get_guest_width", domid: domid) }
            }
            if width == 4 { machine = XenCoreLayout.em386 }
            layout = (!info.isHVM && width == 4) ? .x86_32 : .x86_64
        } else {
            layout = .arm(entrySize: size)
        }
        // The library writes its own sizeof(vcpu_guest_context_any_t); the guest's layout may be smaller.
        let bufferSize = max(size, xenlive_context_size())
        for vcpu in 0...max(0, info.maxVCPUID) {
            // ARM's context says VGCF_online afresh from the vCPU's down flag on every call,
            // as Xen's vCPU info does, so ARM saves that hypercall (each one lengthens the pause).
            var online: Int32 = 1
            if architecture == .x86 {
                guard xenlive_vcpu_online(domid, UInt32(vcpu), &online) == 0 else {
                    let error = failure("getting vCPU \(vcpu)'s state", domid: domid)
                    if case .hypercall(_, ESRCH) = error { continue }   // the domain is there: no vCPU with this id
                    throw error
                }
            }
            var buf = [UInt8](repeating: 0, count: bufferSize)
            if xenlive_vcpu_context(domid, UInt32(vcpu), &buf) != 0 {
                // -ENODATA: never started, so Xen has no context for it; -ESRCH (asked first on
                // ARM): no vCPU with this id. Anything else is a failure, not a vCPU to show as offline.
                if errno == ESRCH && architecture == .arm {
                    let error = failure("getting vCPU \(vcpu)'s context", domid: domid)
                    if case .hypercall(_, ESRCH) = error { continue }
                    throw error
                }
                guard errno == ENODATA else { throw failure("getting vCPU \(vcpu)'s context", domid: domid) }
                files.append((vcpu, nil, false))
                rawContexts.append(Array(buf.prefix(size)))
                continue
            }
            buf.removeLast(bufferSize - size)
            files.append((vcpu, RegisterFile.decode(LittleEndianBytes(buf), layout: layout), online != 0))
            rawContexts.append(buf)
        }
        var facts = SourceFacts(machine: machine, isPV: !info.isHVM, contextEntrySize: size,
                                xenVersion: "\(xen.major).\(xen.minor)", capabilities: xen.capabilities)
        facts.origin = "live domain"
        if architecture == .x86 && info.isHVM {
            var efer: UInt64 = 0, cr0: UInt64 = 0
            if xenlive_hvm_efer(domid, 0, &efer, &cr0) == 0 { facts.hvmEFER = efer; facts.hvmCR0 = cr0 }
        }
        lastContexts = rawContexts.enumerated().filter { files[$0.offset].1 != nil }.map { i, raw in
            // An x86 context's VGCF_online can be stale (sticky for PV); Xen's vCPU info is not.
            guard architecture == .x86, raw.count > VGCF.flagsOffset, !files[i].2 else { return raw }
            var patched = raw
            patched[VGCF.flagsOffset] &= ~UInt8(VGCF.online)
            return patched
        }
        lastFacts = facts
        let decoded = files.compactMap { $0.1 }
        let description = GuestDescription.decide(facts: facts, vcpus: decoded)
        let zero = RegisterFile.decode(LittleEndianBytes([UInt8](repeating: 0, count: size)), layout: layout)!
        // ARM: the context's own VGCF_online (`online` was not asked).
        let vcpus = files.map { VCPU(id: $0.0, idIsCertain: true, registers: $0.1 ?? zero, online: $0.1 == nil ? false : architecture == .arm ? nil : $0.2) }
        return Guest(description: description, vcpus: vcpus, frames: frames ?? LiveFrames(domid: domid), warnings: [],
                     facts: ["live domain \(domid): \(info.isHVM ? "HVM" : "PV"), \(info.pages) pages, vCPUs 0–\(info.maxVCPUID), Xen \(xen.major).\(xen.minor)"])
    }
}

extension LiveHypervisor {
    /// The pages a report copied from a live domain and the mappings that copied them; nil
    /// for a guest not read live.
    public static func pagesRead(by guest: Guest) -> (pages: Int, mappings: Int)? {
        (guest.frames as? LiveFrames)?.statistics
    }

    /// A PV context's VGCF_online is sticky (Xen ORs in the boot-time flags), so a core
    /// written by libxenctrl would show a downed vCPU as online. Clear the bit for the
    /// vCPUs Xen reports offline, in the file we just wrote, so the core says what the
    /// live report said. Entries are the vCPUs with a context, in id order (xg_core.c).
    func recordOnlineState(domid: UInt32, core path: String) throws {
        let info = try info(domid: domid)
        var entry = 0
        let core = try XenCore(path: path)
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw LiveError.write("cannot reopen \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: max(xenlive_context_size(), core.contextEntrySize))
        for vcpu in 0...max(0, info.maxVCPUID) where entry < core.vcpuEntryCount {
            guard xenlive_vcpu_context(domid, UInt32(vcpu), &buf) == 0 else { continue }   // not in the core
            var online: Int32 = 1
            if xenlive_vcpu_online(domid, UInt32(vcpu), &online) == 0 && online == 0 {
                let flagsOffset = off_t(core.prstatus.offset) + off_t(entry * core.contextEntrySize) + off_t(VGCF.flagsOffset)
                var flags: UInt8 = 0
                guard pread(fd, &flags, 1, flagsOffset) == 1 else { throw LiveError.write("cannot read back \(path)") }
                flags &= ~UInt8(VGCF.online)
                guard pwrite(fd, &flags, 1, flagsOffset) == 1 else { throw LiveError.write("cannot update \(path)") }
            }
            entry += 1
        }
    }

    /// Whether a core can be written at `path` (checked before the domain is paused): not
    /// there unless `force`, a regular file if there, and its folder writable.
    public static func checkWritable(_ path: String, force: Bool) throws(LiveError) {
        if let problem = SafeFile.outputProblem(path, force: force) { throw .write(problem.description) }
    }

    /// Writes a complete core of the domain to `path` (via a temporary file in the same
    /// folder, renamed at the end). x86 PV uses libxenguest's own writer, which `xl
    /// dump-core` uses; ARM and x86 HVM/PVH get every guest frame up to the maximum gpfn
    /// that maps, mapped in batches (`writeGuestFrameCore`). Returns the pages written.
    public func saveCore(domid: UInt32, to path: String, force: Bool) throws -> Int {
        try Self.checkWritable(path, force: force)
        let tmp = path + ".partial-\(getpid())"
        unlink(tmp)
        defer { unlink(tmp) }
        let progress = SaveProgress(path: tmp)
        progress.start()
        defer { progress.stop() }
        _ = try guest(domid: domid)   // the contexts and facts the core records
        let facts = lastFacts!
        let written: Int
        if facts.isPV {
            // PV: libxenguest's own writer (xl dump-core's), which records the p2m.
            guard xenlive_dumpcore(domid, tmp) == 0 else {
                if errno == ENOSYS { throw LiveError.librariesMissing("libxenguest (xc_domain_dumpcore) cannot be loaded") }
                throw failure("xc_domain_dumpcore", domid: domid)
            }
            written = Int(try XenCore(path: tmp).header.pageCount)
            try recordOnlineState(domid: domid, core: tmp)
        } else {
            written = try writeGuestFrameCore(domid: domid, facts: facts, to: tmp)
        }
        guard rename(tmp, path) == 0 else { throw LiveError.write("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))") }
        return written
    }

    /// The writer of an auto-translated domain's core (HVM magic, `.xen_pfn` of `frames`):
    /// the contexts `guest(domid:)` read and Xen's version details, as xl records them.
    func guestFrameWriter(facts: SourceFacts, frames: [UInt64]) -> DumpCoreWriter {
        let machine = facts.machine == XenCoreLayout.emARM ? XenCoreLayout.emARM : XenCoreLayout.emX86_64   // HVM contexts are host-sized
        var writer = DumpCoreWriter(machine: machine, magic: XenCoreLayout.magicHVM, entrySize: facts.contextEntrySize,
                                    contexts: lastContexts, frames: frames.map { (pfn: $0, gmfn: $0) })
        (writer.xenMajor, writer.xenMinor, writer.capabilities) = (UInt64(xen.major), UInt64(xen.minor), xen.capabilities)
        var extra = [UInt8](repeating: 0, count: 16), compile = [UInt8](repeating: 0, count: 144)
        var changeset = [UInt8](repeating: 0, count: 64), virtStart: UInt64 = 0
        xenlive_version_details(&extra, &compile, &changeset, &virtStart)
        (writer.extraVersion, writer.compileInfo, writer.changeset, writer.virtStart) = (extra, compile, changeset, virtStart)
        return writer
    }

    /// A core of an ARM or x86 HVM/PVH domain, written here rather than by libxenguest:
    /// ARM's `xl dump-core` saves no guest RAM, and on HVM it maps one frame at a time
    /// (about 5 minutes for 256 MiB of PVH guest in the lab). The contexts just read and
    /// every guest frame up to the maximum gpfn that maps, in order, in the layout xl uses
    /// (HVM magic, `.xen_pfn`; no `.xen_shared_info`), mapped as many frames a call as the
    /// bridge allows (XENLIVE_MAX_FRAMES).
    func writeGuestFrameCore(domid: UInt32, facts: SourceFacts, to path: String) throws -> Int {
        var maxGPFN: UInt64 = 0
        guard xenlive_max_gpfn(domid, &maxGPFN) == 0 else { throw failure("xc_domain_maximum_gpfn", domid: domid) }
        let writer = guestFrameWriter(facts: facts, frames: [])
        var next: UInt64 = 0
        var batch: [(UInt64, [UInt8])] = []
        var batchStart = 0
        return try writer.writeStreaming(to: path) { () throws -> (pfn: UInt64, page: [UInt8])? in
            while batchStart == batch.count && next <= maxGPFN {
                batch.removeAll(keepingCapacity: true)
                batchStart = 0
                let count = Int(min(UInt64(XENLIVE_MAX_FRAMES), maxGPFN - next + 1))
                var frames = (0..<count).map { next + UInt64($0) }
                var buf = [UInt8](repeating: 0, count: count * 4096)
                var errs = [Int32](repeating: 0, count: count)
                guard xenlive_read_frames(domid, &frames, Int32(count), &buf, &errs) == 0 else {
                    // The whole batch failed (not one frame the guest lacks): the domain is gone or Xen refused.
                    throw failure("mapping guest frames 0x\(hex(next))–0x\(hex(next + UInt64(count) - 1))", domid: domid)
                }
                for i in 0..<count {
                    if errs[i] == 0 { batch.append((frames[i], Array(buf[(i * 4096)..<((i + 1) * 4096)]))); continue }
                    // Xen refuses a frame the guest does not have with -EINVAL; any other
                    // refusal would leave a hole in the guest's RAM that the core would hide.
                    guard errs[i] == -EINVAL else {
                        throw LiveError.hypercall(what: "mapping guest frame 0x\(hex(frames[i])) (the core would miss it)", errno: -errs[i])
                    }
                }
                next += UInt64(count)
            }
            guard batchStart < batch.count else { return nil }
            defer { batchStart += 1 }
            return (batch[batchStart].0, batch[batchStart].1)
        }
    }
}

extension LiveHypervisor {
    /// A trimmed core of the domain: only `frames` (as the guest's mappings name them), read
    /// through `source` (the live guest's copies) after `guest(domid:)`. Auto-translated
    /// guests (ARM, HVM, PVH) name guest frames, written as they are; a PV guest's frames are
    /// machine frames, whose pfns only the full p2m gives, so its core is written whole by
    /// libxenguest next to `path` first and trimmed from there (that needs the guest's RAM in
    /// disk space for a moment). Returns the pages written.
    public func saveTrimmedCore(domid: UInt32, frames: Set<UInt64>, source: any FrameSource, note: String, to path: String, force: Bool) throws -> Int {
        try Self.checkWritable(path, force: force)
        guard let facts = lastFacts else { throw LiveError.write("no vCPU contexts read before writing \(path)") }
        let tmp = path + ".partial-\(getpid())"
        unlink(tmp)
        defer { unlink(tmp) }
        let written: Int
        if facts.isPV {
            let whole = path + ".whole-\(getpid())"
            unlink(whole)
            defer { unlink(whole) }
            guard xenlive_dumpcore(domid, whole) == 0 else {
                if errno == ENOSYS { throw LiveError.librariesMissing("libxenguest (xc_domain_dumpcore) cannot be loaded") }
                throw failure("xc_domain_dumpcore", domid: domid)
            }
            try recordOnlineState(domid: domid, core: whole)
            written = try CoreTrim.write(core: XenCore(path: whole), frames: frames, note: note, to: tmp).pages
        } else {
            let kept = frames.filter { source.page($0) != nil }.sorted()
            var writer = guestFrameWriter(facts: facts, frames: kept)
            writer.extraNotes = [CoreTrim.note(note)]
            try writer.write(to: tmp) { i in source.page(kept[i]).map { Array($0) } }
            written = kept.count
        }
        guard rename(tmp, path) == 0 else { throw LiveError.write("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))") }
        return written
    }
}
