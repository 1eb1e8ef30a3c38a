// Why this shim exists: Swift does not import C variadic functions, and libmicrohttpd's only way to start a
// daemon with options is the variadic MHD_start_daemon(flags, port, ..., MHD_OPTION_END). This fixes the option
// list the server uses so Swift can call it as a plain function. Nothing else belongs here.
#ifndef AVMAE_CMICROHTTPD_SHIM_H
#define AVMAE_CMICROHTTPD_SHIM_H
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

// listen_fd >= 0 is a socket systemd already bound and listens on (socket activation); MHD then serves on it
// and ignores port/addr. Otherwise MHD binds addr itself. Two calls, because an option cannot be left out of a
// variadic list at run time, and MHD_OPTION_SOCK_ADDR with MHD_OPTION_LISTEN_SOCKET together is an error.
static inline struct MHD_Daemon *avmae_mhd_start(unsigned int flags, uint16_t port, const struct sockaddr *addr,
    int listen_fd, MHD_AccessHandlerCallback handler, void *handler_cls, MHD_RequestCompletedCallback completed,
    void *completed_cls, unsigned int connection_timeout_s, unsigned int thread_pool_size,
    size_t connection_memory_limit, unsigned int connection_limit) {
  if (listen_fd >= 0) {
    return MHD_start_daemon(flags, port, NULL, NULL, handler, handler_cls,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket) listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
        MHD_OPTION_CONNECTION_TIMEOUT, connection_timeout_s,
        MHD_OPTION_THREAD_POOL_SIZE, thread_pool_size,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, connection_memory_limit,
        MHD_OPTION_CONNECTION_LIMIT, connection_limit,
        MHD_OPTION_END);
  }
  return MHD_start_daemon(flags, port, NULL, NULL, handler, handler_cls,
      MHD_OPTION_SOCK_ADDR, addr,
      MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
      MHD_OPTION_CONNECTION_TIMEOUT, connection_timeout_s,
      MHD_OPTION_THREAD_POOL_SIZE, thread_pool_size,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, connection_memory_limit,
      MHD_OPTION_CONNECTION_LIMIT, connection_limit,
      MHD_OPTION_END);
}

// MHD_get_daemon_info is variadic too; this reads back the port the kernel chose when port 0 was requested.
static inline uint16_t avmae_mhd_bound_port(struct MHD_Daemon *daemon) {
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : 0;
}
#endif
