import CLinux
import CMicroHTTPD
import Foundation
import Media

/// libmicrohttpd behind one small Swift type. This file is the only one that touches MHD's C API and its
/// unsafe pointers; everything above it sees `HTTPRequest`/`HTTPResponse` values.
///
/// Threading: MHD runs an internal pool of `threads` polling threads (epoll). Handlers are called on those
/// threads; a `.later` reply suspends the connection (MHD_ALLOW_SUSPEND_RESUME) so no thread waits on it, and
/// the response is queued when MHD calls back after `MHD_resume_connection`. MHD does not look at a suspended
/// connection's socket, so one more thread (`HangupWatch`) watches those sockets and tells the handler when a
/// client closes its connection while it waits.
///
/// A response with a `ResponseStream` is sent chunked from a content-reader callback, which suspends the
/// connection whenever nothing is written yet; the next write resumes it. A body over its `BodyLimit.spoolAboveBytes` goes to a `SpooledBody`.
public final class MHDServer: @unchecked Sendable {
    public struct Limits: Sendable {
        public var threads: Int
        public var connectionLimit: Int
        public var connectionTimeoutSeconds: Int
        /// MHD's per-connection buffer for headers and socket reads, not the body cap.
        public var connectionMemoryBytes: Int
        public var maxBodyBytes: Int

        public init(threads: Int, connectionLimit: Int, connectionTimeoutSeconds: Int, connectionMemoryBytes: Int,
                    maxBodyBytes: Int) {
            self.threads = threads
            self.connectionLimit = connectionLimit
            self.connectionTimeoutSeconds = connectionTimeoutSeconds
            self.connectionMemoryBytes = connectionMemoryBytes
            self.maxBodyBytes = maxBodyBytes
        }
    }

    public enum StartError: Error, CustomStringConvertible {
        case badAddress(String)
        case startFailed(host: String, port: Int)
        case inheritedSocketFailed(fd: Int32)
        case tlsUnsupported
        case tlsFailed(host: String, port: Int)
        case hangupWatchFailed(errno: Int32)

        public var description: String {
            switch self {
            case .badAddress(let host): return "'\(host)' is not an IPv4 address to listen on (use e.g. 0.0.0.0 or 127.0.0.1)"
            case .startFailed(let host, let port):
                return "libmicrohttpd could not listen on \(host):\(port) (port in use, or not permitted?)"
            case .tlsUnsupported:
                return "this libmicrohttpd was built without TLS (GnuTLS) support; install Debian's libmicrohttpd12, "
                    + "or terminate TLS in a proxy and drop --tls-cert/--tls-key"
            case .tlsFailed(let host, let port):
                return "libmicrohttpd could not start HTTPS on \(host):\(port): the port may be in use, or GnuTLS "
                    + "rejected the certificate or key (do they match? is the key unencrypted?); see the MHD error above"
            case .hangupWatchFailed(let code):
                return "could not set up epoll to watch waiting connections: \(String(cString: strerror(code)))"
            case .inheritedSocketFailed(let fd):
                return "libmicrohttpd could not serve on the socket systemd passed as fd \(fd) (see the MHD error above)"
            }
        }
    }

    private enum State {
        case idle
        case running(daemon: OpaquePointer)
        case quiesced(daemon: OpaquePointer, listenSocket: Int32)
        case stopped
    }

    let handler: HTTPHandler
    let limits: Limits
    private let lock = NSLock()
    private var state = State.idle  // guarded by lock
    /// NUL-terminated copies of the PEM texts handed to MHD, kept until the daemon is stopped.
    private var tlsStrings: [UnsafeMutablePointer<CChar>] = []  // guarded by lock
    /// Suspended connections waiting for a `.later` reply, keyed by their exchange's suspension number (never
    /// reused, unlike addresses, so a late hang-up cannot hit the wrong request). MHD refuses to stop while any
    /// connection is suspended, so shutdown must be able to answer them all.
    private var suspended: [UInt64: Suspension] = [:]  // guarded by lock
    private var suspensions: UInt64 = 0  // guarded by lock
    private var hangups: HangupWatch?  // guarded by lock; set while running

