// Loading and checking lifeboat.yaml.
#include "plan/plan.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/cron.h"
#include "core/time.h"
#include "sources/registry.h"

namespace lifeboat::plan {

const SourceSpec* Plan::source(const std::string& name) const {
  for (const auto& s : sources)
    if (s.name == name) return &s;
  return nullptr;
}

const RepositorySpec* Plan::repository(const std::string& name) const {
  for (const auto& r : repositories)
    if (r.name == name) return &r;
  return nullptr;
}

std::string Plan::where(const std::string& key) const {
  std::string k = key;
  while (true) {
    auto it = lines.find(k);
    if (it != lines.end()) return fmt::format("{}:{}: {}", file, it->second, key);
    auto dot = k.rfind('.');
    if (dot == std::string::npos) return fmt::format("{}: {}", file, key);
    k = k.substr(0, dot);
  }
}

Result<std::string> expand_env(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    size_t end = text.find('}', i);
    if (end == std::string::npos) return Error(Code::kInvalidArgument, "unterminated ${…}");
    std::string expr = text.substr(i + 2, end - i - 2), def;
    bool has_default = false;
    if (auto d = expr.find(":-"); d != std::string::npos) {
      def = expr.substr(d + 2);
      expr = expr.substr(0, d);
      has_default = true;
    }
    const char* v = std::getenv(expr.c_str());
    if (v && *v) out += v;
    else if (has_default) out += def;
    else return Error(Code::kInvalidArgument, fmt::format("environment variable {} is not set (use ${{{}:-default}} for a default)", expr, expr));
    i = end + 1;
  }
  return out;
}

namespace {

// notifications: [{type: webhook|slack|smtp|command, on: [failure, success, report], …}]
std::vector<std::string> notification_problems(const nlohmann::json& list) {
  std::vector<std::string> p;
  if (!list.is_array()) return {"notifications: expected a list"};
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& n = list[i];
    std::string k = fmt::format("notifications.{}", i);
    std::string type = n.is_object() ? n.value("type", "") : "";
    if (type == "webhook" || type == "slack") {
      if (!n.contains("url")) p.push_back(k + ".url: required");
    } else if (type == "smtp") {
      for (const char* f : {"url", "from", "to"})
        if (!n.contains(f)) p.push_back(fmt::format("{}.{}: required", k, f));
    } else if (type == "command") {
      if (!n.contains("command")) p.push_back(k + ".command: required");
    } else {
      p.push_back(k + ".type: one of webhook, slack, smtp, command");
      continue;
    }
    if (n.contains("on"))
      for (const auto& e : n["on"])
        if (!e.is_string() || (e != "failure" && e != "success" && e != "report"))
          p.push_back(k + ".on: events are failure, success, report");
  }
  return p;
}

class Loader {
 public:
  explicit Loader(Plan& p) : p_(p) {}
  std::vector<std::string> problems;

  void problem(const std::string& key, const std::string& msg) { problems.push_back(p_.where(key) + ": " + msg); }

