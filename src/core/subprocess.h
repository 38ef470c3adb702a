// Runs a command with a time limit: its output (stdout and stderr together) is kept up to a tail, and
// a command still running at the limit is killed with its whole process group.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace lifeboat {

struct CommandResult {
  int exit_code = -1;   // -1 when killed by a signal or at the time limit
  int signal = 0;
  bool timed_out = false;
  std::string output_tail;  // the last `tail_bytes` of what it printed
  bool ok() const { return exit_code == 0; }
  std::string describe() const;  // "exited 2", "killed by signal 9", "ran past its 60 s limit and was killed"
};

// A command template from a plan ("check {file}") with each placeholder replaced by its value quoted
// for /bin/sh where it stands — unquoted ('…' added), inside '…' or inside "…" (escaped for each) —
// so a path with spaces, quotes, $( ) or backticks stays one word and runs nothing. A value is never
// scanned for placeholders again. A placeholder inside $( ) or backticks is refused (the shell would
// parse its value once more), naming it.
Result<std::string> fill_command(const std::string& run, const std::vector<std::pair<std::string, std::string>>& values);

// Runs `command` with /bin/sh -c, its standard output sent to standard error, with `env` added to
// this process's environment: values travel as environment variables, never inside the command
// text, so quotes, $( ) and backticks in them run nothing. Returns the exit code (-1 for a signal).
Result<int> run_shell_with_env(const std::string& command, const std::vector<std::pair<std::string, std::string>>& env);

// argv[0] is looked up in PATH. kIo when it cannot be started at all.
Result<CommandResult> run_command(const std::vector<std::string>& argv, int64_t timeout_s, size_t tail_bytes = 4096);

}  // namespace lifeboat
