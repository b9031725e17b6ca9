// xenctx-fuzz TARGET [libFuzzer options and corpus directories]
//   Under Scripts/fuzz.sh (built with coverage, AddressSanitizer and libFuzzer): fuzzes TARGET.
// xenctx-fuzz TARGET --replay FILE...
//   Runs TARGET once over each file (any build): a finding's reproducer, or the seeds.
import CFuzzDriver
import FuzzTargets
#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) var selected = ""

let args = CommandLine.arguments
// xenctx-fuzz --make-seeds DIR --cores CORE… --maps MAP…: seeds cut from real cases.
if args.count >= 3 && args[1] == "--make-seeds" {
    let cores = args.drop { $0 != "--cores" }.dropFirst().prefix { $0 != "--maps" }
    let maps = args.drop { $0 != "--maps" }.dropFirst()
    do {
        let n = try Seeds.make(cores: Array(cores), maps: Array(maps), into: args[2])
        print("wrote \(n) seeds under \(args[2])")
        exit(0)
    } catch {
        print("seeds: \(error)")
        exit(2)
    }
}
guard args.count >= 2, FuzzTargets.names.contains(args[1]) else {
    print("usage: xenctx-fuzz TARGET [libFuzzer options] [CORPUS…] | TARGET --replay FILE…\ntargets: \(FuzzTargets.names.joined(separator: " "))")
    exit(64)
}
selected = args[1]

if args.count >= 3 && args[2] == "--replay" {
    for path in args.dropFirst(3) {
        guard let f = fopen(path, "rb") else { print("cannot open \(path)"); exit(2) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        fclose(f)
        bytes.withUnsafeBytes { FuzzTargets.run(selected, $0) }
    }
    print("replayed \(args.count - 3) inputs through \(selected)")
    exit(0)
}

// libFuzzer sees the program name and its own options: drop the target name.
var argv: [UnsafeMutablePointer<CChar>?] = ([args[0]] + args.dropFirst(2)).map { strdup($0) } + [nil]
var argc = Int32(argv.count - 1)
let status = argv.withUnsafeMutableBufferPointer { buffer -> Int32 in
    var base = buffer.baseAddress
    return xf_run_driver(&argc, &base) { data, size in
        FuzzTargets.run(selected, UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
if status == -1 {
    print("this xenctx-fuzz was built without libFuzzer: run Scripts/fuzz.sh, or use --replay")
    exit(2)
}
exit(status)
