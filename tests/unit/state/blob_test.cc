#include "state/blob.h"

#include <gtest/gtest.h>

#include <random>

#include "test_util.h"

namespace vtpm::state {
namespace {

using testing::Pattern;

Bytes Hex(std::string_view hex) {
  auto b = FromHex(hex);
  EXPECT_TRUE(b.has_value()) << hex;
  return b.value_or(Bytes{});
}

// Builders for hand-made (often broken) blobs.
Bytes Header(uint32_t totlen, uint16_t flags = 0, uint8_t version = 2, uint8_t min_version = 1,
             uint16_t hdrsize = 10) {
  ByteWriter w;
  w.U8(version);
  w.U8(min_version);
  w.U16(hdrsize);
  w.U16(flags);
  w.U32(totlen);
  return std::move(w).Take();
}
Bytes Tlv(uint16_t tag, ByteSpan value) {
  ByteWriter w;
  w.U16(tag);
  w.U32(static_cast<uint32_t>(value.size()));
  w.Append(value);
  return std::move(w).Take();
}
Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
// A header (with a correct totlen) + |body|.
Bytes Blob(const Bytes& body, uint16_t flags = 0, uint8_t version = 2, uint8_t min_version = 1) {
  return Cat({Header(static_cast<uint32_t>(10 + body.size()), flags, version, min_version), body});
}
void SetTotlen(Bytes& b) { StoreBe32(b.data() + 6, static_cast<uint32_t>(b.size())); }

const Bytes kPayload = {0xde, 0xad, 0xbe, 0xef};

// ---- Golden bytes ---------------------------------------------------------------------------

TEST(BlobTest, EncodeFileBlobGolden) {
  EXPECT_EQ(ToHex(EncodeFileBlob(kPayload)),
            "0201000a000000000014"
            "000100000004"
            "deadbeef");
  EXPECT_EQ(ToHex(EncodeFileBlob({})),
            "0201000a000000000010"
            "000100000000");
}

TEST(BlobTest, EncodeMigrationBlobGolden) {
  EXPECT_EQ(ToHex(EncodeMigrationBlob(kPayload)),
            "0201000a00040000001a"
            "00040000000a"
            "000100000004"
            "deadbeef");
}

// The headers swtpm 0.7.1 produced for a fresh 1299-byte TPM 2 permall (see blob.h).
TEST(BlobTest, MatchesSwtpmHeadersForA1299BytePermall) {
  const Bytes inner = Pattern(1299, 1);
  const Bytes file = EncodeFileBlob(inner);
  ASSERT_EQ(file.size(), 1315u);
  EXPECT_EQ(ToHex(ByteSpan(file).first(16)),
            "0201000a000000000523"
            "000100000513");
  const Bytes mig = EncodeMigrationBlob(inner);
  ASSERT_EQ(mig.size(), 1321u);
  EXPECT_EQ(ToHex(ByteSpan(mig).first(22)),
            "0201000a000400000529"
            "000400000519"
            "000100000513");
  EXPECT_TRUE(std::equal(inner.begin(), inner.end(), mig.begin() + 22));
}

// ---- Round trips ----------------------------------------------------------------------------

TEST(BlobTest, RoundTrips) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{6}, size_t{1299}, size_t{70000}}) {
    const Bytes p = Pattern(n, static_cast<uint8_t>(n));
    EXPECT_EQ(DecodeFileBlob(EncodeFileBlob(p)).value(), p) << n;
    EXPECT_EQ(DecodeStateBlob(EncodeMigrationBlob(p)).value(), p) << n;
    EXPECT_EQ(DecodeStateBlob(EncodeFileBlob(p)).value(), p) << n;  // lenient: file form on SET
  }
}

TEST(BlobTest, FileDecoderRefusesMigrationForm) {
  auto r = DecodeFileBlob(EncodeMigrationBlob(kPayload));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
  EXPECT_NE(r.error().message.find("migration blob"), std::string::npos) << r.error().message;
}

