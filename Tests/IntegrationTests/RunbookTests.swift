import Foundation
import Shared
import TestSupport
import Testing

/// The runbook is executable documentation: its test-bed blocks run, in
/// order, on a real test bed; its cluster blocks parse; its option tables
/// match what the binaries' `--help` says and what the code reads.
extension TestBedSuites {
    @Suite("the runbook", .serialized)
    struct RunbookTests {
        static let repository = TestEnvironment.fixtures.deletingLastPathComponent().deletingLastPathComponent()
        static let runbook = repository.appendingPathComponent("docs/runbooks/k8s-version-upgrade.md")

        /// A fenced block of the runbook: its info string's second word
        /// (`testbed`, `cluster`), its first line number, its text.
        struct Block {
            let marker: String
            let line: Int
            let text: String
        }

        static func blocks() throws -> [Block] {
            let lines = try String(contentsOf: runbook, encoding: .utf8).split(
                separator: "\n", omittingEmptySubsequences: false)
            var blocks: [Block] = []
            var open: (marker: String, line: Int, body: [Substring])?
            for (index, line) in lines.enumerated() {
                if let current = open {
                    if line == "```" {
                        blocks.append(
                            Block(
                                marker: current.marker, line: current.line, text: current.body.joined(separator: "\n")))
                        open = nil
                    } else {
                        open?.body.append(line)
                    }
                } else if line.hasPrefix("```") {
                    let words = line.dropFirst(3).split(separator: " ")
                    let marker = words.count > 1 && words[0] == "sh" ? String(words[1]) : ""
                    open = (marker, index + 1, [])
                }
            }
            return blocks
        }

