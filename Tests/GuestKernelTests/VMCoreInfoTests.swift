import Testing
@testable import GuestKernel

struct VMCoreInfoTests {
    static let sample = """
    OSRELEASE=6.1.0-56-amd64
    BUILD-ID=eb4fbcd037e7253717950bf2b93bd5566f47c56f
    PAGESIZE=4096
    SYMBOL(init_uts_ns)=ffffffff82bfb000
    OFFSET(uts_namespace.name)=0
    SIZE(printk_ringbuffer)=88
    LENGTH(mem_section)=4096
    NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
    NUMBER(MODULES_VADDR)=0xffff800000000000
    KERNELOFFSET=2a000000
    CONFIG_ARM_LPAE=y

    """

    @Test func parsesEveryKindOfLine() throws {
        let v = try VMCoreInfo(text: Array(Self.sample.utf8))
        #expect(v.osRelease == "6.1.0-56-amd64")
        #expect(v.buildID == "eb4fbcd037e7253717950bf2b93bd5566f47c56f")
        #expect(v.pageSize == 4096)
        #expect(v.symbol("init_uts_ns") == 0xffff_ffff_82bf_b000)
        #expect(v.offset("uts_namespace.name") == 0)
        #expect(v.size("printk_ringbuffer") == 88)
        #expect(v.lengths["mem_section"] == 4096)
        #expect(v.numbers["PAGE_BUDDY_MAPCOUNT_VALUE"] == -129)
        #expect(v.numbers["MODULES_VADDR"] == Int64(bitPattern: 0xffff_8000_0000_0000))
        #expect(v.kernelOffset == 0x2a00_0000)
        #expect(v.other["CONFIG_ARM_LPAE"] == "y")
        #expect(v.ignoredLines == 0 && !v.truncated)
    }

    @Test func cutMidLineDropsThePartialLine() throws {
        let text = Array(Self.sample.utf8)
        let symbolLine = Array(Self.sample.utf8).indices.first { Array(Self.sample.utf8)[$0...].starts(with: Array("SYMBOL(".utf8)) }!
        let cut = Array(text[..<(symbolLine + 12)])  // inside SYMBOL(init_uts_ns)
        let v = try VMCoreInfo(text: cut)
        #expect(v.truncated)
        #expect(v.symbol("init_uts_ns") == nil)
        #expect(v.pageSize == 4096)
        // Cut before PAGESIZE: an error that says so.
        #expect(throws: KernelDataError.self) { try VMCoreInfo(text: Array("OSRELEASE=6.1\nPAGES".utf8)) }
        #expect(throws: KernelDataError.self) { try VMCoreInfo(text: Array("OSRELEA".utf8)) }
        #expect(throws: KernelDataError.self) { try VMCoreInfo(text: []) }
    }

    @Test func hostileValuesAreIgnoredNotTrusted() throws {
        let text = "OSRELEASE=x\nPAGESIZE=4096\nSYMBOL(a)=zz\nSYMBOL(b)=123456789abcdef01\nOFFSET(c)=-4\nSIZE(d)=99999999999999\nPAGESIZE=3\n\u{1b}[2J=1\nnoequals\n"
        let v = try VMCoreInfo(text: Array(text.utf8))
        #expect(v.symbols.isEmpty && v.offsets.isEmpty && v.sizes.isEmpty)
        #expect(v.ignoredLines == 7)
        #expect(v.pageSize == 4096)   // the first, valid one; the later bad one is ignored
        #expect(throws: KernelDataError.self) { try VMCoreInfo(text: [UInt8](repeating: 0x41, count: VMCoreInfo.maxBytes + 1)) }
        // A KASLR offset moves the image up by whole 64 KiB steps, less than 2^47: these were
        // taken and printed by --describe.
        for bad in ["ffffffffffff0000", "1234", "800000000000"] {
            let k = try VMCoreInfo(text: Array("OSRELEASE=x\nPAGESIZE=4096\nKERNELOFFSET=\(bad)\n".utf8))
            #expect(k.kernelOffset == nil && k.ignoredLines == 1, "\(bad)")
        }
    }
}
