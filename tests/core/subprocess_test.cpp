// Values handed to a shell command travel as environment variables: quotes, $( ) and backticks in
// them arrive verbatim and run nothing; the command's exit code comes back.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../repo/test_repo.h"
#include "core/subprocess.h"

namespace lifeboat {
namespace {

TEST(RunShellWithEnv, ValuesArriveVerbatimAndRunNothing) {
  testing::TempDir dir;
  std::string hostile = "x'$(touch " + dir.path + "/pwned)'`touch " + dir.path + "/pwned2`\"; touch " + dir.path + "/pwned3";
  std::string out = dir.path + "/out";
  auto rc = run_shell_with_env("printf %s \"$LIFEBOAT_SOURCE\" > '" + out + "'", {{"LIFEBOAT_SOURCE", hostile}});
  ASSERT_TRUE(rc) << rc.status().message();
  EXPECT_EQ(*rc, 0);
  std::stringstream got;
  got << std::ifstream(out).rdbuf();
  EXPECT_EQ(got.str(), hostile);
  for (const char* f : {"/pwned", "/pwned2", "/pwned3"}) EXPECT_FALSE(std::filesystem::exists(dir.path + f)) << f;
  auto failing = run_shell_with_env("exit 7", {});
  ASSERT_TRUE(failing);
  EXPECT_EQ(*failing, 7);
}

}  // namespace
}  // namespace lifeboat
