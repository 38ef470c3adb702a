#include "sources/config/git_mirror.h"

#include <git2.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <mutex>
#include <set>

#include "cloud/http.h"
#include "core/bytes.h"
#include "core/atomic_file.h"
#include "core/interrupt.h"
#include "core/names.h"
#include "crypto/crypto.h"

namespace lifeboat::sources::config {

namespace fs = std::filesystem;

namespace {

void init_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
  });
}

std::string lg2_error(const std::string& what) {
  const git_error* e = git_error_last();
  return fmt::format("{}: {}", what, e && e->message ? e->message : "unknown libgit2 error");
}

template <typename T, void (*Free)(T*)>
struct GitPtr {
  T* p = nullptr;
  ~GitPtr() {
    if (p) Free(p);
  }
  T** out() { return &p; }
  T* get() const { return p; }
};
using RepoPtr = GitPtr<git_repository, git_repository_free>;
using RemotePtr = GitPtr<git_remote, git_remote_free>;
using OdbPtr = GitPtr<git_odb, git_odb_free>;
using RefPtr = GitPtr<git_reference, git_reference_free>;

bool is_local(const std::string& source) {
  return source.rfind("file://", 0) == 0 || source.find("://") == std::string::npos;
}
std::string local_path(const std::string& source) {
  return source.rfind("file://", 0) == 0 ? source.substr(7) : source;
}

// A URL's user information, split off: the URL a mirror's config records (never a password), and the
// user and password (percent-decoded) given to libgit2 per fetch through its credentials callback.
struct UrlCredentials {
  std::string url, user, password;
};

std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

UrlCredentials split_credentials(const std::string& source) {
  UrlCredentials c{source, "", ""};
  size_t scheme = source.find("://");
  if (scheme == std::string::npos) return c;
  size_t host = scheme + 3, end = source.find_first_of("/?#", host);
  size_t at = source.rfind('@', end == std::string::npos ? source.size() : end);
  if (at == std::string::npos || at < host) return c;
  std::string info = source.substr(host, at - host);
  size_t colon = info.find(':');
  c.user = percent_decode(info.substr(0, colon));
  if (colon != std::string::npos) c.password = percent_decode(info.substr(colon + 1));
  c.url = source.substr(0, host) + source.substr(at + 1);
  return c;
}

struct CredentialsPayload {
  const UrlCredentials* creds;
  int asked = 0;
};

// Offered once per connection: a second ask means the server refused them (libgit2 then fails).
int give_credentials(git_credential** out, const char*, const char*, unsigned int allowed, void* payload) {
  auto* p = static_cast<CredentialsPayload*>(payload);
  if (p->creds->user.empty() || p->asked++ > 0 || !(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT)) return GIT_PASSTHROUGH;
  return git_credential_userpass_plaintext_new(out, p->creds->user.c_str(), p->creds->password.c_str());
}

// The cache is the user's alone: its folders 0700, a mirror's config 0600.
void make_private(const std::string& dir) {
  std::error_code ec;
  fs::path git_dir = fs::path(dir).parent_path();
  for (const auto& d : {git_dir.parent_path(), git_dir})
    fs::permissions(d, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (fs::exists(dir + "/config", ec))
    fs::permissions(dir + "/config", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace, ec);
}

const char* state_name(int state) {
  switch (state) {
    case GIT_REPOSITORY_STATE_MERGE: return "a merge";
    case GIT_REPOSITORY_STATE_REVERT:
    case GIT_REPOSITORY_STATE_REVERT_SEQUENCE: return "a revert";
    case GIT_REPOSITORY_STATE_CHERRYPICK:
    case GIT_REPOSITORY_STATE_CHERRYPICK_SEQUENCE: return "a cherry-pick";
    case GIT_REPOSITORY_STATE_BISECT: return "a bisect";
    case GIT_REPOSITORY_STATE_REBASE:
    case GIT_REPOSITORY_STATE_REBASE_INTERACTIVE:
    case GIT_REPOSITORY_STATE_REBASE_MERGE: return "a rebase";
    case GIT_REPOSITORY_STATE_APPLY_MAILBOX:
    case GIT_REPOSITORY_STATE_APPLY_MAILBOX_OR_REBASE: return "git am";
    default: return "an unfinished operation";
  }
}

// SHA-256 of a file, hex; "" when it cannot be read.
std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  crypto::Sha256Stream sha;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) sha.update(ByteView(reinterpret_cast<const uint8_t*>(buf.data()), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) return "";
  return sha.finish_hex();
}

