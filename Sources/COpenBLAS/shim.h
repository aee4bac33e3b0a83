#pragma once
// Debian's libopenblas-dev installs cblas.h under /usr/include/x86_64-linux-gnu (via
// alternatives, also /usr/include/cblas.h); Homebrew under its prefix (pkg-config openblas).
#include <cblas.h>
