// Config syntax checks: each syntax's first problem with its line, no quoted content in messages,
// the extra check commands, and the names of git sources.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/subprocess.h"
#include "sources/config/config.h"
#include "sources/config/config_check.h"

namespace lifeboat::sources::config {
namespace {

namespace fs = std::filesystem;

ConfigProblem only_problem(const std::string& name, const std::string& text) {
  auto p = check_text(name, syntax_of(name), text);
  EXPECT_EQ(p.size(), 1u) << name;
  return p.empty() ? ConfigProblem{} : p[0];
}

TEST(ConfigCheck, SyntaxByName) {
  EXPECT_EQ(syntax_of("/a/b.JSON"), Syntax::kJson);
  EXPECT_EQ(syntax_of("x.yml"), Syntax::kYaml);
  EXPECT_EQ(syntax_of("x.yaml"), Syntax::kYaml);
  EXPECT_EQ(syntax_of("pyproject.toml"), Syntax::kToml);
  EXPECT_EQ(syntax_of("php.ini"), Syntax::kIni);
  EXPECT_EQ(syntax_of(".env"), Syntax::kEnv);
  EXPECT_EQ(syntax_of("prod.env"), Syntax::kEnv);
  EXPECT_EQ(syntax_of(".env.production"), Syntax::kEnv);
  EXPECT_EQ(syntax_of("environment.txt"), Syntax::kNone);
  EXPECT_EQ(syntax_of("README"), Syntax::kNone);
}

TEST(ConfigCheck, ValidFilesPass) {
  EXPECT_TRUE(check_text("a.json", Syntax::kJson, "{\"a\": [1, 2, {\"b\": null}]}").empty());
  EXPECT_TRUE(check_text("a.yaml", Syntax::kYaml, "a: 1\n---\nb: [1, 2]\n").empty());
  EXPECT_TRUE(check_text("a.toml", Syntax::kToml, "[s]\nk = \"v\"\n[[arr]]\nx = 1\n").empty());
  EXPECT_TRUE(check_text("a.ini", Syntax::kIni, "; c\n[s]\nk = v\nk2: v2\n").empty());
  EXPECT_TRUE(check_text("long.ini", Syntax::kIni, "[s]\nkey = " + std::string(5000, 'x') + "\nk2 = v\n").empty());
  EXPECT_TRUE(check_text(".env", Syntax::kEnv, "# c\n\nA=1\nexport B='two words'\nC=\"q \\\" x\" # note\nD=\n").empty());
}

TEST(ConfigCheck, EachSyntaxNamesTheLine) {
  EXPECT_EQ(only_problem("a.json", "{\n  \"a\": 1,\n  \"b\": nope\n}\n").line, 3);
  EXPECT_EQ(only_problem("a.json", "{\"a\": 1").line, 1);
  EXPECT_EQ(only_problem("a.yaml", "a: 1\nb:\n  - x\n  c: [unclosed\n").line, 4);
  EXPECT_EQ(only_problem("a.toml", "[t]\nok = 1\nnot valid line\n").line, 3);
  EXPECT_EQ(only_problem("a.ini", "[s]\na = 1\nno equals here\n").line, 3);
  EXPECT_EQ(only_problem("a.ini", "[s]\na = " + std::string(300, 'y') + "\nbroken\n").line, 3);
  EXPECT_EQ(only_problem(".env", "A=1\nB=\xff\xfe\n").line, 2);
  EXPECT_EQ(only_problem(".env", "A=1\n\nthis is not an assignment\n").line, 3);
  EXPECT_EQ(only_problem(".env", "A='unterminated\n").line, 1);
  EXPECT_EQ(only_problem(".env", "A=\"x\" trailing\n").line, 1);
  auto p = only_problem("dir/a.toml", "[t]\nok = 1\nnot valid line\n");
  EXPECT_EQ(p.to_string().rfind("dir/a.toml:3: ", 0), 0u) << p.to_string();
}

TEST(ConfigCheck, MessagesNeverQuoteTheFile) {
  const std::string secret = "hunter2-hunter2";
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"a.json", "{\"password\": " + secret + "}"},
           {"a.json", "{\"password\": \"" + secret + "\" \"x\"}"},
           {"a.yaml", "password: \"" + secret + "\n  x: ["},
           {"a.toml", "password = " + secret + "\n"},
           {"a.toml", "[" + secret + "\n"},
           {"a.ini", "[s]\n" + secret + "\n"},
           {".env", secret + "\n"},
           {".env", "A='" + secret + "\n"}}) {
    auto problems = check_text(name, syntax_of(name), text);
    ASSERT_EQ(problems.size(), 1u) << name << ": " << text;
    EXPECT_EQ(problems[0].problem.find("hunter2"), std::string::npos) << problems[0].to_string();
  }
  EXPECT_EQ(redact_quoted("saw 'x' and \"yz\" then 'open"), "saw '…' and \"…\" then 'open");
}

TEST(ConfigCheck, TreeRunsCommandsAndSkipsExcluded) {
  fs::path dir = fs::temp_directory_path() / ("lb_cfgcheck_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub" / "skip");
  std::ofstream(dir / "ok.json") << "{}";
  std::ofstream(dir / "sub" / "bad.yaml") << "a: [";
  std::ofstream(dir / "sub" / "skip" / "bad.json") << "{";
  std::ofstream(dir / "sub" / "schema.yaml") << "kind: x\n";
  fs::create_symlink(dir / "sub" / "bad.yaml", dir / "link.yaml");
  auto r = check_tree({dir.string()}, {"skip"}, {{"schema.yaml", "grep -q '^version:' {file}", 10}});
  EXPECT_EQ(r.files_checked, 3u);  // ok.json, bad.yaml, schema.yaml (the link and skip/ are not read)
  ASSERT_EQ(r.problems.size(), 2u);
  EXPECT_EQ(r.problems[0].file, (dir / "sub" / "bad.yaml").string());
  EXPECT_EQ(r.problems[1].file, (dir / "sub" / "schema.yaml").string());
  EXPECT_NE(r.problems[1].problem.find("exited 1"), std::string::npos) << r.problems[1].problem;
  fs::remove_all(dir);
}

