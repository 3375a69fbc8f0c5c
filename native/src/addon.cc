// The N-API surface: each function takes Float32Arrays (tensor memory owned by JavaScript, used
// in place) and Int32Arrays of sizes, and returns nothing; outputs are written into given arrays.
// Every argument is checked first (types, lengths against the sizes, sizes, strides, pads and
// broadcasts against each other): a bad call throws a TypeError or RangeError naming the function
// and the argument, and touches no memory.
#include <omp.h>

#include "args.h"
#include "kernels.h"

namespace op {
namespace {

using Napi::CallbackInfo;
using Napi::Value;

// Runs `body`, turning argument, oneDNN and C++ errors into JavaScript exceptions.
template <class F>
Value guarded(const CallbackInfo& info, F body) {
  try {
    body();
  } catch (const ArgError& e) {
    if (e.type)
      Napi::TypeError::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    else
      Napi::RangeError::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  } catch (const dnnl::error& e) {
    return jsError(info.Env(), std::string("oneDNN: ") + e.what());
  } catch (const std::exception& e) {
    return jsError(info.Env(), e.what());
  }
  return info.Env().Undefined();
}

// oneDNN's name for the instruction set its kernels use on this CPU (ONEDNN_VERBOSE's names).
std::string isaName() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    default: return "isa " + std::to_string(static_cast<int>(dnnl::get_effective_cpu_isa()));
  }
}

constexpr int64_t kBig = int64_t(1) << 30;  // bound of any single size, stride or pad

// The output size along one axis that oneDNN derives (and requires) from the others.
int64_t outSize(int64_t in, int64_t k, int64_t dil, int64_t s, int64_t padA, int64_t padB) {
  const int64_t span = in + padA + padB - ((k - 1) * dil + 1);
  return span < 0 ? 0 : span / s + 1;
}

// Sizes of a convolution's tensors, from its checked geometry p (see kernels.h).
struct ConvSizes {
  int64_t x, w, y, co;
};

ConvSizes checkConv(const Args& a, int i, const char* name) {
  const int32_t* p = a.i32(i, name, 17);
  static const char* names[17] = {"N",  "H",  "W",  "Ci", "kh", "kw", "Co", "Ho", "Wo",
                                  "sh", "sw", "dh", "dw", "pt", "pl", "pb", "pr"};
  for (int k = 0; k < 17; k++)
    a.param(name, names[k], p[k], k == 0 || k >= 13 ? 0 : 1, kBig);
  for (int axis = 0; axis < 2; axis++) {
    const int64_t want = outSize(p[1 + axis], p[4 + axis], p[11 + axis], p[9 + axis],
                                 p[13 + axis], p[15 + axis]);
    if (p[7 + axis] != want)
      a.rangeError(std::string(name) + ": " + names[7 + axis] + " = " +
                   std::to_string(p[7 + axis]) + " does not follow from the input, kernel, " +
                   "stride, dilation and pads (" + std::to_string(want) + ")");
  }
  ConvSizes s;
  s.x = mul(a, name, mul(a, name, p[0], p[1]), mul(a, name, p[2], p[3]));
  s.w = mul(a, name, mul(a, name, p[4], p[5]), mul(a, name, p[3], p[6]));
  s.y = mul(a, name, mul(a, name, p[0], p[7]), mul(a, name, p[8], p[6]));
  s.co = p[6];
  return s;
}

