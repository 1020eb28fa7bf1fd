#include <iostream>

#include "sim/sim_cli.h"

int main(int argc, char** argv) { return dlab::sim::RunSimCli(argc, argv, std::cout, std::cerr); }
