// Batch normalisation over the last axis (data seen as rows × C, C innermost: NHWC's layout):
// forward with batch statistics (training) or given ones (inference), and the whole backward
// pass — input, scale and offset gradients — in one call. Per-channel sums are accumulated in
// double, per thread, then combined.
#include <omp.h>

#include <cmath>

#include "kernels.h"

namespace op {
namespace {

// Per-channel sums of f(row pointer, c) over all rows, split over threads: out[c] = Σ_r f(r, c).
template <class F>
void channelSums(int64_t rows, int64_t c, std::vector<double>& out, F f) {
  const int nt = rows * c >= (1 << 15) ? omp_get_max_threads() : 1;
  std::vector<double> part(static_cast<size_t>(nt) * c, 0.0);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    const int64_t chunk = (rows + nt - 1) / nt;
    const int64_t s = std::min(rows, t * chunk), e = std::min(rows, s + chunk);
    double* acc = part.data() + static_cast<size_t>(t) * c;
    std::vector<float> row(c);
    for (int64_t r = s; r < e; r++) {
      f(r, row.data());
      for (int64_t k = 0; k < c; k++) acc[k] += row[k];
    }
  }
  out.assign(c, 0.0);
  for (int t = 0; t < nt; t++)
    for (int64_t k = 0; k < c; k++) out[k] += part[static_cast<size_t>(t) * c + k];
}

// y = (x − m)·a + b per channel (then ReLU when `relu`).
void affine(const float* x, const float* m, const float* a, const float* b, float* y, int64_t rows,
            int64_t c, bool relu) {
#pragma omp parallel for if (rows * c >= (1 << 15))
  for (int64_t r = 0; r < rows; r++) {
    const float* in = x + r * c;
    float* o = y + r * c;
#pragma omp simd
    for (int64_t k = 0; k < c; k++) o[k] = (in[k] - m[k]) * a[k] + b[k];
    if (relu) {
#pragma omp simd
      for (int64_t k = 0; k < c; k++) o[k] = o[k] > 0.f ? o[k] : 0.f;
    }
  }
}

}  // namespace

void batchNorm(float* x, float* scale, float* shift, float* mean, float* var, float* y,
               int64_t rows, int64_t c, float eps, bool training, bool relu) {
  if (training) {
    std::vector<double> s;
    channelSums(rows, c, s, [&](int64_t r, float* out) {
      std::copy(x + r * c, x + (r + 1) * c, out);
    });
    for (int64_t k = 0; k < c; k++) mean[k] = static_cast<float>(s[k] / rows);
    channelSums(rows, c, s, [&](int64_t r, float* out) {
      const float* in = x + r * c;
      for (int64_t k = 0; k < c; k++) {
        const float d = in[k] - mean[k];
        out[k] = d * d;
      }
    });
    for (int64_t k = 0; k < c; k++) var[k] = static_cast<float>(s[k] / rows);
  }
  std::vector<float> a(c), b(c);
  for (int64_t k = 0; k < c; k++) {
    a[k] = scale[k] / std::sqrt(var[k] + eps);
    b[k] = shift[k];
  }
  affine(x, mean, a.data(), b.data(), y, rows, c, relu);
}

void batchNormGrad(float* x, float* dyIn, const float* y, float* scale, float* mean, float* var,
                   float* dx, float* dscale, float* dshift, int64_t rows, int64_t c, float eps) {
  // With a fused ReLU (y given), the gradient reaching the normalisation is dy where y > 0.
  float* dy = dyIn;
  if (y != nullptr) {
    dy = dx;  // dx is overwritten last: it holds the masked gradient until then
#pragma omp parallel for simd if (rows * c >= (1 << 15))
    for (int64_t i = 0; i < rows * c; i++) dy[i] = y[i] > 0.f ? dyIn[i] : 0.f;
  }
  std::vector<float> rstd(c);
  for (int64_t k = 0; k < c; k++) rstd[k] = 1.f / std::sqrt(var[k] + eps);
  std::vector<double> sdy, sdyx;
  channelSums(rows, c, sdy, [&](int64_t r, float* out) {
    std::copy(dy + r * c, dy + (r + 1) * c, out);
  });
  channelSums(rows, c, sdyx, [&](int64_t r, float* out) {
    const float *in = x + r * c, *g = dy + r * c;
    for (int64_t k = 0; k < c; k++) out[k] = g[k] * ((in[k] - mean[k]) * rstd[k]);
  });
  // dx = scale·rstd·(dy − Σdy/R − x̂·Σ(dy·x̂)/R), as dy·a + (x − mean)·b + d per channel.
  std::vector<float> a(c), b(c), d(c);
  for (int64_t k = 0; k < c; k++) {
    dshift[k] = static_cast<float>(sdy[k]);
    dscale[k] = static_cast<float>(sdyx[k]);
    const double g = static_cast<double>(scale[k]) * rstd[k];
    const double mdy = sdy[k] / rows, mdyx = sdyx[k] / rows;
    a[k] = static_cast<float>(g);
    b[k] = static_cast<float>(-g * mdyx * rstd[k]);
    d[k] = static_cast<float>(-g * mdy);
  }
#pragma omp parallel for if (rows * c >= (1 << 15))
  for (int64_t r = 0; r < rows; r++) {
    const float *g = dy + r * c, *in = x + r * c;
    float* o = dx + r * c;
#pragma omp simd
    for (int64_t k = 0; k < c; k++) o[k] = g[k] * a[k] + (in[k] - mean[k]) * b[k] + d[k];
  }
}

}  // namespace op
