// Copies between shapes: constant padding (PadV2) and slicing (Slice), row by row over the
// innermost axis, rows split over threads.
#include <omp.h>

#include <algorithm>

#include "kernels.h"

namespace op {
namespace {

// Index of output row q (all axes but the last), axis by axis.
inline void rowIndex(int64_t q, const int32_t* shape, int rank, int64_t* idx) {
  for (int i = rank - 2; i >= 0; i--) {
    idx[i] = q % shape[i];
    q /= shape[i];
  }
}

}  // namespace

void pad(const float* x, const int32_t* xShape, float* y, const int32_t* before, int rank,
         float value) {
  std::vector<int32_t> yShape(rank);
  for (int i = 0; i < rank; i++) yShape[i] = xShape[i] + before[i] + before[rank + i];
  int64_t rows = 1;
  for (int i = 0; i < rank - 1; i++) rows *= yShape[i];
  const int64_t yw = yShape[rank - 1], xw = xShape[rank - 1], left = before[rank - 1];
#pragma omp parallel for if (rows * yw >= (1 << 15))
  for (int64_t q = 0; q < rows; q++) {
    int64_t idx[16];
    rowIndex(q, yShape.data(), rank, idx);
    float* out = y + q * yw;
    int64_t src = 0;
    bool inside = true;
    for (int i = 0; i < rank - 1; i++) {
      const int64_t k = idx[i] - before[i];
      if (k < 0 || k >= xShape[i]) {
        inside = false;
        break;
      }
      src = src * xShape[i] + k;
    }
    if (!inside) {
      std::fill(out, out + yw, value);
      continue;
    }
    std::fill(out, out + left, value);
    std::copy(x + src * xw, x + (src + 1) * xw, out + left);
    std::fill(out + left + xw, out + yw, value);
  }
}

void slice(const float* x, const int32_t* xShape, float* y, const int32_t* begin,
           const int32_t* size, int rank) {
  int64_t rows = 1;
  for (int i = 0; i < rank - 1; i++) rows *= size[i];
  const int64_t w = size[rank - 1], xw = xShape[rank - 1], left = begin[rank - 1];
#pragma omp parallel for if (rows * w >= (1 << 15))
  for (int64_t q = 0; q < rows; q++) {
    int64_t idx[16];
    rowIndex(q, size, rank, idx);
    int64_t src = 0;
    for (int i = 0; i < rank - 1; i++) src = src * xShape[i] + idx[i] + begin[i];
    std::copy(x + src * xw + left, x + src * xw + left + w, y + q * w);
  }
}

}  // namespace op
