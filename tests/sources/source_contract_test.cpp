// What every source kind's entry must hold to, run over the registry: a new kind inherits these.
// - it names no other kind (no file of its folder includes another kind's headers);
// - its parser refuses a setting it does not know, naming the key;
// - its default newest point is the newest of its own snapshots for that plan source.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "sources/registry.h"

namespace lifeboat::sources {
namespace {

namespace fs = std::filesystem;

TEST(SourceContract, NoKindIncludesAnotherKind) {
  fs::path root = fs::path(LIFEBOAT_SOURCE_DIR) / "src" / "sources";
  std::regex include_re(R"re(#include "sources/([a-z_]+)/)re");
  size_t files = 0;
  for (const auto& dir : fs::directory_iterator(root)) {
    if (!dir.is_directory()) continue;
    std::string kind = dir.path().filename();
    for (const auto& f : fs::directory_iterator(dir.path())) {
      std::ifstream in(f.path());
      std::string line;
      ++files;
      while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_search(line, m, include_re)) {
          EXPECT_EQ(m[1].str(), kind) << f.path() << " includes another kind's header: " << line;
        }
      }
    }
  }
  EXPECT_GT(files, 20u);  // the walk found the kinds' files
}

TEST(SourceContract, EveryKindRefusesAnUnknownSettingByName) {
  ASSERT_FALSE(source_kinds().empty());
  for (const auto* kind : source_kinds()) {
    ASSERT_TRUE(kind->parse) << kind->name;
    ASSERT_TRUE(kind->backup && kind->restore && kind->validate) << kind->name;
    std::vector<SettingsProblem> problems;
    auto parsed = kind->parse(nlohmann::json{{"no_such_setting", 1}}, SettingsFor::kPlan, problems);
    EXPECT_EQ(parsed, nullptr) << kind->name;
    bool named = false;
    for (const auto& p : problems) named = named || p.key == "no_such_setting";
    EXPECT_TRUE(named) << kind->name << " did not name the unknown key";
  }
}

TEST(SourceContract, EveryKindHasANewestPointAndChecks) {
  for (const auto* kind : source_kinds()) {
    EXPECT_TRUE(kind->newest_point) << kind->name;
    EXPECT_FALSE(kind->validations.empty()) << kind->name;
  }
}

repo::SnapshotRef snap(const std::string& id, const std::string& source, const std::string& tag, int64_t t) {
  repo::SnapshotRef r;
  r.id = id;
  r.snapshot.source = source;
  r.snapshot.tags = {tag};
  r.snapshot.time_ns = t;
  return r;
}

TEST(SourceContract, DefaultNewestPointIsTheNewestOwnSnapshot) {
  const auto* files = find_source_kind("files");
  ASSERT_NE(files, nullptr);
  std::vector<repo::SnapshotRef> all = {snap("a", "files", source_tag("docs"), 100), snap("b", "files", source_tag("docs"), 200),
                                        snap("c", "files", source_tag("other"), 300), snap("d", "config", source_tag("docs"), 400)};
  EXPECT_EQ(files->newest_point(all, "docs"), std::optional<int64_t>(200));
  EXPECT_EQ(files->newest_point(all, "none"), std::nullopt);
  auto at = newest_snapshot(all, "files", "docs", 150);
  ASSERT_TRUE(at);
  EXPECT_EQ(at->id, "a");
  EXPECT_FALSE(newest_snapshot(all, "files", "docs", 50));
}

}  // namespace
}  // namespace lifeboat::sources
