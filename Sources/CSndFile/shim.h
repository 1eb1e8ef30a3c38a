// libsndfile imports into Swift as is; this header only names it for the module map.
#include <sndfile.h>