    private struct Suspension {
        var exchange: Exchange
        var connection: Int
        /// The socket in `hangups`, once watched; unwatched before the connection is resumed, since MHD may
        /// close it (and the number be reused) after that.
        var watchedSocket: Int32?
        var clientGone: HTTPReply.ClientGone?
    }
    /// Streamed responses not yet finished; shutdown cuts them off, since a parked one would also stop MHD.
    private var streams: [ObjectIdentifier: (stream: ResponseStream, head: HTTPRequestHead)] = [:]  // guarded by lock
    /// Requests between their first callback and MHD's "completed" notice (response sent or connection gone).
    private let active = NSCondition()
    private var activeRequests = 0  // guarded by active

    public init(handler: HTTPHandler, limits: Limits) {
        self.handler = handler
        self.limits = limits
    }

    /// Starts listening; returns the bound port (useful with port 0). With `listenSocket` (an inherited,
    /// already listening socket from systemd) MHD serves on that and `host`/`port` are not used. With `tls`,
    /// it speaks HTTPS only.
    public func start(host: String, port: Int, listenSocket: Int32? = nil, tls: TLSCredentials? = nil) throws -> Int {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw StartError.badAddress(host) }
        let hangups = try HangupWatch { [weak self] token in self?.clientHungUp(token) }
        let flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue
            | MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_ITC.rawValue | MHD_USE_ERROR_LOG.rawValue
        if tls != nil, MHD_is_feature_supported(.FEATURE_TLS) != .YES { throw StartError.tlsUnsupported }
        let key = tls.map { strdup($0.keyPEM)! }
        let certificate = tls.map { strdup($0.certificatePEM)! }
        lock.withLock { tlsStrings = [key, certificate].compactMap { $0 } }
        let me = Unmanaged.passUnretained(self).toOpaque()
        let daemon = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                avmae_mhd_start(flags, UInt16(port), sa, listenSocket ?? -1, key, certificate, accessHandler, me, requestCompleted, me,
                                UInt32(limits.connectionTimeoutSeconds), UInt32(limits.threads),
                                limits.connectionMemoryBytes, UInt32(limits.connectionLimit))
            }
        }
        guard let daemon else {
            hangups.stop()
            freeTLSStrings()
            if let listenSocket { throw StartError.inheritedSocketFailed(fd: listenSocket) }
            if tls != nil { throw StartError.tlsFailed(host: host, port: port) }
            throw StartError.startFailed(host: host, port: port)
        }
        lock.withLock {
            state = .running(daemon: daemon)
            self.hangups = hangups
        }
        return Int(avmae_mhd_bound_port(daemon))
    }

    /// Stops accepting new connections; open connections (and suspended ones) carry on.
    public func quiesce() {
        lock.withLock {
            guard case .running(let daemon) = state else { return }
            state = .quiesced(daemon: daemon, listenSocket: MHD_quiesce_daemon(daemon))
        }
    }

    /// Waits until every request that has started has had its response sent, or `timeout` seconds pass.
    /// Returns whether it got there; used on shutdown between draining the model and `stop`.
    public func waitUntilIdle(timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        active.lock()
        defer { active.unlock() }
        while activeRequests > 0 {
            if !active.wait(until: deadline) { return activeRequests == 0 }
        }
        return true
    }

    /// Shutdown after the drain timeout: answers every still-suspended request with `response(head)` so MHD
    /// can stop. Their late replies are dropped. Returns how many were cut off.
    public func answerSuspended(with response: (HTTPRequestHead) -> HTTPResponse) -> Int {
        let (waiting, streaming) = lock.withLock {
            defer { suspended.removeAll() }
            for entry in suspended.values { if let socket = entry.watchedSocket { hangups?.unwatch(socket) } }
            return (Array(suspended.values), Array(streams.values))
        }
        for entry in waiting {
            entry.exchange.phase = .ready(response(entry.exchange.head))
            MHD_resume_connection(OpaquePointer(bitPattern: entry.connection))
        }
        // A stream already sent its status: its last line says why it stops.
        for (stream, head) in streaming where !stream.isClosed {
            stream.abort(with: response(head).body + [UInt8(ascii: "\n")])
        }
        return waiting.count + streaming.count
    }

    fileprivate func streamStarted(_ stream: ResponseStream, head: HTTPRequestHead) {
        lock.withLock { streams[ObjectIdentifier(stream)] = (stream, head) }
    }

    fileprivate func streamEnded(_ stream: ResponseStream) {
        _ = lock.withLock { streams.removeValue(forKey: ObjectIdentifier(stream)) }
    }

    fileprivate func suspend(_ exchange: Exchange, connection: OpaquePointer?) {
        lock.withLock {
            suspensions += 1
            exchange.suspension = suspensions
            suspended[suspensions] = Suspension(exchange: exchange, connection: Int(bitPattern: connection))
        }
        MHD_suspend_connection(connection)
    }

    /// Starts watching a suspended connection's socket for the client closing it; `clientGone` is called if
    /// it does before the reply. Nothing to do if the reply came already.
    fileprivate func watchForHangup(_ exchange: Exchange, connection: OpaquePointer?,
                                    clientGone: @escaping HTTPReply.ClientGone) {
        let socket = avmae_mhd_connection_socket(connection)
        lock.withLock {
            guard var entry = suspended[exchange.suspension], socket >= 0, let hangups else { return }
            entry.clientGone = clientGone
            if hangups.watch(socket, token: exchange.suspension) { entry.watchedSocket = socket }
            suspended[exchange.suspension] = entry
        }
    }

    /// The peer closed a waiting connection: the handler stops its work, and will still reply (to nobody),
    /// which resumes the connection so MHD closes it.
    private func clientHungUp(_ token: UInt64) {
        let clientGone: HTTPReply.ClientGone? = lock.withLock {
            guard var entry = suspended[token] else { return nil }
            if let socket = entry.watchedSocket { hangups?.unwatch(socket) }
            let clientGone = entry.clientGone
            entry.watchedSocket = nil
            entry.clientGone = nil
            suspended[token] = entry
            return clientGone
        }
        clientGone?()
    }

    /// Delivers a `.later` reply, unless shutdown already answered that request.
    fileprivate func resume(_ exchange: Exchange, with response: HTTPResponse) {
        let entry: Suspension? = lock.withLock {
            guard let entry = suspended.removeValue(forKey: exchange.suspension) else { return nil }
            if let socket = entry.watchedSocket { hangups?.unwatch(socket) }
            return entry
        }
        guard let entry else { return }
        exchange.phase = .ready(response)
        MHD_resume_connection(OpaquePointer(bitPattern: entry.connection))
    }

    fileprivate func requestStarted() {
        active.lock()
        activeRequests += 1
        active.unlock()
    }

    fileprivate func requestEnded() {
        active.lock()
        activeRequests -= 1
        active.broadcast()
        active.unlock()
    }

    /// Closes every connection and joins MHD's threads.
    public func stop() {
        let (current, hangups): (State, HangupWatch?) = lock.withLock {
            defer {
                state = .stopped
                self.hangups = nil
            }
            return (state, self.hangups)
        }
        switch current {
        case .running(let daemon):
            MHD_stop_daemon(daemon)
        case .quiesced(let daemon, let socket):
            MHD_stop_daemon(daemon)
            // MHD hands the quiesced listen socket to us, to close only after its threads are gone.
            if socket >= 0 { close(socket) }
        case .idle, .stopped:
            break
        }
        hangups?.stop()
        freeTLSStrings()
    }

    private func freeTLSStrings() {
        let strings = lock.withLock {
            defer { tlsStrings = [] }
            return tlsStrings
        }
        strings.forEach { free($0) }
    }

    deinit { stop() }
}

