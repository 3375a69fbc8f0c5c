// GELU, the exact (erf) form y = x·Φ(x), forward and backward, on oneDNN's eltwise primitive
// (algorithm::eltwise_gelu_erf, JIT-vectorised), float32, any number of elements. The backward pass
// takes the forward input (dx = dy·(Φ(x) + x·φ(x))). Its own N-API function, `gelu(x, dy, out)`:
// dy null for the forward pass.
#include <napi.h>

#include "args.h"
#include "kernels.h"

namespace op {
namespace {

using namespace dnnl;

struct GeluEntry : Entry {
  eltwise_forward::primitive_desc fwdPd;
  eltwise_forward fwd;
  eltwise_backward::primitive_desc bwdPd;
  eltwise_backward bwd;
};

GeluEntry* entryFor(int64_t n) {
  return static_cast<GeluEntry*>(cached({21, n}, [&] {
    auto* e = new GeluEntry;
    memory::desc md({n}, f32, tag::a);
    eltwise_forward::desc fd(prop_kind::forward_training, algorithm::eltwise_gelu_erf, md, 0.f,
                             0.f);
    e->fwdPd = eltwise_forward::primitive_desc(fd, attrs(), eng());
    e->fwd = eltwise_forward(e->fwdPd);
    eltwise_backward::desc bd(algorithm::eltwise_gelu_erf, md, md, 0.f, 0.f);
    e->bwdPd = eltwise_backward::primitive_desc(bd, attrs(), eng(), e->fwdPd);
    e->bwd = eltwise_backward(e->bwdPd);
    return e;
  }));
}

}  // namespace

void gelu(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  GeluEntry* e = entryFor(n);
  e->fwd.execute(strm(), {{DNNL_ARG_SRC, memory(e->fwdPd.src_desc(), eng(), const_cast<float*>(x))},
                          {DNNL_ARG_DST, memory(e->fwdPd.dst_desc(), eng(), y)},
                          {DNNL_ARG_SCRATCHPAD, scratchpad(e->fwdPd.scratchpad_desc())}});
  strm().wait();
}

void geluGrad(const float* x, const float* dy, float* dx, int64_t n) {
  if (n == 0) return;
  GeluEntry* e = entryFor(n);
  e->bwd.execute(strm(),
                 {{DNNL_ARG_SRC, memory(e->bwdPd.src_desc(), eng(), const_cast<float*>(x))},
                  {DNNL_ARG_DIFF_DST, memory(e->bwdPd.diff_dst_desc(), eng(), const_cast<float*>(dy))},
                  {DNNL_ARG_DIFF_SRC, memory(e->bwdPd.diff_src_desc(), eng(), dx)},
                  {DNNL_ARG_SCRATCHPAD, scratchpad(e->bwdPd.scratchpad_desc())}});
  strm().wait();
}

// gelu(x, dy, out): out = gelu(x) when dy is null, else the gradient dy·gelu'(x); all float32 of
// one length.
Napi::Value GeluOp(const Napi::CallbackInfo& info) {
  try {
    Args a(info, "gelu");
    int64_t n = 0;
    const float* x = a.f32Any(0, "x", &n);
    const float* dy = a.f32(1, "dy", n, true);
    float* out = a.f32(2, "out", n);
    if (dy == nullptr)
      gelu(x, out, n);
    else
      geluGrad(x, dy, out, n);
  } catch (const ArgError& e) {
    if (e.type)
      Napi::TypeError::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    else
      Napi::RangeError::New(info.Env(), e.what()).ThrowAsJavaScriptException();
  } catch (const dnnl::error& e) {
    return jsError(info.Env(), std::string("oneDNN: ") + e.what());
  }
  return info.Env().Undefined();
}

}  // namespace op
