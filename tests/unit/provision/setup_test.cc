// RunSetup end to end on the real engine (libtpms) in process: the state it commits, read
// back by a fresh TPM, holds the EKs and certificates it reported; the existing-state rules
// behave as swtpm_setup's; failures leave the directory untouched.
#include "provision/setup.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "fakes/tpm_fixture.h"
#include "provision/ek_export.h"
#include "provision/engine_transport.h"
#include "provision/mem_store.h"
#include "tpmcmd/tpm12_commands.h"
#include "tpmcmd/tpm2_commands.h"
#include "wire/tpm_header.h"

namespace vtpm::provision {
namespace {

using vtpm::testing::TempDir;

Bytes ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

class SetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_dir_ = tmp_.path() + "/state";
    ca_dir_ = tmp_.path() + "/ca";
    std::filesystem::create_directory(state_dir_);
    env_.log = NullLogger();
    env_.clock = [] { return std::time_t{1700000000}; };
    env_.random = [this](std::span<uint8_t> b) {
      for (auto& x : b) x = static_cast<uint8_t>(++counter_);
      return Ok();
    };
    env_.open_ca = [this]() -> Result<Ca> {
      ++ca_opens_;
      return Ca::OpenLocal(ca_dir_, CaKeyType::kEcdsaP256, env_.clock, SystemRandom(),
                           NullLogger());
    };
  }

  SetupRequest FullTpm2() {
    SetupRequest r;
    r.tpm2 = true;
    r.state_dir = state_dir_;
    r.durable = false;
    r.vmid = "vm1:0000";
    r.tpm2_plan.eks = DefaultEks();
    r.tpm2_plan.ek_certs = true;
    r.tpm2_plan.platform_cert = true;
    r.tpm2_plan.lock_nvram = true;
    r.tpm2_plan.pcr_banks = std::vector<std::string>{"sha256"};
    return r;
  }

  std::string Permall() const { return state_dir_ + "/tpm2-00.permall"; }

  TempDir tmp_;
  std::string state_dir_, ca_dir_;
  SetupEnv env_;
  int counter_ = 0;
  int ca_opens_ = 0;
};

TEST_F(SetupTest, FullTpm2SetupPersistsEksCertsAndLocks) {
  SetupRequest req = FullTpm2();
  req.ek_cert_dir = tmp_.path();
  auto res = RunSetup(req, env_);
  ASSERT_TRUE(res.has_value()) << res.error().message;
  ASSERT_EQ(res->tpm2.eks.size(), 2u);
  EXPECT_EQ(res->tpm2.active_banks, std::vector<std::string>{"sha256"});
  EXPECT_EQ(res->tpm2.all_banks, (std::vector<std::string>{"sha1", "sha256", "sha384", "sha512"}));
  ASSERT_TRUE(std::filesystem::exists(Permall()));
  EXPECT_EQ(ReadFile(tmp_.path() + "/ek-rsa2048.crt"), res->tpm2.eks[0].cert);
  EXPECT_EQ(ReadFile(tmp_.path() + "/ek-secp384r1.crt"), res->tpm2.eks[1].cert);

  // A fresh TPM over the committed state sees the same keys, certificates and locks.
  auto e = ReadEndorsementFromState(state_dir_, NullLogger());
  ASSERT_TRUE(e.has_value()) << e.error().message;
  ASSERT_EQ(e->eks.size(), 2u);
  EXPECT_EQ(e->eks[0].profile->persistent_handle, 0x81010001u);
  EXPECT_EQ(e->eks[1].profile->persistent_handle, 0x81010016u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(e->eks[i].pub, res->tpm2.eks[i].pub);
    ASSERT_TRUE(e->eks[i].cert.has_value());
    EXPECT_EQ(e->eks[i].cert->der, res->tpm2.eks[i].cert);
    EXPECT_EQ(e->eks[i].cert->attributes, 0x62072801u);
    // The certificate certifies the persisted key.
    auto cert = CertFromDer(e->eks[i].cert->der);
    ASSERT_TRUE(cert.has_value());
    auto key = PublicKeyFromTpm(e->eks[i].pub);
    ASSERT_TRUE(key.has_value());
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(cert->get()), key->get()), 1);
  }
  ASSERT_TRUE(e->platform_cert.has_value());
  EXPECT_EQ(e->platform_cert->attributes, 0x62072801u);
  EXPECT_EQ(e->platform_cert->der, res->tpm2.platform_cert);
  // The injected clock is the certificates' notBefore.
  auto cert = CertFromDer(res->tpm2.eks[0].cert);
  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert->get()), 1700000000), 0);
}

