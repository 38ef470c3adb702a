#include "sources/config/config_check.h"

#include <fnmatch.h>
#include <ini.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "core/subprocess.h"

namespace lifeboat::sources::config {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t line_of_byte(const std::string& text, size_t byte) {
  byte = std::min(byte, text.size());
  return 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(byte), '\n');
}

// The line of the first byte that is not part of valid UTF-8, or 0.
int64_t first_bad_utf8_line(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return line_of_byte(s, i);
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return line_of_byte(s, i);
    if (n == 2 && c < 0xC2) return line_of_byte(s, i);  // overlong
    i += n;
  }
  return 0;
}

std::vector<ConfigProblem> check_env(const std::string& file, const std::string& text) {
  if (int64_t bad = first_bad_utf8_line(text)) return {{file, bad, "not valid UTF-8"}};
  static const std::regex key(R"(^(export[ \t]+)?[A-Za-z_][A-Za-z0-9_.]*[ \t]*=)");
  std::istringstream in(text);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    std::smatch m;
    std::string rest = line.substr(start);
    if (!std::regex_search(rest, m, key)) return {{file, n, "expected KEY=VALUE (a name of letters, digits and _ before '=')"}};
    std::string value = rest.substr(static_cast<size_t>(m.length(0)));
    size_t v = value.find_first_not_of(" \t");
    if (v != std::string::npos && (value[v] == '"' || value[v] == '\'')) {
      char q = value[v];
      size_t close = value.find(q, v + 1);
      while (q == '"' && close != std::string::npos && value[close - 1] == '\\') close = value.find(q, close + 1);
      if (close == std::string::npos) return {{file, n, "quoted value is not closed on its line"}};
      size_t after = value.find_first_not_of(" \t", close + 1);
      if (after != std::string::npos && value[after] != '#') return {{file, n, "text after the closing quote"}};
    }
  }
  return {};
}

int ini_ok(void*, const char*, const char*, const char*) { return 1; }

// inih (as Debian builds it) reads at most 199 bytes a line and parses the rest of a longer line as
// a line of its own: this reader hands it each line whole up to that length and drops the rest, so
// a long value is not mistaken for a broken line (the name, '=' and section brackets come first).
struct LineReader {
  const std::string* text;
  size_t pos = 0;
};
char* read_line(char* str, int num, void* stream) {
  auto* r = static_cast<LineReader*>(stream);
  if (r->pos >= r->text->size() || num < 2) return nullptr;
  size_t end = r->text->find('\n', r->pos);
  size_t next = end == std::string::npos ? r->text->size() : end + 1;
  size_t len = std::min(next - r->pos, static_cast<size_t>(num - 2));
  std::memcpy(str, r->text->data() + r->pos, len);
  if (len < next - r->pos && str[len - 1] != '\n') str[len++] = '\n';
  str[len] = '\0';
  r->pos = next;
  return str;
}

}  // namespace

Syntax syntax_of(const std::string& path) {
  std::string base = fs::path(path).filename().string();
  std::string lower;
  for (char c : base) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ends_with(lower, ".json")) return Syntax::kJson;
  if (ends_with(lower, ".yaml") || ends_with(lower, ".yml")) return Syntax::kYaml;
  if (ends_with(lower, ".toml")) return Syntax::kToml;
  if (ends_with(lower, ".ini")) return Syntax::kIni;
  if (lower == ".env" || ends_with(lower, ".env") || lower.rfind(".env.", 0) == 0) return Syntax::kEnv;
  return Syntax::kNone;
}

const char* syntax_name(Syntax s) {
  switch (s) {
    case Syntax::kJson: return "JSON";
    case Syntax::kYaml: return "YAML";
    case Syntax::kToml: return "TOML";
    case Syntax::kIni: return "INI";
    case Syntax::kEnv: return ".env";
    case Syntax::kNone: break;
  }
  return "none";
}

std::string ConfigProblem::to_string() const {
  return line > 0 ? fmt::format("{}:{}: {}", file, line, problem) : fmt::format("{}: {}", file, problem);
}

std::string redact_quoted(const std::string& message) {
  std::string out;
  size_t i = 0;
  while (i < message.size()) {
    char c = message[i];
    if (c == '\'' || c == '"') {
      size_t close = message.find(c, i + 1);
      if (close != std::string::npos) {
        out += c;
        out += "…";
        out += c;
        i = close + 1;
        continue;
      }
    }
    out += c;
    ++i;
  }
  return out;
}

