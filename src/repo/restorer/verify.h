// Verification of a restored tree, read from the target: each file's bytes against its blob IDs.
#pragma once

#include <string>
#include <vector>

#include "repo/repository.h"

namespace lifeboat::repo {

// Reads a restored file through `fd` and checks each blob-sized piece against its content ID, and
// that nothing follows the last one.
Status verify_file_content(Repository& repo, int fd, const Node& node, const std::string& path);

// What a restored target holds compared with the tree, read from the target: every directory,
// file (hard links included: each path is read), symlink and special file.
struct TreeVerification {
  uint64_t files_expected = 0, files_found = 0, files_verified = 0;
  uint64_t dirs_expected = 0, dirs_found = 0, others_expected = 0, others_found = 0;
  std::vector<std::string> problems;  // the first few, with their paths
  std::vector<std::string> missing;   // the first few absent (or of another type)
};
Result<TreeVerification> verify_restored_tree(Repository& repo, const BlobId& tree, const std::string& target);

}  // namespace lifeboat::repo
