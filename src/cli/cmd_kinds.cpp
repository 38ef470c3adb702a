// `backup <kind>` and `restore <kind>` for every source kind that declares its options, generated
// from its entry: the flags given become a settings section, the kind's one `parse` reads it, and
// its `backup` / `restore` + `validate` run exactly as a plan, a drill or the daemon runs them. No
// decision about a kind lives here.
#include <fmt/format.h>

#include <map>

#include "cli/context.h"
#include "core/progress.h"
#include "core/time.h"
#include "plan/plan.h"
#include "repo/lock.h"
#include "sources/registry.h"

namespace lifeboat::cli {

namespace {

// The values of one generated command's flags, by plan key.
struct KindFlags {
  std::map<std::string, std::string> strings;
  std::map<std::string, std::vector<std::string>> lists;
  std::map<std::string, bool> flags;
  std::map<std::string, CLI::Option*> given;
  std::vector<std::string> tags;
  std::string host, at, date, environment;
};

// CLI11's names for the option: as declared ("-t,--target", a positional "url"), else its flag.
std::string names_of(const sources::KindOption& o) { return o.flag.empty() ? sources::flag_of(o) : o.flag; }

void add_kind_options(CLI::App* cmd, const std::vector<sources::KindOption>& options, unsigned use, KindFlags& f) {
  for (const auto& o : options) {
    if (!(o.use & use)) continue;
    CLI::Option* opt = nullptr;
    switch (o.type) {
      case sources::OptionType::kString:
      case sources::OptionType::kCount:
        opt = cmd->add_option(names_of(o), f.strings[o.key], o.help);
        break;
      case sources::OptionType::kStrings:
        opt = cmd->add_option(names_of(o), f.lists[o.key], o.help);
        break;
      case sources::OptionType::kFlag:
        opt = cmd->add_flag(names_of(o), f.flags[o.key], o.help);
        break;
    }
    if (!o.default_text.empty()) opt->default_str(o.default_text);
    if (o.required) opt->required();
    f.given[o.key] = opt;
  }
}

// The settings section the flags given make; counts are numbers, as a plan writes them.
Result<nlohmann::json> section_of(const std::vector<sources::KindOption>& options, unsigned use, const KindFlags& f) {
  nlohmann::json section = nlohmann::json::object();
  for (const auto& o : options) {
    if (!(o.use & use)) continue;
    auto it = f.given.find(o.key);
    if (it == f.given.end() || it->second->count() == 0) continue;
    switch (o.type) {
      case sources::OptionType::kString: section[o.key] = f.strings.at(o.key); break;
      case sources::OptionType::kStrings: section[o.key] = f.lists.at(o.key); break;
      case sources::OptionType::kFlag: section[o.key] = f.flags.at(o.key); break;
      case sources::OptionType::kCount: {
        const std::string& v = f.strings.at(o.key);
        char* end = nullptr;
        long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end) return Error(Code::kInvalidArgument, fmt::format("{} {}: expected a whole number", sources::flag_of(o), v));
        section[o.key] = n;
        break;
      }
    }
  }
  return section;
}

// The kind's parse of the flags; its problems name the flags, not the plan keys.
Result<sources::SettingsPtr> parse_flags(const sources::SourceKind& kind, unsigned use, const KindFlags& f) {
  LB_ASSIGN_OR_RETURN(auto section, section_of(kind.options, use, f));
  std::vector<sources::SettingsProblem> problems;
  auto settings = kind.parse(section, use == sources::kBackupOption ? sources::SettingsFor::kBackup : sources::SettingsFor::kRestore, problems);
  if (!problems.empty() || !settings)
    return Error(Code::kInvalidArgument,
                 fmt::format("{}: {}", kind.name, problems.empty() ? "settings refused" : sources::problems_as_flags(kind.options, problems)));
  return settings;
}

Status show(const GlobalOptions& g, const sources::Report& r) {
  if (g.json) {
    if (!r.json.is_null()) print_json(r.json);
  } else {
    for (const auto& w : r.warnings) fmt::print(stderr, "{}\n", w);
    if (!g.quiet)
      for (const auto& l : r.lines) fmt::print("{}\n", l);
  }
  return r.status;
}

}  // namespace

