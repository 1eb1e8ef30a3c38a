// OpenBLAS's own cblas.h (pkg-config `openblas` puts its directory first on the include path), which also
// declares openblas_set_num_threads / openblas_get_config / openblas_get_corename.
#include <cblas.h>
