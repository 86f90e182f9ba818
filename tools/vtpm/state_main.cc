// `vtpm state show|rollback`: look at a state directory's generations, and roll it back to the
// previous generation when the user decides so (the daemon never does that on its own unless
// started with `--tpmstate ...,backup`). Composition only: the logic is in state::DirStore.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/log.h"
#include "commands.h"
#include "state/dir_store.h"
#include "state/state_key.h"
#include "state/tpmstate.h"

namespace vtpm::tools {
namespace {

struct StateArgs {
  std::string tpmstate, key;
  bool tpm2 = false, tpm12 = false, json = false, yes = false;
};

int Die(const std::string& msg) {
  std::fprintf(stderr, "vtpm state: %s\n", msg.c_str());
  return 1;
}

// --tpm2 / --tpm12, else whichever family of files the directory holds (TPM 2.0 if none).
state::TpmVersion ChooseVersion(const StateArgs& a, const std::string& dir) {
  if (a.tpm12) return state::TpmVersion::kTpm12;
  if (a.tpm2) return state::TpmVersion::kTpm20;
  auto v2 = state::InspectStateDir(dir, state::TpmVersion::kTpm20);
  auto v12 = state::InspectStateDir(dir, state::TpmVersion::kTpm12);
  if (v2 && v2->empty() && v12 && !v12->empty()) return state::TpmVersion::kTpm12;
  return state::TpmVersion::kTpm20;
}

Result<std::unique_ptr<state::DirStore>> OpenStore(const StateArgs& a) {
  VTPM_ASSIGN_OR_RETURN(state::DirStoreOptions so,
                        state::ParseTpmState(a.tpmstate, /*plain_path=*/true));
  so.tpm_version = ChooseVersion(a, so.directory);
  if (!a.key.empty()) {
    VTPM_ASSIGN_OR_RETURN(so.key, state::LoadKeyOption(a.key, "--key"));
  }
  return state::DirStore::Open(so, StderrLogger("vtpm", spdlog::level::warn));
}

nlohmann::json FileJson(const state::StateFileInfo& f) {
  nlohmann::json j = {{"file", f.file}, {"present", f.present}};
  if (!f.present) return j;
  j["size"] = f.size;
  j["mtime"] =
      fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", std::chrono::floor<std::chrono::seconds>(f.mtime));
  j["sealed"] = f.sealed;
  j["encryption"] = f.cipher ? nlohmann::json(state::CipherName(*f.cipher)) : nlohmann::json();
  j["generation"] = f.generation ? nlohmann::json(*f.generation) : nlohmann::json();
  j["intact"] = !f.damage;
  if (f.damage) j["damage"] = f.damage->message;
  return j;
}

std::string FileLine(const state::StateFileInfo& f) {
  if (!f.present) return fmt::format("  {:<28} absent", f.file);
  std::string what = f.generation ? fmt::format("generation {}", *f.generation)
                                  : std::string(f.damage ? "?" : "no seal (written by swtpm?)");
  return fmt::format("  {:<28} {}, {} bytes, written {:%Y-%m-%d %H:%M:%S} UTC: {}", f.file, what,
                     f.size, std::chrono::floor<std::chrono::seconds>(f.mtime),
                     f.damage ? "DAMAGED -- " + f.damage->message
                     : f.cipher
                         ? fmt::format("intact, encrypted ({})", state::CipherName(*f.cipher))
                         : std::string("intact"));
}

int RunShow(const StateArgs& a) {
  auto store = OpenStore(a);
  if (!store) return Die(store.error().message);
  auto blobs = (*store)->Inspect();
  if (!blobs) return Die(blobs.error().message);
  const Status startable = (*store)->CheckStartable();
  if (a.json) {
    nlohmann::json out = {{"directory", (*store)->directory()},
                          {"startable", startable.has_value()},
                          {"blobs", nlohmann::json::array()}};
    if (!startable) out["error"] = startable.error().message;
    for (const auto& b : *blobs) {
      out["blobs"].push_back({{"name", b.name},
                              {"newest", FileJson(b.newest)},
                              {"previous", FileJson(b.previous)},
                              {"rejected", FileJson(b.rejected)}});
    }
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("TPM state in %s\n", (*store)->directory().c_str());
    if (blobs->empty()) std::printf("  no state files: a new TPM would be made\n");
    for (const auto& b : *blobs) {
      std::printf("%s\n", b.name.c_str());
      for (const auto* f : {&b.newest, &b.previous, &b.rejected}) {
        if (f->present || f == &b.newest) std::printf("%s\n", FileLine(*f).c_str());
      }
    }
    if (startable) {
      std::printf("The TPM starts from this state.\n");
    } else {
      std::printf("The TPM does NOT start from this state: %s\n",
                  startable.error().message.c_str());
    }
  }
  return startable ? 0 : 1;
}

int RunRollback(const StateArgs& a) {
  auto store = OpenStore(a);
  if (!store) return Die(store.error().message);
  if (auto st = (*store)->Lock(); !st) return Die(st.error().message);
  auto plan = (*store)->DescribeRollback();
  if (!plan) return Die(plan.error().message);
  std::printf("%s", plan->c_str());
  if (!a.yes) {
    std::printf("Nothing was changed. Run again with --yes to do it.\n");
    return 1;
  }
  if (auto st = (*store)->RollBackToPrevious(); !st) return Die(st.error().message);
  std::printf("Done: the TPM starts from the previous generation.\n");
  return 0;
}

}  // namespace

Runner AddStateCommand(CLI::App& app) {
  auto a = std::make_shared<StateArgs>();
  CLI::App* s = app.add_subcommand(
      "state", "Inspect a TPM state directory's generations; roll it back when you decide to");
  s->require_subcommand(1);
  auto common = [&](CLI::App* c) {
    c->add_option("--tpmstate,--tpm-state", a->tpmstate, "State directory: dir=DIR")->required();
    c->add_flag("--tpm2", a->tpm2, "TPM 2.0 state files (default: whichever the directory holds)");
    c->add_option("--key", a->key,
                  "The state key, as for `vtpm socket --key` (encrypted state is checked by its "
                  "seal without it; rollback needs it)");
    c->add_flag("--tpm12", a->tpm12, "TPM 1.2 state files");
  };
  CLI::App* show = s->add_subcommand(
      "show",
      "List each state file's generation, size, time and integrity; exit 1 if the TPM "
      "would not start from them");
  common(show);
  show->add_flag("--json", a->json, "Print JSON");
  CLI::App* rb =
      s->add_subcommand("rollback",
                        "Make the previous generation (<file>.bak) the TPM's state, keeping the "
                        "newest as <file>.rejected; prints what is lost. Needs --yes to act");
  common(rb);
  rb->add_flag("--yes", a->yes, "Do it (without it, only print what would be done)");
  return [a, show, rb] {
    if (show->parsed()) return RunShow(*a);
    if (rb->parsed()) return RunRollback(*a);
    return 2;
  };
}

}  // namespace vtpm::tools