/// Per-request state, owned by MHD's `*con_cls` from the first callback until `requestCompleted` releases it.
private final class Exchange: @unchecked Sendable {
    enum Phase {
        case receiving
        /// The body went past the cap; the rest is read and dropped, then 413.
        case discarding
        /// The body could not be written to its temporary file; the rest is read and dropped.
        case spoolFailed(Error)
        case waiting
        case ready(HTTPResponse)
    }

    let head: HTTPRequestHead
    let query: [String: String]
    let limit: BodyLimit
    var body: [UInt8] = []
    /// Its key in `MHDServer.suspended` while suspended; written under the server's lock.
    var suspension: UInt64 = 0
    var spool: SpooledBody?
    private let lock = NSLock()
    private var phaseValue = Phase.receiving  // guarded by lock: written by a handler thread on `.later`

    init(head: HTTPRequestHead, query: [String: String], limit: BodyLimit) {
        self.head = head
        self.query = query
        self.limit = limit
    }

    var receivedBytes: Int { spool?.size ?? body.count }

    /// Keeps one chunk: in memory, or in the spool file once the body passes the spooling size.
    func append(_ chunk: UnsafeRawBufferPointer) throws {
        if spool == nil, let threshold = limit.spoolAboveBytes, body.count + chunk.count > threshold {
            let file = try SpooledBody()
            try body.withUnsafeBytes { try file.append($0) }
            body = []
            spool = file
        }
        if let spool {
            try spool.append(chunk)
        } else {
            body.append(contentsOf: chunk)
        }
    }