std::string lfs_object_path(const std::string& git_dir, const std::string& oid) {
  return fmt::format("{}/lfs/objects/{}/{}/{}", git_dir, oid.substr(0, 2), oid.substr(2, 2), oid);
}

// "version https://git-lfs.github.com/spec/v1\noid sha256:HEX\nsize N\n" → pointer.
std::optional<LfsPointer> parse_pointer(std::string_view text) {
  if (text.rfind("version https://git-lfs.github.com/spec/v1\n", 0) != 0) return std::nullopt;
  LfsPointer p;
  size_t o = text.find("\noid sha256:");
  size_t s = text.find("\nsize ");
  if (o == std::string::npos || s == std::string::npos) return std::nullopt;
  p.oid = std::string(text.substr(o + 12, 64));
  if (p.oid.size() != 64 || p.oid.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
  p.size = std::strtoull(std::string(text.substr(s + 6, 20)).c_str(), nullptr, 10);
  return p;
}

struct ScanState {
  git_odb* odb;
  std::map<std::string, LfsPointer> found;
};

int scan_object(const git_oid* id, void* payload) {
  auto* st = static_cast<ScanState*>(payload);
  size_t len = 0;
  git_object_t type;
  if (git_odb_read_header(&len, &type, st->odb, id) != 0 || type != GIT_OBJECT_BLOB || len > 1024 || len < 40) return 0;
  git_odb_object* obj = nullptr;
  if (git_odb_read(&obj, st->odb, id) != 0) return 0;
  std::string_view text(static_cast<const char*>(git_odb_object_data(obj)), git_odb_object_size(obj));
  if (auto p = parse_pointer(text)) st->found.emplace(p->oid, *p);
  git_odb_object_free(obj);
  return 0;
}

Result<std::vector<LfsPointer>> lfs_pointers(git_repository* repo) {
  OdbPtr odb;
  if (git_repository_odb(odb.out(), repo) != 0) return Error(Code::kIo, lg2_error("opening the object database"));
  ScanState st{odb.get(), {}};
  if (git_odb_foreach(odb.get(), scan_object, &st) != 0) return Error(Code::kIo, lg2_error("listing objects"));
  std::vector<LfsPointer> out;
  for (auto& [oid, p] : st.found) out.push_back(p);
  return out;
}

Result<std::map<std::string, std::string>> list_refs(git_repository* repo) {
  git_strarray names{};
  if (git_reference_list(&names, repo) != 0) return Error(Code::kIo, lg2_error("listing refs"));
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < names.count; ++i) {
    git_oid oid;
    if (git_reference_name_to_id(&oid, repo, names.strings[i]) != 0) continue;  // a dangling symbolic ref
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, &oid);
    out[names.strings[i]] = hex;
  }
  git_strarray_dispose(&names);
  return out;
}

std::string head_target(git_repository* repo) {
  RefPtr head;
  if (git_reference_lookup(head.out(), repo, "HEAD") != 0) return "";
  if (git_reference_type(head.get()) != GIT_REFERENCE_SYMBOLIC) return "";
  return git_reference_symbolic_target(head.get());
}

Status copy_verified(const std::string& from, const std::string& to, const LfsPointer& p) {
  std::error_code ec;
  fs::create_directories(fs::path(to).parent_path(), ec);
  std::string tmp = to + ".tmp" + std::to_string(getpid());
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) return Error(Code::kIo, fmt::format("copying LFS object {}: {}", p.oid, ec.message()));
  if (file_sha256(tmp) != p.oid) {
    fs::remove(tmp, ec);
    return Error(Code::kCorrupt, fmt::format("LFS object {} in {} does not hash to its name", p.oid, from));
  }
  fs::rename(tmp, to, ec);
  if (ec) return Error(Code::kIo, fmt::format("placing LFS object {}: {}", p.oid, ec.message()));
  return Status::ok();
}


