import ArgumentParser
import Foundation

/// Unbuffered writes to stdout, for output that streams (`weft tap`, `weft up`): each line shows as
/// it happens, even through a pipe.
enum StandardOutput {
    /// Writes `text`; false when nobody reads stdout any more (the pipe's reader has gone, as in
    /// `weft tap … | head`). Foundation's non-throwing `write(_:)` traps on that instead.
    @discardableResult
    static func write(_ text: String) -> Bool {
        do {
            try FileHandle.standardOutput.write(contentsOf: Data(text.utf8))
            return true
        } catch {
            return false
        }
    }

    /// Writes `line` and a newline; when nobody reads any more, ends the command quietly with
    /// status 0, as `cat` ends when `head` has read enough.
    static func writeLineOrFinish(_ line: String) throws {
        guard write(line + "\n") else { throw ExitCode.success }
    }
}
