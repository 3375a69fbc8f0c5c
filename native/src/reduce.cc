// Sum, mean and max over the middle of an outer × mid × inner view, the sums accumulated in
// double (as tfjs' cpu backend does in JavaScript numbers).
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace op {
namespace {

// acc[i] += Σ over rows [s, e) of row[i], rows of `inner` floats. Vectorised for any width: blocks
// of u rows are added flat in float (u·inner lanes), and flushed into the double sums every 16
// blocks.
void columnSums(const float* base, int64_t s, int64_t e, int64_t inner, double* acc) {
  const int64_t u = std::max<int64_t>(1, 64 / inner), len = u * inner;
  std::vector<float> block(len, 0.f);
  float* b = block.data();
  const auto flush = [&] {
    for (int64_t j = 0; j < len; j++) {
      acc[j % inner] += b[j];
      b[j] = 0.f;
    }
  };
  int64_t k = s;
  for (int pending = 0; k + u <= e; k += u) {
    const float* r = base + k * inner;
#pragma omp simd
    for (int64_t j = 0; j < len; j++) b[j] += r[j];
    if (++pending == 16) {
      flush();
      pending = 0;
    }
  }
  flush();
  for (; k < e; k++)
    for (int64_t i = 0; i < inner; i++) acc[i] += base[k * inner + i];
}

}  // namespace

void reduce(int op, const float* x, float* y, int64_t outer, int64_t mid, int64_t inner) {
  const bool par = outer * mid * inner >= (1 << 15);
  if (inner == 1) {
#pragma omp parallel for if (par && outer > 1)
    for (int64_t o = 0; o < outer; o++) {
      const float* p = x + o * mid;
      if (op == kMaxR) {
        float m = p[0];
        for (int64_t k = 1; k < mid; k++) m = (std::isnan(p[k]) || p[k] > m) ? p[k] : m;
        y[o] = m;
      } else {
        double s = 0;
        for (int64_t k = 0; k < mid; k++) s += p[k];
        y[o] = static_cast<float>(op == kMean ? s / mid : s);
      }
    }
    return;
  }
  // Column reductions: each thread takes a share of the rows, the shares are combined after.
  const int nt = par ? omp_get_max_threads() : 1;
  for (int64_t o = 0; o < outer; o++) {
    const float* base = x + o * mid * inner;
    std::vector<double> part(static_cast<size_t>(nt) * inner);
    std::vector<float> partMax(op == kMaxR ? static_cast<size_t>(nt) * inner : 0);
    std::vector<char> seen(nt, 0);
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num();
      const int64_t chunk = (mid + nt - 1) / nt;
      const int64_t s = std::min(mid, t * chunk), e = std::min(mid, s + chunk);
      if (s < e) {
        seen[t] = 1;
        if (op == kMaxR) {
          float* m = partMax.data() + t * inner;
          std::copy(base + s * inner, base + (s + 1) * inner, m);
          for (int64_t k = s + 1; k < e; k++) {
            const float* r = base + k * inner;
            for (int64_t i = 0; i < inner; i++) m[i] = (std::isnan(r[i]) || r[i] > m[i]) ? r[i] : m[i];
          }
        } else {
          columnSums(base, s, e, inner, part.data() + t * inner);
        }
      }
    }
    float* out = y + o * inner;
    for (int64_t i = 0; i < inner; i++) {
      if (op == kMaxR) {
        float m = NAN;
        bool first = true;
        for (int t = 0; t < nt; t++) {
          if (!seen[t]) continue;
          float v = partMax[t * inner + i];
          if (first || std::isnan(v) || v > m) m = v;
          first = false;
        }
        out[i] = m;
      } else {
        double s = 0;
        for (int t = 0; t < nt; t++) s += part[t * inner + i];
        out[i] = static_cast<float>(op == kMean ? s / mid : s);
      }
    }
  }
}

}  // namespace op
