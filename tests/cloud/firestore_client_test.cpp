// Firestore's runQuery answer read one document at a time (each_query_document): documents in order,
// the last name and read time, and every way an answer can be bad stops with a clear error.
#include <gtest/gtest.h>

#include "cloud/firestore_client.h"

namespace lifeboat::cloud {
namespace {

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

struct Seen {
  std::vector<std::string> names;
  std::function<Status(nlohmann::json&&)> fn() {
    return [this](nlohmann::json&& d) {
      names.push_back(d.value("name", ""));
      return Status::ok();
    };
  }
};

TEST(FirestoreQueryAnswer, DocumentsArriveOneAtATimeInOrder) {
  Seen seen;
  auto end = each_query_document(bytes_of(R"([{"document":{"name":"p/a","fields":{"x":{"integerValue":"1"}}},"readTime":"T1"},
                                              {"document":{"name":"p/b"},"readTime":"T1"},
                                              {"document":{"name":"p/c"},"readTime":"T2"}])"),
                                 "reading", seen.fn());
  ASSERT_TRUE(end.is_ok()) << end.status().message();
  EXPECT_EQ(seen.names, (std::vector<std::string>{"p/a", "p/b", "p/c"}));
  EXPECT_EQ(end->documents, 3u);
  EXPECT_EQ(end->last_name, "p/c");
  EXPECT_EQ(end->read_time, "T2");
  // An empty range: only a read time.
  Seen none;
  auto empty = each_query_document(bytes_of(R"([{"readTime":"T3"}])"), "reading", none.fn());
  ASSERT_TRUE(empty.is_ok());
  EXPECT_EQ(empty->documents, 0u);
  EXPECT_EQ(empty->read_time, "T3");
}

TEST(FirestoreQueryAnswer, BadAnswersStopWithTheirCause) {
  struct Case {
    const char* reply;
    const char* message;
    size_t handed;
  };
  const Case cases[] = {
      {R"([{"document":{"name":"p/a"}},{"error":{"code":14,"message":"gone"}},{"document":{"name":"p/c"}}])",
       "the server stopped the answer", 1},
      {R"([{"document":{"name":"p/a"}},{"document":{"name":"p/b"},"readT)", "unreadable or cut reply", 1},
      {R"({"document":{"name":"p/a"}})", "not a list", 0},
  };
  for (const auto& c : cases) {
    Seen seen;
    auto end = each_query_document(bytes_of(c.reply), "reading p", seen.fn());
    ASSERT_FALSE(end.is_ok()) << c.reply;
    EXPECT_EQ(end.status().code(), Code::kUnavailable) << c.reply;
    EXPECT_NE(end.status().message().find(c.message), std::string::npos) << end.status().message();
    EXPECT_EQ(seen.names.size(), c.handed) << c.reply;
  }
}

TEST(FirestoreQueryAnswer, TheCallersErrorStopsTheRest) {
  size_t calls = 0;
  auto end = each_query_document(bytes_of(R"([{"document":{"name":"p/a"}},{"document":{"name":"p/b"}},{"document":{"name":"p/c"}}])"),
                                 "reading", [&](nlohmann::json&&) -> Status {
                                   ++calls;
                                   return calls == 2 ? Error(Code::kIo, "disk full") : Status::ok();
                                 });
  ASSERT_FALSE(end.is_ok());
  EXPECT_EQ(end.status().message(), "disk full");
  EXPECT_EQ(calls, 2u);
}

}  // namespace
}  // namespace lifeboat::cloud