// Pooling geometry p (N H W C kh kw Ho Wo sh sw pt pl pb pr isMax): sizes of x and y.
std::pair<int64_t, int64_t> checkPool(const Args& a, int i, const char* name) {
  const int32_t* p = a.i32(i, name, 15);
  static const char* names[15] = {"N",  "H",  "W",  "C",  "kh", "kw", "Ho",   "Wo",
                                  "sh", "sw", "pt", "pl", "pb", "pr", "isMax"};
  for (int k = 0; k < 14; k++) a.param(name, names[k], p[k], k == 0 || k >= 10 ? 0 : 1, kBig);
  a.param(name, names[14], p[14], 0, 1);
  for (int axis = 0; axis < 2; axis++) {
    const int64_t k = p[4 + axis];
    if (p[10 + axis] >= k || p[12 + axis] >= k)
      a.rangeError(std::string(name) + ": pads must be smaller than the window");
    const int64_t want = outSize(p[1 + axis], k, 1, p[8 + axis], p[10 + axis], p[12 + axis]);
    if (p[6 + axis] != want)
      a.rangeError(std::string(name) + ": " + names[6 + axis] + " = " +
                   std::to_string(p[6 + axis]) + " does not follow from the input, window, " +
                   "stride and pads (" + std::to_string(want) + ")");
  }
  const int64_t nc = mul(a, name, p[0], p[3]);
  return {mul(a, name, nc, mul(a, name, p[1], p[2])), mul(a, name, nc, mul(a, name, p[6], p[7]))};
}

Value Conv2D(const CallbackInfo& i) {  // (x, w, bias|null, y, p, relu)
  return guarded(i, [&] {
    Args a(i, "conv2d");
    const ConvSizes s = checkConv(a, 4, "p");
    // (one argument after the other: C++ leaves the order of a call's arguments open)
    float* x = a.f32(0, "x", s.x);
    float* w = a.f32(1, "w", s.w);
    float* bias = a.f32(2, "bias", s.co, true);
    float* y = a.f32(3, "y", s.y);
    conv2d(x, w, bias, y, i32ptr(i[4]), a.flag(5, "relu"));
  });
}

Value Conv2DBackpropInput(const CallbackInfo& i) {  // (dy, w, dx, p)
  return guarded(i, [&] {
    Args a(i, "conv2dBackpropInput");
    const ConvSizes s = checkConv(a, 3, "p");
    float* dy = a.f32(0, "dy", s.y);
    float* w = a.f32(1, "w", s.w);
    conv2dBackpropInput(dy, w, a.f32(2, "dx", s.x), i32ptr(i[3]));
  });
}

Value Conv2DBackpropFilter(const CallbackInfo& i) {  // (x, dy, dw, p)
  return guarded(i, [&] {
    Args a(i, "conv2dBackpropFilter");
    const ConvSizes s = checkConv(a, 3, "p");
    float* x = a.f32(0, "x", s.x);
    float* dy = a.f32(1, "dy", s.y);
    conv2dBackpropFilter(x, dy, a.f32(2, "dw", s.w), i32ptr(i[3]));
  });
}

Value ConvImpl(const CallbackInfo& i) {  // (p, which) -> the implementation oneDNN picked
  std::string s;
  Value r = guarded(i, [&] {
    Args a(i, "convImpl");
    checkConv(a, 0, "p");
    s = convImpl(i32ptr(i[0]), static_cast<int>(a.integer(1, "which", 0, 2)));
  });
  if (i.Env().IsExceptionPending()) return r;
  return Napi::String::New(i.Env(), s);
}

// A matrix product's geometry p (batchA batchB M K N transA transB), checked.
const int32_t* checkMatMul(const Args& a, int i) {
  const int32_t* p = a.i32(i, "p", 7);
  static const char* names[7] = {"batchA", "batchB", "M", "K", "N", "transA", "transB"};
  for (int k = 0; k < 5; k++) a.param("p", names[k], p[k], k == 3 ? 1 : 0, kBig);
  a.param("p", names[5], p[5], 0, 1);
  a.param("p", names[6], p[6], 0, 1);
  if (p[0] != p[1] && p[0] != 1 && p[1] != 1)
    a.rangeError("p: batchA = " + std::to_string(p[0]) + " and batchB = " + std::to_string(p[1]) +
                 " do not broadcast");
  return p;
}

