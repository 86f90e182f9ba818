// vtpm: a virtual TPM for virtual machines. This main() only composes subcommands.
#include <array>
#include <cstdio>
#include <string_view>

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