TEST_F(SetupTest, EkOnlyNoCaIsOpenedAndNothingIsLocked) {
  SetupRequest req = FullTpm2();
  req.tpm2_plan.ek_certs = false;
  req.tpm2_plan.platform_cert = false;
  req.tpm2_plan.lock_nvram = false;
  req.tpm2_plan.eks = {EkAlg::kEccP256};
  auto res = RunSetup(req, env_);
  ASSERT_TRUE(res.has_value()) << res.error().message;
  EXPECT_EQ(ca_opens_, 0);
  EXPECT_FALSE(std::filesystem::exists(ca_dir_));
  auto e = ReadEndorsementFromState(state_dir_, NullLogger());
  ASSERT_TRUE(e.has_value()) << e.error().message;
  ASSERT_EQ(e->eks.size(), 1u);
  EXPECT_EQ(e->eks[0].profile->persistent_handle, 0x8101000au);
  EXPECT_FALSE(e->eks[0].cert.has_value());
  EXPECT_FALSE(e->platform_cert.has_value());
}

TEST_F(SetupTest, ExistingStateRules) {
  SetupRequest req = FullTpm2();
  req.tpm2_plan = Tpm2Plan{};  // state only: quick
  ASSERT_TRUE(RunSetup(req, env_).has_value());
  Bytes first = ReadFile(Permall());

  // Default: an error, nothing changed.
  auto again = RunSetup(req, env_);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
  EXPECT_NE(again.error().message.find("Found existing TPM state 'tpm2-00.permall'"),
            std::string::npos);
  EXPECT_EQ(ReadFile(Permall()), first);

  // --not-overwrite: success, nothing changed.
  req.existing = ExistingState::kKeep;
  auto keep = RunSetup(req, env_);
  ASSERT_TRUE(keep.has_value());
  EXPECT_TRUE(keep->kept_existing);
  EXPECT_EQ(ReadFile(Permall()), first);

  // --overwrite: a new TPM, no previous generation or volatile state of the old one remains.
  {
    std::ofstream(state_dir_ + "/tpm2-00.volatilestate") << "old";
    std::ofstream(Permall() + ".bak") << "old";
  }
  req.existing = ExistingState::kOverwrite;
  auto over = RunSetup(req, env_);
  ASSERT_TRUE(over.has_value()) << over.error().message;
  EXPECT_TRUE(over->replaced_existing);
  EXPECT_NE(ReadFile(Permall()), first);
  EXPECT_FALSE(std::filesystem::exists(state_dir_ + "/tpm2-00.volatilestate"));
  EXPECT_FALSE(std::filesystem::exists(Permall() + ".bak"));
}

TEST_F(SetupTest, FailureLeavesExistingStateUntouched) {
  SetupRequest req = FullTpm2();
  req.tpm2_plan = Tpm2Plan{};
  ASSERT_TRUE(RunSetup(req, env_).has_value());
  Bytes first = ReadFile(Permall());
  // --overwrite with a CA that cannot be opened.
  req = FullTpm2();
  req.existing = ExistingState::kOverwrite;
  req.ek_cert_dir = tmp_.path() + "/certs";
  std::filesystem::create_directory(req.ek_cert_dir);
  env_.open_ca = []() -> Result<Ca> {
    return Ca::Load("/nonexistent/key.pem", "/nonexistent/cert.pem", "", "");
  };
  auto res = RunSetup(req, env_);
  ASSERT_FALSE(res.has_value());
  EXPECT_NE(res.error().message.find("/nonexistent/key.pem"), std::string::npos);
  EXPECT_EQ(ReadFile(Permall()), first);
  EXPECT_TRUE(std::filesystem::is_empty(req.ek_cert_dir));
  // Nothing but the state, its lock and nothing temporary.
  for (const auto& ent : std::filesystem::directory_iterator(state_dir_)) {
    std::string n = ent.path().filename();
    EXPECT_TRUE(n == "tpm2-00.permall" || n == ".lock") << n;
  }
}

TEST_F(SetupTest, FailureOnFreshDirectoryWritesNoState) {
  SetupRequest req = FullTpm2();
  req.tpm2_plan.pcr_banks = std::vector<std::string>{"sm3-256"};  // known name, not in libtpms
  auto res = RunSetup(req, env_);
  ASSERT_FALSE(res.has_value());
  EXPECT_NE(res.error().message.find("no PCR bank could be allocated"), std::string::npos)
      << res.error().message;
  EXPECT_FALSE(std::filesystem::exists(Permall()));
}

