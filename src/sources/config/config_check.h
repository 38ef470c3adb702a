// Syntax validation of configuration files (JSON, YAML, TOML, INI, .env) with the libraries that read
// them in production (nlohmann-json, yaml-cpp, toml++, inih), and the plan's extra check commands.
// A problem names the file and line and never quotes the file's content: config files hold secrets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace lifeboat::sources::config {

enum class Syntax { kNone, kJson, kYaml, kToml, kIni, kEnv };
// By name: *.json, *.yaml/*.yml, *.toml, *.ini, and .env / *.env / .env.* files; kNone for others.
Syntax syntax_of(const std::string& path);
const char* syntax_name(Syntax s);

struct ConfigProblem {
  std::string file;
  int64_t line = 0;  // 1-based; 0 when the parser could not say
  std::string problem;
  std::string to_string() const;  // "file:line: problem"
};

// The first problem of `text` read as `syntax` (nothing for a valid file). `file` only names it.
std::vector<ConfigProblem> check_text(const std::string& file, Syntax syntax, const std::string& text);

// A message from a parser with every quoted run ('…', "…") replaced by an ellipsis, so no content of
// the file is repeated.
std::string redact_quoted(const std::string& message);

// One extra check from the plan: a command run for every file whose name matches `match` (fnmatch on
// the path or its base name), "{file}" replaced by the file's path; non-zero exit is a problem.
struct CheckCommand {
  std::string match, run;
  int64_t timeout_s = 60;
};

struct ConfigCheckReport {
  uint64_t files_checked = 0;
  std::vector<ConfigProblem> problems;
};
// Walks `paths` (files and directories, symlinks not followed, `excludes` skipped) and checks every
// file of a known syntax, then runs the commands. Unreadable files are left to the backup to report.
ConfigCheckReport check_tree(const std::vector<std::string>& paths, const std::vector<std::string>& excludes,
                             const std::vector<CheckCommand>& commands);

}  // namespace lifeboat::sources::config
