// Man page (roff) and bash completion from the CLI11 command tree.
#include "cli/docgen.h"

#include <fmt/format.h>

#include <functional>
#include <vector>

namespace lifeboat::cli {

namespace {

// roff: a leading dot or quote would start a request; backslashes and hyphens need escapes.
std::string roff(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\e";
    else if (c == '-') out += "\\-";
    else out += c;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

std::vector<const CLI::App*> visible_subcommands(const CLI::App& app) {
  std::vector<const CLI::App*> out;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); }))
    out.push_back(sub);
  return out;
}

std::string option_names(const CLI::Option* o) {
  std::string names;
  for (const auto& s : o->get_snames()) names += (names.empty() ? "-" : ", -") + s;
  for (const auto& l : o->get_lnames()) names += (names.empty() ? "--" : ", --") + l;
  return names;
}

void options_section(const CLI::App& app, std::string& out) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_lnames().empty() && o->get_snames().empty()) continue;  // positionals
    if (o->get_lnames().size() == 1 && o->get_lnames()[0] == "help") continue;
    std::string names = option_names(o);
    if (o->get_type_size() != 0 && !o->get_type_name().empty()) names += " " + o->get_type_name();
    out += ".TP\n.B " + roff(names) + "\n" + roff(o->get_description()) + "\n";
  }
}

void walk(const CLI::App& app, const std::string& prefix, const std::function<void(const CLI::App&, const std::string&)>& fn) {
  for (const CLI::App* sub : visible_subcommands(app)) {
    std::string name = prefix.empty() ? sub->get_name() : prefix + " " + sub->get_name();
    fn(*sub, name);
    walk(*sub, name, fn);
  }
}

}  // namespace

std::string man_page(const CLI::App& app, const std::string& version) {
  std::string out = fmt::format(".TH LIFEBOAT 1 \"\" \"lifeboat {}\" \"User Commands\"\n", version);
  std::string about = app.get_description();
  if (about.rfind("lifeboat: ", 0) == 0) about = about.substr(10);
  out += ".SH NAME\nlifeboat \\- " + roff(about) + "\n";
  out += ".SH SYNOPSIS\n.B lifeboat\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]\n";
  out += ".SH DESCRIPTION\nOne binary and one declarative plan (lifeboat.yaml) back up MongoDB, Firestore, Google Cloud "
         "Storage buckets, ML model artifacts, application config and secrets, and files into one encrypted, "
         "deduplicated repository; restore any of them to a date or a second; and prove by drill that every "
         "system can be restored. The full reference is in /usr/share/doc/lifeboat.\n";
  out += ".SH GLOBAL OPTIONS\n";
  options_section(app, out);
  out += ".SH COMMANDS\n";
  walk(app, "", [&](const CLI::App& sub, const std::string& name) {
    out += ".SS " + roff(name) + "\n" + roff(sub.get_description()) + "\n";
    options_section(sub, out);
  });
  out += ".SH EXIT STATUS\n0 success; 1 error; 3 partial success (files that could not be read, an oplog gap: the snapshot "
         "was saved and the problem named); 10 no repository; 11 the repository is locked; 12 wrong password; 130 "
         "interrupted.\n";
  out += ".SH ENVIRONMENT\nLIFEBOAT_REPOSITORY, LIFEBOAT_PASSWORD, LIFEBOAT_PLAN, GOOGLE_APPLICATION_CREDENTIALS, "
         "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.\n";
  return out;
}

std::string bash_completion(const CLI::App& app) {
  // One case per command path: the words so far (commands only) select what may follow.
  std::string cases;
  auto words_for = [](const CLI::App& a) {
    std::string w;
    for (const CLI::App* sub : visible_subcommands(a)) w += sub->get_name() + " ";
    for (const CLI::Option* o : a.get_options())
      for (const auto& l : o->get_lnames()) w += "--" + l + " ";
    if (!w.empty()) w.pop_back();
    return w;
  };
  cases += fmt::format("    \"\") words=\"{}\" ;;\n", words_for(app));
  walk(app, "", [&](const CLI::App& sub, const std::string& name) {
    cases += fmt::format("    \"{}\") words=\"{}\" ;;\n", name, words_for(sub));
  });
  return fmt::format(R"(# bash completion for lifeboat, generated from its command tree (lifeboat __generate bash)
_lifeboat() {{
  local cur path="" w i words
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${{COMP_WORDS[i]}}"
    case "$w" in -*) continue ;; esac
    case "${{path:+$path }}$w" in
{}      *) break ;;
    esac
    path="${{path:+$path }}$w"
  done
  case "$path" in
{}  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [ ${{#COMPREPLY[@]}} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}}
complete -F _lifeboat lifeboat
)",
                     [&] {
                       std::string known;
                       walk(app, "", [&](const CLI::App&, const std::string& name) { known += "      \"" + name + "\") ;;\n"; });
                       return known;
                     }(),
                     cases);
}

}  // namespace lifeboat::cli
