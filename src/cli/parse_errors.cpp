#include "cli/parse_errors.h"

#include <fmt/format.h>

#include <algorithm>

namespace lifeboat::cli {

namespace {

// Edits between two words, a swap of neighbours counting as one (optimal string alignment): the
// typos people make ("--to-dri").
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// The subcommand chain argv selects (words that name a subcommand, in order); the app when none.
const CLI::App* deepest(const CLI::App& app, int argc, char** argv) {
  const CLI::App* at = &app;
  for (int i = 1; i < argc; ++i) {
    std::string w = argv[i];
    if (w.starts_with("-")) continue;
    for (const auto* sub : at->get_subcommands([](const CLI::App*) { return true; }))
      if (sub->get_name() == w) {
        at = sub;
        break;
      }
  }
  return at;
}

std::vector<std::string> subcommand_names(const CLI::App* app) {
  std::vector<std::string> out;
  for (const auto* sub : app->get_subcommands([](const CLI::App*) { return true; })) out.push_back(sub->get_name());
  return out;
}

std::vector<std::string> flag_names(const CLI::App* app) {
  std::vector<std::string> out;
  for (const CLI::App* a = app; a; a = a->get_parent())
    for (const auto* o : a->get_options([](const CLI::Option*) { return true; }))
      for (const auto& n : o->get_lnames()) out.push_back("--" + n);
  return out;
}

}  // namespace

std::vector<std::string> closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::vector<std::pair<size_t, std::string>> scored;
  size_t limit = word.size() <= 4 ? 1 : 2;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    bool prefix = word.size() >= 3 && c.starts_with(word) && c != word;
    if (d <= limit || prefix) scored.emplace_back(prefix ? std::min<size_t>(d, 1) : d, c);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (auto& [d, c] : scored)
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  return out;
}

std::string explain_parse_error(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  std::string message = e.what();
  const CLI::App* at = deepest(app, argc, argv);
  std::vector<std::string> hints;
  for (int i = 1; i < argc; ++i) {
    std::string w = argv[i];
    if (w == "--") break;
    if (w.starts_with("--")) {
      std::string name = w.substr(0, w.find('='));
      auto flags = flag_names(at);
      if (std::find(flags.begin(), flags.end(), name) != flags.end()) continue;
      if (auto near = closest(name, flags); !near.empty()) hints.push_back(fmt::format("{} → {}", name, fmt::join(near, " or ")));
    } else if (!w.starts_with("-") && at->get_subcommands([](const CLI::App*) { return true; }).size() > 0) {
      auto names = subcommand_names(at);
      if (std::find(names.begin(), names.end(), w) != names.end()) continue;
      if (auto near = closest(w, names); !near.empty()) hints.push_back(fmt::format("{} → {}", w, fmt::join(near, " or ")));
      break;  // a word where a command was due: the rest are its arguments
    }
  }
  if (!hints.empty()) message += fmt::format(" (did you mean: {}?)", fmt::join(hints, "; "));
  std::string path;
  for (const CLI::App* a = at; a && a->get_parent(); a = a->get_parent()) path = " " + a->get_name() + path;
  return message + fmt::format("; see lifeboat{} --help", path);
}

void add_global_options_footer(CLI::App& app) {
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    sub->footer("Global options (before or after the command): -r,--repo REPO (or LIFEBOAT_REPOSITORY; with a plan, a "
                "repository's name)  --password-file FILE (or LIFEBOAT_PASSWORD)  --plan FILE (or LIFEBOAT_PLAN)  --json  "
                "-q,--quiet  --no-progress");
    add_global_options_footer(*sub);
  }
}

}  // namespace lifeboat::cli
