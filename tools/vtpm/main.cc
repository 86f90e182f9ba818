// vtpm: a virtual TPM for virtual machines. This main() only composes subcommands.
#include <array>
#include <cstdio>
#include <string_view>
#include <vector>

#include "commands.h"

namespace {

struct Subcommand {
  std::string_view name;
  vtpm::tools::Runner (*add)(CLI::App&);
};

constexpr std::array<Subcommand, 4> kSubcommands = {{
    {"socket", vtpm::tools::AddSocketCommand},
    {"setup", vtpm::tools::AddSetupCommand},
    {"ek", vtpm::tools::AddEkCommand},
    {"state", vtpm::tools::AddStateCommand},
}};

}  // namespace

int main(int argc, char** argv) {
  // Installed under swtpm's names (libexec/vtpm/swtpm, .../swtpm_setup: a directory put first in
  // libvirtd's PATH), vtpm answers as those programs: `swtpm socket ...` is already our
  // command line, `swtpm_setup ...` is `vtpm setup ...`.
  std::vector<char*> args(argv, argv + argc);
  static char kSetup[] = "setup";
  const std::string_view self(argv[0]);
  const std::string_view base = self.substr(self.find_last_of('/') + 1);
  if (base == "swtpm_setup") args.insert(args.begin() + 1, kSetup);
  argc = static_cast<int>(args.size());
  argv = args.data();
  CLI::App app{"vtpm: a virtual TPM for virtual machines (libtpms engine, swtpm-compatible)"};
  app.set_version_flag("--version", std::string("vtpm ") + VTPM_VERSION);
  app.require_subcommand(1);
  // When argv[1] names a subcommand, only its options are built: constructing CLI11's option
  // tables for every subcommand costs more than the daemon's own start-up work (measured with
  // callgrind), and the daemon's start-up latency is what a VM start waits for.
  const Subcommand* chosen = nullptr;
  for (const auto& s : kSubcommands) {
    if (argc > 1 && s.name == argv[1]) chosen = &s;
  }
  std::array<vtpm::tools::Runner, kSubcommands.size()> runners;
  for (size_t i = 0; i < kSubcommands.size(); ++i) {
    if (chosen == nullptr || chosen == &kSubcommands[i]) runners[i] = kSubcommands[i].add(app);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (size_t i = 0; i < kSubcommands.size(); ++i) {
    if (runners[i] && app.got_subcommand(std::string(kSubcommands[i].name))) return runners[i]();
  }
  return 2;
}
