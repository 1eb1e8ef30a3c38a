// libseccomp imports into Swift as is, except its rule-building entry point, which is variadic: Swift cannot call
// seccomp_rule_add, so the array form seccomp_rule_add_array is used instead (no shim needed). This header only
// names the library for the module map.
#include <seccomp.h>