// A local source into the mirror without a transport: libgit2's local fetch sends every object each
// time, so the objects the mirror lacks are packed here (a walk from the source's refs that hides the
// mirror's own tips) and the refs set to the source's — a backup stores only the new pack.
Status fetch_local(git_repository* src, git_repository* mirror, const std::string& mirror_dir) {
  LB_ASSIGN_OR_RETURN(auto src_refs, list_refs(src));
  LB_ASSIGN_OR_RETURN(auto have_refs, list_refs(mirror));
  OdbPtr src_odb;
  if (git_repository_odb(src_odb.out(), src) != 0) return Error(Code::kIo, lg2_error("source object database"));
  GitPtr<git_revwalk, git_revwalk_free> walk;
  GitPtr<git_packbuilder, git_packbuilder_free> pb;
  if (git_revwalk_new(walk.out(), src) != 0 || git_packbuilder_new(pb.out(), src) != 0) return Error(Code::kIo, lg2_error("packing"));
  auto peel_to_commit = [&](const git_oid& id, git_oid* commit) {
    GitPtr<git_object, git_object_free> obj, peeled;
    if (git_object_lookup(obj.out(), src, &id, GIT_OBJECT_ANY) != 0) return false;
    if (git_object_peel(peeled.out(), obj.get(), GIT_OBJECT_COMMIT) != 0) return false;
    git_oid_cpy(commit, git_object_id(peeled.get()));
    return true;
  };
  for (const auto& [name, hex] : have_refs) {
    git_oid id, commit;
    if (git_oid_fromstr(&id, hex.c_str()) == 0 && git_odb_exists(src_odb.get(), &id) && peel_to_commit(id, &commit))
      git_revwalk_hide(walk.get(), &commit);
  }
  std::set<std::string> have_tips;
  for (const auto& [name, hex] : have_refs) have_tips.insert(hex);
  for (const auto& [name, hex] : src_refs) {
    git_oid id, commit;
    if (git_oid_fromstr(&id, hex.c_str()) != 0) continue;
    if (peel_to_commit(id, &commit)) {
      if (git_revwalk_push(walk.get(), &commit) != 0) return Error(Code::kIo, lg2_error("walking " + name));
      // Annotated tags (and tags of tags) are objects of their own.
      GitPtr<git_object, git_object_free> obj;
      if (!have_tips.count(hex) && git_object_lookup(obj.out(), src, &id, GIT_OBJECT_ANY) == 0 && git_object_type(obj.get()) == GIT_OBJECT_TAG)
        if (git_packbuilder_insert_recur(pb.get(), &id, nullptr) != 0) return Error(Code::kIo, lg2_error("packing " + name));
    } else if (!have_tips.count(hex)) {
      if (git_packbuilder_insert_recur(pb.get(), &id, nullptr) != 0) return Error(Code::kIo, lg2_error("packing " + name));
    }
  }
  if (git_packbuilder_insert_walk(pb.get(), walk.get()) != 0) return Error(Code::kIo, lg2_error("packing new objects"));
  if (git_packbuilder_object_count(pb.get()) > 0) {
    std::string pack_dir = mirror_dir + "/objects/pack";
    if (git_packbuilder_write(pb.get(), pack_dir.c_str(), 0, nullptr, nullptr) != 0) return Error(Code::kIo, lg2_error("writing the pack"));
  }
  // Refs: the source's exactly (new and moved ones forced, vanished ones deleted).
  for (const auto& [name, hex] : src_refs) {
    // A ref name becomes a file below the mirror: only a well-formed one (libgit2's rules) is taken.
    int valid = 0;
    if (git_reference_name_is_valid(&valid, name.c_str()) != 0 || !valid || !check_relative_path(name, "ref"))
      return Error(Code::kInvalidArgument, fmt::format("the repository has a ref named {:?}, which is not a valid ref name; "
                                                       "refusing to copy it (nothing was changed in the cache)", name));
    auto it = have_refs.find(name);
    if (it != have_refs.end() && it->second == hex) continue;
    git_oid id;
    git_oid_fromstr(&id, hex.c_str());
    RefPtr ref;
    if (git_reference_create(ref.out(), mirror, name.c_str(), &id, 1, "lifeboat backup") != 0)
      return Error(Code::kIo, lg2_error("setting " + name));
  }
  for (const auto& [name, hex] : have_refs) {
    if (src_refs.count(name)) continue;
    RefPtr ref;
    if (git_reference_lookup(ref.out(), mirror, name.c_str()) == 0) git_reference_delete(ref.get());
  }
  return Status::ok();
}