KindBackupCommand add_kind_backup(CommandSet c, CLI::App* cmd, const sources::SourceKind& kind) {
  auto f = std::make_shared<KindFlags>();
  add_kind_options(cmd, kind.options, sources::kBackupOption, *f);
  cmd->add_option("--tag", f->tags, "tag the snapshot (repeatable)");
  cmd->add_option("--host", f->host, "host name to record (default: this host)");
  KindBackupCommand out;
  out.action = [c, f, &kind]() -> Status {
    LB_ASSIGN_OR_RETURN(auto settings, parse_flags(kind, sources::kBackupOption, *f));
    LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
    LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
    ProgressCounters counters;
    sources::SourceContext ctx{*repo, "", counters, f->tags, f->host, progress_enabled(c.global)};
    ProgressDisplay display("backup", counters, progress_enabled(c.global));
    auto r = kind.backup(ctx, *settings);
    display.stop();
    if (!r) return r.status();
    return show(c.global, r->report);
  };
  out.words = [f] {
    auto it = f->lists.find("paths");
    return it == f->lists.end() ? std::vector<std::string>{} : it->second;
  };
  return out;
}

namespace {

void register_kind_backup(CommandSet c, CLI::App* backup, const sources::SourceKind& kind) {
  auto* cmd = backup->add_subcommand(kind.command.empty() ? kind.name : kind.command, kind.summary);
  auto command = add_kind_backup(c, cmd, kind);
  cmd->callback([c, command] { c.action = command.action; });
}

// With a plan: the plan's sources of this kind (only the one --name names, when the kind has it),
// restored into the environment as `restore --environment` restores them, with the flags given laid
// over the environment's settings (--only, --dry-run); each source's own report, its checks, then
// the outcomes.
Status restore_plan_sources(const GlobalOptions& g, const std::string& file, const sources::SourceKind& kind, const KindFlags& f,
                            std::optional<int64_t> at) {
  LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(file));
  LB_ASSIGN_OR_RETURN(auto overrides, section_of(kind.options, sources::kRestoreOption, f));
  std::string only = overrides.value("name", "");
  overrides.erase("name");
  ops::RepositorySet repos(p);
  std::vector<ops::SourceOutcome> outcomes;
  for (const auto& s : p.sources) {
    if (s.kind != kind.name || (!only.empty() && s.name != only)) continue;
    auto run = ops::restore_source(repos, s, f.environment, at, {}, overrides);
    if (!g.json && !g.quiet) {
      for (const auto& l : run.report.lines) fmt::print("{}\n", l);
      for (const auto& ch : run.checks) fmt::print("check {}: {} — {}\n", ch.name, ch.ok ? "ok" : "FAILED", ch.detail);
    }
    outcomes.push_back(std::move(run.outcome));
  }
  if (outcomes.empty()) return Error(Code::kNotFound, fmt::format("the plan has no {} source{}", kind.name, only.empty() ? "" : " " + only));
  return report_outcomes(g, "restores", outcomes, at);
}

