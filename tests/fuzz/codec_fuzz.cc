// libFuzzer targets for the protocol decoders (one binary per decoder, picked by FUZZ_DECODER):
//   ctrl_request   swtpm control request: u32 code + fixed body, as CtrlSession sees it
//   ctrl_response  swtpm control response: byte 0 picks the command, the rest is the response
//   mssim          TPM_SEND_COMMAND frames and their replies
//   state_blob     swtpm state blobs and files (CMD_SET_STATEBLOB payloads, state files)
// Besides "no crash, hang, leak or UB" (ASan/UBSan), each checks the round trip: whatever a
// decoder accepts, the encoder writes back byte for byte (so nothing is silently dropped or
// invented between the two sides of a protocol).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "state/blob.h"
#include "wire/mssim.h"
#include "wire/swtpm_ctrl.h"

namespace {

using vtpm::Bytes;
using vtpm::ByteSpan;

#define FUZZ_CHECK(cond)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      std::fprintf(stderr, "invariant failed: %s\n", #cond); \
      std::abort();                                          \
    }                                                        \
  } while (0)

bool Same(ByteSpan a, ByteSpan b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

void CtrlRequest(ByteSpan in) {
  if (in.size() < 4) return;
  const uint32_t code = vtpm::LoadBe32(in.data());
  auto req = vtpm::wire::DecodeCtrlRequest(code, in.subspan(4));
  if (!req) return;
  FUZZ_CHECK(Same(vtpm::wire::EncodeCtrlRequest(*req), in));
}

void CtrlResponse(ByteSpan in) {
  if (in.empty()) return;
  const auto cmd = static_cast<vtpm::wire::CtrlCmd>(1 + in[0] % 19);
  const ByteSpan bytes = in.subspan(1);
  const size_t want = vtpm::wire::CtrlResponseSize(cmd, bytes);
  FUZZ_CHECK(want >= 4);
  auto resp = vtpm::wire::DecodeCtrlResponse(cmd, bytes);
  FUZZ_CHECK(resp.has_value() == (bytes.size() == want));
  if (resp) FUZZ_CHECK(Same(vtpm::wire::EncodeCtrlResponse(*resp), bytes));
}

void Mssim(ByteSpan in) {
  auto cmd = vtpm::wire::ParseSendCommand(in, 4096);
  if (cmd && *cmd) {
    FUZZ_CHECK((*cmd)->consumed <= in.size());
    FUZZ_CHECK(Same(vtpm::wire::EncodeSendCommand((*cmd)->locality, (*cmd)->command),
                    in.first((*cmd)->consumed)));
  }
  auto reply = vtpm::wire::ParseSendCommandReply(in, 4096);
  if (reply && *reply) {
    Bytes again;
    vtpm::wire::AppendSendCommandResponse(again, (*reply)->response);
    FUZZ_CHECK(Same(again, in.first((*reply)->consumed)));
  }
}

void StateBlob(ByteSpan in) {
  if (auto f = vtpm::state::DecodeStateFile(in)) {
    FUZZ_CHECK(f->blob.size() <= in.size());
    // What a sealed file decodes to, sealed again with its generation, is the same file when
    // it was written by our encoder (the canonical form).
    if (f->generation) {
      const Bytes canonical = vtpm::state::EncodeSealedFileBlob(f->blob, *f->generation);
      auto again = vtpm::state::DecodeStateFile(canonical);
      FUZZ_CHECK(again && again->blob == f->blob && again->generation == f->generation);
    }
  }
  if (auto b = vtpm::state::DecodeStateBlob(in)) {
    FUZZ_CHECK(b->size() <= in.size());
    auto again = vtpm::state::DecodeStateBlob(vtpm::state::EncodeMigrationBlob(*b));
    FUZZ_CHECK(again && *again == *b);
  }
  // The keyed paths (state and migration keys of each cipher): hostile framing around
  // ENCRYPTED_* / VTPM_AEAD records must fail cleanly. What opens re-encrypts and opens again.
  using vtpm::state::StateCipher;
  using vtpm::state::StateKey;
  static const StateKey keys[] = {
      StateKey::FromBytes(Bytes(16, 0x11), StateCipher::kAes128Cbc).value(),
      StateKey::FromBytes(Bytes(32, 0x22), StateCipher::kAes256Cbc).value(),
      StateKey::FromBytes(Bytes(32, 0x33), StateCipher::kAes256Gcm).value()};
  for (const StateKey& k : keys) {
    if (auto f = vtpm::state::DecodeStateFile(in, &k, "permall"); f && !f->locked) {
      const Bytes enc = vtpm::state::EncodeSealedFileBlob(f->blob, 1, &k, "permall");
      auto again = vtpm::state::DecodeStateFile(enc, &k, "permall");
      FUZZ_CHECK(again && again->blob == f->blob);
    }
    if (k.cipher() == StateCipher::kAes256Gcm) continue;
    if (auto b = vtpm::state::DecodeStateBlob(in, &keys[0], &k, in.size() % 2 == 1)) {
      auto again = vtpm::state::DecodeStateBlob(
          vtpm::state::EncodeMigrationBlob(*b, &keys[0], &k), &keys[0], &k);
      FUZZ_CHECK(again && *again == *b);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteSpan in(data, size);
#if FUZZ_DECODER == 1
  CtrlRequest(in);
#elif FUZZ_DECODER == 2
  CtrlResponse(in);
#elif FUZZ_DECODER == 3
  Mssim(in);
#else
  StateBlob(in);
#endif
  return 0;
}
