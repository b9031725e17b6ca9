import Symbols
#if canImport(Glibc)
import Glibc
#endif

/// Writes all of `s` to a file descriptor (unbuffered, so stdout and stderr interleave in order).
/// This is the one gate to the terminal: every string from a core, guest memory, a symbol
/// file, an ELF or the command line passes here, and control characters other than the
/// report's own newlines and tabs leave it escaped (`\x1b`), whatever path they took.
func writeAll(_ fd: Int32, _ s: String) {
    var s = TerminalSafe.escape(s, allowTab: true, allowNewline: true)
    s.withUTF8 { buf in
        var done = 0
        while done < buf.count {
            let n = write(fd, buf.baseAddress! + done, buf.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            done += n
        }
    }
}

func writeStdout(_ s: String) { writeAll(1, s) }

func warn(_ message: String) { writeAll(2, "xenctx-swift: warning: \(message)\n") }

func note(_ message: String) { writeAll(2, "xenctx-swift: note: \(message)\n") }
