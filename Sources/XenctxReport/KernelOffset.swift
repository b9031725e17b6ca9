import Symbols
import VCPUContext

/// Whether a System.map describes the kernel in the guest, and where it was loaded.
///
/// `linux_banner` ("Linux version …") is checked in guest memory at the map's address; if
/// it is not there, 2 MiB-aligned offsets within ±1 GiB are probed (x86_64 and arm64 KASLR
/// move the image in 2 MiB steps). A map that matches nowhere is reported, not trusted.
public struct KernelOffset: Sendable, Equatable {
    public enum Finding: Sendable, Equatable {
        case verified(offset: UInt64)       // banner found (offset 0: no relocation)
        case mismatch(String)               // no banner anywhere probed
        case unknown(String)                // cannot tell (no memory, no linux_banner symbol)
    }
    public let finding: Finding

    public var offset: UInt64 {
        if case .verified(let o) = finding { return o }
        return 0
    }

    static let banner = Array("Linux version ".utf8)
    static let step: UInt64 = 2 << 20

    public static func detect(map: SystemMap, guest: Guest) -> KernelOffset {
        guard let bannerAddress = map.address(of: "linux_banner") else { return KernelOffset(finding: .unknown("the symbol table has no linux_banner")) }
        guard guest.frames != nil, let vcpu = guest.vcpus.first(where: \.isOnline) ?? guest.vcpus.first else {
            return KernelOffset(finding: .unknown("no guest memory to check the symbol table against"))
        }
        let memory = GuestMemory(guest: guest, vcpu: vcpu)
        func holdsBanner(_ address: UInt64) -> Bool { (try? memory.read(address, count: Self.banner.count)) == Self.banner }
        if holdsBanner(bannerAddress) { return KernelOffset(finding: .verified(offset: 0)) }
        for k in UInt64(1)...512 {
            for offset in [k * step, 0 &- k * step] where holdsBanner(bannerAddress &+ offset) {
                return KernelOffset(finding: .verified(offset: offset))
            }
        }
        return KernelOffset(finding: .mismatch("linux_banner (\(hex(bannerAddress))) does not hold \"Linux version\" in this guest, nor at any 2 MiB step within ±1 GiB: the symbol table is from another build"))
    }

    public var describe: String {
        switch finding {
        case .verified(0): return "the symbol table matches the guest (linux_banner found at its address)"
        case .verified(let o):
            let signed = Int64(bitPattern: o)
            return "KASLR: the kernel was loaded \(signed < 0 ? "-" : "+")0x\(hex(signed.magnitude)) from the symbol table's addresses (found linux_banner); symbols are shifted"
        case .mismatch(let why): return why
        case .unknown(let why): return "symbol table not checked: \(why)"
        }
    }
}
