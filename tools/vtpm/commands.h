// Subcommands of the `vtpm` binary; each registers its options and returns a runner.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace vtpm::tools {

using Runner = std::function<int()>;

// `vtpm socket`: the swtpm-compatible daemon.
Runner AddSocketCommand(CLI::App& app);
// `vtpm setup`: swtpm_setup-compatible provisioning; `vtpm ek`: print EKs and certificates.
Runner AddSetupCommand(CLI::App& app);
Runner AddEkCommand(CLI::App& app);
// `vtpm state show|rollback`: a state directory's generations; the consented rollback.
Runner AddStateCommand(CLI::App& app);

}  // namespace vtpm::tools
