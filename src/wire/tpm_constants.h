// The TPM vocabulary, once for every layer: TPM 2.0 constants (TPM 2.0 Library Specification Part
// 2, "Structures", revision 1.59; section numbers below) and the TPM 1.2 ones vtpm uses. The
// TPM family enum every layer shares is here too.
#pragma once

#include <cstdint>

namespace vtpm::tpm {

// The TPM family: engine, state files and device models use this one enum.
enum class Version : uint8_t { kTpm12 = 0, kTpm20 = 1 };

// §6.9 TPM_ST
inline constexpr uint16_t kStNoSessions = 0x8001;
inline constexpr uint16_t kStSessions = 0x8002;
inline constexpr uint16_t kStHashcheck = 0x8024;

// §6.5.2 TPM_CC
inline constexpr uint32_t kCcEvictControl = 0x00000120;
inline constexpr uint32_t kCcNvDefineSpace = 0x0000012a;
inline constexpr uint32_t kCcPcrAllocate = 0x0000012b;
inline constexpr uint32_t kCcCreatePrimary = 0x00000131;
inline constexpr uint32_t kCcNvIncrement = 0x00000134;
inline constexpr uint32_t kCcNvWrite = 0x00000137;
inline constexpr uint32_t kCcNvWriteLock = 0x00000138;
inline constexpr uint32_t kCcSelfTest = 0x00000143;
inline constexpr uint32_t kCcStartup = 0x00000144;
inline constexpr uint32_t kCcShutdown = 0x00000145;
inline constexpr uint32_t kCcNvRead = 0x0000014e;
inline constexpr uint32_t kCcSign = 0x0000015d;
inline constexpr uint32_t kCcFlushContext = 0x00000165;
inline constexpr uint32_t kCcNvReadPublic = 0x00000169;
inline constexpr uint32_t kCcReadPublic = 0x00000173;
inline constexpr uint32_t kCcGetCapability = 0x0000017a;
inline constexpr uint32_t kCcGetRandom = 0x0000017b;
inline constexpr uint32_t kCcPcrRead = 0x0000017e;
inline constexpr uint32_t kCcPcrExtend = 0x00000182;

// §7.4 TPM_RH (permanent handles) and TPM_RS_PW.
inline constexpr uint32_t kRhOwner = 0x40000001;
inline constexpr uint32_t kRhNull = 0x40000007;
inline constexpr uint32_t kRsPw = 0x40000009;
inline constexpr uint32_t kRhEndorsement = 0x4000000b;
inline constexpr uint32_t kRhPlatform = 0x4000000c;

// §7.2 TPM_HT: handle type in the top byte.
inline constexpr uint8_t kHtNvIndex = 0x01;
inline constexpr uint8_t kHtTransient = 0x80;
inline constexpr uint8_t kHtPersistent = 0x81;

// §6.3 TPM_ALG_ID
inline constexpr uint16_t kAlgRsa = 0x0001;
inline constexpr uint16_t kAlgSha1 = 0x0004;
inline constexpr uint16_t kAlgHmac = 0x0005;
inline constexpr uint16_t kAlgAes = 0x0006;
inline constexpr uint16_t kAlgKeyedHash = 0x0008;
inline constexpr uint16_t kAlgSha256 = 0x000b;
inline constexpr uint16_t kAlgSha384 = 0x000c;
inline constexpr uint16_t kAlgSha512 = 0x000d;
inline constexpr uint16_t kAlgNull = 0x0010;
inline constexpr uint16_t kAlgSm3_256 = 0x0012;
inline constexpr uint16_t kAlgRsassa = 0x0014;
inline constexpr uint16_t kAlgRsaes = 0x0015;
inline constexpr uint16_t kAlgRsapss = 0x0016;
inline constexpr uint16_t kAlgEcdsa = 0x0018;
inline constexpr uint16_t kAlgEcdaa = 0x001a;
inline constexpr uint16_t kAlgSm2 = 0x001b;
inline constexpr uint16_t kAlgEcschnorr = 0x001c;
inline constexpr uint16_t kAlgEcc = 0x0023;
inline constexpr uint16_t kAlgSymCipher = 0x0025;
inline constexpr uint16_t kAlgSha3_256 = 0x0027;
inline constexpr uint16_t kAlgSha3_384 = 0x0028;
inline constexpr uint16_t kAlgSha3_512 = 0x0029;
inline constexpr uint16_t kAlgCfb = 0x0043;

// §6.4 TPM_ECC_CURVE
inline constexpr uint16_t kEccNistP256 = 0x0003;
inline constexpr uint16_t kEccNistP384 = 0x0004;
inline constexpr uint16_t kEccNistP521 = 0x0005;

// §8.3 TPMA_OBJECT bits
inline constexpr uint32_t kObjFixedTpm = 1u << 1;
inline constexpr uint32_t kObjFixedParent = 1u << 4;
inline constexpr uint32_t kObjSensitiveDataOrigin = 1u << 5;
inline constexpr uint32_t kObjUserWithAuth = 1u << 6;
inline constexpr uint32_t kObjAdminWithPolicy = 1u << 7;
inline constexpr uint32_t kObjNoDa = 1u << 10;
inline constexpr uint32_t kObjRestricted = 1u << 16;
inline constexpr uint32_t kObjDecrypt = 1u << 17;
inline constexpr uint32_t kObjSign = 1u << 18;

// §13.4 TPMA_NV bits
inline constexpr uint32_t kNvPpWrite = 1u << 0;
inline constexpr uint32_t kNvOwnerWrite = 1u << 1;
inline constexpr uint32_t kNvAuthWrite = 1u << 2;
inline constexpr uint32_t kNvPolicyWrite = 1u << 3;
inline constexpr uint32_t kNvCounter = 1u << 4;  // TPM_NT_COUNTER in the TPM_NT field (bits 7:4)
inline constexpr uint32_t kNvPolicyDelete = 1u << 10;
inline constexpr uint32_t kNvWriteLocked = 1u << 11;
inline constexpr uint32_t kNvWriteAll = 1u << 12;
inline constexpr uint32_t kNvWriteDefine = 1u << 13;
inline constexpr uint32_t kNvWriteStClear = 1u << 14;
inline constexpr uint32_t kNvPpRead = 1u << 16;
inline constexpr uint32_t kNvOwnerRead = 1u << 17;
inline constexpr uint32_t kNvAuthRead = 1u << 18;
inline constexpr uint32_t kNvPolicyRead = 1u << 19;
inline constexpr uint32_t kNvNoDa = 1u << 25;
inline constexpr uint32_t kNvOrderly = 1u << 26;
inline constexpr uint32_t kNvClearStClear = 1u << 27;
inline constexpr uint32_t kNvReadLocked = 1u << 28;
inline constexpr uint32_t kNvWritten = 1u << 29;
inline constexpr uint32_t kNvPlatformCreate = 1u << 30;
inline constexpr uint32_t kNvReadStClear = 1u << 31;

// §6.12 TPM_CAP and §6.13 TPM_PT
inline constexpr uint32_t kCapHandles = 0x00000001;
inline constexpr uint32_t kCapPcrs = 0x00000005;
inline constexpr uint32_t kCapTpmProperties = 0x00000006;
inline constexpr uint32_t kPtFixed = 0x00000100;        // PT_FIXED: the first fixed property
inline constexpr uint32_t kPtNvBufferMax = 0x0000012c;  // PT_FIXED + 44

// §6.5.1 TPM_SU
inline constexpr uint16_t kSuClear = 0x0000;
inline constexpr uint16_t kSuState = 0x0001;

// §6.6 TPM_RC (format-zero codes the code relies on)
inline constexpr uint32_t kRcSuccess = 0x000;
inline constexpr uint32_t kRcValue = 0x084;
inline constexpr uint32_t kRcInitialize = 0x100;
inline constexpr uint32_t kRcFailure = 0x101;
inline constexpr uint32_t kRcCommandSize = 0x142;
inline constexpr uint32_t kRcLocality = 0x907;

// swtpm's vendor command TPM2_CC_SET_LOCALITY {header, u8 locality} (--locality
// allow-set-locality): a TPM 2 client selects the locality on the data channel.
inline constexpr uint32_t kCcSwtpmSetLocality = 0x20001000;

// TPM 1.2 (TPM Main Part 2/3 v1.2): tags (commands 0x00C1..0x00C3, responses 0x00C4..0x00C6),
// TPM_Startup and its types, and the result codes the code relies on.
inline constexpr uint16_t kTpm12TagRquCommand = 0x00C1;
inline constexpr uint16_t kTpm12TagRquAuth2Command = 0x00C3;
inline constexpr uint16_t kTpm12TagRspCommand = 0x00C4;
inline constexpr uint32_t kTpm12Startup = 0x99;
inline constexpr uint32_t kTpm12ContinueSelfTest = 0x53;
inline constexpr uint16_t kTpm12StClear = 0x0001;
inline constexpr uint16_t kTpm12StState = 0x0002;
inline constexpr uint16_t kTpm12StDeactivated = 0x0003;
inline constexpr uint32_t kTpm12Fail = 0x09;
inline constexpr uint32_t kTpm12BadParamSize = 0x19;
inline constexpr uint32_t kTpm12BadLocality = 0x3d;

}  // namespace vtpm::tpm
