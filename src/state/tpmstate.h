// The --tpmstate option of swtpm (and its --tpm-state spelling in swtpm_setup), parsed once for
// `vtpm socket`, `vtpm setup`, `vtpm ek` and `vtpm state`:
//   dir=DIR[,mode=0NNN][,fsync=true|false][,backup[=true|false]][,lock[=true]]
//   backend-uri=dir://DIR[,...]
// and, where |plain_path| (swtpm_setup's --tpm-state), also "DIR" and "dir://DIR".
#pragma once

#include <string_view>

#include "base/result.h"
#include "state/dir_store.h"

namespace vtpm::state {

// The directory, mode, fsync and backup (use_previous_on_damage) fields of DirStoreOptions;
// tpm_version is left for the caller. Errors name the option and the bad key; file:// (swtpm's
// linear-file backend) is refused with the reason.
Result<DirStoreOptions> ParseTpmState(std::string_view value, bool plain_path,
                                      std::string_view option = "--tpmstate");

}  // namespace vtpm::state
