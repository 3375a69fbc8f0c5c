// Conv2D forward (optionally with bias and ReLU), and its input and filter gradients, NHWC with
// HWIO filters as tfjs stores them. Filters are reordered to the layout oneDNN picks.
#include "kernels.h"

namespace op {
namespace {

using namespace dnnl;

// p: N H W Ci  kh kw Co  Ho Wo  sh sw  dh dw  pt pl pb pr
// `dt`: the compute type of the inputs (src, weights, diff_dst); outputs and bias stay fp32.
struct Geometry {
  dims src, wei, dst, bias, strides, dil, padL, padR;
  memory::data_type dt;
  Geometry(const int32_t* p, memory::data_type dt)
      : src{p[0], p[3], p[1], p[2]},
        wei{p[6], p[3], p[4], p[5]},
        dst{p[0], p[6], p[7], p[8]},
        bias{p[6]},
        strides{p[9], p[10]},
        dil{p[11] - 1, p[12] - 1},
        padL{p[13], p[14]},
        padR{p[15], p[16]},
        dt(dt) {}
  memory::desc srcUser() const { return {src, f32, tag::nhwc}; }
  memory::desc dstUser() const { return {dst, f32, tag::nhwc}; }
  memory::desc weiUser() const { return {wei, f32, tag::hwio}; }
  memory::desc srcIn() const { return {src, dt, tag::nhwc}; }
  memory::desc dstIn() const { return {dst, dt, tag::nhwc}; }
  memory::desc weiAny() const { return {wei, dt, tag::any}; }
  convolution_forward::primitive_desc forward(bool withBias, bool relu) const {
    auto d = withBias ? convolution_forward::desc(prop_kind::forward_training,
                                                  algorithm::convolution_direct, srcIn(), weiAny(),
                                                  memory::desc(bias, f32, tag::a), dstUser(),
                                                  strides, dil, padL, padR)
                      : convolution_forward::desc(prop_kind::forward_training,
                                                  algorithm::convolution_direct, srcIn(), weiAny(),
                                                  dstUser(), strides, dil, padL, padR);
    return {d, attrs(relu), eng()};
  }
  convolution_backward_data::primitive_desc backwardData() const {
    convolution_backward_data::desc d(algorithm::convolution_direct, srcUser(), weiAny(), dstIn(),
                                      strides, dil, padL, padR);
    return {d, attrs(), eng(), forward(false, false)};
  }
  // The filter gradient in the compute type too (reordered to fp32 HWIO after), as PyTorch's
  // autocast has it: oneDNN 2.6's bf16 kernel with an fp32 filter gradient runs 3–11× slower than
  // fp32 on strided and 3-channel convolutions here (measured), with a bf16 one 1–2× faster.
  convolution_backward_weights::primitive_desc backwardWeights() const {
    convolution_backward_weights::desc d(algorithm::convolution_direct, srcIn(), weiAny(),
                                         dstIn(), strides, dil, padL, padR);
    return {d, attrs(), eng(), forward(false, false)};
  }
};

// The primitive descriptor `make(g)` in the current precision, or in fp32 when the bf16 one would
// run oneDNN's reference code (a shape no optimised bf16 kernel takes).
template <class F>
auto inPrecision(const int32_t* p, F make) {
  auto pd = make(Geometry(p, computeType()));
  if (computeType() != f32 && isReference(pd.impl_info_str())) pd = make(Geometry(p, f32));
  return pd;
}

std::vector<int64_t> keyOf(int kind, const int32_t* p, int64_t extra) {
  std::vector<int64_t> k{kind, extra, static_cast<int64_t>(precision())};
  k.insert(k.end(), p, p + 17);
  return k;
}

// The reorders from the user's fp32 tensors to what the primitive takes (empty when the same).
struct FwdEntry : Entry {
  convolution_forward::primitive_desc pd;
  convolution_forward prim;
  memory::desc user, srcUser;
  dnnl::reorder toPrim, srcToPrim;
};

struct BwdDataEntry : Entry {
  convolution_backward_data::primitive_desc pd;
  convolution_backward_data prim;
  memory::desc user, dstUser;
  dnnl::reorder toPrim, dyToPrim;
};

struct BwdWeightsEntry : Entry {
  convolution_backward_weights::primitive_desc pd;
  convolution_backward_weights prim;
  memory::desc user, srcUser, dstUser;
  dnnl::reorder toUser, srcToPrim, dyToPrim;  // toUser: the filter gradient back to HWIO fp32
};

// The filter as the primitive takes it: the user's, or reordered into the shared buffer.
template <class E>
memory primFilter(E* e, float* w) {
  memory user(e->user, eng(), w);
  if (!e->toPrim) return user;
  memory m = filterBuffer(e->pd.weights_desc());
  e->toPrim.execute(strm(), user, m);
  return m;
}

}  // namespace

void conv2d(float* x, float* w, float* bias, float* y, const int32_t* p, bool relu) {
  auto* e = static_cast<FwdEntry*>(cached(keyOf(1, p, (bias ? 2 : 0) + relu), [&] {
    auto* n = new FwdEntry;
    n->pd = inPrecision(p, [&](const Geometry& g) { return g.forward(bias != nullptr, relu); });
    n->prim = convolution_forward(n->pd);
    Geometry g(p, f32);
    n->user = g.weiUser();
    n->srcUser = g.srcUser();
    n->toPrim = toReorder(n->user, n->pd.weights_desc());
    n->srcToPrim = toReorder(n->srcUser, n->pd.src_desc());
    return n;
  }));
  memory src = converted(memory(e->srcUser, eng(), x), e->pd.src_desc(), e->srcToPrim, 0);
  memory dst(e->pd.dst_desc(), eng(), y);
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
  auto* e = static_cast<BwdDataEntry*>(cached(keyOf(2, p, 0), [&] {
    auto* n = new BwdDataEntry;
    n->pd = inPrecision(p, [](const Geometry& g) { return g.backwardData(); });
    n->prim = convolution_backward_data(n->pd);
    Geometry g(p, f32);
    n->user = g.weiUser();
    n->dstUser = g.dstUser();
    n->toPrim = toReorder(n->user, n->pd.weights_desc());
    n->dyToPrim = toReorder(n->dstUser, n->pd.diff_dst_desc());
    return n;
  }));
  memory diffDst = converted(memory(e->dstUser, eng(), dy), e->pd.diff_dst_desc(), e->dyToPrim, 0);
  memory diffSrc(e->pd.diff_src_desc(), eng(), dx);
  memory wPrim = primFilter(e, w);
  e->prim.execute(strm(), {{DNNL_ARG_DIFF_DST, diffDst},
                           {DNNL_ARG_WEIGHTS, wPrim},
                           {DNNL_ARG_DIFF_SRC, diffSrc},
                           {DNNL_ARG_SCRATCHPAD, scratchpad(e->pd.scratchpad_desc())}});
  strm().wait();
}

void conv2dBackpropFilter(float* x, float* dy, float* dw, const int32_t* p) {
  auto* e = static_cast<BwdWeightsEntry*>(cached(keyOf(3, p, 0), [&] {
    auto* n = new BwdWeightsEntry;
    n->pd = inPrecision(p, [](const Geometry& g) { return g.backwardWeights(); });
    n->prim = convolution_backward_weights(n->pd);
    Geometry g(p, f32);
    n->user = g.weiUser();
    n->srcUser = g.srcUser();
    n->dstUser = g.dstUser();
    n->toUser = toReorder(n->pd.diff_weights_desc(), n->user);
    n->srcToPrim = toReorder(n->srcUser, n->pd.src_desc());
    n->dyToPrim = toReorder(n->dstUser, n->pd.diff_dst_desc());
    return n;
  }));
  memory src = converted(memory(e->srcUser, eng(), x), e->pd.src_desc(), e->srcToPrim, 0);
  memory diffDst = converted(memory(e->dstUser, eng(), dy), e->pd.diff_dst_desc(), e->dyToPrim, 1);
  memory dwUser(e->user, eng(), dw);
  memory dwPrim = e->toUser ? filterBuffer(e->pd.diff_weights_desc()) : dwUser;
  e->prim.execute(strm(), {{DNNL_ARG_SRC, src},
                           {DNNL_ARG_DIFF_DST, diffDst},
                           {DNNL_ARG_DIFF_WEIGHTS, dwPrim},
                           {DNNL_ARG_SCRATCHPAD, scratchpad(e->pd.scratchpad_desc())}});
  if (e->toUser) e->toUser.execute(strm(), dwPrim, dwUser);
  strm().wait();
}

// The implementation (and source data type) the kernel `which` runs in the current precision:
// "jit:avx512_core_bf16 bf16" or so.
std::string convImpl(const int32_t* p, int which) {
  auto name = [](const auto& pd, const memory::desc& in) {
    return std::string(pd.impl_info_str()) + (in.data_type() == bf16 ? " bf16" : " f32");
  };
  if (which == 0) {
    auto pd = inPrecision(p, [](const Geometry& g) { return g.forward(false, false); });
    return name(pd, pd.src_desc());
  }
  if (which == 1) {
    auto pd = inPrecision(p, [](const Geometry& g) { return g.backwardData(); });
    return name(pd, pd.diff_dst_desc());
  }
  auto pd = inPrecision(p, [](const Geometry& g) { return g.backwardWeights(); });
  return name(pd, pd.src_desc());
}

}  // namespace op