Value MatMulImpl(const CallbackInfo& i) {  // (p) -> the implementation oneDNN picked
  std::string s;
  Value r = guarded(i, [&] { s = matMulImpl(checkMatMul(Args(i, "matMulImpl"), 0)); });
  if (i.Env().IsExceptionPending()) return r;
  return Napi::String::New(i.Env(), s);
}

// (['fp32' | 'bf16']) -> the precision in use; bf16 only where the CPU runs it natively.
Value PrecisionOp(const CallbackInfo& i) {
  Value r = guarded(i, [&] {
    if (i.Length() == 0 || i[0].IsUndefined()) return;
    Args a(i, "precision");
    if (!i[0].IsString()) a.typeError("precision: argument 1 must be 'fp32' or 'bf16'");
    const std::string want = i[0].As<Napi::String>().Utf8Value();
    if (want == "fp32") {
      setPrecision(Precision::kF32);
    } else if (want == "bf16") {
      if (!bf16Native())
        a.rangeError("precision: this CPU has no native bf16 (oneDNN ISA " + isaName() + ")");
      setPrecision(Precision::kBf16);
    } else {
      a.rangeError("precision: '" + want + "' is not 'fp32' or 'bf16'");
    }
  });
  if (i.Env().IsExceptionPending()) return r;
  return Napi::String::New(i.Env(), precision() == Precision::kBf16 ? "bf16" : "fp32");
}

Value MatMul(const CallbackInfo& i) {  // (a, b, bias|null, c, p, relu)
  return guarded(i, [&] {
    Args a(i, "matMul");
    const int32_t* p = checkMatMul(a, 4);
    const int64_t bA = p[0], bB = p[1], M = p[2], K = p[3], N = p[4];
    float* x = a.f32(0, "a", mul(a, "a", bA, mul(a, "a", M, K)));
    float* w = a.f32(1, "b", mul(a, "b", bB, mul(a, "b", K, N)));
    float* bias = a.f32(2, "bias", N, true);
    float* c = a.f32(3, "c", mul(a, "c", std::max(bA, bB), mul(a, "c", M, N)));
    matMul(x, w, bias, c, p, a.flag(5, "relu"));
  });
}

Value Pool(const CallbackInfo& i) {  // (x, y, p)
  return guarded(i, [&] {
    Args a(i, "pool");
    const auto [x, y] = checkPool(a, 2, "p");
    float* px = a.f32(0, "x", x);
    pool(px, a.f32(1, "y", y), i32ptr(i[2]));
  });
}

Value PoolGrad(const CallbackInfo& i) {  // (dy, x, dx, p)
  return guarded(i, [&] {
    Args a(i, "poolGrad");
    const auto [x, y] = checkPool(a, 3, "p");
    float* dy = a.f32(0, "dy", y);
    float* px = a.f32(1, "x", x);
    poolGrad(dy, px, a.f32(2, "dx", x), i32ptr(i[3]));
  });
}

// (x, scale, shift, mean, var, y, rows, c, eps, training, relu)
Value BatchNorm(const CallbackInfo& i) {
  return guarded(i, [&] {
    Args a(i, "batchNorm");
    const bool training = a.flag(9, "training");
    const int64_t rows = a.integer(6, "rows", training ? 1 : 0, kBig * kBig);
    const int64_t c = a.integer(7, "channels", 1, kBig);
    const int64_t n = mul(a, "x", rows, c);
    const double eps = a.finite(8, "epsilon");
    if (eps < 0) a.rangeError("epsilon (argument 9) must not be negative");
    float* p[6];
    static const char* names[6] = {"x", "scale", "shift", "mean", "variance", "y"};
    for (int k = 0; k < 6; k++) p[k] = a.f32(k, names[k], k == 0 || k == 5 ? n : c);
    batchNorm(p[0], p[1], p[2], p[3], p[4], p[5], rows, c, static_cast<float>(eps), training,
              a.flag(10, "relu"));
  });
}

