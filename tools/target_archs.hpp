// Which GPU architectures a command targets (`--arch`).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace marlinrt::cli {

// Parses --arch values ("sm_80", "sm_80,sm_90", repeated options), deduplicated in
// order. With none given: the archs of the GPUs present, or, when there is no GPU,
// Error(invalid_argument) asking for --arch.
std::vector<int> resolve_target_archs(const std::vector<std::string>& arch_args);

// The SM count the dense dispatch should assume for `arch`: `override_sm_count` if
// positive, else that of the first GPU present with this arch, else the library's
// default for the arch.
int sm_count_for_arch(int arch, int override_sm_count);

// A key text whose last part is "sm_..." names its arch; one without (e.g.
// "repack_weights") is built for each target arch.
bool key_text_has_arch(std::string_view text);

}  // namespace marlinrt::cli