// lfs.url from the .lfsconfig at the mirror's HEAD, else the endpoint Git LFS derives from an
// http(s) remote (…/repo.git/info/lfs); "" when there is none.
std::string lfs_endpoint(git_repository* mirror, const std::string& url) {
  std::string configured;
  git_object* obj = nullptr;
  if (git_revparse_single(&obj, mirror, "HEAD:.lfsconfig") == 0) {
    // git's own config parser, on a private copy of the blob.
    if (git_object_type(obj) == GIT_OBJECT_BLOB) {
      auto* blob = reinterpret_cast<git_blob*>(obj);
      char tmpl[] = "/tmp/lifeboat-lfsconfig-XXXXXX";
      int fd = mkstemp(tmpl);
      if (fd >= 0) {
        auto size = static_cast<size_t>(git_blob_rawsize(blob));
        bool written = ::write(fd, git_blob_rawcontent(blob), size) == static_cast<ssize_t>(size);
        ::close(fd);
        git_config* cfg = nullptr;
        git_buf value = GIT_BUF_INIT;
        if (written && git_config_open_ondisk(&cfg, tmpl) == 0 && git_config_get_string_buf(&value, cfg, "lfs.url") == 0) {
          configured = value.ptr;
          git_buf_dispose(&value);
        }
        if (cfg) git_config_free(cfg);
        ::unlink(tmpl);
      }
    }
    git_object_free(obj);
  }
  git_error_clear();
  if (!configured.empty()) return configured;
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) return "";
  std::string base = url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.size() < 4 || base.compare(base.size() - 4, 4, ".git") != 0) base += ".git";
  return base + "/info/lfs";
}

// The LFS objects `wanted` from a Git LFS server (batch API, basic transfer), each checked against
// its size and SHA-256 before it is placed in the mirror. Returns "oid: why" for each one not brought in.
std::vector<std::string> fetch_lfs_http(const std::string& endpoint, const std::vector<LfsPointer>& wanted, const std::string& dir) {
  std::vector<std::string> missing;
  const std::string where = redact_url(endpoint);
  // Transport errors name the URL: never with the credentials in it.
  auto hidden = [&](std::string text) {
    for (size_t p = text.find(endpoint); p != std::string::npos; p = text.find(endpoint, p + where.size()))
      text.replace(p, endpoint.size(), where);
    return text;
  };
  for (size_t start = 0; start < wanted.size(); start += 100) {
    nlohmann::json objects = nlohmann::json::array();
    for (size_t i = start; i < std::min(wanted.size(), start + 100); ++i)
      objects.push_back({{"oid", wanted[i].oid}, {"size", wanted[i].size}});
    std::string body = nlohmann::json{{"operation", "download"}, {"transfers", {"basic"}}, {"objects", objects}}.dump();
    cloud::HttpRequest req;
    req.method = "POST";
    req.url = endpoint + "/objects/batch";
    req.headers = {{"Accept", "application/vnd.git-lfs+json"}, {"Content-Type", "application/vnd.git-lfs+json"}};
    req.body = as_bytes(body);
    req.timeout_s = 120;
    auto r = cloud::http_send(req);
    nlohmann::json answer;
    if (r && r->status == 200) {
      try {
        answer = nlohmann::json::parse(r->body.begin(), r->body.end());
      } catch (const std::exception&) {
      }
    }
    if (!answer.is_object()) {
      std::string why = !r ? hidden(r.status().message()) : fmt::format("HTTP {}", r->status);
      for (const auto& o : objects) missing.push_back(fmt::format("{}: the LFS server {} refused the batch request ({})", o["oid"].get<std::string>(), where, why));
      continue;
    }
    for (const auto& o : answer.value("objects", nlohmann::json::array())) {
      std::string oid = o.value("oid", "");
      auto want = std::find_if(wanted.begin(), wanted.end(), [&](const LfsPointer& p) { return p.oid == oid; });
      if (want == wanted.end()) continue;
      if (o.contains("error")) {
        missing.push_back(fmt::format("{}: the LFS server says {} {}", oid, o["error"].value("code", 0), o["error"].value("message", "")));
        continue;
      }
      const nlohmann::json dl = o.value("actions", nlohmann::json::object()).value("download", nlohmann::json::object());
      const nlohmann::json header = dl.value("header", nlohmann::json::object());
      cloud::HttpRequest get;
      get.url = dl.value("href", "");
      for (const auto& [k, v] : header.items()) get.headers.emplace_back(k, v.get<std::string>());
      // Streamed into the mirror, hashed as it arrives: an object of many GB never sits in memory,
      // and it appears under its name only once its size and SHA-256 are proved.
      std::string to = lfs_object_path(dir, oid);
      std::error_code ec;
      fs::create_directories(fs::path(to).parent_path(), ec);
      auto file = AtomicFileWriter::open(to, 0644);
      if (!file) {
        missing.push_back(fmt::format("{}: {}", oid, file.status().message()));
        continue;
      }
      crypto::Sha256Stream sha;
      get.body_sink = [&](ByteView piece) {
        sha.update(piece);
        return file->write(piece);
      };
      get.timeout_s = 6 * 3600;
      auto data = cloud::http_send(get);
      if (!data || data->status != 200) {
        missing.push_back(fmt::format("{}: download failed ({})", oid,
                                      !data ? redact_urls_in(data.status().message()) : fmt::format("HTTP {}", data->status)));
        continue;
      }
      if (data->streamed != want->size || sha.finish_hex() != oid) {
        missing.push_back(fmt::format("{}: the server sent {} bytes that do not hash to the object's id", oid, data->streamed));
        continue;
      }
      if (auto s = file->commit(); !s)
        missing.push_back(fmt::format("{}: {}", oid, s.message()));
    }
  }
  return missing;
}

}  // namespace

