// lifeboat report, metrics, emit: the plan's daily report, Prometheus metrics, and units/manifests for
// schedulers other than the daemon.
#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "cli/context.h"
#include "core/atomic_file.h"
#include "core/names.h"
#include "core/time.h"
#include "ops/daemon.h"
#include "ops/failover.h"
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
      // The follower reads the plan: its repository by name, with that repository's password.
      std::string args = fmt::format(" --plan {} -r {}", plan_file, s.repository);
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
  // A warm standby is kept by a daemon in the DR region (environments.NAME.standby), reading the copy.
  for (const auto& e : p.environments)
    if (e.standby)
      out += fmt::format(
          "### lifeboat-standby-{0}.service\n[Unit]\nDescription=Lifeboat warm standby {0} (run it in the DR region)\n"
          "Wants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=simple\n"
          "ExecStart={1} --plan {2} daemon --standby {0} --state-dir /var/lib/lifeboat/state\n"
          "EnvironmentFile=-/etc/lifeboat/env\nStateDirectory=lifeboat\nRestart=always\nRestartSec=10\nKillSignal=SIGTERM\n"
          "TimeoutStopSec=120\n\n[Install]\nWantedBy=multi-user.target\n\n",
          e.name, exe, plan_file);
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

// A repository on the local filesystem (not s3:/gs:), which a pod reaches through a volume.
bool local_repository(const std::string& url) { return !url.starts_with("s3:") && !url.starts_with("gs:"); }

// Kubernetes names: lower case letters, digits and '-'.
std::string k8s_name(std::string s) {
  for (auto& ch : s) ch = std::isalnum(static_cast<unsigned char>(ch)) ? static_cast<char>(std::tolower(ch)) : '-';
  return s;
}

// What a pod running `args` needs: the plan (ConfigMap lifeboat-plan), passwords and cloud
// credentials (Secret lifeboat-env, as environment variables), a local repository (a
// PersistentVolumeClaim lifeboat-repo-NAME, emitted once), and a source's local paths (hostPath
// placeholders, marked: replace each with the volume that holds that data).
struct PodParts {
  nlohmann::json container, volumes = nlohmann::json::array();
  std::vector<std::string> placeholders;
};

PodParts pod_parts(const plan::Plan& p, const std::string& image, const std::string& container, const std::vector<std::string>& args,
                   const std::string& repository, const nlohmann::json& paths) {
  PodParts out;
  nlohmann::json mounts = nlohmann::json::array({{{"name", "plan"}, {"mountPath", "/etc/lifeboat"}, {"readOnly", true}}});
  out.volumes.push_back({{"name", "plan"}, {"configMap", {{"name", "lifeboat-plan"}}}});
  if (const auto* r = p.repository(repository); r && local_repository(r->url)) {
    std::string vol = "repo-" + k8s_name(r->name);
    mounts.push_back({{"name", vol}, {"mountPath", r->url}});
    out.volumes.push_back({{"name", vol}, {"persistentVolumeClaim", {{"claimName", "lifeboat-repo-" + k8s_name(r->name)}}}});
  }
  size_t i = 0;
  for (const auto& path : paths) {
    if (!path.is_string() || !path.get<std::string>().starts_with("/")) continue;
    std::string vol = fmt::format("data-{}", i++);
    mounts.push_back({{"name", vol}, {"mountPath", path}, {"readOnly", true}});
    out.volumes.push_back({{"name", vol}, {"hostPath", {{"path", path}, {"type", "Directory"}}}});
    out.placeholders.push_back(fmt::format("{} (volume {}): a hostPath placeholder; replace it with the volume that holds "
                                           "this data", path.get<std::string>(), vol));
  }
  out.container = {{"name", container}, {"image", image}, {"args", args},
                   {"envFrom", nlohmann::json::array({{{"secretRef", {{"name", "lifeboat-env"}}}}})}, {"volumeMounts", mounts}};
  return out;
}

std::string cron_job(const std::string& name, const std::string& schedule, const PodParts& pod, const std::string& what) {
  std::string notes;
  for (const auto& ph : pod.placeholders) notes += "# PLACEHOLDER: " + ph + "\n";
  return fmt::format("---\n# {}\n{}apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {}\nspec:\n  schedule: \"{}\"\n"
                     "  timeZone: Etc/UTC\n  concurrencyPolicy: Forbid\n  jobTemplate:\n    spec:\n      backoffLimit: 3\n"
                     "      template:\n        spec:\n          restartPolicy: OnFailure\n          containers: [{}]\n"
                     "          volumes: {}\n",
                     what, notes, name, schedule, pod.container.dump(), pod.volumes.dump());
}

