import Platform
import CCurl
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP request as the transport sends it; already signed.
package struct HTTPRequest: Sendable {
    package var method: String
    package var url: String
    package var headers: [(name: String, value: String)]
    package var body: RequestBody
    /// Overrides the transport's connect timeout (credential endpoints that may not exist answer fast or never).
    package var connectTimeoutMilliseconds: Int?
    /// A limit on the whole exchange; nil leaves only the transport's stall detection.
    package var timeoutMilliseconds: Int?

    package init(method: String, url: String, headers: [(name: String, value: String)], body: RequestBody = .empty) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// Where a response body goes. A `buffer` sink receives only 2xx bodies; error bodies are always collected.
package enum ResponseSink: @unchecked Sendable {
    case collect(limit: Int)
    case buffer(UnsafeMutableRawBufferPointer)
    case discard
}

/// A completed HTTP exchange. `headers` keys are lower-case.
package struct HTTPResponse: Sendable {
    package var status: Int
    package var headers: [String: String]
    package var body: [UInt8]
    /// Bytes placed in a `buffer` sink.
    package var bufferBytes: Int
    /// How long the exchange took, as libcurl measured it.
    package var timing = HTTPTiming()
}

/// Time to the first response byte and to the end of one HTTP exchange (queueing in libcurl excluded).
package struct HTTPTiming: Sendable {
    package var firstByteMicroseconds: Int64 = 0
    package var totalMicroseconds: Int64 = 0
}

/// A transfer that did not produce a response.
package struct TransportFailure: Error, Sendable {
    package var curlCode: Int32
    package var message: String
    /// The body was larger than the sink allowed.
    package var overflow: Bool
    /// The upload body could not be read (`pread` failed).
    package var bodyReadError: Errno?
}

/// One request in flight: its libcurl easy handle configuration, callbacks and accumulated response.
///
/// Only the network thread touches a transfer between `submit` and completion.
final class CurlTransfer: @unchecked Sendable {
    let request: HTTPRequest
    let sink: ResponseSink
    let completion: (Result<HTTPResponse, TransportFailure>) -> Void

    var status = 0
    var headers: [String: String] = [:]
    var body: [UInt8] = []
    var written = 0
    var overflow = false
    var uploadOffset: Int64 = 0
    var bodyReadError: Errno?
    var headerList: UnsafeMutablePointer<curl_slist>?
    var timing = HTTPTiming()
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init(request: HTTPRequest, sink: ResponseSink, completion: @escaping (Result<HTTPResponse, TransportFailure>) -> Void) {
        self.request = request
        self.sink = sink
        self.completion = completion
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
    }

    /// Configures a reset easy handle for this transfer.
    func configure(_ easy: UnsafeMutableRawPointer, options: TransportOptions) {
        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = CCurl_easy_setopt_string(easy, CURLOPT_URL, request.url)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        // Keys such as `a/../b` must reach the server as written, not dot-segment normalised.
        _ = CCurl_easy_setopt_long(easy, CURLOPT_PATH_AS_IS, 1)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeoutMilliseconds ?? options.connectTimeoutMilliseconds)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, request.timeoutMilliseconds ?? 0)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedLimitBytes)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, options.lowSpeedTimeSeconds)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1)
        // Large receive chunks mean fewer callbacks and copies for multi-megabyte ranged GETs.
        _ = CCurl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, options.receiveBufferBytes)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, options.sendBufferBytes)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        if let ca = options.caBundle { _ = CCurl_easy_setopt_string(easy, CURLOPT_CAINFO, ca) }
        _ = CCurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = CCurl_easy_setopt_pointer(easy, CURLOPT_PRIVATE, me)
        _ = CCurl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback)
        _ = CCurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me)
        _ = CCurl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback)
        _ = CCurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me)

        var list: UnsafeMutablePointer<curl_slist>? = nil
        // An empty Expect suppresses 100-continue, which costs a round trip per upload.
        for line in ["Expect:", "Accept:", "User-Agent: lakecache/\(LakeCacheVersion.current)"] + request.headers.map({ "\($0.name): \($0.value)" }) {
            list = curl_slist_append(list, line)
        }
        headerList = list
        _ = CCurl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)

        let length = request.body.count
        switch request.method {
        case "GET":
            _ = CCurl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
        case "HEAD":
            _ = CCurl_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        case "PUT":
            _ = CCurl_easy_setopt_long(easy, CURLOPT_UPLOAD, 1)
            _ = CCurl_easy_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(length))
        case "POST":
            _ = CCurl_easy_setopt_long(easy, CURLOPT_POST, 1)
            _ = CCurl_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(length))
        default:
            _ = CCurl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method)
        }
        if request.method == "PUT" || request.method == "POST" {
            _ = CCurl_easy_setopt_callback(easy, CURLOPT_READFUNCTION, curlReadCallback)
            _ = CCurl_easy_setopt_pointer(easy, CURLOPT_READDATA, me)
            _ = CCurl_easy_setopt_seek(easy, curlSeekCallback)
            _ = CCurl_easy_setopt_pointer(easy, CURLOPT_SEEKDATA, me)
        }
    }

    /// Completes with the response, or with the transport failure curl reported.
    func finish(code: CURLcode) {
        if code == CURLE_OK && bodyReadError == nil && !overflow {
            completion(.success(HTTPResponse(status: status, headers: headers, body: body, bufferBytes: written, timing: timing)))
            return
        }
        var message = String(cString: errorBuffer)
        if message.isEmpty { message = String(cString: curl_easy_strerror(code)) }
        if overflow { message = "response body is larger than expected" }
        if let bodyReadError { message = "cannot read the request body: \(bodyReadError)" }
        completion(.failure(TransportFailure(curlCode: Int32(code.rawValue), message: message, overflow: overflow, bodyReadError: bodyReadError)))
    }

    fileprivate func receiveHeader(_ line: UnsafeRawBufferPointer) {
        var end = line.count
        while end > 0 && (line[end - 1] == 0x0A || line[end - 1] == 0x0D) { end -= 1 }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: line[0..<end]), as: UTF8.self)
        if text.hasPrefix("HTTP/") {
            // A new status line (after 100 Continue or a redirect) starts a new header block.
            let fields = text.split(separator: " ", maxSplits: 2)
            status = fields.count >= 2 ? Int(fields[1]) ?? 0 : 0
            headers.removeAll(keepingCapacity: true)
            return
        }
        guard let colon = text.firstIndex(of: ":") else { return }
        let name = text[..<colon].lowercased()
        let value = text[text.index(after: colon)...].trimmingWhitespace()
        if let existing = headers[name] {
            headers[name] = existing + "," + value
        } else {
            headers[name] = value
        }
    }

    fileprivate func receiveBody(_ data: UnsafeRawBufferPointer) -> Bool {
        if (200..<300).contains(status) {
            switch sink {
            case .discard:
                return true
            case .buffer(let buffer):
                guard written + data.count <= buffer.count else {
                    overflow = true
                    return false
                }
                if data.count > 0 { (buffer.baseAddress! + written).copyMemory(from: data.baseAddress!, byteCount: data.count) }
                written += data.count
                return true
            case .collect(let limit):
                guard body.count + data.count <= limit else {
                    overflow = true
                    return false
                }
                body.append(contentsOf: data)
                return true
            }
        }
        // Error bodies are small XML documents; keep the first 64 KiB.
        if body.count < 65_536 { body.append(contentsOf: data.prefix(65_536 - body.count)) }
        return true
    }

    /// Rewinds the upload body; libcurl asks when it replays a request on a new connection.
    fileprivate func seekBody(to offset: Int64, origin: Int32) -> Int32 {
        guard origin == SEEK_SET, offset >= 0, offset <= request.body.count else { return CURL_SEEKFUNC_CANTSEEK }
        uploadOffset = offset
        return CURL_SEEKFUNC_OK
    }

    fileprivate func sendBody(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let total = request.body.count
        let want = Int(min(Int64(buffer.count), total - uploadOffset))
        guard want > 0 else { return 0 }
        switch request.body {
        case .empty:
            return 0
        case .bytes(let bytes):
            bytes.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + Int(uploadOffset), byteCount: want)
            }
        case .memory(let m):
            buffer.baseAddress!.copyMemory(from: m.bytes.baseAddress! + Int(uploadOffset), byteCount: want)
        case .file(let fd, let offset, _):
            switch Syscall.preadFully(fd, buffer.baseAddress!, want, offset + uploadOffset) {
            case .success(let n) where n == want:
                break
            case .success:
                bodyReadError = Errno(EIO)
                return Int(CURL_READFUNC_ABORT)
            case .failure(let e):
                bodyReadError = e
                return Int(CURL_READFUNC_ABORT)
            }
        }
        uploadOffset += Int64(want)
        return want
    }
}

private func transfer(_ userdata: UnsafeMutableRawPointer?) -> CurlTransfer {
    Unmanaged<CurlTransfer>.fromOpaque(userdata!).takeUnretainedValue()
}

private let curlHeaderCallback: CCurl_data_callback = { buffer, size, count, userdata in
    let n = size * count
    transfer(userdata).receiveHeader(UnsafeRawBufferPointer(start: buffer, count: n))
    return n
}

private let curlWriteCallback: CCurl_data_callback = { buffer, size, count, userdata in
    let n = size * count
    return transfer(userdata).receiveBody(UnsafeRawBufferPointer(start: buffer, count: n)) ? n : 0
}

private let curlReadCallback: CCurl_data_callback = { buffer, size, count, userdata in
    transfer(userdata).sendBody(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
}

private let curlSeekCallback: CCurl_seek_callback = { userdata, offset, origin in
    transfer(userdata).seekBody(to: Int64(offset), origin: origin)
}
