#ifndef CFUSE_H
#define CFUSE_H

#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

/* Typed wrappers for libfuse3 macros and variadic helpers that Swift cannot import. */

/* FUSE_ARGS_INIT: an argument vector that libfuse may grow; release it with fuse_opt_free_args. */
struct fuse_args CFuse_args_init(int argc, char **argv);

/* FUSE_BUFVEC_INIT: a one-buffer vector of `size` bytes with no memory attached. */
struct fuse_bufvec CFuse_bufvec_init(size_t size);

/* The libfuse version this binary runs against (for example 314 for 3.14). */
int CFuse_library_version(void);

/* The FUSE_USE_VERSION the shim was compiled with. */
int CFuse_api_version(void);

/* Runs the multithreaded loop (fuse_session_loop_mt is a versioned macro) with clone_fd and a thread cap. */
int CFuse_session_loop_mt(struct fuse_session *se, int clone_fd, unsigned int max_threads);

/* fuse_file_info bitfields, set without relying on how Swift imports bitfields. */
void CFuse_fi_set_keep_cache(struct fuse_file_info *fi, int keep_cache);
void CFuse_fi_set_direct_io(struct fuse_file_info *fi, int direct_io);
/* FOPEN_NOFLUSH (Linux 5.16): close(2) of this open sends no FLUSH. */
void CFuse_fi_set_noflush(struct fuse_file_info *fi, int noflush);
int CFuse_fi_flags(const struct fuse_file_info *fi);

#endif
