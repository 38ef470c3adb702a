// What every plan job shares: source selection, environment settings, outcomes.
#include <fmt/format.h>

#include "core/time.h"
#include "ops/plan_ops.h"

namespace lifeboat::ops {

namespace {
}  // namespace

nlohmann::json SourceOutcome::to_json() const {
  nlohmann::json j = {{"source", source}, {"kind", kind}, {"ok", ok}, {"duration_ms", duration_ms}, {"result", result}};
  if (!error.empty()) j["error"] = error;
  return j;
}

SourceOutcome timed_outcome(const plan::SourceSpec& s, const std::function<Status(SourceOutcome&)>& work) {
  SourceOutcome o{s.name, s.kind};
  int64_t start = monotonic_ns();
  Status st;
  try {
    st = work(o);
  } catch (const std::exception& e) {  // a barrier: one source's bug must not end the others' runs
    st = Error(Code::kFatal, fmt::format("source {}: internal error: {}", s.name, e.what()));
  }
  o.ok = st.is_ok();
  o.error = st.message();
  o.duration_ms = (monotonic_ns() - start) / kNsPerMs;
  return o;
}

std::string plan_where(const plan::SourceSpec& s) { return "sources." + s.name; }

Result<sources::SettingsPtr> environment_settings(const plan::SourceSpec& s, const std::string& env) {
  if (!s.entry || !s.parsed) return Error(Code::kInvalidArgument, fmt::format("source kind {} is not built", s.kind));
  if (env.empty()) return s.parsed;
  auto it = s.environment_parsed.find(env);
  if (it == s.environment_parsed.end()) {
    std::vector<std::string> names;
    for (const auto& [k, v] : s.environments) names.push_back(k);
    return Error(Code::kInvalidArgument, fmt::format("{}: source {} has no environment {} (it has: {})", plan_where(s), s.name,
                                                     env, names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
  }
  return it->second;
}

Result<std::vector<const plan::SourceSpec*>> select_sources(const plan::Plan& plan, const std::vector<std::string>& names) {
  std::vector<const plan::SourceSpec*> out;
  if (names.empty()) {
    for (const auto& s : plan.sources) out.push_back(&s);
    return out;
  }
  for (const auto& n : names) {
    const auto* s = plan.source(n);
    if (!s) {
      std::vector<std::string> all;
      for (const auto& x : plan.sources) all.push_back(x.name);
      return Error(Code::kNotFound, fmt::format("the plan has no source {} (it has: {})", n, fmt::join(all, ", ")));
    }
    out.push_back(s);
  }
  return out;
}

std::vector<repo::SnapshotRef> snapshots_of(const std::vector<repo::SnapshotRef>& all, const std::string& source) {
  std::vector<repo::SnapshotRef> out;
  for (const auto& s : all)
    if (s.snapshot.has_tag(sources::source_tag(source))) out.push_back(s);
  return out;
}

}  // namespace lifeboat::ops