        @Test func everyShellBlockIsMarkedAndEveryClusterBlockParses() throws {
            let blocks = try Self.blocks()
            let shell = blocks.filter { !$0.marker.isEmpty }
            #expect(shell.filter { $0.marker == "testbed" }.count >= 10)
            #expect(shell.filter { $0.marker == "cluster" }.count >= 8)
            for block in shell {
                #expect(
                    ["testbed", "cluster"].contains(block.marker), "line \(block.line): unknown marker \(block.marker)")
            }
            for block in blocks where block.marker == "" {
                // An unmarked block must not be a command a reader would paste.
                #expect(
                    !block.text.contains("kubectl ") && !block.text.contains("k8s-upgrade "),
                    "line \(block.line): a block of commands without `sh testbed` or `sh cluster`")
            }
            let bash = try TestEnvironment.tool("bash")
            for block in shell {
                let file = try TestEnvironment.makeDirectory("runbook").appendingPathComponent("block.sh")
                try block.text.write(to: file, atomically: true, encoding: .utf8)
                let result = try TestEnvironment.execute(bash, ["-n", file.path])
                #expect(result.status == 0, "line \(block.line) does not parse: \(result.stderr)")
            }
        }

        /// The first hour, as written: install on the test bed, check it,
        /// detect, dry run, snapshot only, real run, abort, hold, resume,
        /// clear, roll a worker back, tear down.
        @Test func theTestBedBlocksRunInOrderAsWritten() async throws {
            let bed = Self.repository.appendingPathComponent(".testbed")
            try #require(
                !FileManager.default.fileExists(atPath: bed.path),
                "a test bed is up in .testbed; bring it down (./scripts/testbed.sh down) before this test")
            let built = Self.repository.appendingPathComponent(".build/debug").resolvingSymlinksInPath()
            try #require(
                built.path == TestEnvironment.productsDirectory.resolvingSymlinksInPath().path,
                "the runbook uses .build/debug; this test runs from \(TestEnvironment.productsDirectory.path)")
            let blocks = try Self.blocks().filter { $0.marker == "testbed" }
            var script = "set -euo pipefail\ncd \(Self.repository.path)\n"
            for block in blocks {
                script += "echo '### runbook line \(block.line)'\n\(block.text)\n"
            }
            let directory = try TestEnvironment.makeDirectory("runbook")
            let file = directory.appendingPathComponent("first-hour.sh")
            try script.write(to: file, atomically: true, encoding: .utf8)
            let bash = try TestEnvironment.tool("bash")
            let result = try await offThePool { () throws -> (status: Int32, stdout: String, stderr: String) in
                defer {
                    _ = try? TestEnvironment.execute(
                        Self.repository.appendingPathComponent("scripts/testbed.sh").path, ["down"])
                }
                return try TestEnvironment.execute(bash, [file.path])
            }
            let last = result.stdout.split(separator: "\n").last { $0.hasPrefix("### runbook line") } ?? "none"
            #expect(
                result.status == 0,
                "the runbook stopped after \(last), exit \(result.status):\n\(result.stdout.suffix(3000))\n\(result.stderr.suffix(3000))"
            )
            // What the blocks claim happened, as the CLI printed it.
            #expect(result.stdout.contains("job 1 succeeded"))
            #expect(result.stdout.contains("job 2 succeeded"))
            #expect(result.stdout.contains("job 3 aborted"))
            #expect(result.stdout.contains("job 3 succeeded"))
            #expect(result.stdout.contains("job 4 queued: rollback of worker-4 to 1.34.3 (undoing job 3)"))
            #expect(result.stdout.contains("job 4 succeeded"))
            #expect(result.stdout.contains("k8s-upgrade-pre-1.34.5-"))
            #expect(result.stdout.contains("TestbedGateBlocker"))
            #expect(!FileManager.default.fileExists(atPath: bed.path))
        }

        // MARK: - Options

        /// One option as `--help` states it: its name and its default, the
        /// text of its help's last parentheses ("required", or "off" for a
        /// flag that states none).
        struct HelpOption: Equatable {
            let name: String
            let defaultText: String
        }

        static func helpOptions(_ binary: String, _ subcommand: String?) throws -> [HelpOption] {
            let path = TestEnvironment.productsDirectory.appendingPathComponent(binary).path
            let output = try TestEnvironment.run(path, (subcommand.map { [$0] } ?? []) + ["--experimental-dump-help"])
            let document = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
            let arguments = (document?["command"] as? [String: Any])?["arguments"] as? [[String: Any]] ?? []
            return try arguments.compactMap { argument -> HelpOption? in
                let kind = argument["kind"] as? String
                guard kind == "option" || kind == "flag",
                    let name = (argument["preferredName"] as? [String: Any])?["name"] as? String,
                    !["help", "version"].contains(name)
                else { return nil }
                let abstract = argument["abstract"] as? String ?? ""
                if let range = abstract.range(of: #"\((default: )?[^()]*\)\.?$"#, options: .regularExpression) {
                    let text = abstract[range].trimmingCharacters(in: CharacterSet(charactersIn: "()."))
                    return HelpOption(name: name, defaultText: text.replacingOccurrences(of: "default: ", with: ""))
                }
                guard kind == "flag" else {
                    throw FixtureError("\(binary) \(subcommand ?? "") --\(name): the help states no default")
                }
                return HelpOption(name: name, defaultText: "off")
            }
        }

        /// `prometheusURL` → `prometheus-url`: a dash where a capital follows a small letter.
        static func kebab(_ property: String) -> String {
            var kebab = ""
            var previous: Character = "-"
            for character in property {
                if character.isUppercase && previous.isLowercase { kebab += "-" }
                kebab += character.lowercased()
                previous = character
            }
            return kebab
        }

        /// The rows of the runbook's table(s) under `heading`: option → default.
        static func documented(under heading: String) throws -> [String: (command: String?, defaultText: String)] {
            let text = try String(contentsOf: runbook, encoding: .utf8)
            guard let start = text.range(of: "\n" + heading + "\n") else {
                throw FixtureError("the runbook has no heading \(heading)")
            }
            let section = text[start.upperBound...]
            let end = section.range(of: "\n#")?.lowerBound ?? section.endIndex
            var rows: [String: (String?, String)] = [:]
            for line in section[..<end].split(separator: "\n") where line.hasPrefix("| ") {
                let cells = line.split(separator: "|").map {
                    $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "")
                }
                if cells.count >= 3, cells[0].hasPrefix("--") {
                    rows[String(cells[0].dropFirst(2))] = (nil, cells[1])
                } else if cells.count >= 4, cells[1].hasPrefix("--") {
                    rows[String(cells[1].dropFirst(2)) + "@" + cells[0]] = (cells[0], cells[2])
                }
            }
            return rows
        }

        static func compare(
            _ help: [HelpOption], _ documented: [String: (command: String?, defaultText: String)], _ what: String
        ) {
            let helpNames = Set(help.map(\.name))
            #expect(helpNames == Set(documented.keys), "\(what): --help and the runbook list different options")
            for option in help {
                guard let row = documented[option.name] else { continue }
                #expect(
                    row.defaultText == option.defaultText,
                    "\(what) --\(option.name): the runbook says \(row.defaultText), --help says \(option.defaultText)")
            }
        }

        @Test func everyOptionIsInTheRunbookWithTheDefaultItsHelpStates() throws {
            Self.compare(
                try Self.helpOptions("k8s-version-check", nil), try Self.documented(under: "### `k8s-version-check`"),
                "k8s-version-check")
            Self.compare(
                try Self.helpOptions("k8s-upgrade", "serve"), try Self.documented(under: "### `k8s-upgrade serve`"),
                "k8s-upgrade serve")
            Self.compare(
                try Self.helpOptions("k8s-upgrade", "drain"), try Self.documented(under: "### `k8s-upgrade drain`"),
                "k8s-upgrade drain")
            let client = try Self.documented(under: "### `k8s-upgrade` client commands")
            for command in ["plan", "execute", "jobs", "status", "abort", "resume"] {
                var rows = client.filter { $0.value.command == nil }
                for (key, row) in client where row.command == command {
                    rows[String(key.prefix { $0 != "@" })] = row
                }
                Self.compare(try Self.helpOptions("k8s-upgrade", command), rows, "k8s-upgrade \(command)")
            }
        }

        /// An option the detector and the service share is one definition:
        /// both commands offer it with that definition's help and default.
        @Test func sharedOptionsAreOneDefinitionInBothCommands() throws {
            let detector = try Self.helpOptions("k8s-version-check", nil)
            let serve = try Self.helpOptions("k8s-upgrade", "serve")
            for (name, help) in SharedOptions.all {
                let stated = help.range(of: #"\((default: )?[^()]*\)\.?$"#, options: .regularExpression).map {
                    help[$0].trimmingCharacters(in: CharacterSet(charactersIn: "().")).replacingOccurrences(
                        of: "default: ", with: "")
                }
                for (command, options) in [("k8s-version-check", detector), ("k8s-upgrade serve", serve)] {
                    let option = options.first { $0.name == name }
                    #expect(option != nil, "\(command) lacks the shared --\(name)")
                    #expect(option?.defaultText == stated, "\(command) --\(name)")
                }
            }
        }

        /// `drain` takes serve's variables, so one environment configures both;
        /// a bad value is refused before anything is touched.
        @Test func drainReadsServesVariables() throws {
            let binary = TestEnvironment.productsDirectory.appendingPathComponent("k8s-upgrade").path
            let env = try TestEnvironment.tool("env")
            let cases = [
                ("K8SUP_DRAIN_TIMEOUT=soon", "K8SUP_DRAIN_TIMEOUT=soon is not a number of seconds"),
                ("K8SUP_ANNOTATION_PREFIX=Not_A_Domain", "annotation-prefix must be a DNS subdomain"),
                ("K8SUP_KUBECONFIG=/nonexistent/kubeconfig", "/nonexistent/kubeconfig"),
            ]
            for (variable, message) in cases {
                let result = try TestEnvironment.execute(env, [variable, binary, "drain", "worker-1"])
                #expect(result.status != 0, "\(variable) was accepted")
                #expect(result.stderr.contains(message), "\(variable): \(result.stderr)")
            }
        }

        /// Every `K8SUP_` variable the code reads is the option's own name,
        /// and every option that the runbook says has one is read from it.
        @Test func everyOptionIsReadFromItsOwnEnvironmentVariable() throws {
            let detector = try Self.helpOptions("k8s-version-check", nil).map(\.name)
            let serve = try Self.helpOptions("k8s-upgrade", "serve").map(\.name)
            let drain = try Self.helpOptions("k8s-upgrade", "drain").map(\.name)
            // Which files read a command's options, every option they may read,
            // and the options that must be read there.
            let sources: [(files: [String], options: [String], required: [String])] = [
                (["Sources/Detector/Settings.swift"], detector, detector),
                (["Sources/Orchestrator/Serve/ServeSettings.swift"], serve, serve),
                // drain reads --drain-timeout and --annotation-prefix through serve's own readers.
                (
                    ["Sources/Orchestrator/CLI/DrainCommand.swift", "Sources/Orchestrator/Serve/ServeSettings.swift"],
                    serve + drain, drain
                ),
                (
                    ["Sources/Orchestrator/CLI/ClientCommands.swift"], ["server", "api-token-file"],
                    ["server", "api-token-file"]
                ),
            ]
            let call = try NSRegularExpression(
                pattern: #"reader\.(?:value|integer|seconds|boolean|url)\(\s*([^,]*?),\s*"([A-Z0-9_]+)""#)
            let shared = try NSRegularExpression(
                pattern: #"(?:Shared|Serve|Detector)Options\.(\w+)\.read\(\s*([^,]*?),"#)
            for (files, options, required) in sources {
                var read: Set<String> = []
                for file in files {
                    let text = try String(
                        contentsOf: Self.repository.appendingPathComponent(file), encoding: .utf8)
                    for match in call.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                        let flag = String(text[Range(match.range(at: 1), in: text)!])
                        let variable = String(text[Range(match.range(at: 2), in: text)!])
                        let option = variable.lowercased().replacingOccurrences(of: "_", with: "-")
                        read.insert(option)
                        #expect(options.contains(option), "\(file) reads K8SUP_\(variable), which is no option")
                        let property =
                            flag.split(separator: ".").dropFirst(flag.contains(".") ? 1 : 0).first
                            .map(String.init) ?? flag
                        guard property != "nil" else { continue }
                        let kebab = Self.kebab(property)
                        #expect(kebab == option, "\(file): --\(kebab) is read from K8SUP_\(variable)")
                    }
                }
                // Options defined once (SharedOptions, ServeOptions, DetectorOptions), read through their definition.
                for file in files {
                    let text = try String(
                        contentsOf: Self.repository.appendingPathComponent(file), encoding: .utf8)
                    for match in shared.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                        let definition = Self.kebab(String(text[Range(match.range(at: 1), in: text)!]))
                        let flag = String(text[Range(match.range(at: 2), in: text)!])
                        let property = Self.kebab(String(flag.split(separator: ".").last ?? ""))
                        #expect(
                            options.contains(definition), "\(file) reads the shared --\(definition), no option here")
                        #expect(property == definition, "\(file): --\(property) is read as the shared --\(definition)")
                        read.insert(definition)
                    }
                    if text.contains("SharedOptions.policy(") { read.formUnion(["allow-minor", "minor-min-patch"]) }
                    if text.contains("ZoneInfo.schedule(") {
                        read.formUnion(["maintenance-window", "maintenance-exclude"])
                    }
                    if text.contains("SharedOptions.chosenDistribution(") {
                        read.formUnion(["distribution", "k3s-channel-url", "k3s-artifact-url"])
                    }
                }
                let missing = Set(required).subtracting(read).subtracting(["help", "version"])
                #expect(missing.isEmpty, "\(files): options without their K8SUP_ variable: \(missing.sorted())")
            }
        }
    }
}
