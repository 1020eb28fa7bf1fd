#include "cli/cli.h"
#include "common/utf8_locale.h"

int main(int argc, char** argv) {
  dlab::UseUtf8Ctype();
  return dlab::RunCli(argc, argv);
}
