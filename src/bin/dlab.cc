// The dlab command-line client; everything lives in src/cli.
#include "cli/cli.h"

int main(int argc, char** argv) { return dlab::RunCli(argc, argv); }