  // YAML → JSON with ${ENV} expanded in scalars, recording each key's line.
  nlohmann::json convert(const YAML::Node& n, const std::string& key) {
    if (n.Mark().line >= 0 && !key.empty() && !p_.lines.count(key)) p_.lines[key] = n.Mark().line + 1;
    switch (n.Type()) {
      case YAML::NodeType::Map: {
        nlohmann::json j = nlohmann::json::object();
        for (const auto& kv : n) {
          std::string k = kv.first.as<std::string>();
          std::string sub = key.empty() ? k : key + "." + k;
          p_.lines[sub] = kv.first.Mark().line + 1;
          j[k] = convert(kv.second, sub);
        }
        return j;
      }
      case YAML::NodeType::Sequence: {
        nlohmann::json j = nlohmann::json::array();
        for (size_t i = 0; i < n.size(); ++i) j.push_back(convert(n[i], key + "." + std::to_string(i)));
        return j;
      }
      case YAML::NodeType::Scalar: {
        auto expanded = expand_env(n.Scalar());
        if (!expanded) {
          problem(key, expanded.status().message());
          return n.Scalar();
        }
        const std::string& s = *expanded;
        if (n.Tag() == "!") return s;  // quoted: always a string
        if (s == "true" || s == "yes") return true;
        if (s == "false" || s == "no") return false;
        if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() < 18) return std::stoll(s);
        return s;
      }
      default:
        return nullptr;
    }
  }

  std::string str(const nlohmann::json& j, const char* k, const std::string& key, bool required = false) {
    if (!j.contains(k)) {
      if (required) problem(key + "." + k, "required");
      return "";
    }
    if (!j[k].is_string()) {
      problem(key + "." + k, "expected a string");
      return "";
    }
    return j[k];
  }

  void duration(const std::string& text, const std::string& key) {
    if (!text.empty() && !parse_duration(text)) problem(key, fmt::format("'{}' is not a duration (e.g. 90d, 12h, 30m)", text));
  }

  void cron(const std::string& text, const std::string& key) {
    if (text.empty()) return;
    auto c = CronSchedule::parse(text);
    if (!c) problem(key, c.status().message());
  }

  void only(const nlohmann::json& j, const std::string& key, const std::vector<std::string>& known) {
    for (const auto& [k, v] : j.items())
      if (std::find(known.begin(), known.end(), k) == known.end())
        problem(key + "." + k, fmt::format("unknown key (known: {})", fmt::join(known, ", ")));
  }

  void load(const nlohmann::json& root) {
    if (!root.is_object()) {
      problems.push_back(p_.file + ": the plan must be a YAML mapping");
      return;
    }
    only(root, "", {"version", "objectives", "repositories", "sources", "notifications", "reports", "drills"});
    if (root.value("version", 1) != 1) problem("version", "only version 1 is understood by this Lifeboat");
    if (root.contains("objectives")) {
      const auto& o = root["objectives"];
      only(o, "objectives", {"rpo", "rto"});
      for (const char* k : {"rpo", "rto"}) {
        std::string v = str(o, k, "objectives");
        duration(v, std::string("objectives.") + k);
        if (auto d = parse_duration(v); !v.empty() && d) (k[1] == 'p' ? p_.rpo_ns : p_.rto_ns) = *d;
      }
    }
    if (!root.contains("repositories") || !root["repositories"].is_object() || root["repositories"].empty())
      problem("repositories", "at least one repository is required (name: {url: …})");
    else
      for (const auto& [name, r] : root["repositories"].items()) load_repository(name, r);
    if (!root.contains("sources") || !root["sources"].is_object() || root["sources"].empty())
      problem("sources", "at least one source is required");
    else
      for (const auto& [name, s] : root["sources"].items()) load_source(name, s);
    for (const auto& r : p_.repositories)
      if (!r.copy_of.empty() && !p_.repository(r.copy_of))
        problem("repositories." + r.name + ".copy_of", fmt::format("no repository named {}", r.copy_of));
    if (root.contains("notifications")) {
      p_.notifications = root["notifications"];
      for (const auto& prob : notification_problems(p_.notifications)) {
        auto colon = prob.find(':');
        problem(prob.substr(0, colon), prob.substr(colon + 2));
      }
    }
    if (root.contains("reports")) {
      p_.reports = root["reports"];
      only(p_.reports, "reports", {"schedule"});
      cron(str(p_.reports, "schedule", "reports"), "reports.schedule");
    }
    if (root.contains("drills")) {
      p_.drills = root["drills"];
      only(p_.drills, "drills", {"schedule", "environment", "sources"});
      cron(str(p_.drills, "schedule", "drills"), "drills.schedule");
      if (p_.drills.value("environment", "test") == "production")
        problem("drills.environment", "scheduled drills restore over their environment: not production");
      for (const auto& n : p_.drills.value("sources", std::vector<std::string>{}))
        if (!p_.source(n)) problem("drills.sources", fmt::format("no source named {}", n));
    }
  }

  void load_repository(const std::string& name, const nlohmann::json& r) {
    std::string key = "repositories." + name;
    if (!r.is_object()) {
      problem(key, "expected a mapping with url");
      return;
    }
    only(r, key, {"url", "password_env", "password_file", "copy_of", "object_lock"});
    RepositorySpec spec;
    spec.name = name;
    spec.url = str(r, "url", key, true);
    if (r.contains("password_env")) spec.password_env = str(r, "password_env", key);
    spec.password_file = str(r, "password_file", key);
    spec.copy_of = str(r, "copy_of", key);
    spec.object_lock = str(r, "object_lock", key);
    duration(spec.object_lock, key + ".object_lock");
    p_.repositories.push_back(spec);
  }

  void load_source(const std::string& name, const nlohmann::json& s) {
    std::string key = "sources." + name;
    if (!s.is_object()) {
      problem(key, "expected a mapping with kind");
      return;
    }
    SourceSpec spec;
    spec.name = name;
    spec.kind = str(s, "kind", key, true);
    spec.repository = str(s, "repository", key);
    if (spec.repository.empty()) {  // the one repository that is not a copy of another
      std::vector<std::string> primaries;
      for (const auto& r : p_.repositories)
        if (r.copy_of.empty()) primaries.push_back(r.name);
      if (primaries.size() == 1) spec.repository = primaries[0];
    }
    if (spec.repository.empty()) problem(key + ".repository", "required when the plan has several primary repositories");
    else if (!p_.repository(spec.repository)) problem(key + ".repository", fmt::format("no repository named {}", spec.repository));
    if (s.contains("schedule")) {
      const auto& sc = s["schedule"];
      std::string k = key + ".schedule";
      only(sc, k, {"full", "incremental", "continuous", "interval"});
      spec.schedule.full = str(sc, "full", k);
      spec.schedule.incremental = str(sc, "incremental", k);
      spec.schedule.continuous = sc.value("continuous", false);
      if (sc.contains("interval")) spec.schedule.interval = str(sc, "interval", k);
      cron(spec.schedule.full, k + ".full");
      cron(spec.schedule.incremental, k + ".incremental");
      duration(spec.schedule.interval, k + ".interval");
      if (spec.schedule.continuous && spec.kind != "mongodb") problem(k + ".continuous", "only mongodb sources follow continuously");
    }
    if (s.contains("retention")) {
      const auto& r = s["retention"];
      std::string k = key + ".retention";
      only(r, k, {"last", "hourly", "daily", "weekly", "monthly", "yearly", "within", "forever"});
      for (auto [field, target] : std::initializer_list<std::pair<const char*, int*>>{
               {"last", &spec.retention.last}, {"hourly", &spec.retention.hourly}, {"daily", &spec.retention.daily},
               {"weekly", &spec.retention.weekly}, {"monthly", &spec.retention.monthly}, {"yearly", &spec.retention.yearly}}) {
        if (!r.contains(field)) continue;
        if (!r[field].is_number_integer() || r[field].get<int>() < 0) problem(k + "." + field, "expected a count (0 or more)");
        else *target = r[field];
      }
      spec.retention.within = str(r, "within", k);
      duration(spec.retention.within, k + ".within");
      spec.retention.forever = r.value("forever", false);
    }
    if (s.contains("validation")) {
      if (!s["validation"].is_array()) problem(key + ".validation", "expected a list of checks");
      else
        for (const auto& v : s["validation"]) spec.validation.push_back(v.is_string() ? v.get<std::string>() : v.dump());
    }
    static const std::vector<std::string> common = {"kind", "repository", "schedule", "retention", "validation", "environments"};
    for (const auto& [k, v] : s.items())
      if (std::find(common.begin(), common.end(), k) == common.end()) spec.settings[k] = v;
    if (s.contains("environments")) {
      if (!s["environments"].is_object()) problem(key + ".environments", "expected a map of environment name to settings");
      else
        for (const auto& [env, v] : s["environments"].items()) spec.environments[env] = v;
    }
    const sources::SourceKind* kind = spec.kind.empty() ? nullptr : sources::find_source_kind(spec.kind);
    if (!spec.kind.empty() && !kind) {
      std::vector<std::string> names;
      for (const auto& k : sources::source_kinds()) names.push_back(k.name);
      problem(key + ".kind", fmt::format("unknown source kind {} (known: {})", spec.kind, fmt::join(names, ", ")));
    } else if (kind) {
      std::vector<std::string> found;
      kind->check(spec.settings, false, found);
      for (const auto& f : found) problem(key + "." + f.substr(0, f.find(':')), f.substr(f.find(':') + 2));
      if (kind->built)
        for (const auto& [env, v] : spec.environments) {
          std::vector<std::string> ef;
          kind->check(v, true, ef);
          for (const auto& f : ef) problem(key + ".environments." + env + "." + f.substr(0, f.find(':')), f.substr(f.find(':') + 2));
        }
      if (kind->built)
        for (const auto& v : spec.validation) check_validation(spec, v, key);
    }
    p_.sources.push_back(std::move(spec));
  }

  void check_validation(const SourceSpec& s, const std::string& v, const std::string& key) {
    static const std::map<std::string, std::vector<std::string>> known = {
        {"files", {"hashes", "counts"}}, {"mongodb", {"counts", "hashes"}}};
    auto it = known.find(s.kind);
    if (it != known.end() && std::find(it->second.begin(), it->second.end(), v) == it->second.end())
      problem(key + ".validation", fmt::format("{} sources support the checks {}, not {}", s.kind, fmt::join(it->second, ", "), v));
  }

 private:
  Plan& p_;
};

}  // namespace

Result<Plan> parse_plan(const std::string& text, const std::string& file_name) {
  Plan p;
  p.file = file_name;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Error(Code::kInvalidArgument, fmt::format("{}:{}: {}", file_name, e.mark.line + 1, e.msg));
  }
  Loader l(p);
  nlohmann::json j = l.convert(root, "");
  l.load(j);  // every problem at once, expansion errors included
  if (!l.problems.empty()) return Error(Code::kInvalidArgument, fmt::format("{}", fmt::join(l.problems, "\n")));
  return p;
}

Result<Plan> load_plan(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error(Code::kNotFound, fmt::format("plan {} not found (pass --plan FILE or set LIFEBOAT_PLAN)", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_plan(ss.str(), path);
}

}  // namespace lifeboat::plan