// ---- Accepted variations --------------------------------------------------------------------

TEST(BlobTest, UnknownTagsAreIgnoredLikeSwtpm) {
  const Bytes file =
      Blob(Cat({Tlv(99, Hex("78797a")), Tlv(0, {}), Tlv(kTagData, kPayload), Tlv(0xffff, {})}));
  EXPECT_EQ(DecodeFileBlob(file).value(), kPayload);
  const Bytes mig = Blob(
      Cat({Tlv(9, {}), Tlv(kTagMigrationData, Cat({Tlv(9, Hex("6162")), Tlv(kTagData, kPayload)})),
           Tlv(8, Hex("00"))}),
      kFlagMigrationData);
  EXPECT_EQ(DecodeStateBlob(mig).value(), kPayload);
}

TEST(BlobTest, MigrationFormWithoutTheFlagIsAccepted) {  // swtpm does not check the flag either
  EXPECT_EQ(DecodeStateBlob(Blob(Tlv(kTagMigrationData, Tlv(kTagData, kPayload)))).value(),
            kPayload);
}

TEST(BlobTest, Version1IsUnframed) {
  EXPECT_EQ(DecodeFileBlob(Blob(kPayload, 0, 1, 1)).value(), kPayload);
  EXPECT_EQ(DecodeStateBlob(Blob(kPayload, 0, 1, 1)).value(), kPayload);
}

TEST(BlobTest, NewerVersionReadableByUsIsAccepted) {
  EXPECT_EQ(DecodeFileBlob(Blob(Tlv(kTagData, kPayload), 0, 3, 2)).value(), kPayload);
}

TEST(BlobTest, HeaderExtensionIsSkipped) {
  Bytes b = Cat({Header(0, 0, 2, 1, 12), Hex("abcd"), Tlv(kTagData, kPayload)});
  SetTotlen(b);
  EXPECT_EQ(DecodeFileBlob(b).value(), kPayload);
}

TEST(BlobTest, HeaderOnly) {
  const Bytes h = Header(10);
  EXPECT_EQ(DecodeStateBlob(h).value(), Bytes{});  // "no blob", like swtpm
  auto r = DecodeFileBlob(h);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
}

// ---- Malformed input ------------------------------------------------------------------------

template <class T>
void ExpectCode(const Result<T>& r, Errc code, const std::string& what) {
  ASSERT_FALSE(r) << what << " was accepted";
  EXPECT_EQ(r.error().code, code) << what << ": " << r.error().message;
  EXPECT_FALSE(r.error().message.empty());
}

TEST(BlobTest, TruncatedAtEveryLength) {
  const Bytes file = EncodeFileBlob(Pattern(40, 2));
  const Bytes mig = EncodeMigrationBlob(Pattern(40, 3));
  for (const Bytes* full : {&file, &mig}) {
    for (size_t n = 0; n < full->size(); ++n) {
      const Bytes cut(full->begin(), full->begin() + static_cast<ptrdiff_t>(n));
      ExpectCode(DecodeFileBlob(cut), Errc::kCorrupt, "file prefix " + std::to_string(n));
      ExpectCode(DecodeStateBlob(cut), Errc::kCorrupt, "state prefix " + std::to_string(n));
      // Also with a header that agrees with the cut, so the record checks are what must fire.
      if (n < 10) continue;
      Bytes consistent = cut;
      SetTotlen(consistent);
      ExpectCode(DecodeFileBlob(consistent), Errc::kCorrupt,
                 "consistent prefix " + std::to_string(n));
      if (n == 10) continue;  // header only: "no blob" for DecodeStateBlob, tested above
      ExpectCode(DecodeStateBlob(consistent), Errc::kCorrupt,
                 "consistent state prefix " + std::to_string(n));
    }
  }
}

