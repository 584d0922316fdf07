#include <stddef.h>
#include "CFuse.h"

struct fuse_args CFuse_args_init(int argc, char **argv) {
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    return args;
}

struct fuse_bufvec CFuse_bufvec_init(size_t size) {
    struct fuse_bufvec vec = FUSE_BUFVEC_INIT(size);
    return vec;
}

int CFuse_library_version(void) { return fuse_version(); }

int CFuse_api_version(void) { return FUSE_USE_VERSION; }

int CFuse_session_loop_mt(struct fuse_session *se, int clone_fd, unsigned int max_threads) {
    struct fuse_loop_config *config = fuse_loop_cfg_create();
    if (!config) return -1;
    fuse_loop_cfg_set_clone_fd(config, clone_fd ? 1 : 0);
    fuse_loop_cfg_set_max_threads(config, max_threads);
    fuse_loop_cfg_set_idle_threads(config, max_threads);
    int rc = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
    return rc;
}

void CFuse_fi_set_keep_cache(struct fuse_file_info *fi, int keep_cache) { fi->keep_cache = keep_cache ? 1 : 0; }
void CFuse_fi_set_direct_io(struct fuse_file_info *fi, int direct_io) { fi->direct_io = direct_io ? 1 : 0; }
void CFuse_fi_set_noflush(struct fuse_file_info *fi, int noflush) { fi->noflush = noflush ? 1 : 0; }
int CFuse_fi_flags(const struct fuse_file_info *fi) { return fi->flags; }
