// libarchive converts file names through the C library's character set: without a UTF-8
// locale neither the CLI can pack nor dlabd check a file named ü.txt. Call at the start of main.
#pragma once

#include <langinfo.h>

#include <clocale>
#include <cstring>

namespace dlab {

// LC_CTYPE from the environment, else C.UTF-8 when that is not UTF-8 (numbers keep "C").
inline void UseUtf8Ctype() {
  std::setlocale(LC_CTYPE, "");
  if (std::strcmp(nl_langinfo(CODESET), "UTF-8") != 0) std::setlocale(LC_CTYPE, "C.UTF-8");
}

}  // namespace dlab
