// lifeboat: entry point; parses global flags, runs the chosen command, maps its status to an exit code.
#include <fmt/format.h>

#include <malloc.h>
#include <unistd.h>

#include <iostream>

#include "cli/context.h"
#include "cli/docgen.h"
#include "cli/parse_errors.h"
#include "core/interrupt.h"
#include "core/names.h"

#ifndef LIFEBOAT_VERSION
#define LIFEBOAT_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  using namespace lifeboat;
  using namespace lifeboat::cli;
  install_interrupt_handlers();
  // A fixed threshold: buffers of 4 MiB and more (packs, chunk buffers) are mapped and given back
  // to the system when freed, instead of glibc raising the threshold and keeping them in the heap.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);  // ...without trimming the heap on every free
  CLI::App app{"lifeboat: back up every system, restore any of them to any second, and prove it by drill"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the command: `lifeboat snapshots --json`
  app.set_version_flag("--version", LIFEBOAT_VERSION);
  GlobalOptions g;
  app.add_option("-r,--repo", g.repo, "repository location (or LIFEBOAT_REPOSITORY)");
  app.add_option("--password-file", g.password_file, "read the password from this file (or LIFEBOAT_PASSWORD)");
  app.add_flag("--json", g.json, "print machine-readable JSON on stdout");
  app.add_flag("-q,--quiet", g.quiet, "print only errors");
  app.add_flag("--no-progress", g.no_progress, "no live progress display");
  app.add_option("--plan", g.plan, "plan file (or LIFEBOAT_PLAN): backup/restore then name the plan's sources");
  Action action;
  CommandSet c{app, g, action};
  register_init(c);
  register_backup(c);
  register_snapshots(c);
  register_ls(c);
  register_restore(c);
  register_check(c);
  register_key(c);
  register_stats(c);
  register_diff(c);
  register_unlock(c);
  register_repair(c);
  register_forget(c);
  register_kinds(c);
  register_copy(c);
  register_plan(c);
  register_drill(c);
  register_report(c);
  register_daemon(c);
  register_maintenance(c);
  register_failover(c);
  // Build-time generation of the man page and the bash completion from this very command tree.
  if (argc == 3 && std::string(argv[1]) == "__generate") {
    std::string what = argv[2];
    if (what == "man") std::cout << man_page(app, LIFEBOAT_VERSION);
    else if (what == "bash") std::cout << bash_completion(app);
    else return 2;
    return 0;
  }
  add_global_options_footer(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // A wrong command line: "did you mean", and JSON under --json (the flag may not have been parsed).
    bool json = g.json;
    for (int i = 1; i < argc && !json; ++i) json = std::string(argv[i]) == "--json";
    std::string why = explain_parse_error(app, e, argc, argv);
    if (json)
      std::cout << nlohmann::json{{"error", why}, {"code", code_name(Code::kInvalidArgument)}, {"exit_code", 1}}.dump() << "\n";
    else
      fmt::print(stderr, "lifeboat: error: {}\n", why);
    return 1;
  }
  Status s;
  try {
    s = action ? action() : Error(Code::kInvalidArgument, "no command");
  } catch (const std::exception& e) {
    s = Error(Code::kFatal, std::string("internal error: ") + e.what());
  }
  if (!s && interrupted() && s.code() != Code::kPartial) s = Error(Code::kInterrupted, "interrupted");
  if (s) return 0;
  if (s.code() == Code::kPartial) {
    if (!g.json) fmt::print(stderr, "lifeboat: warning: {}\n", redact_urls_in(s.message()));
  } else if (g.json) {
    std::cout << nlohmann::json{{"error", redact_urls_in(s.message())}, {"code", code_name(s.code())}, {"exit_code", exit_code_for(s.code())}}
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    fmt::print(stderr, "lifeboat: error: {}\n", redact_urls_in(s.message()));
  }
  return exit_code_for(s.code());
}
