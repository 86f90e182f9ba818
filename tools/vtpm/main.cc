// vtpm: a virtual TPM for virtual machines. This main() only composes subcommands.
#include <cstdio>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"vtpm: a virtual TPM for virtual machines (libtpms engine, swtpm-compatible)"};
  app.set_version_flag("--version", std::string("vtpm ") + VTPM_VERSION);
  app.require_subcommand(1);
  vtpm::tools::Runner socket = vtpm::tools::AddSocketCommand(app);
  vtpm::tools::Runner setup = vtpm::tools::AddSetupCommand(app);
  vtpm::tools::Runner ek = vtpm::tools::AddEkCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.got_subcommand("socket")) return socket();
  if (app.got_subcommand("setup")) return setup();
  if (app.got_subcommand("ek")) return ek();
  return 2;
}
