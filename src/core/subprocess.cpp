#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "core/time.h"
#include "core/interrupt.h"

extern char** environ;

namespace lifeboat {

std::string CommandResult::describe() const {
  if (timed_out) return "ran past its time limit and was killed";
  if (signal) return fmt::format("was killed by signal {}", signal);
  return fmt::format("exited {}", exit_code);
}

Result<std::string> fill_command(const std::string& run, const std::vector<std::pair<std::string, std::string>>& values) {
  // One pass over the template, knowing at each placeholder how /bin/sh will read what is put there:
  // unquoted, inside '…' or inside "…". Inside $( ) or backticks the shell parses the text again, so a
  // placeholder there is refused rather than guessed at.
  enum class Quote { kNone, kSingle, kDouble } q = Quote::kNone;
  int nested = 0;         // depth of $( … )
  bool backtick = false;  // inside `…`
  std::string out;
  for (size_t i = 0; i < run.size();) {
    auto key = std::find_if(values.begin(), values.end(), [&](const auto& kv) { return run.compare(i, kv.first.size(), kv.first) == 0; });
    if (key != values.end() && !key->first.empty()) {
      const std::string& value = key->second;
      if (nested > 0 || backtick)
        return Error(Code::kInvalidArgument, fmt::format("in `{}`, {} stands inside $( ) or backticks, where the shell would read "
                                                         "its value as a command: put it outside (e.g. f={}; … \"$f\")",
                                                         run, key->first, key->first));
      if (q == Quote::kNone) {
        out += '\'';
        for (char c : value) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
        out += '\'';
      } else if (q == Quote::kSingle) {
        for (char c : value) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      } else {
        for (char c : value) {
          if (c == '$' || c == '`' || c == '"' || c == '\\') out += '\\';
          out += c;
        }
      }
      i += key->first.size();
      continue;
    }
    char c = run[i];
    out += c;
    ++i;
    if (q == Quote::kSingle) {
      if (c == '\'') q = Quote::kNone;
    } else if (c == '\\' && i < run.size()) {
      out += run[i++];  // an escaped character, whatever it is
    } else if (c == '`') {
      backtick = !backtick;
    } else if (c == '$' && i < run.size() && run[i] == '(') {
      ++nested;
      out += run[i++];
    } else if (c == ')' && nested > 0) {
      --nested;
    } else if (q == Quote::kNone && c == '\'') {
      q = Quote::kSingle;
    } else if (c == '"') {
      q = q == Quote::kDouble ? Quote::kNone : Quote::kDouble;
    }
  }
  return out;
}

Result<int> run_shell_with_env(const std::string& command, const std::vector<std::pair<std::string, std::string>>& env) {
  // The child's environment is built before fork: after it, a threaded process may only exec.
  std::vector<std::string> entries;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    bool replaced = std::any_of(env.begin(), env.end(), [&](const auto& kv) { return entry.rfind(kv.first + "=", 0) == 0; });
    if (!replaced) entries.push_back(std::move(entry));
  }
  for (const auto& [k, v] : env) entries.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : entries) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Error(Code::kIo, std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    dup2(STDERR_FILENO, STDOUT_FILENO);
    const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
    execve("/bin/sh", const_cast<char* const*>(argv), envp.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return Error(Code::kIo, std::string("waitpid: ") + strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Result<CommandResult> run_command(const std::vector<std::string>& argv, int64_t timeout_s, size_t tail_bytes) {
  if (argv.empty()) return Error(Code::kInvalidArgument, "no command to run");
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return Error(Code::kIo, std::string("pipe: ") + strerror(errno));
  pid_t pid = fork();
  if (pid < 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    return Error(Code::kIo, std::string("fork: ") + strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);  // its own group, so the limit kills what it started too
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    dup2(pipefd[1], STDOUT_FILENO);
    dup2(pipefd[1], STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);
  close(pipefd[1]);
  CommandResult r;
  int64_t deadline = monotonic_ns() + timeout_s * 1000000000LL;
  char buf[4096];
  bool open_pipe = true;
  bool passed_on = false;
  while (open_pipe) {
    // The child has its own process group, so a terminal's Ctrl-C does not reach it: pass it on.
    if (interrupted() && !passed_on) {
      kill(-pid, SIGTERM);
      passed_on = true;
      deadline = std::min<int64_t>(deadline, monotonic_ns() + 5 * 1000000000LL);  // then SIGKILL, as at the limit
    }
    int64_t left_ms = (deadline - monotonic_ns()) / 1000000;
    if (left_ms <= 0) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 200)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    ssize_t got = read(pipefd[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      open_pipe = false;
      break;
    }
    r.output_tail.append(buf, static_cast<size_t>(got));
    if (r.output_tail.size() > 2 * tail_bytes) r.output_tail.erase(0, r.output_tail.size() - tail_bytes);
  }
  close(pipefd[0]);
  int status = 0;
  // The output closed: wait for the exit, still within the limit (a child may close its output and run on).
  while (true) {
    pid_t w = waitpid(pid, &status, r.timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (!r.timed_out && monotonic_ns() >= deadline) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      continue;
    }
    if (w == 0) usleep(10000);
  }
  if (r.output_tail.size() > tail_bytes) r.output_tail.erase(0, r.output_tail.size() - tail_bytes);
  if (WIFEXITED(status) && !r.timed_out) r.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

}  // namespace lifeboat
