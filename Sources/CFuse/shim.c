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
