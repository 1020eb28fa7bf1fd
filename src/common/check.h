// Invariant checks: a broken invariant is a bug, so it crashes loudly with its location.
// Environmental failures are never CHECKed; they are absl::Status values.
#pragma once

#include <cstdio>
#include <cstdlib>

#define DLAB_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
