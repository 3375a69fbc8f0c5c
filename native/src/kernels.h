// Every kernel the addon exports; addon.cc binds them to JavaScript.
#pragma once
#include <algorithm>
#include <cstring>

#include "common.h"

namespace op {

// conv.cc (p: N H W Ci kh kw Co Ho Wo sh sw dh dw pt pl pb pr)
void conv2d(float* x, float* w, float* bias, float* y, const int32_t* p, bool relu);
void conv2dBackpropInput(float* dy, float* w, float* dx, const int32_t* p);
void conv2dBackpropFilter(float* x, float* dy, float* dw, const int32_t* p);
std::string convImpl(const int32_t* p, int which);

// matmul.cc (p: batchA batchB M K N transA transB)
void matMul(float* a, float* b, float* bias, float* c, const int32_t* p, bool relu);
// The implementation oneDNN runs for the product p in the current precision, with " bf16"/" f32".
std::string matMulImpl(const int32_t* p);

// pool.cc (p: N H W C kh kw Ho Wo sh sw pt pl pb pr isMax)
void pool(float* x, float* y, const int32_t* p);
void poolGrad(float* dy, float* x, float* dx, const int32_t* p);

// batchnorm.cc
void batchNorm(float* x, float* scale, float* shift, float* mean, float* var, float* y,
               int64_t rows, int64_t c, float eps, bool training, bool relu);
// y: the forward output when the forward pass fused a ReLU (else nullptr).
void batchNormGrad(float* x, float* dy, const float* y, float* scale, float* mean, float* var,
                   float* dx, float* dscale, float* dshift, int64_t rows, int64_t c, float eps);

// eltwise.cc
enum Binary { kAdd, kSub, kMul, kDiv, kMax, kMin, kSqDiff };
// Shapes of equal rank (leading ones added by the caller); b or a may broadcast.
void binary(int op, const float* a, const int32_t* aShape, const float* b, const int32_t* bShape,
            float* out, const int32_t* outShape, int rank);
enum Unary { kRelu, kStep, kExp, kLog, kNeg, kSquare, kSqrt };
void unary(int op, const float* x, float* y, int64_t n, float alpha);
void softmax(const float* x, float* y, int64_t rows, int64_t cols, bool log);
void addN(const std::vector<const float*>& xs, float* y, int64_t n);

// layout.cc (rank ≤ 16; `before` holds the pads before each axis, then those after)
void pad(const float* x, const int32_t* xShape, float* y, const int32_t* before, int rank,
         float value);
void slice(const float* x, const int32_t* xShape, float* y, const int32_t* begin,
           const int32_t* size, int rank);
void reluGrad(const float* dy, const float* x, float* dx, int64_t n);

// reduce.cc: x seen as outer × mid × inner, mid reduced.
enum Reduce { kSum, kMean, kMaxR };
void reduce(int op, const float* x, float* y, int64_t outer, int64_t mid, int64_t inner);

// sgd.cc: one PyTorch-SGD update of w and its momentum buffer, in place.
struct SgdArgs {
  float lr, momentum, weightDecay, dampening;
  bool nesterov, first;
};
void sgd(float* w, const float* g, float* buf, int64_t n, const SgdArgs& a);

// gelu.cc: GELU (erf form) and its gradient from the input; GeluOp is its N-API function.
void gelu(const float* x, float* y, int64_t n);
void geluGrad(const float* x, const float* dy, float* dx, int64_t n);
Napi::Value GeluOp(const Napi::CallbackInfo& info);

int threads();
void setThreads(int n);

}  // namespace op
