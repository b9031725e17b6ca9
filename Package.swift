// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "xenctx-swift",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "xenctx-swift", targets: ["xenctx-swift"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Guest kinds, register files, core files, guest memory and page tables.
        // Pure Swift over bytes: no Xen or elfutils headers, so it tests anywhere.
        .target(name: "VCPUContext", dependencies: ["SafeFile"]),
        // Opening input files without blocking on FIFOs or trusting sizes.
        .target(name: "SafeFile"),
        // System.map and upstream xenctx's address classification.
        .target(name: "Symbols", dependencies: ["SafeFile"]),
        // C bridge to libxenctrl/libxenforeignmemory, loaded with dlopen at run time:
        // the headers are needed to build (libxen-dev), the libraries only to inspect live domains.
        .target(name: "CXenLive", linkerSettings: [.linkedLibrary("dl")]),
        // Live domains behind the same Guest model as cores.
        .target(name: "LiveDomain", dependencies: ["CXenLive", "VCPUContext", "SafeFile"]),
        // elfutils (libdwfl/libdw), loaded with dlopen: only --vmlinux needs it.
        .target(name: "CDwarf", linkerSettings: [.linkedLibrary("dl")]),
        // vmlinux symbols and DWARF source lines (file:line, inlined frames).
        .target(name: "ELFSymbols", dependencies: ["CDwarf", "Symbols", "StackWalk", "SafeFile"]),
        // What the guest kernel says about itself in its memory: VMCOREINFO, kallsyms, the log.
        .target(name: "GuestKernel", dependencies: ["VCPUContext", "Symbols"]),
        // Stack dumps and call traces over guest memory.
        .target(name: "StackWalk", dependencies: ["VCPUContext", "Symbols"]),
        // The xenctx-shaped text report, kept out of the executable so tests render in-process.
        .target(name: "XenctxReport", dependencies: ["VCPUContext", "Symbols", "StackWalk", "GuestKernel"]),
        .executableTarget(
            name: "xenctx-swift",
            dependencies: [
                "XenctxReport",
                "LiveDomain",
                "ELFSymbols",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // One in-process fuzz target per parser and walker (Scripts/fuzz.sh; the tests run the seeds).
        .target(name: "FuzzTargets", dependencies: ["XenctxReport", "GuestKernel", "ELFSymbols", "StackWalk", "SafeFile"], path: "Fuzz/FuzzTargets"),
        // Drives libFuzzer (LLVMFuzzerRunDriver, resolved when built by Scripts/fuzz.sh) or replays inputs.
        .target(name: "CFuzzDriver", path: "Fuzz/CFuzzDriver"),
        .executableTarget(name: "xenctx-fuzz", dependencies: ["FuzzTargets", "CFuzzDriver"], path: "Fuzz/xenctx-fuzz"),
        // Prints timings; see Benchmarks/README.md. Never run by the tests.
        .executableTarget(name: "xenctx-bench", dependencies: ["XenctxReport", "GuestKernel", "ELFSymbols"], path: "Benchmarks/xenctx-bench"),
        .testTarget(name: "VCPUContextTests", dependencies: ["VCPUContext"]),
        .testTarget(name: "SymbolsTests", dependencies: ["Symbols"]),
        .testTarget(name: "StackWalkTests", dependencies: ["StackWalk"]),
        .testTarget(name: "GuestKernelTests", dependencies: ["GuestKernel"]),
        .testTarget(name: "XenctxReportTests", dependencies: ["XenctxReport"]),
        .testTarget(name: "LiveDomainTests", dependencies: ["LiveDomain", "CXenLive"]),
        .testTarget(name: "ELFSymbolsTests", dependencies: ["ELFSymbols"]),
        // Runs the built xenctx-swift on every case in corpus/ (end to end: CLI, exit codes, stderr).
        .testTarget(name: "CorpusTests", dependencies: ["xenctx-swift", "Symbols", "GuestKernel", "VCPUContext", "FuzzTargets", "ELFSymbols"]),
    ]
)