std::string mirror_cache_dir(const std::string& source) {
  std::string base;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) base = x;
  else if (const char* h = std::getenv("HOME"); h && *h) base = std::string(h) + "/.cache";
  else base = "/tmp";
  auto d = crypto::sha256(as_bytes(split_credentials(source).url));  // the same repository whatever the token
  return fmt::format("{}/lifeboat/git/{}.git", base, hex_encode({d.data(), d.size()}).substr(0, 24));
}

Result<MirrorLock> MirrorLock::acquire(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(fs::path(dir).parent_path(), ec);
  if (ec) return Error(Code::kIo, fmt::format("cannot create {}: {}", fs::path(dir).parent_path().string(), ec.message()));
  make_private(dir);
  std::string path = dir + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Error(Code::kIo, fmt::format("cannot open {}: {}", path, strerror(errno)));
  while (flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR && !interrupted()) continue;
    int err = errno;
    ::close(fd);
    if (err == EINTR) return Error(Code::kInterrupted, "interrupted while waiting for another backup of the same git repository");
    return Error(Code::kIo, fmt::format("cannot lock {}: {}", path, strerror(err)));
  }
  MirrorLock l;
  l.fd_ = fd;
  return l;
}

MirrorLock::~MirrorLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

Result<MirrorState> update_mirror(const std::string& source, const std::string& dir) {
  init_libgit2();
  const UrlCredentials creds = split_credentials(source);
  const std::string url = creds.url;  // what the mirror's config records: never a password
  std::string source_git_dir;
  RepoPtr src;  // a local source, open
  if (is_local(source)) {
    std::string path = local_path(source);
    if (git_repository_open_ext(src.out(), path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
      return Error(Code::kInvalidArgument, fmt::format("{} is not a git repository (or cannot be read): {}", path,
                                                       git_error_last() ? git_error_last()->message : "?"));
    int state = git_repository_state(src.get());
    if (state != GIT_REPOSITORY_STATE_NONE)
      return Error(Code::kInvalidArgument,
                   fmt::format("git repository {} is in the middle of {}: finish or abort it, then back up", path, state_name(state)));
    source_git_dir = git_repository_path(src.get());
  }
  std::error_code ec;
  fs::create_directories(fs::path(dir).parent_path(), ec);
  RepoPtr mirror;
  if (git_repository_open_bare(mirror.out(), dir.c_str()) != 0) {
    // A half-made mirror from an interrupted run: the caller holds the MirrorLock, so no other
    // process is writing it.
    fs::remove_all(dir, ec);
    if (git_repository_init(mirror.out(), dir.c_str(), 1) != 0) return Error(Code::kIo, lg2_error("creating mirror " + dir));
  }
  if (src.get()) {
    LB_RETURN_IF_ERROR(fetch_local(src.get(), mirror.get(), dir));
    if (auto h = head_target(src.get()); !h.empty()) git_repository_set_head(mirror.get(), h.c_str());
  } else {
    RemotePtr remote;
    if (git_remote_lookup(remote.out(), mirror.get(), "origin") != 0) {
      if (git_remote_create_with_fetchspec(remote.out(), mirror.get(), "origin", url.c_str(), "+refs/*:refs/*") != 0)
        return Error(Code::kIo, lg2_error("setting up mirror " + dir));
    } else if (url != git_remote_url(remote.get())) {
      git_remote_set_url(mirror.get(), "origin", url.c_str());
      git_remote_free(remote.p);
      remote.p = nullptr;
      if (git_remote_lookup(remote.out(), mirror.get(), "origin") != 0) return Error(Code::kIo, lg2_error("mirror remote"));
    }
    // The source's HEAD (its default branch), asked before the fetch while connected.
    std::string default_head;
    CredentialsPayload connect_creds{&creds}, fetch_creds{&creds};
    git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
    cb.credentials = give_credentials;
    cb.payload = &connect_creds;
    if (git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &cb, nullptr, nullptr) != 0)
      return Error(Code::kUnavailable, lg2_error("connecting to " + redact_url(source)));
    git_buf def = GIT_BUF_INIT;
    if (git_remote_default_branch(&def, remote.get()) == 0) {
      default_head = def.ptr;
      git_buf_dispose(&def);
    }
    git_remote_disconnect(remote.get());
    git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
    fo.prune = GIT_FETCH_PRUNE;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;  // refs/* already brings every tag
    // An interrupt cancels the fetch at its next progress report (the mirror keeps what it had).
    fo.callbacks.transfer_progress = [](const git_indexer_progress*, void*) { return interrupted() ? -1 : 0; };
    fo.callbacks.sideband_progress = [](const char*, int, void*) { return interrupted() ? -1 : 0; };
    fo.callbacks.credentials = give_credentials;
    fo.callbacks.payload = &fetch_creds;
    if (git_remote_fetch(remote.get(), nullptr, &fo, "lifeboat backup") != 0) {
      if (interrupted()) return Error(Code::kInterrupted, "interrupted while fetching " + redact_url(source));
      return Error(Code::kUnavailable, lg2_error("fetching " + redact_url(source)));
    }
    if (!default_head.empty()) git_repository_set_head(mirror.get(), default_head.c_str());
  }
  git_error_clear();
  make_private(dir);

  MirrorState st;
  st.dir = dir;
  st.head = head_target(mirror.get());
  LB_ASSIGN_OR_RETURN(st.refs, list_refs(mirror.get()));
  LB_ASSIGN_OR_RETURN(st.lfs, lfs_pointers(mirror.get()));
  std::vector<LfsPointer> from_server;
  for (const auto& p : st.lfs) {
    std::string have = lfs_object_path(dir, p.oid);
    st.lfs_bytes += p.size;
    if (fs::exists(have, ec)) continue;  // placed only after its hash was checked
    if (source_git_dir.empty()) {
      from_server.push_back(p);
      continue;
    }
    std::string from = lfs_object_path(source_git_dir.back() == '/' ? source_git_dir.substr(0, source_git_dir.size() - 1)
                                                                     : source_git_dir, p.oid);
    if (!fs::exists(from, ec)) {
      st.lfs_missing.push_back(p.oid + ": not in the source's LFS store (run `git lfs fetch --all` there)");
      continue;
    }
    if (auto s = copy_verified(from, have, p); !s) st.lfs_missing.push_back(p.oid + ": " + s.message());
  }
  if (!from_server.empty()) {
    std::string endpoint = lfs_endpoint(mirror.get(), source);
    if (endpoint.empty())
      for (const auto& p : from_server)
        st.lfs_missing.push_back(p.oid + ": no LFS server known for " + redact_url(source) + " (set lfs.url in its .lfsconfig)");
    else
      for (auto& m : fetch_lfs_http(endpoint, from_server, dir)) st.lfs_missing.push_back(std::move(m));
  }
  return st;
}

Result<MirrorState> read_mirror(const std::string& dir) {
  init_libgit2();
  RepoPtr mirror;
  if (git_repository_open_bare(mirror.out(), dir.c_str()) != 0) return Error(Code::kNotFound, lg2_error("opening mirror " + dir));
  MirrorState st;
  st.dir = dir;
  st.head = head_target(mirror.get());
  LB_ASSIGN_OR_RETURN(st.refs, list_refs(mirror.get()));
  LB_ASSIGN_OR_RETURN(st.lfs, lfs_pointers(mirror.get()));
  std::error_code ec;
  for (const auto& p : st.lfs) {
    st.lfs_bytes += p.size;
    if (!fs::exists(lfs_object_path(dir, p.oid), ec)) st.lfs_missing.push_back(p.oid + ": absent");
  }
  return st;
}

Status push_mirror(const std::string& dir, const std::string& remote_url) {
  init_libgit2();
  RepoPtr mirror;
  if (git_repository_open_bare(mirror.out(), dir.c_str()) != 0) return Error(Code::kNotFound, lg2_error("opening mirror " + dir));
  std::string url = remote_url;
  if (is_local(remote_url)) {
    std::string path = local_path(remote_url);
    RepoPtr target;
    if (git_repository_open_ext(target.out(), path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0 &&
        git_repository_init(target.out(), path.c_str(), 1) != 0)
      return Error(Code::kIo, lg2_error("creating " + path));
    url = fs::absolute(path).string();
  }
  RemotePtr remote;
  if (git_remote_create_anonymous(remote.out(), mirror.get(), url.c_str()) != 0) return Error(Code::kIo, lg2_error("remote " + remote_url));
  LB_ASSIGN_OR_RETURN(auto refs, list_refs(mirror.get()));
  std::vector<std::string> specs;
  for (const auto& [name, oid] : refs) specs.push_back("+" + name + ":" + name);
  std::vector<char*> ptrs;
  for (auto& s : specs) ptrs.push_back(s.data());
  git_strarray arr{ptrs.data(), ptrs.size()};
  git_push_options po = GIT_PUSH_OPTIONS_INIT;
  if (git_remote_push(remote.get(), &arr, &po) != 0) return Error(Code::kIo, lg2_error("pushing to " + remote_url));
  if (is_local(remote_url)) {
    RepoPtr target;
    if (git_repository_open_ext(target.out(), local_path(remote_url).c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) == 0) {
      std::string tdir = git_repository_path(target.get());
      if (!tdir.empty() && tdir.back() == '/') tdir.pop_back();
      LB_ASSIGN_OR_RETURN(auto ptrs2, lfs_pointers(mirror.get()));
      std::error_code ec;
      for (const auto& p : ptrs2) {
        std::string from = lfs_object_path(dir, p.oid), to = lfs_object_path(tdir, p.oid);
        if (fs::exists(to, ec) || !fs::exists(from, ec)) continue;
        LB_RETURN_IF_ERROR(copy_verified(from, to, p));
      }
      if (auto h = head_target(mirror.get()); !h.empty()) git_repository_set_head(target.get(), h.c_str());
    }
  }
  return Status::ok();
}

namespace {

std::string oid_hex(const git_oid* id) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, id);
  return hex;
}

// What every ref reaches and the object database lacks: commits through their parents, trees and
// blobs through the trees (each tree walked once), annotated tags through their targets.
std::vector<std::string> missing_reachable_objects(git_repository* repo, git_odb* odb, const std::map<std::string, std::string>& refs) {
  std::vector<std::string> problems;
  auto missing = [&](const std::string& what) {
    if (problems.size() < 20) problems.push_back(what);
  };
  std::set<std::string> trees_seen;
  std::function<void(const git_oid*)> walk_tree = [&](const git_oid* id) {
    if (!trees_seen.insert(oid_hex(id)).second) return;
    git_tree* tree = nullptr;
    if (git_tree_lookup(&tree, repo, id) != 0) return missing(fmt::format("tree {} is missing", oid_hex(id)));
    for (size_t i = 0; i < git_tree_entrycount(tree); ++i) {
      const git_tree_entry* e = git_tree_entry_byindex(tree, i);
      const git_oid* eid = git_tree_entry_id(e);
      git_object_t type = git_tree_entry_type(e);
      if (type == GIT_OBJECT_TREE) walk_tree(eid);
      else if (type == GIT_OBJECT_BLOB && !git_odb_exists(odb, eid))
        missing(fmt::format("blob {} ({}) is missing", oid_hex(eid), git_tree_entry_name(e)));
      // GIT_OBJECT_COMMIT: a submodule's commit lives in another repository.
    }
    git_tree_free(tree);
  };
  GitPtr<git_revwalk, git_revwalk_free> walk;
  if (git_revwalk_new(walk.out(), repo) != 0) return {lg2_error("walking the history")};
  for (const auto& [name, hex] : refs) {
    git_oid id;
    if (git_oid_fromstr(&id, hex.c_str()) != 0) continue;
    git_object* obj = nullptr;
    if (git_object_lookup(&obj, repo, &id, GIT_OBJECT_ANY) != 0) continue;  // named above
    git_object* peeled = nullptr;
    if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0) {
      if (git_revwalk_push(walk.get(), git_object_id(peeled)) != 0) missing(lg2_error("walking " + name));
      git_object_free(peeled);
    } else if (git_object_peel(&peeled, obj, GIT_OBJECT_TREE) == 0) {  // a ref (or tag) pointing at a tree
      walk_tree(git_object_id(peeled));
      git_object_free(peeled);
    }
    git_object_free(obj);
  }
  git_oid next;
  int rc;
  while ((rc = git_revwalk_next(&next, walk.get())) == 0) {
    git_commit* commit = nullptr;
    if (git_commit_lookup(&commit, repo, &next) != 0) {
      missing(fmt::format("commit {} is missing", oid_hex(&next)));
      continue;
    }
    walk_tree(git_commit_tree_id(commit));
    git_commit_free(commit);
  }
  if (rc != GIT_ITEROVER) missing(lg2_error("walking the history (a parent commit is missing?)"));
  return problems;
}

}  // namespace