TEST_F(SetupTest, ReconfigureChangesOnlyPcrBanks) {
  SetupRequest req = FullTpm2();
  req.tpm2_plan.ek_certs = false;
  req.tpm2_plan.platform_cert = false;
  req.tpm2_plan.eks = {EkAlg::kEccP384};
  ASSERT_TRUE(RunSetup(req, env_).has_value());
  auto before = ReadEndorsementFromState(state_dir_, NullLogger());
  ASSERT_TRUE(before.has_value());

  SetupRequest rc;
  rc.tpm2 = true;
  rc.state_dir = state_dir_;
  rc.durable = false;
  rc.reconfigure = true;
  rc.tpm2_plan.pcr_banks = std::vector<std::string>{"sha384", "sha1"};
  auto res = RunSetup(rc, env_);
  ASSERT_TRUE(res.has_value()) << res.error().message;
  EXPECT_EQ(res->tpm2.active_banks, (std::vector<std::string>{"sha384", "sha1"}));
  auto after = ReadEndorsementFromState(state_dir_, NullLogger());
  ASSERT_TRUE(after.has_value());
  ASSERT_EQ(after->eks.size(), 1u);
  EXPECT_EQ(after->eks[0].pub, before->eks[0].pub);  // same TPM, same EK

  // The allocation is active after the next TPM reset.
  MemStore mem;
  {
    state::DirStoreOptions so;
    so.directory = state_dir_;
    auto store = state::DirStore::Open(so, NullLogger());
    ASSERT_TRUE(store.has_value());
    auto blob = (*store)->Load("permall");
    ASSERT_TRUE(blob.has_value() && blob->has_value());
    mem.Put("permall", **blob);
  }
  engine::EngineOptions eo;
  auto eng = engine::Engine::Create(eo, &mem, NullLogger());
  ASSERT_TRUE(eng.has_value());
  ASSERT_TRUE((*eng)->Start(false).has_value());
  EngineTransport tpm(eng->get());
  ASSERT_TRUE(tpmcmd::Execute(tpm, tpmcmd::Startup{tpmcmd::kSuClear}).has_value());
  auto cap = tpmcmd::Execute(tpm, tpmcmd::GetCapability{tpmcmd::kCapPcrs, 0, 64});
  ASSERT_TRUE(cap.has_value());
  auto banks = tpmcmd::ParsePcrsCapability(*cap);
  ASSERT_TRUE(banks.has_value());
  for (const auto& b : *banks) {
    bool on = b.hash == tpmcmd::kAlgSha1 || b.hash == tpmcmd::kAlgSha384;
    EXPECT_EQ(ToHex(b.select), on ? "ffffff" : "000000") << b.hash;
  }
}

// swtpm_setup --allow-signing --decryption --create-spk --ecc: a non-standard signing EK whose
// template is stored at the TCG template index, and an ECC storage primary key.
TEST_F(SetupTest, AllowSigningStoresTheTemplateAndSpkIsPersisted) {
  SetupRequest req = FullTpm2();
  req.tpm2_plan.eks = {EkAlg::kEccP384};
  req.tpm2_plan.ek_certs = false;
  req.tpm2_plan.platform_cert = false;
  req.tpm2_plan.ek_usage = EkUsage::kSignAndDecrypt;
  req.tpm2_plan.create_spk = true;
  req.tpm2_plan.spk_ecc = true;
  auto res = RunSetup(req, env_);
  ASSERT_TRUE(res.has_value()) << res.error().message;
  EXPECT_EQ(res->tpm2.eks[0].pub.object_attributes, 0x000600f2u);

  MemStore mem;
  state::DirStoreOptions so;
  so.directory = state_dir_;
  auto store = state::DirStore::Open(so, NullLogger());
  auto blob = (*store)->Load("permall");
  ASSERT_TRUE(blob.has_value() && blob->has_value());
  mem.Put("permall", **blob);
  auto eng = engine::Engine::Create(engine::EngineOptions{}, &mem, NullLogger());
  ASSERT_TRUE((*eng)->Start(false).has_value());
  EngineTransport tpm(eng->get());
  ASSERT_TRUE(tpmcmd::Execute(tpm, tpmcmd::Startup{tpmcmd::kSuClear}).has_value());
  auto templ = ReadNvIndex(tpm, GetEkProfile(EkAlg::kEccP384).template_index);
  ASSERT_TRUE(templ.has_value()) << templ.error().message;
  EXPECT_EQ(templ->attributes, 0x62072801u);
  EXPECT_EQ(templ->der,
            tpmcmd::MarshalPublic(EkTemplate(EkAlg::kEccP384, EkUsage::kSignAndDecrypt)));
  auto spk = tpmcmd::Execute(tpm, tpmcmd::ReadPublic{kSpkHandle});
  ASSERT_TRUE(spk.has_value()) << spk.error().message;
  EXPECT_EQ(spk->out_public.type, tpmcmd::kAlgEcc);
  EXPECT_EQ(spk->out_public.object_attributes, 0x00030472u);
}

