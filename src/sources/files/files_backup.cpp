// Files backup: a snapshot of paths (stored by the archiver) or of a command's output.
#include "sources/files/files_backup.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "core/interrupt.h"
#include "core/platform_user.h"
#include "core/time.h"
#include "repo/archiver/archiver.h"

namespace lifeboat::sources::files {

using repo::Node;
using repo::NodeKind;
using repo::Tree;

Result<FilesBackupResult> backup_files(repo::Repository& repo, const FilesBackupOptions& options,
                                       ProgressCounters& progress) {
  LB_RETURN_IF_ERROR(repo.reconcile_packs().status());
  int64_t start = monotonic_ns();
  std::atomic<bool> stop_scan{false};
  std::thread scanner;
  if (options.count_totals) scanner = std::thread([&] { repo::count_path_totals(options.paths, progress, stop_scan); });
  repo::WriteSession session(repo);
  repo::ArchiveOptions ao;
  ao.paths = options.paths;
  ao.excludes = options.excludes;
  ao.threads = options.threads;
  if (options.parent) ao.parent_tree = options.parent->snapshot.tree;
  auto stored = repo::archive_paths(repo, session, ao, progress);
  stop_scan = true;
  if (scanner.joinable()) scanner.join();
  if (!stored) {
    // Keep what was stored: index the finished packs so the next backup reuses them.
    (void)session.flush();
    return stored.status();
  }
  repo::Snapshot snap;
  snap.time_ns = now_unix_ns();
  snap.hostname = options.hostname;
  snap.source = "files";
  snap.paths = options.paths;
  snap.tags = options.tags;
  snap.tree = stored->tree;
  if (options.parent) snap.parent = options.parent->id;
  snap.summary = repo::session_summary(session, start);
  for (const auto& [k, v] : stored->summary.items()) snap.summary[k] = v;
  LB_ASSIGN_OR_RETURN(std::string id, session.commit(snap));
  return FilesBackupResult{id, snap, stored->unreadable};
}

Result<FilesBackupResult> backup_command_output(repo::Repository& repo, const CommandBackupOptions& options,
                                                ProgressCounters& progress) {
  if (options.argv.empty()) return Error(Code::kInvalidArgument, "--stdin-from-command needs a command after --");
  LB_RETURN_IF_ERROR(repo.load_index());
  int64_t start = monotonic_ns();
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return Error(Code::kIo, std::string("pipe: ") + strerror(errno));
  pid_t pid = fork();
  if (pid < 0) return Error(Code::kIo, std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    dup2(pipefd[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    fprintf(stderr, "lifeboat: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(pipefd[1]);
  repo::WriteSession session(repo);
  repo::FdSource src(pipefd[0], "output of " + options.argv[0], true);
  auto stored = session.store_stream(src, &progress);
  close(pipefd[0]);
  if (interrupted()) kill(pid, SIGTERM);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!stored) {
    (void)session.flush();
    return stored.status();
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    (void)session.flush();
    std::string how = WIFEXITED(wstatus) ? fmt::format("exited with status {}", WEXITSTATUS(wstatus))
                                         : fmt::format("was killed by signal {}", WTERMSIG(wstatus));
    return Error(Code::kFatal, fmt::format("command '{}' {}; no snapshot was saved", options.argv[0], how));
  }
  int64_t now = now_unix_ns();
  Node n;
  n.kind = NodeKind::kFile;
  n.name = options.filename;
  n.mode = 0644;
  n.uid = getuid();
  n.gid = getgid();
  n.user = platform::username();
  n.mtime_ns = n.atime_ns = n.ctime_ns = now;
  n.links = 1;
  n.size = stored->size_bytes;
  n.content = stored->content;
  progress.files_done++;
  Tree tree;
  tree.nodes.push_back(n);
  LB_ASSIGN_OR_RETURN(repo::BlobId tid, session.store_tree(tree));
  repo::Snapshot snap;
  snap.time_ns = now;
  snap.hostname = options.hostname;
  snap.source = options.source;
  snap.paths = {"/" + options.filename};
  snap.tags = options.tags;
  snap.tree = tid;
  snap.metadata["command"] = options.argv;
  snap.summary = repo::session_summary(session, start);
  snap.summary["files_new"] = 1;
  snap.summary["total_bytes"] = stored->size_bytes;
  LB_ASSIGN_OR_RETURN(std::string id, session.commit(snap));
  return FilesBackupResult{id, snap, {}};
}

}  // namespace lifeboat::sources::files
