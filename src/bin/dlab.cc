#include <langinfo.h>

#include <clocale>
#include <cstring>

#include "cli/cli.h"

int main(int argc, char** argv) {
  // libarchive converts file names through the C library's character set: without a UTF-8
  // locale, `dlab run` cannot pack a file named ü.txt. Take the user's locale, else C.UTF-8.
  std::setlocale(LC_CTYPE, "");
  if (std::strcmp(nl_langinfo(CODESET), "UTF-8") != 0) std::setlocale(LC_CTYPE, "C.UTF-8");
  return dlab::RunCli(argc, argv);
}
