// lifeboat report, metrics, emit: the plan's daily report, Prometheus metrics, and units/manifests for
// schedulers other than the daemon.
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "cli/context.h"
#include "core/atomic_file.h"
#include "core/names.h"
#include "core/time.h"
#include "ops/daemon.h"
#include "ops/report.h"
#include "ops/repository_set.h"
#include "plan/plan.h"

namespace lifeboat::cli {

namespace {

Status write_or_print(const std::string& path, const std::string& raw) {
  const std::string text = redact_urls_in(raw);
  if (path.empty() || path == "-") {
    fmt::print("{}", text);
    return Status::ok();
  }
  // Written beside and renamed into place: a collector or browser never reads half a file.
  return write_file_atomic(path, text);
}

// A cron field in systemd.time(7) syntax: ranges "a..b", steps "start/step", lists kept.
std::string calendar_field(const std::string& f, bool weekday) {
  static const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  if (f == "*") return "*";
  std::string out;
  size_t start = 0;
  while (start <= f.size()) {
    size_t comma = f.find(',', start);
    std::string part = f.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (part.rfind("*/", 0) == 0) part = "0/" + part.substr(2);
    if (auto dash = part.find('-'); dash != std::string::npos) part = part.substr(0, dash) + ".." + part.substr(dash + 1);
    if (weekday) {
      std::string conv;
      for (size_t i = 0; i < part.size();) {
        if (std::isdigit(static_cast<unsigned char>(part[i])) && part[i] <= '7') {
          conv += days[part[i] - '0'];
          ++i;
        } else {
          conv += part[i++];
        }
      }
      part = conv;
    }
    out += (out.empty() ? "" : ",") + part;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// "30 2 * * 1-5" -> "Mon..Fri *-*-* 2:30:00 UTC" (the daemon reads cron in UTC too).
std::string on_calendar(const std::string& cron) {
  static const std::map<std::string, std::string> macros = {{"@hourly", "hourly"}, {"@daily", "daily"}, {"@midnight", "daily"},
                                                            {"@weekly", "weekly"}, {"@monthly", "monthly"}, {"@yearly", "yearly"},
                                                            {"@annually", "yearly"}};
  if (auto it = macros.find(cron); it != macros.end()) return it->second;
  std::stringstream ss(cron);
  std::vector<std::string> f;
  for (std::string w; ss >> w;) f.push_back(w);
  if (f.size() != 5) return cron;
  std::string dow = f[4] == "*" ? "" : calendar_field(f[4], true) + " ";
  return fmt::format("{}*-{}-{} {}:{}:00 UTC", dow, calendar_field(f[3], false), calendar_field(f[2], false),
                     calendar_field(f[1], false), calendar_field(f[0], false));
}

std::string systemd_units(const plan::Plan& p, const std::string& exe, const std::string& plan_file) {
  // One file per "### name" block: copy each to /etc/systemd/system/, then
  // `systemctl enable --now lifeboat-<source>.timer` (and the follower services).
  std::string out;
  for (const auto& s : p.sources) {
    if (!s.schedule.full.empty())
      out += fmt::format(
          "### lifeboat-{0}.service\n[Unit]\nDescription=Lifeboat backup of {0}\nWants=network-online.target\n"
          "After=network-online.target\n\n[Service]\nType=oneshot\nExecStart={1} --plan {2} backup {0}\n"
          "EnvironmentFile=-/etc/lifeboat/env\n\n"
          "### lifeboat-{0}.timer\n[Unit]\nDescription=Lifeboat schedule of {0} (cron {3})\n\n[Timer]\nOnCalendar={4}\n"
          "Persistent=true\nRandomizedDelaySec=60\n\n[Install]\nWantedBy=timers.target\n\n",
          s.name, exe, plan_file, s.schedule.full, on_calendar(s.schedule.full));
    if (s.schedule.continuous && s.entry && s.entry->follow_args) {
      std::string args;
      for (const auto& a : s.entry->follow_args(s.name, s.schedule.interval))
        args += " " + (a.starts_with("$") ? "\"" + a + "\"" : a);
      out += fmt::format(
          "### lifeboat-{0}-follow.service\n[Unit]\nDescription=Lifeboat continuous capture of {0} ({3})\n"
          "Wants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=simple\n"
          "ExecStart=/bin/sh -c 'exec {1}{2}'\n"
          "EnvironmentFile=-/etc/lifeboat/env\nRestart=always\nRestartSec=10\nKillSignal=SIGTERM\nTimeoutStopSec=120\n\n"
          "[Install]\nWantedBy=multi-user.target\n\n",
          s.name, exe, args, s.kind);
    }
  }
  // The repositories' scheduled maintenance (repositories.NAME.maintenance): a timer per kind.
  for (const auto& r : p.repositories)
    for (const auto& [kind, cron] : {std::pair<std::string, std::string>{"prune", r.prune_schedule}, {"check", r.check_schedule}}) {
      if (cron.empty()) continue;
      out += fmt::format(
          "### lifeboat-{0}-{1}.service\n[Unit]\nDescription=Lifeboat {1} of repository {0}\nWants=network-online.target\n"
          "After=network-online.target\n\n[Service]\nType=oneshot\nExecStart={2} --plan {3} maintenance {1} {0}\n"
          "EnvironmentFile=-/etc/lifeboat/env\n\n"
          "### lifeboat-{0}-{1}.timer\n[Unit]\nDescription=Lifeboat {1} schedule of repository {0} (cron {4})\n\n[Timer]\n"
          "OnCalendar={5}\nPersistent=true\nRandomizedDelaySec=60\n\n[Install]\nWantedBy=timers.target\n\n",
          r.name, kind, exe, plan_file, cron, on_calendar(cron));
    }
  return out;
}

std::string k8s_manifests(const plan::Plan& p, const std::string& image) {
  std::string out;
  for (const auto& s : p.sources) {
    if (s.schedule.full.empty()) continue;
    out += fmt::format(
        "---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: lifeboat-{0}\nspec:\n  schedule: \"{1}\"\n"
        "  timeZone: Etc/UTC\n  concurrencyPolicy: Forbid\n  jobTemplate:\n    spec:\n      backoffLimit: 3\n      template:\n"
        "        spec:\n          restartPolicy: OnFailure\n          containers:\n            - name: lifeboat\n"
        "              image: {2}\n              args: [\"--plan\", \"/etc/lifeboat/lifeboat.yaml\", \"backup\", \"{0}\"]\n"
        "              envFrom: [{{secretRef: {{name: lifeboat-env}}}}]\n              volumeMounts: [{{name: plan, mountPath: /etc/lifeboat}}]\n"
        "          volumes: [{{name: plan, configMap: {{name: lifeboat-plan}}}}]\n",
        s.name, s.schedule.full, image);
    if (s.schedule.continuous && s.entry && s.entry->follow_args) {
      std::string args;
      for (const auto& a : s.entry->follow_args(s.name, s.schedule.interval))
        args += fmt::format("{}\"{}\"", args.empty() ? "" : ", ", a.starts_with("$") ? "$(" + a.substr(1) + ")" : a);
      out += fmt::format(
          "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: lifeboat-{0}-follow\nspec:\n  replicas: 1\n"
          "  strategy: {{type: Recreate}}\n  selector: {{matchLabels: {{app: lifeboat-{0}-follow}}}}\n  template:\n"
          "    metadata: {{labels: {{app: lifeboat-{0}-follow}}}}\n    spec:\n      terminationGracePeriodSeconds: 120\n"
          "      containers:\n        - name: follow\n          image: {1}\n"
          "          args: [{2}]\n"
          "          envFrom: [{{secretRef: {{name: lifeboat-env}}}}]\n",
          s.name, image, args);
    }
  }
  for (const auto& r : p.repositories)
    for (const auto& [kind, cron] : {std::pair<std::string, std::string>{"prune", r.prune_schedule}, {"check", r.check_schedule}}) {
      if (cron.empty()) continue;
      out += fmt::format(
          "---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: lifeboat-{0}-{1}\nspec:\n  schedule: \"{2}\"\n"
          "  timeZone: Etc/UTC\n  concurrencyPolicy: Forbid\n  jobTemplate:\n    spec:\n      backoffLimit: 3\n      template:\n"
          "        spec:\n          restartPolicy: OnFailure\n          containers:\n            - name: lifeboat\n"
          "              image: {3}\n              args: [\"--plan\", \"/etc/lifeboat/lifeboat.yaml\", \"maintenance\", \"{1}\", \"{0}\"]\n"
          "              envFrom: [{{secretRef: {{name: lifeboat-env}}}}]\n              volumeMounts: [{{name: plan, mountPath: /etc/lifeboat}}]\n"
          "          volumes: [{{name: plan, configMap: {{name: lifeboat-plan}}}}]\n",
          r.name, kind, cron, image);
    }
  return out;
}

}  // namespace

void register_report(CommandSet c) {
  auto* cmd = c.app.add_subcommand("report", "the daily report: every system's status, storage, validation, warnings, RPO/RTO trend");
  auto format = std::make_shared<std::string>("text");
  auto since = std::make_shared<std::string>("24h");
  auto output = std::make_shared<std::string>();
  auto send = std::make_shared<bool>(false);
  cmd->add_flag("--notify", *send, "also send the daily report to the plan's notifiers that want `report`");
  cmd->add_option("--format", *format, "text, json or html")->check(CLI::IsMember({"text", "json", "html"}))->capture_default_str();
  cmd->add_option("--since", *since, "window for growth and backup counts")->capture_default_str();
  cmd->add_option("-o,--output", *output, "write to this file (default: stdout)");
  cmd->callback([c, format, since, output, send] {
    c.action = [c, format, since, output, send]() -> Status {
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(plan_mode(c.global).value_or("lifeboat.yaml")));
      if (*send) {
        Status failed;
        ops::RepositorySet notify_repos(p);
        ops::send_report(notify_repos, [&](const std::string& m) {
          fmt::print(stderr, "lifeboat: warning: {}\n", m);
          failed = Error(Code::kIo, "a notification could not be sent (see above)");
        });
        LB_RETURN_IF_ERROR(failed);
      }
      LB_ASSIGN_OR_RETURN(int64_t window, parse_duration(*since));
      ops::RepositorySet repos(p);
      LB_ASSIGN_OR_RETURN(auto r, ops::build_report(repos, now_unix_ns() - window));
      std::string fmt_name = c.global.json ? "json" : *format;
      std::string text = fmt_name == "json" ? r.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n" : fmt_name == "html" ? ops::report_html(r) : ops::report_text(r);
      return write_or_print(*output, text);
    };
  });

  auto* met = c.app.add_subcommand("metrics", "Prometheus metrics of the plan (stdout, or a node-exporter textfile)");
  auto textfile = std::make_shared<std::string>();
  met->add_option("--textfile", *textfile, "write to this .prom file (atomically) for the textfile collector");
  met->callback([c, textfile] {
    c.action = [c, textfile]() -> Status {
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(plan_mode(c.global).value_or("lifeboat.yaml")));
      ops::RepositorySet repos(p);
      LB_ASSIGN_OR_RETURN(auto r, ops::build_report(repos, now_unix_ns() - 86400LL * 1000000000));
      return write_or_print(*textfile, ops::report_metrics(r));
    };
  });

  auto* emit = c.app.add_subcommand("emit", "units or manifests to run the plan's schedules elsewhere");
  auto what = std::make_shared<std::string>();
  auto image = std::make_shared<std::string>("lifeboat:latest");
  auto exe = std::make_shared<std::string>("/usr/local/bin/lifeboat");
  emit->add_option("target", *what, "systemd or k8s")->required()->check(CLI::IsMember({"systemd", "k8s"}));
  emit->add_option("--image", *image, "container image (k8s)")->capture_default_str();
  emit->add_option("--exe", *exe, "lifeboat binary path (systemd)")->capture_default_str();
  emit->callback([c, what, image, exe] {
    c.action = [c, what, image, exe]() -> Status {
      std::string file = plan_mode(c.global).value_or("lifeboat.yaml");
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(file));
      if (char* abs = realpath(file.c_str(), nullptr)) {
        file = abs;
        free(abs);
      }
      fmt::print("{}", *what == "systemd" ? systemd_units(p, *exe, file) : k8s_manifests(p, *image));
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
