// What a person meets first when a command line is wrong: the parse error worded with a "did you
// mean" for a mistyped command or flag, as JSON under --json, and subcommand help that shows the
// global options.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace lifeboat::cli {

// The candidates within a small edit distance of `word` (or that it begins), closest first.
std::vector<std::string> closest(const std::string& word, const std::vector<std::string>& candidates);

// The message for a failed parse of argv: CLI11's, and "did you mean …?" when a word or flag is
// close to a command or flag of the command line's deepest subcommand.
std::string explain_parse_error(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv);

// Every subcommand's --help ends with the global options (they may follow the command).
void add_global_options_footer(CLI::App& app);

}  // namespace lifeboat::cli
