#include "det/search/create.h"

#include <cstdio>

namespace det::search {

Create make_create(const config::HyperparameterSpace& space, util::NpRandom& rng) {
  Create c;
  c.hparams = config::sample_hyperparameters(space, rng);
  unsigned char b[16];
  for (int w = 0; w < 4; ++w) {
    uint32_t v = rng.bits32();
    for (int i = 0; i < 4; ++i)
      b[w * 4 + i] = static_cast<unsigned char>(v >> (8 * i));  // little-endian per word
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char buf[37];
  std::snprintf(buf, sizeof buf,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  c.request_id = buf;
  c.trial_seed = static_cast<uint32_t>(rng.int64n(int64_t{1} << 31));
  return c;
}

}  // namespace det::search
