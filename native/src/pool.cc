// Max and average pooling over NHWC, forward and backward. Average pooling leaves padding out of
// the count (tfjs' `same`); the max-pool gradient recomputes the forward pass for its workspace.
#include "kernels.h"

namespace op {
namespace {

using namespace dnnl;

// p: N H W C  kh kw  Ho Wo  sh sw  pt pl pb pr  max(1)/avg(0)
struct PoolGeometry {
  dims src, dst, kernel, strides, padL, padR;
  algorithm algo;
  explicit PoolGeometry(const int32_t* p)
      : src{p[0], p[3], p[1], p[2]},
        dst{p[0], p[3], p[6], p[7]},
        kernel{p[4], p[5]},
        strides{p[8], p[9]},
        padL{p[10], p[11]},
        padR{p[12], p[13]},
        algo(p[14] ? algorithm::pooling_max : algorithm::pooling_avg_exclude_padding) {}
  pooling_forward::primitive_desc forward(prop_kind kind) const {
    pooling_forward::desc d(kind, algo, memory::desc(src, f32, tag::nhwc),
                            memory::desc(dst, f32, tag::nhwc), strides, kernel, padL, padR);
    return {d, attrs(), eng()};
  }
};

struct FwdEntry : Entry {
  pooling_forward::primitive_desc pd;
  pooling_forward prim;
};

struct BwdEntry : Entry {
  pooling_forward::primitive_desc fwdPd;
  pooling_forward fwd;
  pooling_backward::primitive_desc pd;
  pooling_backward prim;
  memory workspace, y;  // max pooling only
};

std::vector<int64_t> keyOf(int kind, const int32_t* p) {
  std::vector<int64_t> k{kind};
  k.insert(k.end(), p, p + 15);
  return k;
}

}  // namespace

void pool(float* x, float* y, const int32_t* p) {
  PoolGeometry g(p);
  auto* e = static_cast<FwdEntry*>(cached(keyOf(5, p), [&] {
    auto* n = new FwdEntry;
    n->pd = g.forward(prop_kind::forward_inference);
    n->prim = pooling_forward(n->pd);
    return n;
  }));
  e->prim.execute(strm(), {{DNNL_ARG_SRC, memory(e->pd.src_desc(), eng(), x)},
                           {DNNL_ARG_DST, memory(e->pd.dst_desc(), eng(), y)},
                           {DNNL_ARG_SCRATCHPAD, scratchpad(e->pd.scratchpad_desc())}});
  strm().wait();
}

void poolGrad(float* dy, float* x, float* dx, const int32_t* p) {
  PoolGeometry g(p);
  auto* e = static_cast<BwdEntry*>(cached(keyOf(6, p), [&] {
    auto* n = new BwdEntry;
    n->fwdPd = g.forward(prop_kind::forward_training);
    pooling_backward::desc d(g.algo, memory::desc(g.src, f32, tag::nhwc),
                             memory::desc(g.dst, f32, tag::nhwc), g.strides, g.kernel, g.padL,
                             g.padR);
    n->pd = pooling_backward::primitive_desc(d, attrs(), eng(), n->fwdPd);
    n->prim = pooling_backward(n->pd);
    if (g.algo == algorithm::pooling_max) {
      n->fwd = pooling_forward(n->fwdPd);
      n->workspace = memory(n->fwdPd.workspace_desc(), eng());
      n->y = memory(n->fwdPd.dst_desc(), eng());
    }
    return n;
  }));
  memory src(e->fwdPd.src_desc(), eng(), x);
  if (e->workspace) {
    e->fwd.execute(strm(), {{DNNL_ARG_SRC, src},
                            {DNNL_ARG_DST, e->y},
                            {DNNL_ARG_WORKSPACE, e->workspace},
                            {DNNL_ARG_SCRATCHPAD, scratchpad(e->fwdPd.scratchpad_desc())}});
  }
  std::unordered_map<int, memory> args{
      {DNNL_ARG_DIFF_DST, memory(e->pd.diff_dst_desc(), eng(), dy)},
      {DNNL_ARG_DIFF_SRC, memory(e->pd.diff_src_desc(), eng(), dx)},
      {DNNL_ARG_SCRATCHPAD, scratchpad(e->pd.scratchpad_desc())}};
  if (e->workspace) args.emplace(DNNL_ARG_WORKSPACE, e->workspace);
  e->prim.execute(strm(), args);
  strm().wait();
}

}  // namespace op
