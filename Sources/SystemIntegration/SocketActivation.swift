import Foundation

/// sd_listen_fds(3) without libsystemd. Under socket activation (deploy/avmae-serve.socket, or
/// `systemd-socket-activate -l ADDR`) systemd binds and listens, then starts us with the socket already open
/// as fd 3 and LISTEN_FDS=1, LISTEN_PID=<our pid>. Serving on that fd, instead of binding our own, lets the
/// socket outlive restarts: connections queue in the kernel backlog while a new process loads the model.
///
/// Protocol: https://www.freedesktop.org/software/systemd/man/252/sd_listen_fds.html
public enum ListenFDs {
    /// SD_LISTEN_FDS_START: inherited sockets are numbered from here.
    public static let firstDescriptor: Int32 = 3

    public enum ActivationError: Error, Equatable, CustomStringConvertible {
        case malformed(variable: String, value: String)
        /// We serve one HTTP socket; several would need one MHD daemon each.
        case tooMany(Int)
        /// Typically a unit with Accept=yes (a connected socket per connection) or ListenDatagram=.
        case notListeningStream(fd: Int32)

        public var description: String {
            switch self {
            case .malformed(let variable, let value): return "\(variable)='\(value)' is not a valid number"
            case .tooMany(let count): return "systemd passed \(count) sockets; avmae-serve serves exactly one (one ListenStream= in the .socket unit)"
            case .notListeningStream(let fd): return "inherited fd \(fd) is not a listening stream socket (the .socket unit needs ListenStream= and Accept=no)"
            }
        }
    }

    /// The inherited descriptors, or none when this process was not socket-activated. Pure: reads only the
    /// two variables. LISTEN_PID guards against a variable inherited by a child it was not meant for.
    public static func descriptors(environment: [String: String], pid: pid_t) throws -> [Int32] {
        guard let pidText = environment["LISTEN_PID"], let countText = environment["LISTEN_FDS"] else { return [] }
        guard let listenPid = pid_t(pidText) else { throw ActivationError.malformed(variable: "LISTEN_PID", value: pidText) }
        guard listenPid == pid else { return [] }
        guard let count = Int32(countText), count >= 0 else {
            throw ActivationError.malformed(variable: "LISTEN_FDS", value: countText)
        }
        return Array(firstDescriptor..<(firstDescriptor + count))
    }

    /// The one listening socket systemd passed us, ready for MHD_OPTION_LISTEN_SOCKET; nil when not
    /// socket-activated (the daemon then binds --host/--port itself). Marks it close-on-exec, as
    /// sd_listen_fds does.
    public static func inheritedSocket(environment: [String: String] = ProcessInfo.processInfo.environment,
                                       pid: pid_t = getpid()) throws -> Int32? {
        let fds = try descriptors(environment: environment, pid: pid)
        guard let fd = fds.first else { return nil }
        guard fds.count == 1 else { throw ActivationError.tooMany(fds.count) }
        try requireListeningStream(fd)
        let flags = try check("fcntl(F_GETFD)", fcntl(fd, F_GETFD))
        try check("fcntl(F_SETFD)", fcntl(fd, F_SETFD, flags | FD_CLOEXEC))
        return fd
    }

    /// Throws unless `fd` is a SOCK_STREAM socket on which listen(2) has been called.
    public static func requireListeningStream(_ fd: Int32) throws {
        func option(_ name: Int32) throws -> Int32 {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            try check("getsockopt", getsockopt(fd, SOL_SOCKET, name, &value, &length))
            return value
        }
        guard try option(SO_TYPE) == Int32(SOCK_STREAM.rawValue), try option(SO_ACCEPTCONN) == 1 else {
            throw ActivationError.notListeningStream(fd: fd)
        }
    }
}