std::vector<std::string> verify_mirror(const std::string& dir, const std::map<std::string, std::string>& refs,
                                       const std::vector<LfsPointer>& lfs) {
  init_libgit2();
  std::vector<std::string> problems;
  RepoPtr mirror;
  if (git_repository_open_bare(mirror.out(), dir.c_str()) != 0) return {lg2_error("opening " + dir)};
  auto have = list_refs(mirror.get());
  if (!have) return {have.status().message()};
  for (const auto& [name, oid] : refs) {
    auto it = have->find(name);
    if (it == have->end()) problems.push_back(fmt::format("ref {} is missing", name));
    else if (it->second != oid) problems.push_back(fmt::format("ref {} is at {}, the backup has {}", name, it->second.substr(0, 12), oid.substr(0, 12)));
  }
  for (const auto& [name, oid] : *have)
    if (!refs.count(name)) problems.push_back(fmt::format("ref {} is not in the backup", name));
  // Every object read in full: libgit2 checks each one's hash as it reads it.
  OdbPtr odb;
  if (git_repository_odb(odb.out(), mirror.get()) != 0) return {lg2_error("object database of " + dir)};
  struct Walk {
    git_odb* odb;
    uint64_t objects = 0;
    std::vector<std::string>* problems;
  } walk{odb.get(), 0, &problems};
  int rc = git_odb_foreach(
      odb.get(),
      [](const git_oid* id, void* payload) -> int {
        auto* w = static_cast<Walk*>(payload);
        git_odb_object* obj = nullptr;
        if (git_odb_read(&obj, w->odb, id) != 0) {
          char hex[GIT_OID_HEXSZ + 1];
          git_oid_tostr(hex, sizeof hex, id);
          if (w->problems->size() < 20) w->problems->push_back(lg2_error(fmt::format("object {}", hex)));
        } else {
          git_odb_object_free(obj);
        }
        ++w->objects;
        return 0;
      },
      &walk);
  if (rc != 0) problems.push_back(lg2_error("listing objects of " + dir));
  // Each ref's commit reachable and whole.
  for (const auto& [name, oid] : refs) {
    git_oid id;
    if (git_oid_fromstr(&id, oid.c_str()) != 0) continue;
    git_object* obj = nullptr;
    if (git_object_lookup(&obj, mirror.get(), &id, GIT_OBJECT_ANY) != 0) problems.push_back(lg2_error("ref " + name));
    else git_object_free(obj);
  }
  // Connectivity, as `git fsck --connectivity-only` sees it: every commit reachable from every ref, its
  // tree and every tree and blob below, present (a mirror missing old objects cannot be cloned).
  if (problems.empty()) {
    for (auto& p : missing_reachable_objects(mirror.get(), odb.get(), refs)) problems.push_back(std::move(p));
  }
  std::error_code ec;
  for (const auto& p : lfs) {
    std::string path = lfs_object_path(dir, p.oid);
    if (!fs::exists(path, ec)) problems.push_back(fmt::format("LFS object {} is missing", p.oid));
    else if (file_sha256(path) != p.oid) problems.push_back(fmt::format("LFS object {} does not hash to its name", p.oid));
  }
  return problems;
}

}  // namespace lifeboat::sources::config
