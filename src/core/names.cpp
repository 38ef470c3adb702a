// Names and URLs from outside, on their way into paths and into text (see names.h).
#include "core/names.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace lifeboat {

namespace {

constexpr char kHex[] = "0123456789ABCDEF";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool secret_parameter(std::string_view key) {
  std::string k(key);
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* part : {"token", "secret", "passw", "signature", "credential", "apikey", "api_key", "access_key", "private"})
    if (k.find(part) != std::string::npos) return true;
  for (const char* whole : {"key", "sig", "pass", "pwd", "auth", "authorization", "code"})
    if (k == whole) return true;
  return false;
}

}  // namespace

std::string escape_component(std::string_view name) {
  if (name.empty()) return "%00";
  if (name == ".") return "%2E";
  if (name == "..") return "%2E%2E";
  std::string out;
  out.reserve(name.size());
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '%' || c == '/' || c < 0x20 || c == 0x7f) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string unescape_component(std::string_view escaped) {
  if (escaped == "%00") return "";
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    int hi = -1, lo = -1;
    if (escaped[i] == '%' && i + 2 < escaped.size() && (hi = hex_value(escaped[i + 1])) >= 0 && (lo = hex_value(escaped[i + 2])) >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += escaped[i];
    }
  }
  return out;
}

Status check_relative_path(std::string_view path, std::string_view what) {
  auto refuse = [&](std::string_view why) {
    return Error(Code::kInvalidArgument, fmt::format("{} {:?} {}: refusing it (it would lead outside the directory it goes into)",
                                                     what, std::string(path), why));
  };
  if (path.empty()) return refuse("is empty");
  if (path.front() == '/') return refuse("is absolute");
  if (path.find('\0') != std::string_view::npos) return refuse("holds a NUL byte");
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty()) return refuse("has an empty component");
    if (part == "." || part == "..") return refuse(fmt::format("has a '{}' component", part));
    if (slash == std::string_view::npos) return Status::ok();
    start = slash + 1;
  }
}

Result<int64_t> decimal_version(std::string_view text, std::string_view what) {
  bool digits = !text.empty() && text.size() <= 18 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits)
    return Error(Code::kInvalidArgument,
                 fmt::format("{}: the version {:?} is not a decimal number (1, 2, 3…, as MLflow numbers versions); refusing it", what,
                             std::string(text)));
  int64_t v = 0;
  for (char c : text) v = v * 10 + (c - '0');
  return v;
}

std::string redact_url(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos || scheme == 0) return std::string(url);
  for (size_t i = 0; i < scheme; ++i)
    if (!std::isalnum(static_cast<unsigned char>(url[i])) && url[i] != '+' && url[i] != '-' && url[i] != '.') return std::string(url);
  size_t host = scheme + 3;
  size_t end_authority = url.find_first_of("/?#", host);
  if (end_authority == std::string_view::npos) end_authority = url.size();
  size_t at = url.rfind('@', end_authority == 0 ? 0 : end_authority - 1);
  std::string out(url.substr(0, host));
  out += (at != std::string_view::npos && at >= host && at < end_authority) ? "…@" + std::string(url.substr(at + 1, end_authority - at - 1))
                                                                             : std::string(url.substr(host, end_authority - host));
  size_t query = url.find('?', end_authority);
  size_t fragment = url.find('#', end_authority);
  out += url.substr(end_authority, std::min(query, fragment) - end_authority);
  if (query != std::string_view::npos && query < fragment) {
    std::string_view q = url.substr(query + 1, fragment == std::string_view::npos ? std::string_view::npos : fragment - query - 1);
    out += '?';
    size_t start = 0;
    while (start <= q.size()) {
      size_t amp = q.find('&', start);
      std::string_view pair = q.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
      size_t eq = pair.find('=');
      if (eq != std::string_view::npos && secret_parameter(pair.substr(0, eq))) out += std::string(pair.substr(0, eq + 1)) + "…";
      else out += pair;
      if (amp == std::string_view::npos) break;
      out += '&';
      start = amp + 1;
    }
  }
  if (fragment != std::string_view::npos) out += url.substr(fragment);
  return out;
}

std::string redact_urls_in(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t sep = text.find("://", pos);
    if (sep == std::string_view::npos) break;
    size_t begin = sep;
    while (begin > pos && (std::isalnum(static_cast<unsigned char>(text[begin - 1])) || text[begin - 1] == '+' ||
                           text[begin - 1] == '-' || text[begin - 1] == '.'))
      --begin;
    size_t end = text.find_first_of(" \t\r\n\"'<>`()[]{},", sep + 3);
    if (end == std::string_view::npos) end = text.size();
    out += text.substr(pos, begin - pos);
    out += begin == sep ? std::string(text.substr(begin, end - begin)) : redact_url(text.substr(begin, end - begin));
    pos = end;
  }
  out += text.substr(pos);
  return out;
}

nlohmann::json redact_urls_in_json(const nlohmann::json& j) {
  if (j.is_string()) return redact_urls_in(std::string_view(j.get_ref<const std::string&>()));
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) out.push_back(redact_urls_in_json(v));
    return out;
  }
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j.items()) out[redact_urls_in(std::string_view(k))] = redact_urls_in_json(v);
    return out;
  }
  return j;
}

}  // namespace lifeboat
