// Why this shim exists: Swift does not import C variadic functions, and libmicrohttpd's only way to start a
// daemon with options is the variadic MHD_start_daemon(flags, port, ..., MHD_OPTION_END). This fixes the option
// list the server uses so Swift can call it as a plain function. The two info getters below are variadic too.
// Nothing else belongs here.
#ifndef AVMAE_CMICROHTTPD_SHIM_H
#define AVMAE_CMICROHTTPD_SHIM_H
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

// Two options depend on how the server runs, so the list is built as an MHD_OPTION_ARRAY (one call, rather
// than one variadic call per combination):
// - listen_fd >= 0 is a socket systemd already bound and listens on (socket activation); MHD serves on it and
//   ignores port/addr. Otherwise MHD binds addr itself.
// - tls_key and tls_cert (PEM text, both or neither) turn on HTTPS through MHD's GnuTLS support.
static inline struct MHD_Daemon *avmae_mhd_start(unsigned int flags, uint16_t port, const struct sockaddr *addr,
    int listen_fd, const char *tls_key, const char *tls_cert,
    MHD_AccessHandlerCallback handler, void *handler_cls, MHD_RequestCompletedCallback completed,
    void *completed_cls, unsigned int connection_timeout_s, unsigned int thread_pool_size,
    size_t connection_memory_limit, unsigned int connection_limit) {
  // MHD_OptionItem: integers go in .value, a single pointer in .ptr_value; NOTIFY_COMPLETED's function pointer
  // goes in .value and its closure in .ptr_value.
  struct MHD_OptionItem options[10];
  size_t n = 0;
  if (listen_fd >= 0) {
    options[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, (intptr_t) listen_fd, NULL};
  } else {
    options[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *) addr};
  }
  if (tls_key != NULL && tls_cert != NULL) {
    flags |= MHD_USE_TLS;
    options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *) tls_key};
    options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *) tls_cert};
  }
  options[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) completed, completed_cls};
  options[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, connection_timeout_s, NULL};
  options[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, thread_pool_size, NULL};
  options[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t) connection_memory_limit, NULL};
  options[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, connection_limit, NULL};
  options[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  return MHD_start_daemon(flags, port, NULL, NULL, handler, handler_cls,
      MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

// MHD_get_daemon_info is variadic too; this reads back the port the kernel chose when port 0 was requested.
static inline uint16_t avmae_mhd_bound_port(struct MHD_Daemon *daemon) {
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : 0;
}

// MHD_get_connection_info is variadic as well; this reads a connection's socket, which the server watches for
// the client hanging up while the connection is suspended (MHD itself does not look at it then). -1 if unknown.
static inline int avmae_mhd_connection_socket(struct MHD_Connection *connection) {
  const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
  return info ? info->connect_fd : -1;
}
#endif
