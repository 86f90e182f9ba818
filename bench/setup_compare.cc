// vtpm setup vs swtpm_setup, paired: each round runs both tools with the same arguments on
// fresh state directories, alternating which goes first, and reports medians and the ratio.
//
//   build/bench/setup_compare [--rounds N] [--scenario full|ek|state] [--vtpm-own-ca]
//                             [--vtpm PATH] [--swtpm-setup PATH]
//
// Both tools get the identical argument list, including --config pointing at an
// swtpm_setup.conf whose swtpm-localca.conf names a CA made once before timing starts; vtpm
// setup honours that configuration and signs with the same CA (RSA-3072) that swtpm_localca
// uses. With --vtpm-own-ca, vtpm setup also gets --ca-dir and signs with its default local CA
// (ECDSA P-384) instead: each tool with its own CA. One untimed warm-up run of each tool
// precedes the measured rounds.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

struct Args {
  int rounds = 20;
  std::string scenario = "full";
  std::string vtpm;
  std::string swtpm_setup = "swtpm_setup";
  bool vtpm_own_ca = false;
};

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "setup_compare: %s\n", msg.c_str());
  std::exit(1);
}

// Runs argv with stdout/stderr to /dev/null; returns wall seconds, dies on failure.
double Run(const std::vector<std::string>& argv) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid;
  int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) Die("cannot run " + argv[0] + ": " + std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) Die("waitpid failed");
  }
  auto t1 = std::chrono::steady_clock::now();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    Die("failed (status " + std::to_string(status) + "): " + cmd);
  }
  return std::chrono::duration<double>(t1 - t0).count();
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  double pos = q * static_cast<double>(v.size() - 1);
  size_t i = static_cast<size_t>(pos);
  double frac = pos - static_cast<double>(i);
  return i + 1 < v.size() ? v[i] * (1 - frac) + v[i + 1] * frac : v[i];
}

void Write(const fs::path& p, const std::string& text) {
  std::ofstream f(p);
  f << text;
  if (!f) Die("cannot write " + p.string());
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  fs::path self = fs::canonical("/proc/self/exe");
  a.vtpm = (self.parent_path().parent_path() / "tools/vtpm/vtpm").string();
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(k + " needs a value");
      return argv[++i];
    };
    if (k == "--rounds") {
      a.rounds = std::max(1, std::atoi(next().c_str()));
    } else if (k == "--scenario") {
      a.scenario = next();
    } else if (k == "--vtpm") {
      a.vtpm = next();
    } else if (k == "--swtpm-setup") {
      a.swtpm_setup = next();
    } else if (k == "--vtpm-own-ca") {
      a.vtpm_own_ca = true;
    } else {
      Die("usage: setup_compare [--rounds N] [--scenario full|ek|state] [--vtpm-own-ca] "
          "[--vtpm PATH] [--swtpm-setup PATH]");
    }
  }
  char tmpl[] = "/tmp/vtpm-bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp failed");
  fs::path work = tmpl;
  // The shared CA configuration (swtpm's format; vtpm setup reads it too).
  fs::create_directory(work / "ca");
  Write(work / "swtpm-localca.conf", "statedir = " + (work / "ca").string() +
                                         "\nsigningkey = " + (work / "ca/signkey.pem").string() +
                                         "\nissuercert = " + (work / "ca/issuercert.pem").string() +
                                         "\ncertserial = " + (work / "ca/certserial").string() +
                                         "\n");
  Write(work / "swtpm-localca.options",
        "--platform-manufacturer vtpm-bench\n--platform-version 1.0\n--platform-model bench\n");
  Write(work / "swtpm_setup.conf",
        "create_certs_tool = swtpm_localca\ncreate_certs_tool_config = " +
            (work / "swtpm-localca.conf").string() + "\ncreate_certs_tool_options = " +
            (work / "swtpm-localca.options").string() + "\nactive_pcr_banks = sha256\n");

  std::vector<std::string> scenario_args;
  if (a.scenario == "full") {
    scenario_args = {"--createek", "--create-ek-cert", "--create-platform-cert", "--lock-nvram"};
  } else if (a.scenario == "ek") {
    scenario_args = {"--createek"};
  } else if (a.scenario != "state") {
    Die("unknown scenario " + a.scenario);
  }
  int counter = 0;
  auto command = [&](bool vtpm) {
    // (appended, not "s" + std::to_string(...): GCC 12 -O3 reports a false -Wrestrict there)
    std::string name = "s";
    name += std::to_string(counter++);
    fs::path dir = work / name;
    fs::create_directory(dir);
    std::vector<std::string> cmd =
        vtpm ? std::vector<std::string>{a.vtpm, "setup"} : std::vector<std::string>{a.swtpm_setup};
    std::vector<std::string> common = {"--tpm2",
                                       "--tpm-state",
                                       dir.string(),
                                       "--vmid",
                                       "bench:" + std::to_string(counter),
                                       "--logfile",
                                       (work / (vtpm ? "vtpm.log" : "swtpm.log")).string(),
                                       "--not-overwrite",
                                       "--config",
                                       (work / "swtpm_setup.conf").string()};
    cmd.insert(cmd.end(), common.begin(), common.end());
    cmd.insert(cmd.end(), scenario_args.begin(), scenario_args.end());
    if (vtpm && a.vtpm_own_ca) {
      cmd.push_back("--ca-dir");
      cmd.push_back((work / "vtpm-ca").string());
    }
    return cmd;
  };
  // Warm-up: swtpm_localca creates the RSA-3072 CA here; both tools' caches get warm.
  Run(command(false));
  Run(command(true));

  std::vector<double> tv, ts, ratios;
  for (int r = 0; r < a.rounds; ++r) {
    double v, s;
    if (r % 2 == 0) {
      v = Run(command(true));
      s = Run(command(false));
    } else {
      s = Run(command(false));
      v = Run(command(true));
    }
    tv.push_back(v);
    ts.push_back(s);
    ratios.push_back(s / v);
    std::fprintf(stderr, "round %2d: vtpm setup %6.1f ms, swtpm_setup %6.1f ms\n", r + 1, v * 1e3,
                 s * 1e3);
  }
  std::printf("scenario: %s (--tpm2 --not-overwrite --config <shared swtpm_setup.conf>",
              a.scenario.c_str());
  for (const auto& s : scenario_args) std::printf(" %s", s.c_str());
  std::printf("), %d paired rounds%s\n", a.rounds,
              a.vtpm_own_ca ? "; vtpm setup with its own CA (--ca-dir)" : "; one shared CA");
  std::printf("%-12s %9s %9s %9s\n", "", "p10 ms", "median ms", "p90 ms");
  std::printf("%-12s %9.1f %9.1f %9.1f\n", "vtpm setup", Quantile(tv, 0.1) * 1e3,
              Quantile(tv, 0.5) * 1e3, Quantile(tv, 0.9) * 1e3);
  std::printf("%-12s %9.1f %9.1f %9.1f\n", "swtpm_setup", Quantile(ts, 0.1) * 1e3,
              Quantile(ts, 0.5) * 1e3, Quantile(ts, 0.9) * 1e3);
  std::printf("ratio of medians (swtpm_setup / vtpm setup): %.1fx\n",
              Quantile(ts, 0.5) / Quantile(tv, 0.5));
  std::printf("median of per-round ratios:                  %.1fx\n", Quantile(ratios, 0.5));
  fs::remove_all(work);
  return 0;
}
