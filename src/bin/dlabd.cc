// dlabd: the dlab server. See `dlabd --help`.
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "common/file_util.h"
#include "common/utf8_locale.h"
#include "server/config.h"
#include "server/server.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  dlab::UseUtf8Ctype();
  CLI::App app{"dlabd: the dlab server (REST API, scheduler and local executor)"};
  std::string listen;
  std::string data_dir;
  std::string config_file;
  app.add_option("--listen", listen,
                 "HOST:PORT to serve on (default 127.0.0.1:8080; port 0 picks a free one)");
  app.add_option(
      "--data-dir", data_dir,
      "directory for the database, snapshots and job files (required here or in --config)");
  app.add_option("--config", config_file, "YAML config file (see docs/configuration.md)");
  app.set_version_flag("--version", "dlabd 0.1.0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // bad arguments: 2, as for a bad --listen
  }
  // stdout carries only the "listening" line; logs go to stderr.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("dlabd"));

  dlab::ServerConfig config;
  if (!config_file.empty()) {
    auto text = dlab::ReadFile(config_file);
    if (!text.ok()) {
      std::fprintf(stderr, "dlabd: cannot read config: %s\n",
                   std::string(text.status().message()).c_str());
      return 1;
    }
    auto parsed = dlab::ParseServerConfig(*text);
    if (!parsed.ok()) {
      std::fprintf(stderr, "dlabd: %s: %s\n", config_file.c_str(),
                   std::string(parsed.status().message()).c_str());
      return 1;
    }
    config = *std::move(parsed);
  }
  if (!listen.empty()) {
    if (auto s = dlab::ParseListen(listen, &config); !s.ok()) {
      std::fprintf(stderr, "dlabd: --%s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  if (!data_dir.empty()) config.data_dir = data_dir;
  dlab::TakeEnvironmentSecrets(&config);
  if (auto s = dlab::RunServer(config); !s.ok()) {
    std::fprintf(stderr, "dlabd: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
