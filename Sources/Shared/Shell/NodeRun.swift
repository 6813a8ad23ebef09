/// How the orchestrator runs `update_k8s.sh` on a node so that the run
/// outlives the SSH session that started it, and how it re-attaches: the
/// script, started with `--run-id`, keeps itself under
/// `/var/lib/k8s-upgrade/runs/ID` and runs detached (systemd-run, else
/// setsid) under a node-wide lock; the session only follows its log. After
/// a dropped connection, or in a replacement orchestrator, the same ID
/// finds the running or finished run instead of starting a second one.
public enum NodeRun {
    /// The fixed command line (`bash -c`) that saves the script arriving on
    /// standard input to a temporary file and runs it with the arguments
    /// that follow (`$0` is `update_k8s.sh`): a script read from a pipe
    /// cannot copy itself into its run folder.
    public static let launcher =
        #"d=$(mktemp -d) && trap 'rm -rf "$d"' EXIT && trap 'exit 129' HUP && trap 'exit 143' TERM && "#
        + #"cat >"$d/update_k8s.sh" && bash "$d/update_k8s.sh" "$@""#

    /// The exit status of a follower whose run stopped without an exit
    /// status (killed, or the node restarted): attach again to start it anew.
    public static let stoppedWithoutStatus: Int32 = 75

    /// Where a follower got to: the run's attempt and how many of its
    /// output lines were seen, so that a re-attached follower does not
    /// print them again.
    public struct Position: Sendable, Equatable {
        public var attempt: Int
        public var lines: Int

        public init(attempt: Int, lines: Int) {
            self.attempt = attempt
            self.lines = lines
        }
    }

    /// The run's ID: the job, what the run does and the node, in the
    /// characters the script accepts (letters, digits, `.`, `_`, `-`, at
    /// most 128); a longer one keeps its start and a checksum of the whole.
    public static func id(job: Int64, purpose: String, node: String) -> String {
        let raw = "job-\(job)-\(purpose)-\(node)"
        let cleaned = String(
            raw.unicodeScalars.map { scalar -> Character in
                scalar.isASCII
                    && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                        || "._-".unicodeScalars.contains(scalar))
                    ? Character(scalar) : "_"
            })
        guard cleaned.count > 128 else { return cleaned }
        // FNV-1a, 64 bits: stable across processes, unlike Hasher.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in raw.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let suffix = String(hash, radix: 16)
        return String(cleaned.prefix(128 - suffix.count - 1)) + "-" + suffix
    }

    /// The script's run arguments: start (or follow a running) run `id`,
    /// or, after a dropped session, re-attach from `position`.
    public static func arguments(id: String, reattachingFrom position: Position?) -> [String] {
        guard let position else { return ["--run-id", id] }
        return ["--run-id", id, "--from", "\(position.attempt):\(position.lines)"]
    }

    /// The attempt a follower announces on standard error
    /// (`update_k8s.sh: following run ID, attempt N`), or nil for any other line.
    public static func attempt(announcedIn line: String) -> Int? {
        let prefix = "update_k8s.sh: following run "
        guard line.hasPrefix(prefix) else { return nil }
        let words = line.split(separator: " ")
        guard words.count == 6, words[3].count > 1, words[3].hasSuffix(","), words[4] == "attempt" else { return nil }
        return Int(words[5])
    }

    /// Where a follower is after a session that announced `announced` and
    /// printed `lines` lines: on the same attempt, further on; on another
    /// (a new attempt started), that many lines into it; with no
    /// announcement, where it was.
    public static func position(after previous: Position?, announced: Int?, lines: Int) -> Position? {
        guard let announced else { return previous }
        guard let previous, previous.attempt == announced else { return Position(attempt: announced, lines: lines) }
        return Position(attempt: announced, lines: previous.lines + lines)
    }

    /// What to say of a failed run: the script's own last error line in its
    /// log, else the log's last three lines, else (nothing was logged: the
    /// run did not start) the session's own last notes.
    public static func failureSummary(log: String, notes: String = "") -> String {
        let lines = log.split(separator: "\n").filter { !$0.allSatisfy(\.isWhitespace) }
        if let own = lines.last(where: { $0.hasPrefix("update_k8s.sh: ") }) { return String(own) }
        if !lines.isEmpty { return lines.suffix(3).joined(separator: " | ") }
        let said = notes.split(separator: "\n").filter { !$0.allSatisfy(\.isWhitespace) }
        return said.isEmpty ? "(no output)" : said.suffix(3).joined(separator: " | ")
    }
}
