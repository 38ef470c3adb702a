// The secret versions a backup enabled to read them. Secret Manager serves no payload of a DISABLED
// version, so a backup given read_disabled enables one for the moment of reading it: the intent is
// recorded here (written and synced) before the version is enabled and removed once it is disabled
// again. A backup killed in between (kill -9, a lost machine) leaves its record, and the next secrets
// backup disables every such version before it reads anything — a revoked credential never stays
// valid because a backup was interrupted.
//
// One file per version in $XDG_STATE_HOME/lifeboat/secret-versions/ (else ~/.local/state/…), named
// by a hash of the endpoint and the version, holding {endpoint, version, pid, host, since}; a record
// of a process still running on this host is left to it.
#pragma once

#include <string>
#include <vector>

#include "cloud/secret_manager.h"
#include "core/status.h"

namespace lifeboat::sources::config {

class EnabledVersionJournal {
 public:
  explicit EnabledVersionJournal(const cloud::SecretManagerClient& client);
  static std::string directory();

  // Before enabling `version` (projects/P/secrets/S/versions/N).
  Status record(const std::string& version);
  // Once it is disabled again.
  Status forget(const std::string& version);
  // Every version an interrupted backup left enabled (records of this endpoint whose process is gone)
  // disabled again and its record removed; returns one line per version. A version that cannot be
  // disabled fails it (its record stays), naming it: nothing is read while one may still be valid.
  Result<std::vector<std::string>> complete();

 private:
  std::string path_of(const std::string& version) const;
  const cloud::SecretManagerClient& client_;
};

}  // namespace lifeboat::sources::config