std::vector<ConfigProblem> check_text(const std::string& file, Syntax syntax, const std::string& text) {
  switch (syntax) {
    case Syntax::kJson:
      try {
        [[maybe_unused]] auto parsed = nlohmann::json::parse(text);
      } catch (const nlohmann::json::parse_error& e) {
        // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error … ; last read: '…'"
        std::string what = e.what();
        size_t colon = what.find(": ", what.find("column"));
        std::string msg = colon == std::string::npos ? what : what.substr(colon + 2);
        if (size_t lr = msg.find("; last read"); lr != std::string::npos) msg.erase(lr);
        return {{file, line_of_byte(text, e.byte == 0 ? 0 : e.byte - 1), redact_quoted(msg)}};
      }
      return {};
    case Syntax::kYaml:
      try {
        [[maybe_unused]] auto docs = YAML::LoadAll(text);
      } catch (const YAML::Exception& e) {
        return {{file, e.mark.is_null() ? 0 : e.mark.line + 1, redact_quoted(e.msg)}};
      }
      return {};
    case Syntax::kToml:
      try {
        [[maybe_unused]] auto table = toml::parse(text, file);
      } catch (const toml::parse_error& e) {
        return {{file, static_cast<int64_t>(e.source().begin.line), redact_quoted(std::string(e.description()))}};
      }
      return {};
    case Syntax::kIni: {
      LineReader reader{&text};
      int rc = ini_parse_stream(read_line, &reader, ini_ok, nullptr);
      if (rc > 0) return {{file, rc, "not a valid INI line (expected [section], name = value or a comment)"}};
      if (rc < 0) return {{file, 0, "could not be parsed as INI"}};
      if (text.find('\0') != std::string::npos) return {{file, line_of_byte(text, text.find('\0')), "contains a NUL byte"}};
      return {};
    }
    case Syntax::kEnv: return check_env(file, text);
    case Syntax::kNone: return {};
  }
  return {};
}

namespace {

bool matches(const std::string& pattern, const std::string& path) {
  return fnmatch(pattern.c_str(), path.c_str(), 0) == 0 ||
         fnmatch(pattern.c_str(), fs::path(path).filename().c_str(), 0) == 0;
}

}  // namespace

ConfigCheckReport check_tree(const std::vector<std::string>& paths, const std::vector<std::string>& excludes,
                             const std::vector<CheckCommand>& commands) {
  ConfigCheckReport report;
  std::vector<std::string> files;
  auto excluded = [&](const std::string& p) {
    for (const auto& e : excludes)
      if (matches(e, p)) return true;
    return false;
  };
  for (const auto& root : paths) {
    std::error_code ec;
    auto st = fs::symlink_status(root, ec);
    if (ec) continue;
    if (fs::is_regular_file(st)) {
      files.push_back(root);
      continue;
    }
    if (!fs::is_directory(st)) continue;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::string p = it->path().string();
      if (excluded(p)) {
        if (it->is_directory(ec) && !it->is_symlink(ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_symlink(ec)) continue;
      if (it->is_regular_file(ec)) files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    Syntax syntax = syntax_of(f);
    bool has_command = false;
    for (const auto& c : commands) has_command = has_command || matches(c.match, f);
    if (syntax == Syntax::kNone && !has_command) continue;
    ++report.files_checked;
    if (syntax != Syntax::kNone) {
      std::ifstream in(f, std::ios::binary);
      if (!in) continue;  // the backup reports it as unreadable
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (auto& p : check_text(f, syntax, text)) report.problems.push_back(std::move(p));
    }
    for (const auto& c : commands) {
      if (!matches(c.match, f)) continue;
      auto filled = fill_command(c.run, {{"{file}", f}});
      auto r = filled ? run_command({"/bin/sh", "-c", *filled}, c.timeout_s, 0) : Result<CommandResult>(filled.status());
      if (!r) report.problems.push_back({f, 0, fmt::format("check '{}' could not run: {}", c.run, r.status().message())});
      else if (!r->ok())
        // Its output is not repeated: a validator may echo the values it read.
        report.problems.push_back({f, 0, fmt::format("check '{}' {}", c.run, r->describe())});
    }
  }
  return report;
}

}  // namespace lifeboat::sources::config
