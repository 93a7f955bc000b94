// filesearch: the command-line entry point. Each subcommand lives in its own function.
#include <cstdio>
#include <string>

#include "core/log.h"

int main(int argc, char** argv) {
  fs::InitLogFromEnv();
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::puts("filesearch: search a company's files by name, content and what images show.");
    return 0;
  }
  std::fprintf(stderr, "filesearch: unknown command '%s'. Run 'filesearch --help'.\n", argv[1]);
  return 2;
}