TEST(BlobTest, TotlenMismatch) {
  const Bytes good = EncodeFileBlob(kPayload);
  for (uint32_t totlen : {0u, 10u, 19u, 21u, 0xffffffffu}) {
    Bytes b = good;
    StoreBe32(b.data() + 6, totlen);
    ExpectCode(DecodeFileBlob(b), Errc::kCorrupt, "totlen " + std::to_string(totlen));
    ExpectCode(DecodeStateBlob(b), Errc::kCorrupt, "totlen " + std::to_string(totlen));
  }
  Bytes longer = good;
  longer.push_back(0);  // data after totlen
  ExpectCode(DecodeFileBlob(longer), Errc::kCorrupt, "trailing byte after totlen");
}

TEST(BlobTest, HugeRecordLengths) {
  // 0xfffffffa + 6 wraps a 32-bit offset computation to 0.
  for (uint32_t len : {5u, 0x7fffffffu, 0xfffffffau, 0xffffffffu}) {
    ByteWriter w;
    w.U16(kTagData);
    w.U32(len);
    w.Append(kPayload);
    const Bytes file = Blob(w.bytes());
    ExpectCode(DecodeFileBlob(file), Errc::kCorrupt, "DATA length " + std::to_string(len));
    ExpectCode(DecodeStateBlob(file), Errc::kCorrupt, "DATA length " + std::to_string(len));
    // The same lie inside MIGRATION_DATA.
    const Bytes mig = Blob(Tlv(kTagMigrationData, w.bytes()), kFlagMigrationData);
    ExpectCode(DecodeStateBlob(mig), Errc::kCorrupt, "inner DATA length " + std::to_string(len));
  }
}

TEST(BlobTest, HdrsizeLies) {
  const Bytes good = EncodeFileBlob(kPayload);
  for (uint16_t hdrsize :
       {uint16_t{0}, uint16_t{1}, uint16_t{9}, uint16_t{16}, uint16_t{21}, uint16_t{0xffff}}) {
    Bytes b = good;
    b[2] = static_cast<uint8_t>(hdrsize >> 8);
    b[3] = static_cast<uint8_t>(hdrsize);
    ExpectCode(DecodeFileBlob(b), Errc::kCorrupt, "hdrsize " + std::to_string(hdrsize));
    ExpectCode(DecodeStateBlob(b), Errc::kCorrupt, "hdrsize " + std::to_string(hdrsize));
  }
}

TEST(BlobTest, Versions) {
  const Bytes body = Tlv(kTagData, kPayload);
  ExpectCode(DecodeFileBlob(Blob(body, 0, 3, 3)), Errc::kUnsupported, "min_version 3");
  ExpectCode(DecodeStateBlob(Blob(body, 0, 0xff, 0xff)), Errc::kUnsupported, "min_version 255");
  ExpectCode(DecodeFileBlob(Blob(body, 0, 0, 0)), Errc::kCorrupt, "version 0");
  ExpectCode(DecodeFileBlob(Blob(body, 0, 1, 2)), Errc::kCorrupt, "min_version > version");
}

