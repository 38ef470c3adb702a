// AtomicFileWriter: the file appears whole at commit, and not at all without one (a download that
// failed half-way leaves nothing under the name, and no temporary file beside it).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"

namespace lifeboat {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(AtomicFileWriter, AppearsWholeOnCommitAndNotAtAllWithout) {
  auto dir = std::filesystem::temp_directory_path() / ("lb-atomic-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string path = (dir / "object").string();
  {
    auto w = AtomicFileWriter::open(path);
    ASSERT_TRUE(w.is_ok()) << w.status().message();
    ASSERT_TRUE(w->write(as_bytes("half of ")).is_ok());
    EXPECT_FALSE(std::filesystem::exists(path)) << "nothing under the name before the commit";
  }  // destroyed without a commit
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "the temporary file is removed";

  ASSERT_TRUE(write_file_atomic(path, "old").is_ok());
  auto w = AtomicFileWriter::open(path);
  ASSERT_TRUE(w.is_ok());
  ASSERT_TRUE(w->write(as_bytes("new ")).is_ok());
  EXPECT_EQ(slurp(path), "old") << "the old content stays until the commit";
  ASSERT_TRUE(w->write(as_bytes("content")).is_ok());
  ASSERT_TRUE(w->commit().is_ok());
  EXPECT_EQ(slurp(path), "new content");
  EXPECT_FALSE(w->commit().is_ok()) << "a second commit is refused";
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lifeboat
