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
// file (hard links included: each path is read), symlink and special file (of the same type), the
// metadata a restore sets (mode, modification time, xattrs, owner when root, device numbers), and
// what the target holds beyond the tree.
struct TreeVerification {
  uint64_t files_expected = 0, files_found = 0, files_verified = 0;
  uint64_t dirs_expected = 0, dirs_found = 0, others_expected = 0, others_found = 0;
  std::vector<std::string> problems;  // the first few, with their paths
  std::vector<std::string> missing;   // the first few absent (or of another type)
  uint64_t metadata_count = 0, extra_count = 0;
  std::vector<std::string> metadata;  // the first few whose mode, times, owner, xattrs or device differ
  std::vector<std::string> extra;     // the first few entries the target holds and the tree does not
};
// `roots`: the backed-up paths (absolute, as the snapshot records them). The directories above them
// exist in the tree only as the way down to them: they are checked for presence, not for metadata
// or extra entries (a restore into "/" meets a whole system there). Empty: every directory is content.
Result<TreeVerification> verify_restored_tree(Repository& repo, const BlobId& tree, const std::string& target,
                                              const std::vector<std::string>& roots = {});

}  // namespace lifeboat::repo
