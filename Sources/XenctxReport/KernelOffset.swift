import GuestKernel
import Symbols
import VCPUContext

/// Whether a symbol table describes the kernel in the guest, and where it was loaded.
///
/// With VMCOREINFO, the kernel's own addresses of the symbols it names (init_uts_ns,
/// _stext, prb, the kallsyms tables, …) are compared with the table's: when nearly all
/// differ by one amount, that is the load offset (0 without KASLR). Without VMCOREINFO,
/// `linux_banner` ("Linux version …") is checked in guest memory at the table's address
/// and at 2 MiB-aligned offsets within ±1 GiB (x86_64 and arm64 KASLR move the image in
/// 2 MiB steps). A table that matches nowhere is reported, not trusted.
public struct KernelOffset: Sendable, Equatable {
    public enum Finding: Sendable, Equatable {
        case verified(offset: UInt64, evidence: String)
        case mismatch(String)               // the table is another build's
        case unknown(String)                // cannot tell (no memory, no linux_banner symbol)
        case own                            // the guest's own kallsyms: runtime addresses
    }
    public let finding: Finding

    public init(finding: Finding) { self.finding = finding }

    public var offset: UInt64 {
        if case .verified(let o, _) = finding { return o }
        return 0
    }

    public var isMismatch: Bool { if case .mismatch = finding { return true } else { return false } }

    static let banner = Array("Linux version ".utf8)
    static let step: UInt64 = 2 << 20

    public static func detect(map: SystemMap, guest: Guest, vmcoreinfo: VMCoreInfo? = nil) -> KernelOffset {
        if let v = vmcoreinfo, let found = fromVMCoreInfo(map: map, info: v) { return found }
        guard let bannerAddress = map.address(of: "linux_banner") else { return KernelOffset(finding: .unknown("the symbol table has no linux_banner")) }
        guard guest.frames != nil, let vcpu = guest.vcpus.first(where: \.isOnline) ?? guest.vcpus.first else {
            return KernelOffset(finding: .unknown("no guest memory to check the symbol table against"))
        }
        let memory = GuestMemory(guest: guest, vcpu: vcpu)
        func holdsBanner(_ address: UInt64) -> Bool { (try? memory.read(address, count: Self.banner.count)) == Self.banner }
        if holdsBanner(bannerAddress) { return KernelOffset(finding: .verified(offset: 0, evidence: "linux_banner found at its address")) }
        for k in UInt64(1)...512 {
            for offset in [k * step, 0 &- k * step] where holdsBanner(bannerAddress &+ offset) {
                return KernelOffset(finding: .verified(offset: offset, evidence: "found linux_banner"))
            }
        }
        return KernelOffset(finding: .mismatch("linux_banner (\(hex(bannerAddress))) does not hold \"Linux version\" in this guest, nor at any 2 MiB step within ±1 GiB: the symbol table is from another build"))
    }

    /// The offset most of VMCOREINFO's symbols agree on (one or two of its SYMBOL lines
    /// are pointer values, such as mem_section, not addresses of the symbol).
    static func fromVMCoreInfo(map: SystemMap, info: VMCoreInfo) -> KernelOffset? {
        var deltas: [UInt64: [String]] = [:]
        var compared: [(String, UInt64, UInt64)] = []
        let inMap = map.addresses(of: Set(info.symbols.keys))
        for (name, guestAddress) in info.symbols.sorted(by: { $0.key < $1.key }) {
            guard let mapAddress = inMap[name] else { continue }
            deltas[guestAddress &- mapAddress, default: []].append(name)
            compared.append((name, guestAddress, mapAddress))
        }
        guard compared.count >= 2 else { return nil }
        let (delta, names) = deltas.max { $0.value.count < $1.value.count }!
        if names.count >= 2 && names.count * 4 >= compared.count * 3 {
            let evidence = "\(names.count) of the \(compared.count) symbols VMCOREINFO names agree"
            return KernelOffset(finding: .verified(offset: delta, evidence: evidence))
        }
        let example = compared.first { !names.contains($0.0) || names.count < 2 }!
        let build = "Linux \(info.osRelease)" + (info.buildID.map { ", build id \($0)" } ?? "")
        return KernelOffset(finding: .mismatch(
            "the symbol table is from another build: the guest runs \(build), and its VMCOREINFO symbols are not where the table puts them at any one offset (only \(names.count) of \(compared.count) agree; e.g. \(example.0) is at \(hex(example.1)) in the guest, \(hex(example.2)) in the table)"))
    }

    public var describe: String {
        switch finding {
        case .verified(0, let evidence): return "the symbol table matches the guest (\(evidence))"
        case .verified(let o, let evidence):
            let signed = Int64(bitPattern: o)
            return "KASLR: the kernel was loaded \(signed < 0 ? "-" : "+")0x\(hex(signed.magnitude)) from the symbol table's addresses (\(evidence)); symbols are shifted"
        case .mismatch(let why): return why
        case .unknown(let why): return "symbol table not checked: \(why)"
        case .own: return "the guest's own kallsyms: addresses are where the kernel runs"
        }
    }
}
