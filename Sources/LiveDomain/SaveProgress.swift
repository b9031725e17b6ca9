import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `--save-core` progress on stderr, only when stderr is a terminal: a thread that looks at
/// the growing partial file twice a second and rewrites one line (bytes, pages, rate).
/// Measuring the file works the same for libxenguest's writer (x86) and ours (ARM).
final class SaveProgress: @unchecked Sendable {
    let path: String
    let done = Atomic<Bool>(false)
    var thread = pthread_t()
    var started = false

    init(path: String) { self.path = path }

    func start() {
        guard isatty(2) == 1 else { return }
        let box = Unmanaged.passRetained(self)
        started = pthread_create(&thread, nil, { arg in
            let me = Unmanaged<SaveProgress>.fromOpaque(arg!).takeRetainedValue()
            me.run()
            return nil
        }, box.toOpaque()) == 0
        if !started { box.release() }
    }

    func run() {
        var t0 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        while !done.load(ordering: .acquiring) {
            usleep(500_000)
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let seconds = Double(now.tv_sec - t0.tv_sec) + Double(now.tv_nsec - t0.tv_nsec) / 1e9
            let mib = Double(st.st_size) / 1_048_576
            let line = "\rxenctx-swift: saving core: \(Int(mib)) MiB, ~\(st.st_size / 4096) pages, \(seconds > 0 ? Int(mib / seconds) : 0) MiB/s   "
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
    }

    func stop() {
        guard started else { return }
        done.store(true, ordering: .releasing)
        pthread_join(thread, nil)
        _ = "\n".withCString { write(2, $0, 1) }
    }
}