// (x, dy, y|null, scale, mean, var, dx, dscale, dshift, rows, c, eps)
Value BatchNormGrad(const CallbackInfo& i) {
  return guarded(i, [&] {
    Args a(i, "batchNormGrad");
    const int64_t rows = a.integer(9, "rows", 1, kBig * kBig);
    const int64_t c = a.integer(10, "channels", 1, kBig);
    const int64_t n = mul(a, "x", rows, c);
    const double eps = a.finite(11, "epsilon");
    if (eps < 0) a.rangeError("epsilon (argument 12) must not be negative");
    float* p[9];
    static const char* names[9] = {"x",        "dy", "y",      "scale", "mean",
                                   "variance", "dx", "dscale", "dshift"};
    for (int k = 0; k < 9; k++) p[k] = a.f32(k, names[k], k < 3 || k == 6 ? n : c, k == 2);
    batchNormGrad(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], rows, c,
                  static_cast<float>(eps));
  });
}

// The element count of a shape (an Int32Array of `rank` sizes ≥ 0).
int64_t sizeOf(const Args& a, const char* name, const int32_t* shape, int64_t rank) {
  int64_t n = 1;
  for (int64_t k = 0; k < rank; k++) n = mul(a, name, n, a.param(name, "a size", shape[k], 0, kBig));
  return n;
}

Value BinaryOp(const CallbackInfo& i) {  // (op, a, aShape, b, bShape, out, outShape)
  return guarded(i, [&] {
    Args a(i, "binary");
    const int op = static_cast<int>(a.integer(0, "op", kAdd, kSqDiff));
    int64_t rank = 0;
    const int32_t* outShape = a.i32(6, "outShape", -1, &rank);
    if (rank < 1) a.rangeError("outShape (argument 7) must have at least one axis");
    const int32_t* aShape = a.i32(2, "aShape", rank);
    const int32_t* bShape = a.i32(4, "bShape", rank);
    const int64_t nOut = sizeOf(a, "outShape", outShape, rank);
    const int64_t nA = sizeOf(a, "aShape", aShape, rank), nB = sizeOf(a, "bShape", bShape, rank);
    for (int64_t k = 0; k < rank; k++)
      if ((aShape[k] != outShape[k] && aShape[k] != 1) ||
          (bShape[k] != outShape[k] && bShape[k] != 1))
        a.rangeError("axis " + std::to_string(k) + " of aShape (" + std::to_string(aShape[k]) +
                     ") or bShape (" + std::to_string(bShape[k]) + ") does not broadcast to " +
                     "outShape's (" + std::to_string(outShape[k]) + ")");
    const float* x = a.f32(1, "a", nA);
    const float* y = a.f32(3, "b", nB);
    binary(op, x, aShape, y, bShape, a.f32(5, "out", nOut), outShape, static_cast<int>(rank));
  });
}

Value UnaryOp(const CallbackInfo& i) {  // (op, x, y, alpha)
  return guarded(i, [&] {
    Args a(i, "unary");
    const int op = static_cast<int>(a.integer(0, "op", kRelu, kSqrt));
    int64_t n = 0;
    const float* x = a.f32Any(1, "x", &n);
    float* y = a.f32(2, "y", n);
    unary(op, x, y, n, static_cast<float>(a.finite(3, "alpha")));
  });
}

Value Softmax(const CallbackInfo& i) {  // (x, y, rows, cols, log)
  return guarded(i, [&] {
    Args a(i, "softmax");
    const int64_t rows = a.integer(2, "rows", 0, kBig * kBig);
    const int64_t cols = a.integer(3, "cols", 1, kBig);
    const int64_t n = mul(a, "x", rows, cols);
    const float* x = a.f32(0, "x", n);
    float* y = a.f32(1, "y", n);
    softmax(x, y, rows, cols, a.flag(4, "log"));
  });
}