    var phase: Phase {
        get { lock.withLock { phaseValue } }
        set { lock.withLock { phaseValue = newValue } }
    }
}

private func server(_ cls: UnsafeMutableRawPointer?) -> MHDServer {
    Unmanaged<MHDServer>.fromOpaque(cls!).takeUnretainedValue()
}

private func values(_ connection: OpaquePointer?, _ kind: MHD_ValueKind) -> [(String, String)] {
    final class Sink { var pairs: [(String, String)] = [] }
    let sink = Sink()
    _ = MHD_get_connection_values(connection, kind, { cls, _, key, value in
        let sink = Unmanaged<Sink>.fromOpaque(cls!).takeUnretainedValue()
        sink.pairs.append((key.map { String(cString: $0) } ?? "", value.map { String(cString: $0) } ?? ""))
        return .YES
    }, Unmanaged.passUnretained(sink).toOpaque())
    return sink.pairs
}

private func queue(_ response: HTTPResponse, on connection: OpaquePointer?, server: MHDServer? = nil,
                   head: HTTPRequestHead? = nil) -> MHD_Result {
    var body = response.body
    let mhdResponse: OpaquePointer?
    if let stream = response.stream, let server, let head {
        let streamed = StreamedResponse(stream: stream, connection: Int(bitPattern: connection), server: server)
        let context = Unmanaged.passRetained(streamed).toOpaque()
        mhdResponse = MHD_create_response_from_callback(sizeUnknown, streamBlockBytes, streamReader, context, streamFreed)
        if mhdResponse == nil { Unmanaged<StreamedResponse>.fromOpaque(context).release() }
        server.streamStarted(stream, head: head)
    } else {
        mhdResponse = body.withUnsafeMutableBytes { bytes in
            MHD_create_response_from_buffer(bytes.count, bytes.baseAddress, .RESPMEM_MUST_COPY)
        }
    }
    guard let mhdResponse else { return .NO }
    defer { MHD_destroy_response(mhdResponse) }
    for (name, value) in response.headers {
        _ = MHD_add_response_header(mhdResponse, name, value)
    }
    return MHD_queue_response(connection, UInt32(response.status), mhdResponse)
}

