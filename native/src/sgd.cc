// PyTorch's SGD step, in place, with the same float32 operations in the same order as
// src/nn/optim.ts (built with -ffp-contract=off, so no fused multiply-adds change the rounding).
#include "kernels.h"

namespace op {

void sgd(float* w, const float* g, float* buf, int64_t n, const SgdArgs& a) {
  const float wd = a.weightDecay, mu = a.momentum, damp = 1.f - a.dampening, negLr = -a.lr;
  const bool decay = a.weightDecay != 0.f, momentum = a.momentum != 0.f;
  const bool damped = a.dampening != 0.f;
#pragma omp parallel for simd if (n >= (1 << 15))
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    if (decay) gi = gi + wd * w[i];
    if (momentum) {
      float next;
      if (a.first) {
        next = gi;
      } else {
        const float scaled = damped ? damp * gi : gi;
        next = buf[i] * mu + scaled;
      }
      buf[i] = next;
      gi = a.nesterov ? gi + mu * next : next;
    }
    w[i] = w[i] + negLr * gi;
  }
}

}  // namespace op
