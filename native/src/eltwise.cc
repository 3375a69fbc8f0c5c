// Element-wise kernels: binary ops with broadcasting, unary ops, softmax, AddN. Plain loops the
// compiler vectorises, split over OpenMP threads when large.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace op {
namespace {

constexpr int64_t kParallelMin = 1 << 15;

template <int OP>
inline float apply(float a, float b) {
  if constexpr (OP == kAdd) return a + b;
  if constexpr (OP == kSub) return a - b;
  if constexpr (OP == kMul) return a * b;
  if constexpr (OP == kDiv) return a / b;
  if constexpr (OP == kMax) return (std::isnan(a) || std::isnan(b)) ? NAN : (a > b ? a : b);
  if constexpr (OP == kMin) return (std::isnan(a) || std::isnan(b)) ? NAN : (a < b ? a : b);
  if constexpr (OP == kSqDiff) {
    float d = a - b;
    return d * d;
  }
  return 0;
}

// The inner row: n outputs, a and b advancing by sa and sb (0 or 1 in the common cases).
template <int OP>
inline void row(const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = b[0];
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = a[0];
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(a[i * sa], b[i * sb]);
  }
}

struct Layout {
  std::vector<int64_t> dim, sa, sb;  // merged dims, innermost last
};

// Strides of a and b over the output's dims (0 where broadcast), adjacent dims merged.
Layout layoutOf(const int32_t* aShape, const int32_t* bShape, const int32_t* outShape, int rank) {
  std::vector<int64_t> sa(rank), sb(rank);
  int64_t ra = 1, rb = 1;
  for (int i = rank - 1; i >= 0; i--) {
    sa[i] = aShape[i] == 1 ? 0 : ra;
    sb[i] = bShape[i] == 1 ? 0 : rb;
    ra *= aShape[i];
    rb *= bShape[i];
  }
  Layout l;
  for (int i = 0; i < rank; i++) {
    if (outShape[i] == 1) continue;
    if (!l.dim.empty()) {
      int64_t d = outShape[i];
      bool mergeA = l.sa.back() == sa[i] * d;
      bool mergeB = l.sb.back() == sb[i] * d;
      if (mergeA && mergeB) {
        l.dim.back() *= d;
        l.sa.back() = sa[i];
        l.sb.back() = sb[i];
        continue;
      }
    }
    l.dim.push_back(outShape[i]);
    l.sa.push_back(sa[i]);
    l.sb.push_back(sb[i]);
  }
  if (l.dim.empty()) {
    l.dim.push_back(1);
    l.sa.push_back(0);
    l.sb.push_back(0);
  }
  return l;
}

template <int OP>
void binaryRun(const float* a, const float* b, float* out, const Layout& l) {
  const int r = static_cast<int>(l.dim.size());
  const int64_t n = l.dim[r - 1];
  int64_t rows = 1;
  for (int i = 0; i < r - 1; i++) rows *= l.dim[i];
  const bool par = rows * n >= kParallelMin && rows > 1;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t q = 0; q < rows; q++) {
    int64_t rest = q, oa = 0, ob = 0;
    for (int i = r - 2; i >= 0; i--) {
      int64_t k = rest % l.dim[i];
      rest /= l.dim[i];
      oa += k * l.sa[i];
      ob += k * l.sb[i];
    }
    row<OP>(a + oa, l.sa[r - 1], b + ob, l.sb[r - 1], out + q * n, n);
  }
}

// A single long row is split over threads here (the loop above runs it on one).
template <int OP>
void binaryOneRow(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
#pragma omp parallel
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t chunk = (n + nt - 1) / nt, s = std::min(n, t * chunk), e = std::min(n, s + chunk);
    row<OP>(a + s * sa, sa, b + s * sb, sb, out + s, e - s);
  }
}

template <int OP>
void binaryOp(const float* a, const float* b, float* out, const Layout& l) {
  if (l.dim.size() == 1 && l.dim[0] >= kParallelMin)
    binaryOneRow<OP>(a, l.sa[0], b, l.sb[0], out, l.dim[0]);
  else
    binaryRun<OP>(a, b, out, l);
}

}  // namespace

void binary(int op, const float* a, const int32_t* aShape, const float* b, const int32_t* bShape,
            float* out, const int32_t* outShape, int rank) {
  Layout l = layoutOf(aShape, bShape, outShape, rank);
  switch (op) {
    case kAdd: return binaryOp<kAdd>(a, b, out, l);
    case kSub: return binaryOp<kSub>(a, b, out, l);
    case kMul: return binaryOp<kMul>(a, b, out, l);
    case kDiv: return binaryOp<kDiv>(a, b, out, l);
    case kMax: return binaryOp<kMax>(a, b, out, l);
    case kMin: return binaryOp<kMin>(a, b, out, l);
    case kSqDiff: return binaryOp<kSqDiff>(a, b, out, l);
  }
}

void unary(int op, const float* x, float* y, int64_t n, float alpha) {
  const bool par = n >= kParallelMin;
  switch (op) {
    case kRelu:
#pragma omp parallel for simd if (par)
      for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : (std::isnan(x[i]) ? x[i] : 0.f);
      break;
    case kStep:
#pragma omp parallel for simd if (par)
      for (int64_t i = 0; i < n; i++) y[i] = std::isnan(x[i]) ? x[i] : (x[i] > 0 ? 1.f : alpha);
      break;
    case kExp:
#pragma omp parallel for if (par)
      for (int64_t i = 0; i < n; i++) y[i] = std::exp(x[i]);
      break;
    case kLog:
#pragma omp parallel for if (par)
      for (int64_t i = 0; i < n; i++) y[i] = std::log(x[i]);
      break;
    case kNeg:
#pragma omp parallel for simd if (par)
      for (int64_t i = 0; i < n; i++) y[i] = -x[i];
      break;
    case kSquare:
#pragma omp parallel for simd if (par)
      for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i];
      break;
    case kSqrt:
#pragma omp parallel for simd if (par)
      for (int64_t i = 0; i < n; i++) y[i] = std::sqrt(x[i]);
      break;
  }
}

void softmax(const float* x, float* y, int64_t rows, int64_t cols, bool log) {
#pragma omp parallel for if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; r++) {
    const float* in = x + r * cols;
    float* o = y + r * cols;
    float m = in[0];
    for (int64_t c = 1; c < cols; c++) m = std::max(m, in[c]);
    double sum = 0;
    for (int64_t c = 0; c < cols; c++) sum += std::exp(static_cast<double>(in[c] - m));
    if (log) {
      const float ls = static_cast<float>(std::log(sum));
      for (int64_t c = 0; c < cols; c++) o[c] = (in[c] - m) - ls;
    } else {
      for (int64_t c = 0; c < cols; c++)
        o[c] = static_cast<float>(std::exp(static_cast<double>(in[c] - m)) / sum);
    }
  }
}

void addN(const std::vector<const float*>& xs, float* y, int64_t n) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    float s = xs[0][i];
    for (size_t k = 1; k < xs.size(); k++) s += xs[k][i];
    y[i] = s;
  }
}

void reluGrad(const float* dy, const float* x, float* dx, int64_t n) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) dx[i] = x[i] > 0 ? dy[i] : (std::isnan(x[i]) ? x[i] : 0.f) * dy[i];
}

int threads() { return omp_get_max_threads(); }
void setThreads(int n) { omp_set_num_threads(n); }

}  // namespace op