private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, upload, uploadSize, conCls in
    let server = server(cls)
    guard let conCls else { return .NO }

    // First call: headers only. Set up the exchange, and refuse early if the headers already say no.
    guard let existing = conCls.pointee else {
        var query: [String: String] = [:]
        for (key, value) in values(connection, .GET_ARGUMENT_KIND) where query[key] == nil { query[key] = value }
        let head = HTTPRequestHead(method: method.map { String(cString: $0) } ?? "",
                                   path: url.map { String(cString: $0) } ?? "/",
                                   headers: HTTPHeaders(values(connection, .HEADER_KIND)), query: query)
        let limit = server.handler.bodyLimit(head) ?? BodyLimit(maxBytes: server.limits.maxBodyBytes)
        let exchange = Exchange(head: head, query: query, limit: limit)
        conCls.pointee = Unmanaged.passRetained(exchange).toOpaque()
        server.requestStarted()
        if let refusal = server.handler.preflight(head) {
            return queue(refusal, on: connection)
        }
        if let length = head.contentLength {
            exchange.body.reserveCapacity(min(length, limit.maxBytes, limit.spoolAboveBytes ?? .max))
        }
        return .YES
    }
    let exchange = Unmanaged<Exchange>.fromOpaque(existing).takeUnretainedValue()

    // Body chunks: append up to the cap, then drop the rest.
    if let uploadSize, uploadSize.pointee > 0 {
        let count = uploadSize.pointee
        if case .receiving = exchange.phase, let upload {
            if exchange.receivedBytes + count > exchange.limit.maxBytes {
                exchange.body = []
                exchange.spool = nil
                exchange.phase = .discarding
            } else {
                do {
                    try exchange.append(UnsafeRawBufferPointer(start: upload, count: count))
                } catch {
                    exchange.body = []
                    exchange.spool = nil
                    exchange.phase = .spoolFailed(error)
                }
            }
        }
        uploadSize.pointee = 0
        return .YES
    }

    // Final call (body complete), or the call after a resume.
    switch exchange.phase {
    case .discarding:
        return queue(server.handler.bodyTooLarge(exchange.head), on: connection)
    case .spoolFailed(let error):
        return queue(server.handler.spoolFailed(exchange.head, error), on: connection)
    case .ready(let response):
        return queue(response, on: connection, server: server, head: exchange.head)
    case .waiting:
        return .YES  // spurious wake-up before the response is set; MHD will call again after resume
    case .receiving:
        let spooled: MediaFile?
        do {
            spooled = try exchange.spool?.file()
        } catch {
            return queue(server.handler.spoolFailed(exchange.head, error), on: connection)
        }
        let request = HTTPRequest(head: exchange.head, query: exchange.query, body: exchange.body, spooled: spooled)
        exchange.body = []
        exchange.spool = nil
        switch server.handler.handle(request) {
        case .now(let response):
            return queue(response, on: connection, server: server, head: exchange.head)
        case .later(let start):
            exchange.phase = .waiting
            server.suspend(exchange, connection: connection)
            let clientGone = start { response in server.resume(exchange, with: response) }
            server.watchForHangup(exchange, connection: connection, clientGone: clientGone)
            return .YES
        }
    }
}

private let requestCompleted: MHD_RequestCompletedCallback = { cls, _, conCls, _ in
    guard let conCls, let pointer = conCls.pointee else { return }
    // A client that left while its stream waited for the first window is noticed only here: MHD never got
    // the streamed response, so nothing else would tell its producer to stop.
    if case .ready(let response) = Unmanaged<Exchange>.fromOpaque(pointer).takeUnretainedValue().phase {
        response.stream?.connectionClosed()
    }
    Unmanaged<Exchange>.fromOpaque(pointer).release()
    conCls.pointee = nil
    server(cls).requestEnded()
}

