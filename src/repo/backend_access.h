// The storage behind a Repository, for the repository layer's own files only (locks, check, prune,
// repair, the pack reader and the write session). Everything above `repo` goes through Repository's
// methods (forget_snapshot, list_pack_files, …), so nothing deletes a file behind its back.
#pragma once

#include "repo/repository.h"

namespace lifeboat::repo {

struct BackendAccess {
  static storage::Backend& of(Repository& repo) { return repo.backend(); }
};

}  // namespace lifeboat::repo
