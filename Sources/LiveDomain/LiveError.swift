/// Why a live domain could not be inspected, said so the user knows what to do.
public enum LiveError: Error, CustomStringConvertible, Equatable {
    case notXen
    case notRoot
    case librariesMissing(String)
    case cannotOpen(String)
    case noSuchDomain(UInt32)
    case dom0
    case dying(UInt32)
    case vanished(UInt32)
    case hypercall(what: String, errno: Int32)
    case noSuchVCPU(Int, maxID: Int)
    case write(String)

    public var description: String {
        switch self {
        case .notXen:
            return "this host is not a Xen dom0 (no /proc/xen/privcmd or /dev/xen/privcmd): run xenctx-swift in dom0, or on a core with --core FILE"
        case .notRoot:
            return "inspecting a live domain needs root (privcmd is root-only): run it with sudo"
        case .librariesMissing(let why):
            return "Xen's libraries are missing: \(why). Install them (Debian: xen-utils, or libxenmisc4.17 on bookworm, libxenmisc4.20 on trixie, and libxenforeignmemory1), or save a core with `xl dump-core` and use --core"
        case .cannotOpen(let why):
            return "cannot open the Xen control interface: \(why)"
        case .noSuchDomain(let id):
            return "no domain with id \(id) (see `xl list`)"
        case .dom0:
            return "cannot inspect dom0: pausing it would stop this very tool (as upstream xenctx refuses)"
        case .dying(let id):
            return "domain \(id) is being destroyed"
        case .vanished(let id):
            return "domain \(id) went away while it was being read (destroyed or migrated): nothing was printed from it"
        case .hypercall(let what, let errno):
            return "\(what) failed: \(String(cString: strerrorString(errno)))"
        case .noSuchVCPU(let n, let maxID):
            return "vCPU \(n) does not exist (the domain's vCPUs are 0–\(maxID))"
        case .write(let why):
            return why
        }
    }
}

#if canImport(Glibc)
import Glibc
func strerrorString(_ e: Int32) -> UnsafeMutablePointer<CChar> { strerror(e) }
#endif
