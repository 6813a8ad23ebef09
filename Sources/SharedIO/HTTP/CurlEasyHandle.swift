import CCurl
import FoundationEssentials

/// Owns one libcurl easy handle and the header list it uses; frees both in
/// `deinit`. Used by one thread at a time, as libcurl requires.
final class CurlEasyHandle {
    /// `curl_global_init` must run once, before any other libcurl call and
    /// before threads race to use it; a lazily initialised global is exactly
    /// that.
    private static let globalInitResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))

    private let handle: UnsafeMutableRawPointer
    /// libcurl keeps a pointer to the header list: it must outlive the transfer.
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// Filled by libcurl on failure with a message more precise than curl_easy_strerror.
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

    init() throws(CurlSetupError) {
        guard Self.globalInitResult == CURLE_OK else {
            throw CurlSetupError(message: "curl_global_init failed: \(Self.message(for: Self.globalInitResult))")
        }
        guard let handle = curl_easy_init() else {
            throw CurlSetupError(message: "curl_easy_init returned NULL")
        }
        self.handle = handle
        try set(CURLOPT_ERRORBUFFER, pointer: &errorBuffer)
    }

    deinit {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headerList)
    }

    // MARK: - Options (each return code checked)

    func set(_ option: CURLoption, _ value: Int) throws(CurlSetupError) {
        try check(ccurl_setopt_long(handle, option, value), option)
    }

    func set(_ option: CURLoption, _ value: Bool) throws(CurlSetupError) {
        try set(option, value ? 1 : 0)
    }

    func set(_ option: CURLoption, offset value: Int64) throws(CurlSetupError) {
        try check(ccurl_setopt_off_t(handle, option, curl_off_t(value)), option)
    }

    /// libcurl copies string options (since 7.17), so a temporary C string is enough.
    func set(_ option: CURLoption, _ value: String) throws(CurlSetupError) {
        try check(ccurl_setopt_string(handle, option, value), option)
    }

    func set(_ option: CURLoption, pointer value: UnsafeMutableRawPointer?) throws(CurlSetupError) {
        try check(ccurl_setopt_pointer(handle, option, value), option)
    }

    /// A blob option with `CURL_BLOB_COPY`: libcurl keeps its own copy.
    func set(_ option: CURLoption, blob: Data) throws(CurlSetupError) {
        let code = blob.withUnsafeBytes { ccurl_setopt_blob(handle, option, $0.baseAddress, $0.count) }
        try check(code, option)
    }

    /// Sets the request body. The size goes first so that bodies may hold NUL
    /// bytes; `CURLOPT_COPYPOSTFIELDS` copies them, so `body` need not outlive the call.
    func setBody(_ body: Data) throws(CurlSetupError) {
        try set(CURLOPT_POSTFIELDSIZE_LARGE, offset: Int64(body.count))
        let bytes = body.isEmpty ? Data([0]) : body
        let code = bytes.withUnsafeBytes { raw in
            ccurl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress))
        }
        try check(code, CURLOPT_COPYPOSTFIELDS)
    }

    func set(_ option: CURLoption, callback: ccurl_data_callback) throws(CurlSetupError) {
        try check(ccurl_setopt_data_callback(handle, option, callback), option)
    }

    func setProgress(callback: ccurl_xferinfo_callback) throws(CurlSetupError) {
        try check(ccurl_setopt_xferinfo_callback(handle, callback), CURLOPT_XFERINFOFUNCTION)
    }

    /// Replaces the request header list; the list lives as long as the handle.
    func setHeaders(_ lines: [String]) throws(CurlSetupError) {
        var list: UnsafeMutablePointer<curl_slist>?
        for line in lines {
            guard let appended = curl_slist_append(list, line) else {
                curl_slist_free_all(list)
                throw CurlSetupError(message: "curl_slist_append failed")
            }
            list = appended
        }
        try check(ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, list), CURLOPT_HTTPHEADER)
        curl_slist_free_all(headerList)
        headerList = list
    }

    // MARK: - Transfer

    /// Runs the transfer (blocking) and returns libcurl's result code and message.
    func perform() -> (code: CURLcode, message: String) {
        errorBuffer[0] = 0
        let code = curl_easy_perform(handle)
        let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return (code, detail.isEmpty ? Self.message(for: code) : detail)
    }

    func responseCode() -> Int {
        var value = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &value)
        return value
    }

    /// The operating system's errno for the last connect failure (0 if none).
    func osErrno() -> Int {
        var value = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_OS_ERRNO, &value)
        return value
    }

    private func check(_ code: CURLcode, _ option: CURLoption) throws(CurlSetupError) {
        guard code == CURLE_OK else {
            throw CurlSetupError(message: "setting curl option \(option.rawValue): \(Self.message(for: code))")
        }
    }

    static func message(for code: CURLcode) -> String {
        String(cString: curl_easy_strerror(code))
    }
}

/// A libcurl handle could not be created or configured.
struct CurlSetupError: Error {
    let message: String
}
