/// Why a run ends without a complete report: thrown up to `main`, which prints the message
/// and maps the case to the exit status in one place. Nothing below `main` exits, so a live
/// domain's pause has always ended (in `whilePaused`'s defer) before the process does.
enum CommandFailure: Error, CustomStringConvertible {
    /// Nothing could be done (exit 2).
    case failed(String)
    /// An option that does not fit the guest, found only once the guest is known (exit 64).
    case usage(String)
    /// The report is printed, but something in it could not be read; stderr says what (exit 1).
    case partial

    /// Any error as the run's failure (one already a `CommandFailure` as it is).
    static func from(_ error: Error) -> CommandFailure { error as? CommandFailure ?? .failed("\(error)") }

    var status: Int32 {
        switch self {
        case .failed: ExitStatus.failure
        case .usage: ExitStatus.usage
        case .partial: ExitStatus.partial
        }
    }

    var description: String {
        switch self {
        case .failed(let message), .usage(let message): message
        case .partial: ""
        }
    }
}
