// glibc calls the decode workers need that Swift's Glibc module does not show: glibc declares them only under
// _GNU_SOURCE, which that module is built without. The declarations are glibc's own (2.34 and later).
// epoll and eventfd (the HTTP server's watch on suspended connections) are not in that module at all.
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

int memfd_create(const char *name, unsigned int flags);
int pipe2(int pipefd[2], int flags);
int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