Value AddN(const CallbackInfo& i) {  // ([x...], y)
  return guarded(i, [&] {
    Args a(i, "addN");
    auto list = a.array(0, "xs");
    if (list.Length() == 0) a.rangeError("xs (argument 1) must not be empty");
    int64_t n = 0;
    float* y = a.f32Any(1, "y", &n);
    std::vector<const float*> xs(list.Length());
    for (uint32_t k = 0; k < list.Length(); k++) {
      Napi::Value v = list.Get(k);
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        a.typeError("xs[" + std::to_string(k) + "] must be a Float32Array");
      auto x = v.As<Napi::Float32Array>();
      if (static_cast<int64_t>(x.ElementLength()) != n)
        a.rangeError("xs[" + std::to_string(k) + "] has " + std::to_string(x.ElementLength()) +
                     " elements, y has " + std::to_string(n));
      xs[k] = x.Data();
    }
    addN(xs, y, n);
  });
}

Value ReduceOp(const CallbackInfo& i) {  // (op, x, y, outer, mid, inner)
  return guarded(i, [&] {
    Args a(i, "reduce");
    const int op = static_cast<int>(a.integer(0, "op", kSum, kMaxR));
    const int64_t outer = a.integer(3, "outer", 0, kBig * kBig);
    const int64_t mid = a.integer(4, "mid", op == kMaxR ? 1 : 0, kBig * kBig);
    const int64_t inner = a.integer(5, "inner", 0, kBig * kBig);
    const int64_t ny = mul(a, "y", outer, inner);
    const float* x = a.f32(1, "x", mul(a, "x", ny, mid));
    reduce(op, x, a.f32(2, "y", ny), outer, mid, inner);
  });
}

// (w, g, buf, lr, momentum, weightDecay, dampening, nesterov, first)
Value Sgd(const CallbackInfo& i) {
  return guarded(i, [&] {
    Args a(i, "sgd");
    int64_t n = 0;
    float* w = a.f32Any(0, "w", &n);
    float* g = a.f32(1, "g", n);
    SgdArgs s{};  // (braced initialisers run in order; spelled out anyway)
    s.lr = static_cast<float>(a.finite(3, "lr"));
    s.momentum = static_cast<float>(a.finite(4, "momentum"));
    s.weightDecay = static_cast<float>(a.finite(5, "weightDecay"));
    s.dampening = static_cast<float>(a.finite(6, "dampening"));
    s.nesterov = a.flag(7, "nesterov");
    s.first = a.flag(8, "first");
    // The momentum buffer is read and written only with a momentum.
    int64_t nb = 0;
    float* buf = a.f32Any(2, "buf", &nb);
    if (s.momentum != 0.f && nb != n)
      a.rangeError("buf (argument 3) has " + std::to_string(nb) + " elements, expected " +
                   std::to_string(n));
    sgd(w, g, buf, n, s);
  });
}

Value Pad(const CallbackInfo& i) {  // (x, xShape, y, pads[before..., after...], value)
  return guarded(i, [&] {
    Args a(i, "pad");
    int64_t rank = 0;
    const int32_t* xShape = a.i32(1, "xShape", -1, &rank);
    if (rank < 1 || rank > 16) a.rangeError("xShape (argument 2) must have 1 to 16 axes");
    const int32_t* pads = a.i32(3, "pads", 2 * rank);
    int64_t nx = 1, ny = 1;
    for (int64_t k = 0; k < rank; k++) {
      const int64_t d = a.param("xShape", "a size", xShape[k], 0, kBig);
      const int64_t before = a.param("pads", "a pad", pads[k], 0, kBig);
      const int64_t after = a.param("pads", "a pad", pads[rank + k], 0, kBig);
      nx = mul(a, "x", nx, d);
      ny = mul(a, "y", ny, d + before + after);
    }
    const float* x = a.f32(0, "x", nx);
    float* y = a.f32(2, "y", ny);
    pad(x, xShape, y, pads, static_cast<int>(rank), static_cast<float>(a.finite(4, "value")));
  });
}

