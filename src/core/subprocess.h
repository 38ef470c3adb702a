// Runs a command with a time limit: its output (stdout and stderr together) is kept up to a tail, and
// a command still running at the limit is killed with its whole process group.
#pragma once

#include <cstdint>
#include <string>
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

// argv[0] is looked up in PATH. kIo when it cannot be started at all.
Result<CommandResult> run_command(const std::vector<std::string>& argv, int64_t timeout_s, size_t tail_bytes = 4096);

}  // namespace lifeboat
