// oneDNN's C API (Debian libdnnl-dev 2.6 ships no dnnl.pc, so this target names no pkgConfig; the header is in
// /usr/include).
#include <oneapi/dnnl/dnnl.h>

// Debian's oneDNN runs on OpenMP (libgomp), whose thread count is a property of the calling thread. omp.h lives
// in GCC's private include directory, which Swift's clang does not search, so the two functions the engine needs
// are declared here (signatures from the OpenMP specification).
int omp_get_max_threads(void);
void omp_set_num_threads(int num_threads);
