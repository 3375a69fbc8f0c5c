// Batch normalisation over the last axis (data seen as rows × C, C innermost: NHWC's layout):
// forward with batch statistics (training) or given ones (inference), and the whole backward
// pass — input, scale and offset gradients — in one call.
#include "kernels.h"

namespace op {
namespace {

using namespace dnnl;

const auto kScaleShift = normalization_flags::use_scale | normalization_flags::use_shift;

struct FwdEntry : Entry {
  batch_normalization_forward::primitive_desc pd;
  batch_normalization_forward prim;
};

struct BwdEntry : Entry {
  batch_normalization_backward::primitive_desc pd;
  batch_normalization_backward prim;
};

memory::desc dataMd(int64_t rows, int64_t c) { return memory::desc({rows, c}, f32, tag::nc); }

batch_normalization_forward::primitive_desc forwardPd(int64_t rows, int64_t c, float eps,
                                                      bool training) {
  auto flags = training ? kScaleShift : kScaleShift | normalization_flags::use_global_stats;
  batch_normalization_forward::desc d(
      training ? prop_kind::forward_training : prop_kind::forward_inference, dataMd(rows, c), eps,
      flags);
  return {d, attrs(), eng()};
}

std::vector<int64_t> keyOf(int kind, int64_t rows, int64_t c, float eps) {
  int32_t bits;
  std::memcpy(&bits, &eps, sizeof bits);
  return {kind, rows, c, bits};
}

}  // namespace

// Training: writes y, and the batch mean and (biased) variance. Inference: reads mean, variance.
void batchNorm(float* x, float* scale, float* shift, float* mean, float* var, float* y,
               int64_t rows, int64_t c, float eps, bool training) {
  auto* e = static_cast<FwdEntry*>(cached(keyOf(training ? 7 : 8, rows, c, eps), [&] {
    auto* n = new FwdEntry;
    n->pd = forwardPd(rows, c, eps, training);
    n->prim = batch_normalization_forward(n->pd);
    return n;
  }));
  memory::desc vec({c}, f32, tag::a);
  e->prim.execute(strm(), {{DNNL_ARG_SRC, memory(e->pd.src_desc(), eng(), x)},
                           {DNNL_ARG_DST, memory(e->pd.dst_desc(), eng(), y)},
                           {DNNL_ARG_SCALE, memory(vec, eng(), scale)},
                           {DNNL_ARG_SHIFT, memory(vec, eng(), shift)},
                           {DNNL_ARG_MEAN, memory(vec, eng(), mean)},
                           {DNNL_ARG_VARIANCE, memory(vec, eng(), var)},
                           {DNNL_ARG_SCRATCHPAD, scratchpad(e->pd.scratchpad_desc())}});
  strm().wait();
}

void batchNormGrad(float* x, float* dy, float* scale, float* mean, float* var, float* dx,
                   float* dscale, float* dshift, int64_t rows, int64_t c, float eps) {
  auto* e = static_cast<BwdEntry*>(cached(keyOf(9, rows, c, eps), [&] {
    auto* n = new BwdEntry;
    auto hint = forwardPd(rows, c, eps, true);
    batch_normalization_backward::desc d(prop_kind::backward, dataMd(rows, c), dataMd(rows, c),
                                         eps, kScaleShift);
    n->pd = batch_normalization_backward::primitive_desc(d, attrs(), eng(), hint);
    n->prim = batch_normalization_backward(n->pd);
    return n;
  }));
  memory::desc vec({c}, f32, tag::a);
  e->prim.execute(strm(), {{DNNL_ARG_SRC, memory(e->pd.src_desc(), eng(), x)},
                           {DNNL_ARG_DIFF_DST, memory(e->pd.diff_dst_desc(), eng(), dy)},
                           {DNNL_ARG_SCALE, memory(vec, eng(), scale)},
                           {DNNL_ARG_MEAN, memory(vec, eng(), mean)},
                           {DNNL_ARG_VARIANCE, memory(vec, eng(), var)},
                           {DNNL_ARG_DIFF_SRC, memory(e->pd.diff_src_desc(), eng(), dx)},
                           {DNNL_ARG_DIFF_SCALE, memory(vec, eng(), dscale)},
                           {DNNL_ARG_DIFF_SHIFT, memory(vec, eng(), dshift)},
                           {DNNL_ARG_SCRATCHPAD, scratchpad(e->pd.scratchpad_desc())}});
  strm().wait();
}

}  // namespace op
