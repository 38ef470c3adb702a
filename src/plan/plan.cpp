// Loading and checking lifeboat.yaml.
#include "plan/plan.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/cron.h"
#include "core/interrupt.h"
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

const EnvironmentSpec* Plan::environment(const std::string& name) const {
  for (const auto& e : environments)
    if (e.name == name) return &e;
  return nullptr;
}

std::vector<const RepositorySpec*> Plan::copies_of(const std::string& name) const {
  std::vector<const RepositorySpec*> out;
  for (const auto& r : repositories)
    if (r.copy_of == name) out.push_back(&r);
  return out;
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

class Loader {
 public:
  explicit Loader(Plan& p) : p_(p) {}
  std::vector<std::string> problems;

  void problem(const std::string& key, const std::string& msg) { problems.push_back(p_.where(key) + ": " + msg); }

  // What a plan may expand to. Aliases are shared in the YAML document but copied here, so nine
  // levels of ten aliases would be a billion nodes: the walk stops at these bounds instead.
  static constexpr uint64_t kMaxNodes = 50'000;  // a real plan has a few hundred
  static constexpr uint64_t kMaxBytes = 4ull << 20;
  struct TooLarge : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  // YAML → JSON with ${ENV} expanded in scalars, recording each key's line.
  nlohmann::json convert(const YAML::Node& n, const std::string& key) {
    if (++nodes_ > kMaxNodes || bytes_ > kMaxBytes || interrupted())
      throw TooLarge(fmt::format(
          "{}: the plan expands to more than {} nodes or {} MiB (aliases are copied where they are used: an alias "
          "bomb?); stopped here",
          p_.where(key.empty() ? std::string() : key), kMaxNodes, kMaxBytes >> 20));
    if (n.Mark().line >= 0 && !key.empty() && !p_.lines.count(key)) p_.lines[key] = n.Mark().line + 1;
    switch (n.Type()) {
      case YAML::NodeType::Map: {
        nlohmann::json j = nlohmann::json::object();
        for (const auto& kv : n) {
          std::string k = kv.first.as<std::string>();
          std::string sub = key.empty() ? k : key + "." + k;
          if (j.contains(k)) {
            // Two sources (or settings) with one name: an error, not "the second wins".
            problems.push_back(fmt::format("{}:{}: duplicate key {} (first on line {})", p_.file,
                                           kv.first.Mark().line + 1, sub, p_.lines[sub]));
            continue;
          }
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
        bytes_ += s.size();
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

  bool boolean(const nlohmann::json& j, const char* k, const std::string& key, bool fallback) {
    if (!j.contains(k)) return fallback;
    if (!j[k].is_boolean()) {
      problem(key + "." + k, "expected true or false");
      return fallback;
    }
    return j[k].get<bool>();
  }

  std::vector<std::string> strings(const nlohmann::json& j, const char* k, const std::string& key) {
    std::vector<std::string> out;
    if (!j.contains(k)) return out;
    if (!j[k].is_array()) {
      problem(key + "." + k, "expected a list of strings");
      return out;
    }
    for (size_t i = 0; i < j[k].size(); ++i) {
      if (!j[k][i].is_string()) problem(fmt::format("{}.{}.{}", key, k, i), "expected a string");
      else out.push_back(j[k][i].get<std::string>());
    }
    return out;
  }

  bool mapping(const nlohmann::json& j, const std::string& key, const char* what) {
    if (j.is_object()) return true;
    problem(key, std::string("expected a mapping") + what);
    return false;
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
        problem(key.empty() ? k : key + "." + k, fmt::format("unknown key (known: {})", fmt::join(known, ", ")));
  }

  void load(const nlohmann::json& root) {
    if (!root.is_object()) {
      problems.push_back(p_.file + ": the plan must be a YAML mapping");
      return;
    }
    only(root, "", {"version", "objectives", "repositories", "sources", "notifications", "reports", "drills", "environments",
                    "failover"});
    if (root.contains("version") && (!root["version"].is_number_integer() || root["version"].get<int64_t>() != 1))
      problem("version", "only version 1 is understood by this Lifeboat");
    if (root.contains("objectives") && mapping(root["objectives"], "objectives", " with rpo and rto")) {
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
    if (root.contains("notifications")) load_notifications(root["notifications"]);
    if (root.contains("reports") && mapping(root["reports"], "reports", " with schedule")) {
      only(root["reports"], "reports", {"schedule"});
      p_.report_schedule = str(root["reports"], "schedule", "reports");
      cron(p_.report_schedule, "reports.schedule");
    }
    if (root.contains("drills")) load_drills(root["drills"]);
    if (root.contains("environments")) load_environments(root["environments"]);
    if (root.contains("failover")) load_failover(root["failover"]);
    for (const auto& s : p_.sources)
      for (const auto& a : s.after)
        if (!p_.source(a)) problem("sources." + s.name + ".after", fmt::format("no source named {}", a));
    std::vector<std::pair<std::string, std::vector<std::string>>> graph;
    for (const auto& s : p_.sources) graph.push_back({s.name, s.after});
    if (auto c = cycle_in(graph); !c.empty()) problem("sources." + c + ".after", "the sources' after: lists form a cycle through " + c);
  }

  // A name in a cycle of `after` edges ("" when there is none).
  static std::string cycle_in(const std::vector<std::pair<std::string, std::vector<std::string>>>& graph) {
    std::map<std::string, std::vector<std::string>> edges(graph.begin(), graph.end());
    std::map<std::string, int> state;  // 1: on the path, 2: done
    std::function<std::string(const std::string&)> visit = [&](const std::string& n) -> std::string {
      if (state[n] == 1) return n;
      if (state[n] == 2) return "";
      state[n] = 1;
      for (const auto& m : edges[n])
        if (auto c = visit(m); !c.empty()) return c;
      state[n] = 2;
      return "";
    };
    for (const auto& [n, _] : graph)
      if (auto c = visit(n); !c.empty()) return c;
    return "";
  }

  // environments: {NAME: {standby: true, max_lag: 10m}}
  void load_environments(const nlohmann::json& envs) {
    if (!mapping(envs, "environments", " of environment name to {standby, max_lag}")) return;
    for (const auto& [name, v] : envs.items()) {
      std::string key = "environments." + name;
      if (!plain_name(name)) problem(key, fmt::format("environment name {:?}: use letters, digits, '.', '_' and '-' only", name));
      if (!mapping(v, key, " with standby, max_lag")) continue;
      only(v, key, {"standby", "max_lag"});
      EnvironmentSpec e;
      e.name = name;
      e.standby = boolean(v, "standby", key, false);
      std::string lag = str(v, "max_lag", key);
      duration(lag, key + ".max_lag");
      if (auto d = parse_duration(lag); !lag.empty() && d) e.max_lag_ns = *d;
      if (e.standby && name == "production") problem(key + ".standby", "production is what a standby stands in for, not a standby");
      p_.environments.push_back(e);
    }
  }

  // failover: {environment: dr, steps: [{name, run, after: [..], timeout: 10m, rehearse: true}]}
  void load_failover(const nlohmann::json& f) {
    if (!mapping(f, "failover", " with environment and steps")) return;
    only(f, "failover", {"environment", "steps"});
    p_.failover.environment = str(f, "environment", "failover");
    if (p_.failover.environment == "production") problem("failover.environment", "a failover restores into its environment: not production");
    if (!f.contains("steps")) return;
    if (!f["steps"].is_array()) {
      problem("failover.steps", "expected a list of {name, run, after, timeout, rehearse}");
      return;
    }
    std::set<std::string> names;
    for (size_t i = 0; i < f["steps"].size(); ++i) {
      const auto& st = f["steps"][i];
      std::string key = fmt::format("failover.steps.{}", i);
      if (!mapping(st, key, " with name and run")) continue;
      only(st, key, {"name", "run", "after", "timeout", "rehearse"});
      FailoverStep step;
      step.name = str(st, "name", key, true);
      step.run = str(st, "run", key, true);
      step.after = strings(st, "after", key);
      std::string timeout = str(st, "timeout", key);
      duration(timeout, key + ".timeout");
      if (auto d = parse_duration(timeout); !timeout.empty() && d) step.timeout_ns = *d;
      step.rehearse = boolean(st, "rehearse", key, false);
      if (!step.name.empty() && !plain_name(step.name)) problem(key + ".name", fmt::format("step name {:?}: use letters, digits, '.', '_' and '-' only", step.name));
      if (!names.insert(step.name).second) problem(key + ".name", fmt::format("two steps are named {}", step.name));
      p_.failover.steps.push_back(step);
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> graph;
    for (size_t i = 0; i < p_.failover.steps.size(); ++i) {
      const auto& st = p_.failover.steps[i];
      for (const auto& a : st.after)
        if (!names.count(a)) problem(fmt::format("failover.steps.{}.after", i), fmt::format("no step named {}", a));
      graph.push_back({st.name, st.after});
    }
    if (auto c = cycle_in(graph); !c.empty()) problem("failover.steps", "the steps' after: lists form a cycle through " + c);
  }

  // drills: {schedule, environment, sources: [..], after_restore: CMD, allow_unvalidated: [..],
  //          per_source: {NAME: {schedule}}}
  void load_drills(const nlohmann::json& d) {
    if (!mapping(d, "drills", " with schedule, environment, sources, per_source")) return;
    only(d, "drills", {"schedule", "environment", "sources", "after_restore", "allow_unvalidated", "per_source"});
    auto& spec = p_.drills;
    spec.schedule = str(d, "schedule", "drills");
    cron(spec.schedule, "drills.schedule");
    if (d.contains("environment")) spec.environment = str(d, "environment", "drills");
    if (spec.environment == "production")
      problem("drills.environment", "scheduled drills restore over their environment: not production");
    spec.sources = strings(d, "sources", "drills");
    for (const auto& n : spec.sources)
      if (!p_.source(n)) problem("drills.sources", fmt::format("no source named {}", n));
    spec.after_restore = str(d, "after_restore", "drills");
    spec.allow_unvalidated = strings(d, "allow_unvalidated", "drills");
    for (const auto& n : spec.allow_unvalidated)
      if (!p_.source(n)) problem("drills.allow_unvalidated", fmt::format("no source named {}", n));
    if (d.contains("per_source") && mapping(d["per_source"], "drills.per_source", " of source name to {schedule: cron}")) {
      for (const auto& [name, v] : d["per_source"].items()) {
        std::string key = "drills.per_source." + name;
        const std::string& wanted = name;  // clang before 16 cannot capture a structured binding
        auto it = std::find_if(p_.sources.begin(), p_.sources.end(), [&](const SourceSpec& x) { return x.name == wanted; });
        SourceSpec* src = it == p_.sources.end() ? nullptr : &*it;
        if (!src) {
          problem(key, fmt::format("no source named {}", name));
          continue;
        }
        if (!mapping(v, key, " with schedule")) continue;
        only(v, key, {"schedule"});
        src->drill_schedule = str(v, "schedule", key, true);
        cron(src->drill_schedule, key + ".schedule");
      }
    }
  }

  // notifications: [{type: webhook|slack|smtp|command, on: [failure, success, report], sources: [..], kinds: [..]}]
  void load_notifications(const nlohmann::json& list) {
    if (!list.is_array()) {
      problem("notifications", "expected a list");
      return;
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& n = list[i];
      std::string k = fmt::format("notifications.{}", i);
      if (!mapping(n, k, " with type")) continue;
      std::string type = str(n, "type", k, true);
      if (type == "webhook" || type == "slack") {
        str(n, "url", k, true);
      } else if (type == "smtp") {
        str(n, "url", k, true);
        str(n, "from", k, true);
        if (!n.contains("to")) problem(k + ".to", "required");
      } else if (type == "command") {
        str(n, "command", k, true);
      } else if (!type.empty()) {
        problem(k + ".type", "one of webhook, slack, smtp, command");
        continue;
      }
      NotificationSpec spec;
      spec.config = n;
      if (n.contains("on")) spec.on = strings(n, "on", k);
      for (const auto& e : spec.on)
        if (e != "failure" && e != "success" && e != "report") problem(k + ".on", "events are failure, success, report");
      spec.sources = strings(n, "sources", k);
      for (const auto& name : spec.sources)
        if (!p_.source(name)) problem(k + ".sources", fmt::format("no source named {}", name));
      spec.kinds = strings(n, "kinds", k);
      for (const auto& kind : spec.kinds)
        if (!sources::find_source_kind(kind)) problem(k + ".kinds", fmt::format("no built source kind {}", kind));
      p_.notifications.push_back(std::move(spec));
    }
  }

  void load_repository(const std::string& name, const nlohmann::json& r) {
    std::string key = "repositories." + name;
    if (!r.is_object()) {
      problem(key, "expected a mapping with url");
      return;
    }
    only(r, key, {"url", "password_env", "password_file", "copy_of", "copy_every", "object_lock", "maintenance"});
    RepositorySpec spec;
    spec.name = name;
    spec.url = str(r, "url", key, true);
    if (r.contains("password_env")) spec.password_env = str(r, "password_env", key);
    spec.password_file = str(r, "password_file", key);
    spec.copy_of = str(r, "copy_of", key);
    spec.object_lock = str(r, "object_lock", key);
    std::string every = str(r, "copy_every", key);
    duration(every, key + ".copy_every");
    if (auto d = parse_duration(every); !every.empty() && d) spec.copy_every_ns = *d;
    if (!every.empty() && spec.copy_of.empty()) problem(key + ".copy_every", "only a copy (copy_of) is refreshed on its own schedule");
    duration(spec.object_lock, key + ".object_lock");
    if (r.contains("maintenance")) {
      const auto& m = r["maintenance"];
      std::string mk = key + ".maintenance";
      if (!m.is_object()) {
        problem(mk, "expected a mapping: {prune: CRON, check: CRON, read_data_subset: 1/T}");
      } else {
        only(m, mk, {"prune", "check", "read_data_subset"});
        spec.prune_schedule = str(m, "prune", mk);
        spec.check_schedule = str(m, "check", mk);
        cron(spec.prune_schedule, mk + ".prune");
        cron(spec.check_schedule, mk + ".check");
        std::string subset = str(m, "read_data_subset", mk);
        if (!subset.empty()) {
          unsigned t = 0;
          char extra;
          if (std::sscanf(subset.c_str(), "1/%u%c", &t, &extra) != 1 || t == 0 || t > 256)
            problem(mk + ".read_data_subset", fmt::format("'{}' is not 1/T with 1 <= T <= 256 (each check reads a T-th of the "
                                                          "packs, all of them every T checks)", subset));
          else
            spec.read_data_subset = t;
        }
        if (spec.read_data_subset && spec.check_schedule.empty())
          problem(mk + ".read_data_subset", "needs a check schedule (maintenance.check)");
      }
    }
    p_.repositories.push_back(spec);
  }

  // Source and environment names become tags, file names, metric labels and hook variables: letters,
  // digits and . _ - only, starting with a letter or digit (docs/plan.md).
  static bool plain_name(const std::string& n) {
    if (n.empty() || n.size() > 64 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
    return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'; });
  }

  void load_source(const std::string& name, const nlohmann::json& s) {
    std::string key = "sources." + name;
    if (!plain_name(name))
      problem(key, fmt::format("source name {:?}: use letters, digits, '.', '_' and '-' only (at most 64, starting with a letter or digit)", name));
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
    if (s.contains("schedule") && mapping(s["schedule"], key + ".schedule", " with full, incremental, continuous, interval")) {
      const auto& sc = s["schedule"];
      std::string k = key + ".schedule";
      only(sc, k, {"full", "incremental", "continuous", "interval"});
      spec.schedule.full = str(sc, "full", k);
      spec.schedule.incremental = str(sc, "incremental", k);
      spec.schedule.continuous = boolean(sc, "continuous", k, false);
      if (sc.contains("interval")) spec.schedule.interval = str(sc, "interval", k);
      cron(spec.schedule.full, k + ".full");
      cron(spec.schedule.incremental, k + ".incremental");
      duration(spec.schedule.interval, k + ".interval");
    }
    if (s.contains("retention") && mapping(s["retention"], key + ".retention", " of keep rules")) {
      const auto& r = s["retention"];
      std::string k = key + ".retention";
      only(r, k, {"last", "hourly", "daily", "weekly", "monthly", "yearly", "within", "forever"});
      for (auto [field, target] : std::initializer_list<std::pair<const char*, int*>>{
               {"last", &spec.retention.last}, {"hourly", &spec.retention.hourly}, {"daily", &spec.retention.daily},
               {"weekly", &spec.retention.weekly}, {"monthly", &spec.retention.monthly}, {"yearly", &spec.retention.yearly}}) {
        if (!r.contains(field)) continue;
        if (!r[field].is_number_integer() || r[field].get<int64_t>() < 0 || r[field].get<int64_t>() > 1000000)
          problem(k + "." + field, "expected a count (0 or more)");
        else *target = r[field].get<int>();
      }
      spec.retention.within = str(r, "within", k);
      duration(spec.retention.within, k + ".within");
      spec.retention.forever = boolean(r, "forever", k, false);
    }
    spec.validation = strings(s, "validation", key);
    // verify: "sample 5%" (the default), "all", or "none": how many of the new snapshot's blobs a plan
    // backup reads back from storage — decrypted and hashed — besides checking every one is stored.
    if (s.contains("verify")) {
      std::string v = str(s, "verify", key);
      double share = -1;
      if (v == "all") share = 1;
      else if (v == "none") share = 0;
      else if (v.rfind("sample ", 0) == 0 && v.size() > 8 && v.back() == '%') {
        char* end = nullptr;
        std::string num = v.substr(7, v.size() - 8);
        double pct = std::strtod(num.c_str(), &end);
        if (end && *end == '\0' && pct > 0 && pct <= 100) share = pct / 100;
      }
      if (share < 0) problem(key + ".verify", fmt::format("{:?}: expected \"sample N%\" (0 < N <= 100), \"all\" or \"none\"", v));
      else spec.verify_sample = share;
    }
    spec.after = strings(s, "after", key);
    static const std::vector<std::string> common = {"kind",   "repository",   "schedule", "retention", "validation",
                                                    "verify", "environments", "after"};
    for (const auto& [k, v] : s.items())
      if (std::find(common.begin(), common.end(), k) == common.end()) spec.settings[k] = v;
    if (s.contains("environments") && mapping(s["environments"], key + ".environments", " of environment name to settings"))
      for (const auto& [env, v] : s["environments"].items()) {
        if (!plain_name(env))
          problem(key + ".environments." + env,
                  fmt::format("environment name {:?}: use letters, digits, '.', '_' and '-' only (at most 64, starting with a letter or digit)", env));
        if (mapping(v, key + ".environments." + env, " of settings")) spec.environments[env] = v;
      }
    spec.entry = spec.kind.empty() ? nullptr : sources::find_source_kind(spec.kind);
    const auto& planned = sources::planned_source_kinds();
    if (spec.kind.empty()) {
      // "required" was said above
    } else if (!spec.entry && std::find(planned.begin(), planned.end(), spec.kind) != planned.end()) {
      problem(key + ".kind", fmt::format("source kind {} is not built yet in this Lifeboat: remove the source or upgrade", spec.kind));
    } else if (!spec.entry) {
      std::vector<std::string> names;
      for (const auto* k : sources::source_kinds()) names.push_back(k->name);
      for (const auto& k : planned) names.push_back(k + " (not built yet)");
      problem(key + ".kind", fmt::format("unknown source kind {} (known: {})", spec.kind, fmt::join(names, ", ")));
    } else {
      parse_settings(spec, key);
    }
    p_.sources.push_back(std::move(spec));
  }

  // The kind parses its section once; each environment's override is merged and parsed too, and a
  // problem found only there is reported under the environment's key.
  void parse_settings(SourceSpec& spec, const std::string& key) {
    const auto& kind = *spec.entry;
    std::vector<sources::SettingsProblem> found;
    spec.parsed = kind.parse(spec.settings, sources::SettingsFor::kPlan, found);
    std::set<std::string> said;
    for (const auto& f : found) {
      problem(f.key.empty() ? key : key + "." + f.key, f.message);
      said.insert(f.key + ": " + f.message);
    }
    for (const auto& [env, override_] : spec.environments) {
      nlohmann::json merged = spec.settings;
      merged.merge_patch(override_);
      std::vector<sources::SettingsProblem> ef;
      auto parsed = kind.parse(merged, sources::SettingsFor::kPlan, ef);
      for (const auto& f : ef)
        if (!said.count(f.key + ": " + f.message)) problem(key + ".environments." + env + (f.key.empty() ? "" : "." + f.key), f.message);
      if (parsed) spec.environment_parsed[env] = parsed;
    }
    // A command-line choice (--dry-run, --snapshot …) is not a plan setting: a plan that writes one
    // would silently change what every run does.
    auto refuse_command_line = [&](const nlohmann::json& section, const std::string& at) {
      if (!section.is_object()) return;
      for (const auto& o : kind.options)
        if (o.command_line && section.contains(o.key))
          problem(at + "." + o.key, fmt::format("{} is a command-line choice ({}), not a plan setting", o.key, sources::flag_of(o)));
    };
    refuse_command_line(spec.settings, key);
    for (const auto& [env, override_] : spec.environments) refuse_command_line(override_, key + ".environments." + env);
    for (const auto& v : spec.validation)
      if (std::find(kind.validations.begin(), kind.validations.end(), v) == kind.validations.end())
        problem(key + ".validation", fmt::format("{} sources support the checks {}, not {}", spec.kind,
                                                 fmt::join(kind.validations, ", "), v));
    if (spec.schedule.continuous && !kind.follow)
      problem(key + ".schedule.continuous", fmt::format("{} sources have no continuous follower", spec.kind));
  }

 private:
  Plan& p_;
  uint64_t nodes_ = 0, bytes_ = 0;
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
  try {
    nlohmann::json j = l.convert(root, "");
    l.load(j);  // every problem at once, expansion errors included
  } catch (const Loader::TooLarge& e) {
    return Error(Code::kInvalidArgument, e.what());
  } catch (const std::exception& e) {  // a barrier: a plan is input, and input never ends a process
    l.problems.push_back(fmt::format("{}: cannot read the plan: {}", file_name, e.what()));
  }
  if (!l.problems.empty()) return Error(Code::kInvalidArgument, fmt::format("{}", fmt::join(l.problems, "\n")));
  return p;
}

Result<Plan> load_plan(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error(Code::kNotFound, fmt::format("plan {} not found (pass --plan FILE or set LIFEBOAT_PLAN)", path));
  // A plan is a page or two; anything near this bound is not one.
  constexpr std::streamsize kMaxPlanBytes = 4 << 20;
  std::string text(static_cast<size_t>(kMaxPlanBytes) + 1, '\0');
  in.read(text.data(), kMaxPlanBytes + 1);
  if (in.gcount() > kMaxPlanBytes)
    return Error(Code::kInvalidArgument, fmt::format("{}: larger than {} MiB: not a plan", path, kMaxPlanBytes >> 20));
  text.resize(static_cast<size_t>(in.gcount()));
  return parse_plan(text, path);
}

}  // namespace lifeboat::plan
