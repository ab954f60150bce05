/* The C ABI header compiled as strict C99 and exercised from C: run as its own
 * ctest entry (see tests/CMakeLists.txt). Exits 0 when every check holds. */
#include <stdio.h>
#include <string.h>

#include "marlinrt/marlinrt.h"

static int failures = 0;

#define EXPECT(cond)                                                     \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

int main(void) {
  marlinrt_backend_choice choice;
  marlinrt_jit_stats_t stats;
  marlinrt_linear_t* layer = NULL;
  marlinrt_nvfp4_linear_desc desc;
  marlinrt_status status;

  EXPECT(marlinrt_version() != NULL && strlen(marlinrt_version()) > 0);
  EXPECT(marlinrt_kernel_abi_version() > 0);

  status = marlinrt_select_fp4_backend(86, &choice);
  EXPECT(status == MARLINRT_OK);
  EXPECT(choice.backend == MARLINRT_BACKEND_MARLIN && choice.marlin_allowed == 1);

  status = marlinrt_prebuild("no-such-kernel/sm_90");
  EXPECT(status == MARLINRT_INVALID_ARGUMENT);
  EXPECT(strstr(marlinrt_last_error(), "no-such-kernel") != NULL);
  EXPECT(strcmp(marlinrt_status_name(status), "invalid_argument") == 0);

  memset(&desc, 0, sizeof(desc));
  status = marlinrt_prepare_nvfp4_linear(&desc, MARLINRT_F32, NULL, &layer);
  EXPECT(status == MARLINRT_INVALID_ARGUMENT && layer == NULL);

  EXPECT(marlinrt_jit_stats(&stats) == MARLINRT_OK);
  marlinrt_linear_destroy(NULL);

  printf("marlinrt %s C ABI: %s\n", marlinrt_version(), failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