TEST(BlobTest, EncryptedBlobsNeedTheirKey) {
  // Without a key an encrypted file or blob does not decode to data (encryption_test.cc has the
  // keyed cases).
  const Bytes enc = Cat({Tlv(kTagEncryptedData, Pattern(32, 4)), Tlv(kTagHmac, Pattern(32, 5)),
                         Tlv(kTagIvecEncryptedData, Pattern(16, 6))});
  for (const Bytes& b :
       {Blob(enc, kFlagEncrypted), Blob(enc, kFlagEncrypted | kFlagEncrypted256BitKey),
        Blob(Tlv(kTagData, kPayload), kFlagEncrypted) /* flag wins */}) {
    ExpectCode(DecodeFileBlob(b), Errc::kNotFound,
               "encrypted file " + ToHex(ByteSpan(b).first(10)));
    auto f = DecodeStateFile(b);
    ASSERT_TRUE(f.has_value());
    EXPECT_TRUE(f->locked);
    EXPECT_TRUE(f->blob.empty());
  }
  ExpectCode(DecodeFileBlob(Blob(enc)), Errc::kCorrupt, "no flag and no DATA");
  const Bytes mig_enc =
      Blob(Cat({Tlv(kTagEncryptedMigrationData, Pattern(48, 7)), Tlv(kTagHmac, Pattern(32, 8)),
                Tlv(kTagIvecEncryptedMigrationData, Pattern(32, 9))}),
           kFlagMigrationData | kFlagMigrationEncrypted | kFlagMigration256BitKey);
  ExpectCode(DecodeStateBlob(mig_enc), Errc::kNotFound, "migration-encrypted");
  ExpectCode(
      DecodeStateBlob(Blob(Tlv(kTagMigrationData, enc), kFlagMigrationData | kFlagEncrypted)),
      Errc::kNotFound, "state-key-encrypted inside MIGRATION_DATA");
}

TEST(BlobTest, AmbiguousOrMissingRecords) {
  ExpectCode(DecodeFileBlob(Blob(Cat({Tlv(kTagData, Hex("00")), Tlv(kTagData, kPayload)}))),
             Errc::kCorrupt, "two DATA records");
  ExpectCode(DecodeFileBlob(Blob(Tlv(99, kPayload))), Errc::kCorrupt, "no DATA record");
  ExpectCode(DecodeFileBlob(Blob(Cat({Tlv(kTagData, kPayload), Hex("0001")}))), Errc::kCorrupt,
             "stray bytes after the records");
  ExpectCode(DecodeStateBlob(Blob(
                 Cat({Tlv(kTagMigrationData, Tlv(kTagData, kPayload)), Tlv(kTagData, kPayload)}))),
             Errc::kCorrupt, "MIGRATION_DATA and DATA");
  ExpectCode(DecodeStateBlob(Blob(Tlv(kTagMigrationData, Tlv(42, kPayload)))), Errc::kCorrupt,
             "MIGRATION_DATA without DATA");
}

// ---- vtpm's seal record ----------------------------------------------------------------------

// The digest is SHA-256("vtpm-state-seal-v1" || be64 generation || payload), computed here
// independently: python3 -c "import hashlib,struct; print(hashlib.sha256(b'vtpm-state-seal-v1' +
// struct.pack('>Q', 7) + bytes.fromhex('deadbeef')).hexdigest())"
TEST(BlobTest, EncodeSealedFileBlobGolden) {
  EXPECT_EQ(ToHex(EncodeSealedFileBlob(kPayload, 7)),
            "0201000a000000000046"  // totlen 70
            "000100000004"
            "deadbeef"
            "76010000002c"  // tag 0x7601, 44 bytes
            "01010000"      // seal version 1, SHA-256, reserved
            "0000000000000007"
            "8137ffa4f62444190368349e9b452988e703474974b340743ef57f0c2b0bda8d");
  auto f = DecodeStateFile(EncodeSealedFileBlob(kPayload, 7));
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->blob, kPayload);
  EXPECT_EQ(f->generation, 7u);
  // The unsealed swtpm form still decodes, without a generation.
  f = DecodeStateFile(EncodeFileBlob(kPayload));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->generation, std::nullopt);
}

