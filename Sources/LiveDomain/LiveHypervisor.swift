import CXenLive
import Synchronization
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

    /// Checks the host, loads the libraries and opens the handles, in that order, so the
    /// first thing that is missing is the one reported.
    public init() throws(LiveError) {
        let fm = access("/proc/xen/privcmd", F_OK) == 0 || access("/dev/xen/privcmd", F_OK) == 0
        guard fm else { throw .notXen }
        guard geteuid() == 0 else { throw .notRoot }
        try Self.loadLibraries()
        guard xenlive_open() == 0 else { throw .cannotOpen(String(cString: strerror(errno))) }
    }

    /// Loads libxenctrl and libxenforeignmemory and resolves every function the live path
    /// uses (testable on any machine that has the libraries, Xen or not).
    public static func loadLibraries() throws(LiveError) {
        var err = [CChar](repeating: 0, count: 512)
        guard xenlive_load(&err, err.count) == 0 else {
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
        if raw.flags & 1 != 0 { throw .dying(domid) }
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
        guard xenlive_pause(domid) == 0 else { throw LiveError.hypercall(what: "pausing domain \(domid)", errno: errno) }
        xenlive_set_paused_domain(Int64(domid))
        defer {
            xenlive_set_paused_domain(-1)
            xenlive_unpause(domid)
        }
        let result = try body()
        return (result, clock.now - start)
    }

    /// Reads everything a report starts from: the kind of guest and every vCPU's context.
    /// Memory is read on demand through the returned guest's frames.
    public func guest(domid: UInt32) throws(LiveError) -> Guest {
        let info = try info(domid: domid)
        let size = xenlive_context_size()
        var files: [(Int, RegisterFile?, Bool)] = []
        var rawContexts: [[UInt8]] = []
        #if arch(x86_64) || arch(i386)
        var width: UInt32 = 8
        if !info.isHVM {
            guard xenlive_guest_width(domid, &width) == 0 else { throw .hypercall(what: "xc_domain_get_guest_width", errno: errno) }
        }
        let machine = width == 4 ? XenCoreLayout.em386 : XenCoreLayout.emX86_64
        let layout: ContextLayout = (!info.isHVM && width == 4) ? .x86_32 : .x86_64
        #else
        let machine = XenCoreLayout.emARM
        let layout = ContextLayout.arm(entrySize: size)
        #endif
        for vcpu in 0...max(0, info.maxVCPUID) {
            var online: Int32 = 0
            guard xenlive_vcpu_online(domid, UInt32(vcpu), &online) == 0 else { continue }
            var buf = [UInt8](repeating: 0, count: size)
            if xenlive_vcpu_context(domid, UInt32(vcpu), &buf) != 0 {
                // -ENODATA: never started; Xen has no context for it.
                files.append((vcpu, nil, false))
                rawContexts.append(buf)
                continue
            }
            files.append((vcpu, RegisterFile.decode(LittleEndianBytes(buf), layout: layout), online != 0))
            rawContexts.append(buf)
        }
        var caps = [CChar](repeating: 0, count: 1024)
        _ = xenlive_capabilities(&caps, caps.count)
        var major: UInt32 = 0, minor: UInt32 = 0
        _ = xenlive_version(&major, &minor)
        var facts = SourceFacts(machine: machine, isPV: !info.isHVM, contextEntrySize: size,
                                xenVersion: "\(major).\(minor)",
                                capabilities: String(decoding: caps.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        facts.origin = "live domain"
        #if arch(x86_64) || arch(i386)
        if info.isHVM {
            var efer: UInt64 = 0, cr0: UInt64 = 0
            if xenlive_hvm_efer(domid, 0, &efer, &cr0) == 0 { facts.hvmEFER = efer; facts.hvmCR0 = cr0 }
        }
        #endif
        lastContexts = rawContexts.enumerated().filter { files[$0.offset].1 != nil }.map(\.element)
        let decoded = files.compactMap { $0.1 }
        let description = GuestDescription.decide(facts: facts, vcpus: decoded)
        let zero = RegisterFile.decode(LittleEndianBytes([UInt8](repeating: 0, count: size)), layout: layout)!
        let vcpus = files.map { VCPU(id: $0.0, idIsCertain: true, registers: $0.1 ?? zero, online: $0.1 == nil ? false : $0.2) }
        return Guest(description: description, vcpus: vcpus, frames: LiveFrames(domid: domid), warnings: [],
                     facts: ["live domain \(domid): \(info.isHVM ? "HVM" : "PV"), \(info.pages) pages, vCPUs 0–\(info.maxVCPUID), Xen \(major).\(minor)"])
    }
}

/// Guest frames of a live domain, mapped read-only on first use and copied, so the
/// report can be printed after the domain is unpaused.
final class LiveFrames: FrameSource, @unchecked Sendable {
    let domid: UInt32
    private let lock = Mutex<[UInt64: UnsafeMutableRawPointer?]>([:])

    init(domid: UInt32) { self.domid = domid }

    deinit {
        lock.withLock { pages in for p in pages.values { free(p) } }
    }

    func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        let p: UnsafeMutableRawPointer? = lock.withLock { pages in
            if let cached = pages[frame] { return cached }
            guard pages.count < 1 << 16 else { return nil }   // a report needs a few hundred pages at most
            let buf = malloc(4096)!
            var f = frame
            var err: Int32 = 0
            let ok = xenlive_read_frames(domid, &f, 1, buf, &err) == 0 && err == 0
            if !ok { free(buf) }
            pages[frame] = .some(ok ? buf : nil)     // failures are remembered too
            return ok ? buf : nil
        }
        return p.map { UnsafeRawBufferPointer(start: $0, count: 4096) }
    }

    func whyMissing(_ frame: UInt64) -> String { "frame 0x\(hex(frame)) of domain \(domid) cannot be mapped" }
}

extension LiveHypervisor {
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
        var buf = [UInt8](repeating: 0, count: xenlive_context_size())
        for vcpu in 0...max(0, info.maxVCPUID) where entry < core.vcpuEntryCount {
            guard xenlive_vcpu_context(domid, UInt32(vcpu), &buf) == 0 else { continue }   // not in the core
            var online: Int32 = 1
            if xenlive_vcpu_online(domid, UInt32(vcpu), &online) == 0 && online == 0 {
                let flagsOffset = off_t(core.prstatus.offset) + off_t(entry * core.contextEntrySize) + 512
                var flags: UInt8 = 0
                guard pread(fd, &flags, 1, flagsOffset) == 1 else { throw LiveError.write("cannot read back \(path)") }
                flags &= ~UInt8(VGCF.online)
                guard pwrite(fd, &flags, 1, flagsOffset) == 1 else { throw LiveError.write("cannot update \(path)") }
            }
            entry += 1
        }
    }

    /// Writes a complete core of the domain to `path` (via a temporary file in the same
    /// folder, renamed at the end). x86 uses libxenctrl's own writer, which `xl dump-core`
    /// uses; elsewhere (ARM, whose xl writer saves no RAM) every guest frame up to the
    /// maximum gpfn that maps is written by `DumpCoreWriter`. Returns the pages written.
    public func saveCore(domid: UInt32, to path: String, force: Bool) throws -> Int {
        if !force && access(path, F_OK) == 0 { throw LiveError.fileExists(path) }
        let tmp = path + ".partial-\(getpid())"
        unlink(tmp)
        defer { unlink(tmp) }
        let progress = SaveProgress(path: tmp)
        progress.start()
        defer { progress.stop() }
        #if arch(x86_64) || arch(i386)
        guard xenlive_dumpcore(domid, tmp) == 0 else {
            if errno == ENOSYS { throw LiveError.librariesMissing("libxenguest (xc_domain_dumpcore) cannot be loaded") }
            throw LiveError.hypercall(what: "xc_domain_dumpcore", errno: errno)
        }
        let written = Int(try XenCore(path: tmp).header.pageCount)
        try recordOnlineState(domid: domid, core: tmp)
        #else
        let guest = try guest(domid: domid)
        _ = guest
        var maxGPFN: UInt64 = 0
        guard xenlive_max_gpfn(domid, &maxGPFN) == 0 else { throw LiveError.hypercall(what: "xc_domain_maximum_gpfn", errno: errno) }
        var writer = DumpCoreWriter(machine: XenCoreLayout.emARM, magic: XenCoreLayout.magicHVM, entrySize: Int(xenlive_context_size()),
                                    contexts: lastContexts, frames: [])
        writer.capabilities = ""
        var next: UInt64 = 0
        var batch: [(UInt64, [UInt8])] = []
        let written = try writer.writeStreaming(to: tmp) { () -> (pfn: UInt64, page: [UInt8])? in
            while batch.isEmpty && next <= maxGPFN {
                let count = Int(min(1024, maxGPFN - next + 1))
                var frames = (0..<count).map { next + UInt64($0) }
                var buf = [UInt8](repeating: 0, count: count * 4096)
                var errs = [Int32](repeating: 0, count: count)
                if xenlive_read_frames(domid, &frames, Int32(count), &buf, &errs) == 0 {
                    for i in 0..<count where errs[i] == 0 { batch.append((frames[i], Array(buf[(i * 4096)..<((i + 1) * 4096)]))) }
                }
                next += UInt64(count)
            }
            return batch.isEmpty ? nil : { let b = batch.removeFirst(); return (b.0, b.1) }()
        }
        #endif
        guard rename(tmp, path) == 0 else { throw LiveError.write("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))") }
        return written
    }
}
