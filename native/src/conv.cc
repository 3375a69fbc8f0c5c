// Conv2D forward (optionally with bias and ReLU), and its input and filter gradients, NHWC with
// HWIO filters as tfjs stores them. Filters are reordered to the layout oneDNN picks.
#include "kernels.h"

namespace op {
namespace {

using namespace dnnl;

// p: N H W Ci  kh kw Co  Ho Wo  sh sw  dh dw  pt pl pb pr
struct Geometry {
  dims src, wei, dst, bias, strides, dil, padL, padR;
  explicit Geometry(const int32_t* p)
      : src{p[0], p[3], p[1], p[2]},
        wei{p[6], p[3], p[4], p[5]},
        dst{p[0], p[6], p[7], p[8]},
        bias{p[6]},
        strides{p[9], p[10]},
        dil{p[11] - 1, p[12] - 1},
        padL{p[13], p[14]},
        padR{p[15], p[16]} {}
  memory::desc srcMd() const { return {src, f32, tag::nhwc}; }
  memory::desc dstMd() const { return {dst, f32, tag::nhwc}; }
  memory::desc weiAny() const { return {wei, f32, tag::any}; }
  memory::desc weiUser() const { return {wei, f32, tag::hwio}; }
  convolution_forward::primitive_desc forward(bool withBias, bool relu) const {
    auto d = withBias ? convolution_forward::desc(prop_kind::forward_training,
                                                  algorithm::convolution_direct, srcMd(), weiAny(),
                                                  memory::desc(bias, f32, tag::a), dstMd(),
                                                  strides, dil, padL, padR)
                      : convolution_forward::desc(prop_kind::forward_training,
                                                  algorithm::convolution_direct, srcMd(), weiAny(),
                                                  dstMd(), strides, dil, padL, padR);
    return {d, attrs(relu), eng()};
  }
};

std::vector<int64_t> keyOf(int kind, const int32_t* p, int64_t extra) {
  std::vector<int64_t> k{kind, extra};
  k.insert(k.end(), p, p + 17);
  return k;
}

struct FwdEntry : Entry {
  convolution_forward::primitive_desc pd;
  convolution_forward prim;
  memory::desc weights;  // the filter layout the primitive takes (when not HWIO)
  dnnl::reorder toPrim;
  memory::desc user;
};

struct BwdDataEntry : Entry {
  convolution_backward_data::primitive_desc pd;
  convolution_backward_data prim;
  memory::desc weights;
  dnnl::reorder toPrim;
  memory::desc user;
};

struct BwdWeightsEntry : Entry {
  convolution_backward_weights::primitive_desc pd;
  convolution_backward_weights prim;
  memory::desc diffWeights;  // the primitive's layout, reordered to HWIO after (when not HWIO)
  dnnl::reorder toUser;
  memory::desc user;
};

// Prepares the reorder when the primitive wants another filter layout than HWIO.
template <class E>
void prepareWeights(E* e, const memory::desc& want) {
  if (want != e->user) {
    e->weights = want;
    e->toPrim = dnnl::reorder(memory(e->user, eng(), nullptr), memory(want, eng(), nullptr));
  }
}

// The filter as the primitive takes it: the user's, or reordered into the shared buffer.
template <class E>
memory primFilter(E* e, float* w) {
  memory user(e->user, eng(), w);
  if (!e->toPrim) return user;
  memory m = filterBuffer(e->weights);
  e->toPrim.execute(strm(), user, m);
  return m;
}

}  // namespace

void conv2d(float* x, float* w, float* bias, float* y, const int32_t* p, bool relu) {
  Geometry g(p);
  auto* e = static_cast<FwdEntry*>(cached(keyOf(1, p, (bias ? 2 : 0) + relu), [&] {
    auto* n = new FwdEntry;
    n->pd = g.forward(bias != nullptr, relu);
    n->prim = convolution_forward(n->pd);
    n->user = g.weiUser();
    prepareWeights(n, n->pd.weights_desc());
    return n;
  }));
  memory src(e->pd.src_desc(), eng(), x), dst(e->pd.dst_desc(), eng(), y);
  memory wPrim = primFilter(e, w);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                       {DNNL_ARG_WEIGHTS, wPrim},
                                       {DNNL_ARG_DST, dst},
                                       {DNNL_ARG_SCRATCHPAD, scratchpad(e->pd.scratchpad_desc())}};
  if (bias) args.emplace(DNNL_ARG_BIAS, memory(e->pd.bias_desc(), eng(), bias));
  e->prim.execute(strm(), args);
  strm().wait();
}