void register_kind_restore(CommandSet c, CLI::App* restore, const sources::SourceKind& kind) {
  auto* cmd = restore->add_subcommand(kind.command.empty() ? kind.name : kind.command, kind.summary);
  auto f = std::make_shared<KindFlags>();
  add_kind_options(cmd, kind.options, sources::kRestoreOption, *f);
  cmd->add_option("--at", f->at, "the state as of this time (a day alone: its end; default: the newest restorable point)")
      ->check(time_value());
  cmd->add_option("--date", f->date, "the state at the end of this day (YYYY-MM-DD, local time)")->check(time_value());
  cmd->add_option("--environment", f->environment,
                  fmt::format("plan mode: restore every {} source of the plan (or --name's) into this environment", kind.name));
  cmd->callback([c, f, &kind] {
    c.action = [c, f, &kind]() -> Status {
      LB_ASSIGN_OR_RETURN(auto at, requested_instant(f->at, f->date));
      // --environment restores the plan's sources of this kind; without it, what the flags name
      // (a plan in the environment does not change what a command-line restore means).
      if (!f->environment.empty()) {
        auto file = plan_mode(c.global);
        if (!file) return Error(Code::kInvalidArgument, "--environment restores a plan's sources: give the plan (--plan or LIFEBOAT_PLAN)");
        return restore_plan_sources(c.global, *file, kind, *f, at);
      }
      LB_ASSIGN_OR_RETURN(auto settings, parse_flags(kind, sources::kRestoreOption, *f));
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_RETURN_IF_ERROR(repo->require_reader("restore " + kind.name));
      // Shared: a prune running meanwhile keeps every pack this restore may still read.
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      ProgressCounters counters;
      sources::SourceContext ctx{*repo, "", counters};
      int64_t start = monotonic_ns();
      ProgressDisplay display("restore", counters, progress_enabled(c.global));
      auto r = kind.restore(ctx, *settings, at);
      display.stop();
      if (!r) return r.status();
      // The checks read the target back, as a drill's do; their verdict decides the exit code.
      std::vector<sources::CheckResult> checks;
      if (!r->checks.empty()) checks = kind.validate(ctx, *settings, *r, r->checks);
      sources::Report report = r->report;
      bool ok = true;
      nlohmann::json cj = nlohmann::json::array();
      for (const auto& ch : checks) {
        ok = ok && ch.ok;
        cj.push_back({{"check", ch.name}, {"ok", ch.ok}, {"detail", ch.detail}});
        report.lines.push_back(fmt::format("check {}: {} — {}", ch.name, ch.ok ? "ok" : "FAILED", ch.detail));
      }
      if (report.json.is_object()) {
        report.json["checks"] = cj;
        if (!report.json.contains("duration_ms")) report.json["duration_ms"] = (monotonic_ns() - start) / 1000000;
      }
      LB_RETURN_IF_ERROR(show(c.global, report));
      if (!ok)
        return Error(Code::kCorrupt, fmt::format("the restored {} differs from the restored state (see the checks above)",
                                                 r->details.value("target_kind", "target")));
      return Status::ok();
    };
  });
}

void register_verb(CommandSet c, const sources::KindVerb& verb) {
  CLI::App* parent = &c.app;
  for (size_t i = 0; i + 1 < verb.words.size(); ++i) {
    CLI::App* group = nullptr;
    try {
      group = parent->get_subcommand(verb.words[i]);
    } catch (const CLI::OptionNotFound&) {
      group = parent->add_subcommand(verb.words[i], fmt::format("{} commands", verb.words[i]));
      group->require_subcommand(1);
    }
    parent = group;
  }
  auto* cmd = parent->add_subcommand(verb.words.back(), verb.help);
  auto f = std::make_shared<KindFlags>();
  add_kind_options(cmd, verb.options, sources::kBothOptions, *f);
  cmd->callback([c, f, &verb] {
    c.action = [c, f, &verb]() -> Status {
      LB_ASSIGN_OR_RETURN(auto args, section_of(verb.options, sources::kBothOptions, *f));
      std::unique_ptr<repo::Repository> repo;
      std::unique_ptr<repo::RepoLock> lock;
      if (verb.needs_repository) {
        LB_ASSIGN_OR_RETURN(repo, open_repository(c.global));
        if (verb.shared_lock) {
          LB_ASSIGN_OR_RETURN(lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
        }
      }
      ProgressCounters counters;
      sources::VerbContext ctx{repo.get(), args, counters,
                               [g = c.global](const std::string& text, const nlohmann::json& event, bool warning) {
                                 if (warning && !text.empty()) fmt::print(stderr, "{}\n", text);
                                 if (g.json && !event.is_null()) print_json(event);
                                 else if (!g.json && !g.quiet && !warning && !text.empty()) fmt::print("{}\n", text);
                                 std::fflush(stdout);
                               }};
      std::optional<ProgressDisplay> display;
      if (!verb.progress_label.empty()) display.emplace(verb.progress_label, counters, progress_enabled(c.global));
      auto r = verb.run(ctx);
      if (display) display->stop();
      if (!r) return r.status();
      return show(c.global, *r);
    };
  });
}

}  // namespace

void register_kinds(CommandSet c) {
  for (const auto* kind : sources::source_kinds()) {
    if (!kind->options.empty() && kind->generated_commands) {
      register_kind_backup(c, c.app.get_subcommand("backup"), *kind);
      register_kind_restore(c, c.app.get_subcommand("restore"), *kind);
    }
    for (const auto& verb : kind->verbs) register_verb(c, verb);
  }
}

}  // namespace lifeboat::cli
