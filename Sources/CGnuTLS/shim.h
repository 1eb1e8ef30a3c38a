// GnuTLS's hash functions import into Swift as is; this header only names them for the module map. GnuTLS is
// already there: libmicrohttpd links it for HTTPS, and libmicrohttpd-dev brings libgnutls28-dev.
#include <gnutls/crypto.h>