void conv2dBackpropInput(float* dy, float* w, float* dx, const int32_t* p) {
  Geometry g(p);
  auto* e = static_cast<BwdDataEntry*>(cached(keyOf(2, p, 0), [&] {
    auto* n = new BwdDataEntry;
    auto hint = g.forward(false, false);
    convolution_backward_data::desc d(algorithm::convolution_direct, g.srcMd(), g.weiAny(),
                                      g.dstMd(), g.strides, g.dil, g.padL, g.padR);
    n->pd = convolution_backward_data::primitive_desc(d, attrs(), eng(), hint);
    n->prim = convolution_backward_data(n->pd);
    n->user = g.weiUser();
    prepareWeights(n, n->pd.weights_desc());
    return n;
  }));
  memory diffDst(e->pd.diff_dst_desc(), eng(), dy), diffSrc(e->pd.diff_src_desc(), eng(), dx);
  memory wPrim = primFilter(e, w);
  e->prim.execute(strm(), {{DNNL_ARG_DIFF_DST, diffDst},
                           {DNNL_ARG_WEIGHTS, wPrim},
                           {DNNL_ARG_DIFF_SRC, diffSrc},
                           {DNNL_ARG_SCRATCHPAD, scratchpad(e->pd.scratchpad_desc())}});
  strm().wait();
}

void conv2dBackpropFilter(float* x, float* dy, float* dw, const int32_t* p) {
  Geometry g(p);
  auto* e = static_cast<BwdWeightsEntry*>(cached(keyOf(3, p, 0), [&] {
    auto* n = new BwdWeightsEntry;
    auto hint = g.forward(false, false);
    convolution_backward_weights::desc d(algorithm::convolution_direct, g.srcMd(), g.weiAny(),
                                         g.dstMd(), g.strides, g.dil, g.padL, g.padR);
    n->pd = convolution_backward_weights::primitive_desc(d, attrs(), eng(), hint);
    n->prim = convolution_backward_weights(n->pd);
    n->user = g.weiUser();
    if (n->pd.diff_weights_desc() != n->user) {
      n->diffWeights = n->pd.diff_weights_desc();
      n->toUser = dnnl::reorder(memory(n->diffWeights, eng(), nullptr),
                                memory(n->user, eng(), nullptr));
    }
    return n;
  }));
  memory src(e->pd.src_desc(), eng(), x), diffDst(e->pd.diff_dst_desc(), eng(), dy);
  memory dwUser(e->user, eng(), dw);
  memory dwPrim = e->toUser ? filterBuffer(e->diffWeights) : dwUser;
  e->prim.execute(strm(), {{DNNL_ARG_SRC, src},
                           {DNNL_ARG_DIFF_DST, diffDst},
                           {DNNL_ARG_DIFF_WEIGHTS, dwPrim},
                           {DNNL_ARG_SCRATCHPAD, scratchpad(e->pd.scratchpad_desc())}});
  if (e->toUser) e->toUser.execute(strm(), dwPrim, dwUser);
  strm().wait();
}

std::string convImpl(const int32_t* p, int which) {
  Geometry g(p);
  auto fwd = g.forward(false, false);
  if (which == 0) return fwd.impl_info_str();
  if (which == 1) {
    convolution_backward_data::desc d(algorithm::convolution_direct, g.srcMd(), g.weiAny(),
                                      g.dstMd(), g.strides, g.dil, g.padL, g.padR);
    return convolution_backward_data::primitive_desc(d, attrs(), eng(), fwd).impl_info_str();
  }
  convolution_backward_weights::desc d(algorithm::convolution_direct, g.srcMd(), g.weiAny(),
                                       g.dstMd(), g.strides, g.dil, g.padL, g.padR);
  return convolution_backward_weights::primitive_desc(d, attrs(), eng(), fwd).impl_info_str();
}

}  // namespace op