// No single flipped bit of a sealed file yields other data. Every flip in the DATA record and in
// the seal's body is refused (framing or seal). The few that are accepted leave the payload
// intact: a header that still describes the same records (e.g. version 3, read like 2), or a seal
// whose tag or version no longer reads as ours (the file then reads as unsealed, like swtpm's).
TEST(BlobTest, NoFlippedBitOfASealedFileYieldsOtherData) {
  const Bytes payload = Pattern(300, 4);
  const Bytes good = EncodeSealedFileBlob(payload, 42);
  const size_t seal_at = good.size() - 50;  // record header (6) + body (44)
  auto may_be_accepted = [&](size_t i) {
    return i < 10 || i == seal_at || i == seal_at + 1 || i == seal_at + 6;
  };
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes b = good;
      b[i] ^= static_cast<uint8_t>(1u << bit);
      auto f = DecodeStateFile(b);
      // A flipped ENCRYPTED flag yields no data at all (the file then needs a key to open).
      if (!f || f->locked) continue;
      EXPECT_TRUE(may_be_accepted(i))
          << "a flip of byte " << i << " bit " << bit << " was accepted";
      EXPECT_EQ(f->blob, payload) << "byte " << i << " bit " << bit;
    }
  }
  // A flip in the payload is named as such.
  Bytes b = good;
  b[100] ^= 1;
  ExpectCode(DecodeStateFile(b), Errc::kCorrupt, "payload flip");
  EXPECT_NE(DecodeStateFile(b).error().message.find("seal does not match"), std::string::npos);
}

TEST(BlobTest, SealRecordShapes) {
  const Bytes data = Tlv(kTagData, kPayload);
  const Bytes sealed = EncodeSealedFileBlob(kPayload, 1);
  const Bytes seal(sealed.begin() + 20, sealed.end());  // after header (10) + DATA (6 + 4)
  // An unknown seal version (a newer vtpm) is ignored: the file reads as unsealed.
  Bytes v2 = seal;
  v2[6] = 2;
  auto f = DecodeStateFile(Blob(Cat({data, v2})));
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->generation, std::nullopt);
  // Known version, wrong length / digest algorithm / reserved bits: damage.
  ExpectCode(DecodeStateFile(Blob(Cat({data, Tlv(kTagVtpmSeal, Hex("01010000"))}))), Errc::kCorrupt,
             "short seal");
  Bytes alg = seal;
  alg[7] = 2;
  ExpectCode(DecodeStateFile(Blob(Cat({data, alg}))), Errc::kCorrupt, "digest 2");
  ExpectCode(DecodeStateFile(Blob(Cat({data, Tlv(kTagVtpmSeal, {})}))), Errc::kCorrupt,
             "empty seal");
  // Two seals are ambiguous.
  ExpectCode(DecodeStateFile(Blob(Cat({data, seal, seal}))), Errc::kCorrupt, "two seals");
  // Before DATA is as good as after it.
  f = DecodeStateFile(Blob(Cat({seal, data})));
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->generation, 1u);
}

// Random damage must never read out of bounds (run under ASan) and never crash.
TEST(BlobTest, MutatedBlobsAreHandled) {
  std::mt19937 rng(12345);
  const Bytes seeds[] = {EncodeFileBlob(Pattern(64, 10)), EncodeMigrationBlob(Pattern(64, 11)),
                         EncodeSealedFileBlob(Pattern(64, 12), 3)};
  int accepted = 0;
  for (int i = 0; i < 4000; ++i) {
    Bytes b = seeds[i % 3];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % b.size();
      switch (rng() % 3) {
        case 0:
          b[pos] = static_cast<uint8_t>(rng());
          break;
        case 1:
          b.resize(pos + 1);
          break;
        default:
          b.insert(b.begin() + static_cast<ptrdiff_t>(pos), static_cast<uint8_t>(rng()));
      }
    }
    if (rng() % 2 == 0 && b.size() >= 10) SetTotlen(b);
    auto f = DecodeFileBlob(b);
    auto s = DecodeStateBlob(b);
    if (f) {
      EXPECT_LE(f->size(), b.size());
    }
    if (s) {
      EXPECT_LE(s->size(), b.size());
    }
    accepted += (f ? 1 : 0) + (s ? 1 : 0);
  }
  EXPECT_GT(accepted, 0);  // payload-only edits are still valid blobs
}

}  // namespace
}  // namespace vtpm::state