std::string k8s_manifests(const plan::Plan& p, const std::string& image, const std::string& plan_file) {
  std::string out = fmt::format(
      "# Lifeboat's schedules for Kubernetes, from {}. Create first:\n"
      "#   kubectl create configmap lifeboat-plan --from-file=lifeboat.yaml={}\n"
      "#   kubectl create secret generic lifeboat-env --from-env-file=lifeboat.env   # passwords, cloud credentials\n"
      "# and check every line marked PLACEHOLDER.\n",
      plan_file, plan_file);
  // A claim per local repository the plan's pods use (its size is a placeholder).
  std::set<std::string> claimed;
  for (const auto& r : p.repositories) {
    if (!local_repository(r.url)) continue;
    out += fmt::format("---\n# PLACEHOLDER: size and storage class of repository {} ({}); every Lifeboat pod mounts it, so "
                       "ReadWriteOnce keeps them on one node (ReadWriteMany, or an s3:/gs: repository, spreads them)\n"
                       "apiVersion: v1\nkind: PersistentVolumeClaim\n"
                       "metadata:\n  name: lifeboat-repo-{}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 100Gi}}}}\n",
                       r.name, r.url, k8s_name(r.name));
  }
  const std::string plan_path = "/etc/lifeboat/lifeboat.yaml";
  for (const auto& s : p.sources) {
    if (!s.schedule.full.empty()) {
      auto pod = pod_parts(p, image, "lifeboat", {"--plan", plan_path, "backup", s.name}, s.repository, s.settings.value("paths", nlohmann::json::array()));
      out += cron_job("lifeboat-" + k8s_name(s.name), s.schedule.full, pod, fmt::format("backup of {} ({})", s.name, s.kind));
    }
    if (s.schedule.continuous && s.entry && s.entry->follow_args) {
      // The follower reads the plan: its repository by name, with that repository's password.
      std::vector<std::string> args = {"--plan", plan_path, "-r", s.repository};
      for (const auto& a : s.entry->follow_args(s.name, s.schedule.interval))
        args.push_back(a.starts_with("$") ? "$(" + a.substr(1) + ")" : a);
      auto pod = pod_parts(p, image, "follow", args, s.repository, nlohmann::json::array());
      std::string name = "lifeboat-" + k8s_name(s.name) + "-follow";
      out += fmt::format(
          "---\n# continuous capture of {} ({})\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {}\nspec:\n  replicas: 1\n"
          "  strategy: {{type: Recreate}}\n  selector: {{matchLabels: {{app: {}}}}}\n  template:\n"
          "    metadata: {{labels: {{app: {}}}}}\n    spec:\n      terminationGracePeriodSeconds: 120\n"
          "      containers: [{}]\n      volumes: {}\n",
          s.name, s.kind, name, name, name, pod.container.dump(), pod.volumes.dump());
    }
  }
  // A warm standby: a daemon in the DR region's cluster reading the copy, its state on a claim of its
  // own (`lifeboat failover` runs in the same pod: kubectl exec … lifeboat failover --environment E).
  for (const auto& e : p.environments) {
    if (!e.standby) continue;
    std::string copy;
    for (const auto& s : p.sources)
      if (s.environments.count(e.name) && copy.empty()) copy = ops::standby_repository(p, s);
    auto pod = pod_parts(p, image, "standby", {"--plan", plan_path, "daemon", "--standby", e.name, "--state-dir", "/var/lib/lifeboat/state"},
                         copy, nlohmann::json::array());
    std::string name = "lifeboat-standby-" + k8s_name(e.name);
    pod.container["volumeMounts"].push_back({{"name", "state"}, {"mountPath", "/var/lib/lifeboat/state"}});
    pod.volumes.push_back({{"name", "state"}, {"persistentVolumeClaim", {{"claimName", name + "-state"}}}});
    out += fmt::format(
        "---\n# PLACEHOLDER: size and storage class of the standby {0}'s state (what it holds, how far a failover got)\n"
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {1}-state\nspec:\n  accessModes: [ReadWriteOnce]\n"
        "  resources: {{requests: {{storage: 1Gi}}}}\n"
        "---\n# warm standby {0}: apply this in the DR region's cluster\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {1}\n"
        "spec:\n  replicas: 1\n  strategy: {{type: Recreate}}\n  selector: {{matchLabels: {{app: {1}}}}}\n  template:\n"
        "    metadata: {{labels: {{app: {1}}}}}\n    spec:\n      terminationGracePeriodSeconds: 120\n"
        "      containers: [{2}]\n      volumes: {3}\n",
        e.name, name, pod.container.dump(), pod.volumes.dump());
  }
  for (const auto& r : p.repositories)
    for (const auto& [kind, cron] : {std::pair<std::string, std::string>{"prune", r.prune_schedule}, {"check", r.check_schedule}}) {
      if (cron.empty()) continue;
      auto pod = pod_parts(p, image, "lifeboat", {"--plan", plan_path, "maintenance", kind, r.name}, r.name, nlohmann::json::array());
      out += cron_job(fmt::format("lifeboat-{}-{}", k8s_name(r.name), kind), cron, pod, fmt::format("{} of repository {}", kind, r.name));
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
  auto state_dir = std::make_shared<std::string>("/var/lib/lifeboat/state");
  cmd->add_option("--state-dir", *state_dir, "the daemon's state directory: the standby's lag (docs/failover.md)")->capture_default_str();
  cmd->add_flag("--notify", *send, "also send the daily report to the plan's notifiers that want `report`");
  cmd->add_option("--format", *format, "text, json or html")->check(CLI::IsMember({"text", "json", "html"}))->capture_default_str();
  cmd->add_option("--since", *since, "window for growth and backup counts")->capture_default_str();
  cmd->add_option("-o,--output", *output, "write to this file (default: stdout)");
  cmd->callback([c, format, since, output, send, state_dir] {
    c.action = [c, format, since, output, send, state_dir]() -> Status {
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(plan_mode(c.global).value_or("lifeboat.yaml")));
      if (*send) {
        Status failed;
        ops::RepositorySet notify_repos(p);
        ops::send_report(notify_repos, [&](const std::string& m) {
          fmt::print(stderr, "lifeboat: warning: {}\n", m);
          failed = Error(Code::kIo, "a notification could not be sent (see above)");
        }, *state_dir);
        LB_RETURN_IF_ERROR(failed);
      }
      LB_ASSIGN_OR_RETURN(int64_t window, parse_duration(*since));
      ops::RepositorySet repos(p);
      LB_ASSIGN_OR_RETURN(auto r, ops::build_report(repos, now_unix_ns() - window));
      ops::add_standby_to_report(r, p, *state_dir);
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
  auto dir = std::make_shared<std::string>();
  emit->add_option("--dir", *dir, "systemd: write one file per unit into this directory (copy them to /etc/systemd/system)");
  emit->callback([c, what, image, exe, dir] {
    c.action = [c, what, image, exe, dir]() -> Status {
      std::string file = plan_mode(c.global).value_or("lifeboat.yaml");
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(file));
      if (char* abs = realpath(file.c_str(), nullptr)) {
        file = abs;
        free(abs);
      }
      std::string text = *what == "systemd" ? systemd_units(p, *exe, file) : k8s_manifests(p, *image, file);
      if (dir->empty()) {
        fmt::print("{}", text);
        return Status::ok();
      }
      if (*what != "systemd") return Error(Code::kInvalidArgument, "--dir writes systemd units; k8s manifests are one stream (kubectl apply -f -)");
      // Each "### NAME" block becomes DIR/NAME.
      std::error_code ec;
      std::filesystem::create_directories(*dir, ec);
      if (ec) return Error(Code::kIo, fmt::format("creating {}: {}", *dir, ec.message()));
      std::vector<std::string> written;
      size_t at = 0;
      while ((at = text.find("### ", at)) != std::string::npos) {
        size_t eol = text.find('\n', at), next = text.find("\n### ", eol);
        std::string name = text.substr(at + 4, eol - at - 4);
        std::string body = text.substr(eol + 1, next == std::string::npos ? std::string::npos : next + 1 - (eol + 1));
        while (body.size() > 1 && body.ends_with("\n\n")) body.pop_back();
        LB_RETURN_IF_ERROR(write_file_atomic(*dir + "/" + name, body));
        written.push_back(name);
        at = next == std::string::npos ? text.size() : next + 1;
      }
      if (c.global.json) print_json({{"dir", *dir}, {"units", written}});
      else if (!c.global.quiet)
        fmt::print("wrote {} unit(s) to {}: {}\nthen: cp {}/* /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now "
                   "lifeboat-*.timer\n", written.size(), *dir, fmt::join(written, " "), *dir);
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