TEST(Subprocess, ExitStatusOutputAndTimeLimit) {
  auto ok = run_command({"/bin/sh", "-c", "echo hello; echo err >&2"}, 10);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_TRUE(ok->ok());
  EXPECT_EQ(ok->output_tail, "hello\nerr\n");
  auto bad = run_command({"/bin/sh", "-c", "exit 7"}, 10);
  ASSERT_TRUE(bad.is_ok());
  EXPECT_EQ(bad->exit_code, 7);
  EXPECT_EQ(bad->describe(), "exited 7");
  // A command that outlives its limit is killed with what it started (the sleep holds the pipe).
  auto start = std::chrono::steady_clock::now();
  auto slow = run_command({"/bin/sh", "-c", "sleep 30 & sleep 30"}, 1);
  ASSERT_TRUE(slow.is_ok());
  EXPECT_TRUE(slow->timed_out);
  EXPECT_FALSE(slow->ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  auto missing = run_command({"/nonexistent/tool"}, 10);
  ASSERT_TRUE(missing.is_ok());
  EXPECT_EQ(missing->exit_code, 127);
  auto tail = run_command({"/bin/sh", "-c", "seq 1 100000"}, 10, 16);
  ASSERT_TRUE(tail.is_ok());
  EXPECT_EQ(tail->output_tail, "98\n99999\n100000\n");
}

TEST(Subprocess, FillCommandQuotesEachValue) {
  EXPECT_EQ(*fill_command("check {file} --v {version}", {{"{file}", "/a b/it's.yaml"}, {"{version}", "3"}}),
            "check '/a b/it'\\''s.yaml' --v '3'");
  // A value holding another placeholder is not filled again.
  EXPECT_EQ(*fill_command("{a} {b}", {{"{a}", "{b}"}, {"{b}", "x"}}), "'{b}' 'x'");
}

// Wherever the placeholder stands — unquoted, in "…", in '…', beside other text — the file name
// reaches the command as it is and nothing in it runs. The expected output is the name itself.
TEST(Subprocess, FillCommandIsSafeInEveryQuoteContext) {
  const std::string hostile = "a $(touch /tmp/lb-fill-pwned) `touch /tmp/lb-fill-pwned` \"q\" 'q' \\ $HOME b";
  const char* templates[] = {
      "printf %s {x}",          "printf %s \"{x}\"",         "printf %s '{x}'",           "printf %s \"pre-{x}-post\"",
      "printf %s 'pre-{x}-post'", "printf %s pre-{x}-post",   "printf '%s' \"{x}\"",       "printf %s \"it's {x}\"",
  };
  for (const char* t : templates) {
    unlink("/tmp/lb-fill-pwned");
    auto cmd = fill_command(t, {{"{x}", hostile}});
    ASSERT_TRUE(cmd.is_ok()) << t;
    auto r = run_command({"/bin/sh", "-c", *cmd}, 10);
    ASSERT_TRUE(r.is_ok()) << t;
    std::string want = hostile;
    std::string tt = t;
    if (tt.find("pre-") != std::string::npos) want = "pre-" + hostile + "-post";
    if (tt.find("it's") != std::string::npos) want = "it's " + hostile;
    EXPECT_EQ(r->output_tail, want) << t << "\n" << *cmd;
    EXPECT_NE(access("/tmp/lb-fill-pwned", F_OK), 0) << "ran a command from the value: " << t;
  }
}

TEST(Subprocess, FillCommandRefusesAPlaceholderTheShellWouldParseAgain) {
  for (const char* t : {"echo $(cat {x})", "echo \"$(cat {x})\"", "echo `cat {x}`"}) {
    auto cmd = fill_command(t, {{"{x}", "f"}});
    ASSERT_FALSE(cmd.is_ok()) << t;
    EXPECT_NE(cmd.status().message().find("{x} stands inside $( ) or backticks"), std::string::npos) << cmd.status().message();
  }
  EXPECT_TRUE(fill_command("echo $(date) {x} `date`", {{"{x}", "f"}}).is_ok());
  EXPECT_TRUE(fill_command("echo '$(' {x}", {{"{x}", "f"}}).is_ok());  // quoted: no substitution opens
}

TEST(ConfigSource, GitSourceNames) {
  EXPECT_EQ(parse_git_source("/srv/repos/app.git").name, "app");
  EXPECT_EQ(parse_git_source("/srv/work/app/").name, "app");
  EXPECT_EQ(parse_git_source("/srv/work/app/.git").name, "app");
  EXPECT_EQ(parse_git_source("https://git.example.com/team/infra.git").name, "infra");
  EXPECT_EQ(parse_git_source("git@example.com:team/infra.git").name, "infra");
  auto named = parse_git_source("cfg=https://example.com/a=b.git");
  EXPECT_EQ(named.name, "cfg");
  EXPECT_EQ(named.source, "https://example.com/a=b.git");
  EXPECT_EQ(parse_git_source("https://example.com/x?a=b").source, "https://example.com/x?a=b");
}

}  // namespace
}  // namespace lifeboat::sources::config