Value Slice(const CallbackInfo& i) {  // (x, xShape, y, begin, size)
  return guarded(i, [&] {
    Args a(i, "slice");
    int64_t rank = 0;
    const int32_t* xShape = a.i32(1, "xShape", -1, &rank);
    if (rank < 1 || rank > 16) a.rangeError("xShape (argument 2) must have 1 to 16 axes");
    const int32_t* begin = a.i32(3, "begin", rank);
    const int32_t* size = a.i32(4, "size", rank);
    int64_t nx = 1, ny = 1;
    for (int64_t k = 0; k < rank; k++) {
      const int64_t d = a.param("xShape", "a size", xShape[k], 0, kBig);
      const int64_t b = a.param("begin", "a start", begin[k], 0, d);
      a.param("size", "a size", size[k], 0, d - b);
      nx = mul(a, "x", nx, d);
      ny = mul(a, "y", ny, size[k]);
    }
    const float* x = a.f32(0, "x", nx);
    slice(x, xShape, a.f32(2, "y", ny), begin, size, static_cast<int>(rank));
  });
}

Value ReluGrad(const CallbackInfo& i) {  // (dy, x, dx)
  return guarded(i, [&] {
    Args a(i, "reluGrad");
    int64_t n = 0;
    const float* dy = a.f32Any(0, "dy", &n);
    const float* x = a.f32(1, "x", n);
    reluGrad(dy, x, a.f32(2, "dx", n), n);
  });
}

Value Threads(const CallbackInfo& i) {  // ([n]) -> threads in use
  Value r = guarded(i, [&] {
    if (i.Length() > 0 && !i[0].IsUndefined())
      setThreads(static_cast<int>(Args(i, "threads").integer(0, "n", 1, 4096)));
  });
  if (i.Env().IsExceptionPending()) return r;
  return Napi::Number::New(i.Env(), threads());
}

Value Info(const CallbackInfo& i) {
  auto env = i.Env();
  auto o = Napi::Object::New(env);
  const dnnl_version_t* v = dnnl_version();
  o.Set("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                      std::to_string(v->patch));
  o.Set("cpuRuntime", v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other");
  o.Set("isa", static_cast<double>(static_cast<int>(dnnl::get_effective_cpu_isa())));
  o.Set("isaName", isaName());
  o.Set("bf16", bf16Native());
  o.Set("precision", precision() == Precision::kBf16 ? "bf16" : "fp32");
  o.Set("threads", threads());
  o.Set("cachedPrimitives", static_cast<double>(cacheSize()));
  return o;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto fn = [&](const char* name, Value (*f)(const CallbackInfo&)) {
    exports.Set(name, Napi::Function::New(env, f, name));
  };
  fn("conv2d", Conv2D);
  fn("conv2dBackpropInput", Conv2DBackpropInput);
  fn("conv2dBackpropFilter", Conv2DBackpropFilter);
  fn("convImpl", ConvImpl);
  fn("matMul", MatMul);
  fn("matMulImpl", MatMulImpl);
  fn("precision", PrecisionOp);
  fn("pool", Pool);
  fn("poolGrad", PoolGrad);
  fn("batchNorm", BatchNorm);
  fn("batchNormGrad", BatchNormGrad);
  fn("binary", BinaryOp);
  fn("unary", UnaryOp);
  fn("softmax", Softmax);
  fn("addN", AddN);
  fn("reduce", ReduceOp);
  fn("sgd", Sgd);
  fn("pad", Pad);
  fn("slice", Slice);
  fn("reluGrad", ReluGrad);
  fn("gelu", GeluOp);
  fn("threads", Threads);
  fn("info", Info);
  return exports;
}

}  // namespace op

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return op::Init(env, exports);
}

NODE_API_MODULE(onepixel_native, InitAddon)
