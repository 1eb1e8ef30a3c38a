// glibc calls the decode workers need that Swift's Glibc module does not show: glibc declares them only under
// _GNU_SOURCE, which that module is built without. The declarations are glibc's own (2.34 and later).
#include <spawn.h>

int memfd_create(const char *name, unsigned int flags);
int pipe2(int pipefd[2], int flags);
int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
