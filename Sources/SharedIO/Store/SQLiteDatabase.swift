import CSQLite
import FoundationEssentials

/// A value stored in or read from SQLite.
public enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    public var int64: Int64? { if case let .integer(value) = self { value } else { nil } }
    public var double: Double? {
        switch self {
        case let .real(value): value
        case let .integer(value): Double(value)
        default: nil
        }
    }
    public var string: String? { if case let .text(value) = self { value } else { nil } }
}

/// One result row, by column position.
public struct SQLiteRow: Sendable {
    public let values: [SQLiteValue]
    public subscript(_ index: Int) -> SQLiteValue { values[index] }
}

/// A failed SQLite call: the operation, SQLite's result code and message.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let code: Int32
    public let message: String
    public var description: String { "sqlite \(operation): \(message) (code \(code))" }
}

/// An SQLite database file with one connection, used from one thread of its
/// own: callers `await` reads and transactions; the blocking C calls never
/// run on Swift's cooperative pool. WAL journal, foreign keys on, and
/// `synchronous=FULL`, so that a committed transaction survives a crash of
/// the process or the machine.
public final class SQLiteDatabase: Sendable {
    private let thread: SerialThread
    private let connection: Connection

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) async throws {
        let thread = SerialThread()
        self.thread = thread
        connection = try await thread.run { try Connection(path: path) }
    }

    deinit {
        let connection = connection
        let thread = thread
        Task { [thread] in
            _ = try? await thread.run { connection.close() }
            thread.stop()
        }
    }

    /// Runs `body` outside any explicit transaction (each statement is its own).
    public func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let connection = connection
        return try await thread.run { try body(connection) }
    }

    /// Runs `body` in one `BEGIN IMMEDIATE … COMMIT` transaction; a thrown
    /// error rolls it back and is rethrown.
    public func write<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let connection = connection
        return try await thread.run {
            try connection.execute("BEGIN IMMEDIATE")
            do {
                let result = try body(connection)
                try connection.execute("COMMIT")
                return result
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    /// The connection, valid only inside ``read(_:)`` and ``write(_:)``,
    /// on the database's thread. Prepared statements are cached by SQL text.
    public final class Connection: @unchecked Sendable {
        private var handle: OpaquePointer?
        private var statements: [String: OpaquePointer] = [:]

        init(path: String) throws {
            let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
            let result = sqlite3_open_v2(path, &handle, flags, nil)
            guard result == SQLITE_OK else {
                let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
                sqlite3_close_v2(handle)
                handle = nil
                throw SQLiteError(operation: "open \(path)", code: result, message: message)
            }
            sqlite3_busy_timeout(handle, 5000)
            let mode = try query("PRAGMA journal_mode=WAL").first?[0].string
            guard mode?.lowercased() == "wal" else {
                throw SQLiteError(
                    operation: "open \(path)", code: 0, message: "WAL journal refused (got \(mode ?? "none"))")
            }
            try execute("PRAGMA synchronous=FULL")
            try execute("PRAGMA foreign_keys=ON")
        }

        func close() {
            for statement in statements.values { sqlite3_finalize(statement) }
            statements.removeAll()
            sqlite3_close_v2(handle)
            handle = nil
        }

        /// Runs a statement that returns no rows.
        public func execute(_ sql: String, _ parameters: [SQLiteValue] = []) throws {
            _ = try query(sql, parameters)
        }

        /// Runs a statement and returns every row.
        public func query(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> [SQLiteRow] {
            let statement = try prepared(sql)
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            }
            for (offset, value) in parameters.enumerated() {
                let index = Int32(offset + 1)
                let result: Int32
                switch value {
                case .null: result = sqlite3_bind_null(statement, index)
                case let .integer(number): result = sqlite3_bind_int64(statement, index, number)
                case let .real(number): result = sqlite3_bind_double(statement, index, number)
                case let .text(text):
                    result = text.withCString { csqlite_bind_text(statement, index, $0, -1) }
                }
                guard result == SQLITE_OK else { throw error("bind", result) }
            }
            var rows: [SQLiteRow] = []
            let columns = sqlite3_column_count(statement)
            while true {
                let step = sqlite3_step(statement)
                if step == SQLITE_DONE { break }
                guard step == SQLITE_ROW else { throw error("step", step) }
                var values: [SQLiteValue] = []
                values.reserveCapacity(Int(columns))
                for column in 0..<columns {
                    switch sqlite3_column_type(statement, column) {
                    case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(statement, column)))
                    case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(statement, column)))
                    case SQLITE_NULL: values.append(.null)
                    default:
                        if let text = sqlite3_column_text(statement, column) {
                            values.append(.text(String(cString: text)))
                        } else {
                            values.append(.null)
                        }
                    }
                }
                rows.append(SQLiteRow(values: values))
            }
            return rows
        }

        /// The rowid of the last inserted row.
        public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

        private func prepared(_ sql: String) throws -> OpaquePointer {
            if let cached = statements[sql] { return cached }
            var statement: OpaquePointer?
            let result = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
            guard result == SQLITE_OK, let statement else { throw error("prepare", result) }
            statements[sql] = statement
            return statement
        }

        private func error(_ operation: String, _ code: Int32) -> SQLiteError {
            SQLiteError(operation: operation, code: code, message: String(cString: sqlite3_errmsg(handle)))
        }
    }
}
