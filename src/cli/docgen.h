// The man page and the bash completion, generated from the command tree itself (`lifeboat
// __generate man|bash`, run by the build), so neither can drift from the CLI.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace lifeboat::cli {

std::string man_page(const CLI::App& app, const std::string& version);
std::string bash_completion(const CLI::App& app);

}  // namespace lifeboat::cli
