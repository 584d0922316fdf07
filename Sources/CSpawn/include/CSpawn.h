#ifndef CSPAWN_H
#define CSPAWN_H

#include <spawn.h>

/* posix_spawn_file_actions_addclosefrom_np (glibc 2.34+), which Swift does not import:
   closes every descriptor >= from in the child, so a spawned daemon inherits nothing unasked. */
int CSpawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);

#endif
