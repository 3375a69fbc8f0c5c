// The N-API surface: each function takes Float32Arrays (tensor memory owned by JavaScript, used
// in place) and Int32Arrays of sizes, and returns nothing; outputs are written into given arrays.
#include <omp.h>

#include "kernels.h"

namespace op {
namespace {

using Napi::CallbackInfo;
using Napi::Value;

// Runs `body`, turning oneDNN and C++ errors into JavaScript exceptions.
template <class F>
Value guarded(const CallbackInfo& info, F body) {
  try {
    body();
  } catch (const dnnl::error& e) {
    return jsError(info.Env(), std::string("oneDNN: ") + e.what());
  } catch (const std::exception& e) {
    return jsError(info.Env(), e.what());
  }
  return info.Env().Undefined();
}

bool flag(const Value& v) { return v.IsBoolean() && v.As<Napi::Boolean>().Value(); }
double num(const Value& v) { return v.As<Napi::Number>().DoubleValue(); }

Value Conv2D(const CallbackInfo& i) {  // (x, w, bias|null, y, p, relu)
  return guarded(i, [&] {
    conv2d(f32ptr(i[0]), f32ptr(i[1]), f32ptr(i[2]), f32ptr(i[3]), i32ptr(i[4]), flag(i[5]));
  });
}

Value Conv2DBackpropInput(const CallbackInfo& i) {  // (dy, w, dx, p)
  return guarded(i, [&] {
    conv2dBackpropInput(f32ptr(i[0]), f32ptr(i[1]), f32ptr(i[2]), i32ptr(i[3]));
  });
}

Value Conv2DBackpropFilter(const CallbackInfo& i) {  // (x, dy, dw, p)
  return guarded(i, [&] {
    conv2dBackpropFilter(f32ptr(i[0]), f32ptr(i[1]), f32ptr(i[2]), i32ptr(i[3]));
  });
}

Value ConvImpl(const CallbackInfo& i) {  // (p, which) -> the implementation oneDNN picked
  std::string s;
  Value r = guarded(i, [&] { s = convImpl(i32ptr(i[0]), static_cast<int>(num(i[1]))); });
  if (i.Env().IsExceptionPending()) return r;
  return Napi::String::New(i.Env(), s);
}

Value MatMul(const CallbackInfo& i) {  // (a, b, bias|null, c, p, relu)
  return guarded(i, [&] {
    matMul(f32ptr(i[0]), f32ptr(i[1]), f32ptr(i[2]), f32ptr(i[3]), i32ptr(i[4]), flag(i[5]));
  });
}

Value Pool(const CallbackInfo& i) {  // (x, y, p)
  return guarded(i, [&] { pool(f32ptr(i[0]), f32ptr(i[1]), i32ptr(i[2])); });
}

Value PoolGrad(const CallbackInfo& i) {  // (dy, x, dx, p)
  return guarded(i, [&] { poolGrad(f32ptr(i[0]), f32ptr(i[1]), f32ptr(i[2]), i32ptr(i[3])); });
}

// (x, scale, shift, mean, var, y, rows, c, eps, training, relu)
Value BatchNorm(const CallbackInfo& i) {
  return guarded(i, [&] {
    batchNorm(f32ptr(i[0]), f32ptr(i[1]), f32ptr(i[2]), f32ptr(i[3]), f32ptr(i[4]), f32ptr(i[5]),
              static_cast<int64_t>(num(i[6])), static_cast<int64_t>(num(i[7])),
              static_cast<float>(num(i[8])), flag(i[9]), flag(i[10]));
  });
}

// (x, dy, y|null, scale, mean, var, dx, dscale, dshift, rows, c, eps)
Value BatchNormGrad(const CallbackInfo& i) {
  return guarded(i, [&] {
    batchNormGrad(f32ptr(i[0]), f32ptr(i[1]), f32ptr(i[2]), f32ptr(i[3]), f32ptr(i[4]),
                  f32ptr(i[5]), f32ptr(i[6]), f32ptr(i[7]), f32ptr(i[8]),
                  static_cast<int64_t>(num(i[9])), static_cast<int64_t>(num(i[10])),
                  static_cast<float>(num(i[11])));
  });
}

Value BinaryOp(const CallbackInfo& i) {  // (op, a, aShape, b, bShape, out, outShape)
  return guarded(i, [&] {
    binary(static_cast<int>(num(i[0])), f32ptr(i[1]), i32ptr(i[2]), f32ptr(i[3]), i32ptr(i[4]),
           f32ptr(i[5]), i32ptr(i[6]), static_cast<int>(length(i[6])));
  });
}

Value UnaryOp(const CallbackInfo& i) {  // (op, x, y, alpha)
  return guarded(i, [&] {
    unary(static_cast<int>(num(i[0])), f32ptr(i[1]), f32ptr(i[2]),
          static_cast<int64_t>(length(i[1])), static_cast<float>(num(i[3])));
  });
}

Value Softmax(const CallbackInfo& i) {  // (x, y, rows, cols, log)
  return guarded(i, [&] {
    softmax(f32ptr(i[0]), f32ptr(i[1]), static_cast<int64_t>(num(i[2])),
            static_cast<int64_t>(num(i[3])), flag(i[4]));
  });
}

Value AddN(const CallbackInfo& i) {  // ([x...], y)
  return guarded(i, [&] {
    auto list = i[0].As<Napi::Array>();
    std::vector<const float*> xs(list.Length());
    for (uint32_t k = 0; k < list.Length(); k++) xs[k] = f32ptr(list.Get(k));
    addN(xs, f32ptr(i[1]), static_cast<int64_t>(length(i[1])));
  });
}

Value ReduceOp(const CallbackInfo& i) {  // (op, x, y, outer, mid, inner)
  return guarded(i, [&] {
    reduce(static_cast<int>(num(i[0])), f32ptr(i[1]), f32ptr(i[2]),
           static_cast<int64_t>(num(i[3])), static_cast<int64_t>(num(i[4])),
           static_cast<int64_t>(num(i[5])));
  });
}

// (w, g, buf, lr, momentum, weightDecay, dampening, nesterov, first)
Value Sgd(const CallbackInfo& i) {
  return guarded(i, [&] {
    SgdArgs a{static_cast<float>(num(i[3])), static_cast<float>(num(i[4])),
              static_cast<float>(num(i[5])), static_cast<float>(num(i[6])), flag(i[7]),
              flag(i[8])};
    sgd(f32ptr(i[0]), f32ptr(i[1]), f32ptr(i[2]), static_cast<int64_t>(length(i[0])), a);
  });
}

Value Pad(const CallbackInfo& i) {  // (x, xShape, y, pads[before..., after...], value)
  return guarded(i, [&] {
    pad(f32ptr(i[0]), i32ptr(i[1]), f32ptr(i[2]), i32ptr(i[3]), static_cast<int>(length(i[1])),
        static_cast<float>(num(i[4])));
  });
}

Value Slice(const CallbackInfo& i) {  // (x, xShape, y, begin, size)
  return guarded(i, [&] {
    slice(f32ptr(i[0]), i32ptr(i[1]), f32ptr(i[2]), i32ptr(i[3]), i32ptr(i[4]),
          static_cast<int>(length(i[1])));
  });
}

Value ReluGrad(const CallbackInfo& i) {  // (dy, x, dx)
  return guarded(i, [&] {
    reluGrad(f32ptr(i[0]), f32ptr(i[1]), f32ptr(i[2]), static_cast<int64_t>(length(i[0])));
  });
}

Value Threads(const CallbackInfo& i) {  // ([n]) -> threads in use
  if (i.Length() > 0 && i[0].IsNumber()) setThreads(static_cast<int>(num(i[0])));
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
  fn("threads", Threads);
  fn("info", Info);
  return exports;
}

}  // namespace op

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return op::Init(env, exports);
}

NODE_API_MODULE(onepixel_native, InitAddon)