/// Notices clients that close a suspended connection. One thread waits in epoll for EPOLLRDHUP (the peer's FIN)
/// on the sockets of every suspended connection and reports the token each was registered with.
///
/// A peer that only half-closes (shutdown(SHUT_WR)) but still reads looks the same as one that has gone; HTTP
/// clients do not do that while they wait for a response, and nginx treats it the same way.
private final class HangupWatch: @unchecked Sendable {
    private let epoll: Int32
    /// Written by `stop` to end the thread; registered with token 0, which no suspension uses.
    private let wakeup: Int32
    private let stopped = DispatchSemaphore(value: 0)

    init(onHangup: @escaping @Sendable (UInt64) -> Void) throws {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw MHDServer.StartError.hangupWatchFailed(errno: errno) }
        wakeup = eventfd(0, Int32(EFD_CLOEXEC))
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = 0
        guard wakeup >= 0, epoll_ctl(epoll, EPOLL_CTL_ADD, wakeup, &event) == 0 else {
            let code = errno
            close(epoll)
            if wakeup >= 0 { close(wakeup) }
            throw MHDServer.StartError.hangupWatchFailed(errno: code)
        }
        let thread = Thread { [epoll, stopped] in
            var events = [epoll_event](repeating: epoll_event(), count: 64)
            waiting: while true {
                let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, 64, -1) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { break }
                for event in events.prefix(Int(count)) {
                    if event.data.u64 == 0 { break waiting }
                    onHangup(event.data.u64)
                }
            }
            stopped.signal()
        }
        thread.name = "avmae.hangups"
        thread.start()
    }

    /// Returns whether the socket is now watched. Edge-triggered: one report per hang-up is enough.
    func watch(_ socket: Int32, token: UInt64) -> Bool {
        var event = epoll_event()
        event.events = EPOLLRDHUP.rawValue | EPOLLET.rawValue
        event.data.u64 = token
        return epoll_ctl(epoll, EPOLL_CTL_ADD, socket, &event) == 0
    }

    func unwatch(_ socket: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, socket, &event)
    }

    func stop() {
        var one: UInt64 = 1
        _ = write(wakeup, &one, MemoryLayout<UInt64>.size)
        stopped.wait()
        close(wakeup)
        close(epoll)
    }
}

/// A streamed response as MHD's content reader sees it: the stream, and the connection to suspend and resume.
private final class StreamedResponse {
    let stream: ResponseStream
    let connection: Int
    weak var server: MHDServer?

    init(stream: ResponseStream, connection: Int, server: MHDServer) {
        self.stream = stream
        self.connection = connection
        self.server = server
    }
}

/// microhttpd.h's MHD_SIZE_UNKNOWN (chunked transfer) and the content reader's end codes, which are cast
/// macros Swift does not import.
private let sizeUnknown = UInt64.max
private let contentReaderEndOfStream = -1
/// How much MHD asks the reader for at a time; an NDJSON line is well under it.
private let streamBlockBytes = 16 << 10

private let streamReader: MHD_ContentReaderCallback = { cls, _, buffer, max in
    let streamed = Unmanaged<StreamedResponse>.fromOpaque(cls!).takeUnretainedValue()
    let connection = OpaquePointer(bitPattern: streamed.connection)
    // Returning 0 without suspending would make MHD call again at once, a busy loop; suspended, the connection
    // waits in no thread until the next write resumes it.
    switch streamed.stream.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: max),
                                park: { MHD_suspend_connection(connection) },
                                wake: { MHD_resume_connection(connection) }) {
    case .bytes(let count): return count
    case .parked: return 0
    case .end: return contentReaderEndOfStream
    }
}

/// MHD drops the response once it is sent in full or its connection is gone.
private let streamFreed: MHD_ContentReaderFreeCallback = { cls in
    let streamed = Unmanaged<StreamedResponse>.fromOpaque(cls!).takeRetainedValue()
    streamed.stream.connectionClosed()
    streamed.server?.streamEnded(streamed.stream)
}