TEST_F(SetupTest, RequestValidation) {
  SetupRequest r = FullTpm2();
  r.reconfigure = true;
  EXPECT_FALSE(ValidateRequest(r).has_value());
  r = FullTpm2();
  r.tpm2_plan.eks.clear();
  EXPECT_FALSE(ValidateRequest(r).has_value());  // certificates without an EK
  r = FullTpm2();
  r.tpm2_plan.pcr_banks = std::vector<std::string>{"md5"};
  auto v = ValidateRequest(r);
  ASSERT_FALSE(v.has_value());
  EXPECT_NE(v.error().message.find("unknown PCR bank 'md5'"), std::string::npos);
  r = FullTpm2();
  r.tpm2_plan.eks = {EkAlg::kRsa2048, EkAlg::kRsa2048};
  EXPECT_FALSE(ValidateRequest(r).has_value());
  r = FullTpm2();
  r.state_dir = tmp_.path() + "/missing";
  auto m = RunSetup(r, env_);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.error().message.find("does not exist"), std::string::npos);
}

TEST_F(SetupTest, LockedStateDirectoryIsBusy) {
  state::DirStoreOptions so;
  so.directory = state_dir_;
  auto holder = state::DirStore::Open(so, NullLogger());
  ASSERT_TRUE(holder.has_value());
  ASSERT_TRUE((*holder)->Lock().has_value());
  SetupRequest req = FullTpm2();
  req.tpm2_plan = Tpm2Plan{};
  auto res = RunSetup(req, env_);
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error().code, Errc::kBusy);
  EXPECT_FALSE(std::filesystem::exists(Permall()));
}

TEST_F(SetupTest, Tpm12WithOwnershipCertificatesAndLock) {
  SetupRequest req;
  req.tpm2 = false;
  req.state_dir = state_dir_;
  req.durable = false;
  req.tpm12_plan.create_ek = true;
  req.tpm12_plan.take_ownership = true;
  req.tpm12_plan.ek_cert = true;
  req.tpm12_plan.platform_cert = true;
  req.tpm12_plan.lock_nvram = true;
  req.ek_cert_dir = tmp_.path();
  auto res = RunSetup(req, env_);
  ASSERT_TRUE(res.has_value()) << res.error().message;
  EXPECT_EQ(res->tpm12.ek_modulus.size(), 256u);
  EXPECT_TRUE(std::filesystem::exists(state_dir_ + "/tpm-00.permall"));
  EXPECT_EQ(ReadFile(tmp_.path() + "/ek-rsa2048.crt"), res->tpm12.ek_cert);
  auto cert = CertFromDer(res->tpm12.ek_cert);
  ASSERT_TRUE(cert.has_value());
  auto key = RsaPublicKey(res->tpm12.ek_modulus, 0);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(cert->get()), key->get()), 1);
  // Ownership was taken: a second TakeOwnership must now be refused with TPM_OWNER_SET;
  // checked by starting the TPM again over the stored state.
  state::DirStoreOptions so;
  so.directory = state_dir_;
  so.tpm_version = state::TpmVersion::kTpm12;
  auto store = state::DirStore::Open(so, NullLogger());
  auto blob = (*store)->Load("permall");
  ASSERT_TRUE(blob.has_value() && blob->has_value());
  MemStore mem;
  mem.Put("permall", **blob);
  engine::EngineOptions eo;
  eo.version = engine::TpmVersion::kTpm12;
  auto eng = engine::Engine::Create(eo, &mem, NullLogger());
  ASSERT_TRUE((*eng)->Start(false).has_value());
  EngineTransport tpm(eng->get());
  auto st = tpm.Transmit(tpmcmd::tpm12::Startup(tpm::kTpm12StClear));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(wire::ResponseCode(*st), 0u);
  // TakeOwnership clears readPubek: TPM_ReadPubek now answers TPM_DISABLED_CMD.
  auto pubek = tpm.Transmit(FromHex("00c10000001e0000007c" + std::string(40, '0')).value());
  ASSERT_TRUE(pubek.has_value());
  EXPECT_EQ(wire::ResponseCode(*pubek), 0x08u);
}

}  // namespace
}  // namespace vtpm::provision
