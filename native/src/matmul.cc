// Batched matrix product C = op(A)·op(B) (+ bias, ReLU), transposes given as strides, a batch of
// one broadcast against the other operand's. Small products (a dense layer's, LeNet's) run on one
// thread: waking a sleeping OpenMP thread costs more (~60–90 µs here) than it would save.
#include <omp.h>

#include "kernels.h"

namespace op {
namespace {

using namespace dnnl;

struct MatMulEntry : Entry {
  matmul::primitive_desc pd;
  matmul prim;
  memory::desc aUser, bUser;
  dnnl::reorder aToPrim, bToPrim;  // fp32 to bf16 (empty in fp32)
};

// Multiply-adds under which a product runs on one thread (created and run so: oneDNN fixes a
// primitive's thread count when it is created).
constexpr int64_t kOneThreadMacs = int64_t(1) << 23;

// Sets OpenMP's thread count for a scope (when `n` > 0).
struct Threads {
  int before;
  explicit Threads(int n) : before(omp_get_max_threads()) {
    if (n > 0) omp_set_num_threads(n);
  }
  ~Threads() { omp_set_num_threads(before); }
};

}  // namespace

// p: batchA batchB M K N transA transB
void matMul(float* a, float* b, float* bias, float* c, const int32_t* p, bool relu) {
  const int64_t bA = p[0], bB = p[1], M = p[2], K = p[3], N = p[4];
  const bool tA = p[5] != 0, tB = p[6] != 0;
  Threads scope(std::max(bA, bB) * M * K * N < kOneThreadMacs ? 1 : 0);
  std::vector<int64_t> key{4, bias ? 1 : 0, relu ? 1 : 0, static_cast<int64_t>(precision())};
  key.insert(key.end(), p, p + 7);
  auto* e = static_cast<MatMulEntry*>(cached(key, [&] {
    auto* n = new MatMulEntry;
    const dims aStrides = tA ? dims{K * M, 1, M} : dims{M * K, K, 1};
    const dims bStrides = tB ? dims{N * K, 1, K} : dims{K * N, N, 1};
    n->aUser = memory::desc({bA, M, K}, f32, aStrides);
    n->bUser = memory::desc({bB, K, N}, f32, bStrides);
    memory::desc cMd({std::max(bA, bB), M, N}, f32, tag::abc);
    // In bf16 the operands are rounded to bf16 (same strides), the product and bias stay fp32;
    // fp32 throughout where no optimised bf16 kernel takes the shape.
    auto make = [&](memory::data_type dt) {
      memory::desc aMd({bA, M, K}, dt, aStrides), bMd({bB, K, N}, dt, bStrides);
      auto d = bias ? matmul::desc(aMd, bMd, memory::desc({1, 1, N}, f32, tag::abc), cMd)
                    : matmul::desc(aMd, bMd, cMd);
      return matmul::primitive_desc(d, attrs(relu), eng());
    };
    n->pd = make(computeType());
    if (computeType() != f32 && isReference(n->pd.impl_info_str())) n->pd = make(f32);
    n->prim = matmul(n->pd);
    n->aToPrim = toReorder(n->aUser, n->pd.src_desc());
    n->bToPrim = toReorder(n->bUser, n->pd.weights_desc());
    return n;
  }));
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, converted(memory(e->aUser, eng(), a), e->pd.src_desc(), e->aToPrim, 0)},
      {DNNL_ARG_WEIGHTS, converted(memory(e->bUser, eng(), b), e->pd.weights_desc(), e->bToPrim, 1)},
      {DNNL_ARG_DST, memory(e->pd.dst_desc(), eng(), c)},
      {DNNL_ARG_SCRATCHPAD, scratchpad(e->pd.scratchpad_desc())}};
  if (bias) args.emplace(DNNL_ARG_BIAS, memory(e->pd.bias_desc(), eng(), bias));
  e->prim.execute(strm(), args);
  strm().wait();
}

std::string matMulImpl(const int32_t* p) {
  const int64_t bA = p[0], bB = p[1], M = p[2], K = p[3], N = p[4];
  const bool tA = p[5] != 0, tB = p[6] != 0;
  auto make = [&](memory::data_type dt) {
    memory::desc aMd({bA, M, K}, dt, tA ? dims{K * M, 1, M} : dims{M * K, K, 1});
    memory::desc bMd({bB, K, N}, dt, tB ? dims{N * K, 1, K} : dims{K * N, N, 1});
    memory::desc cMd({std::max(bA, bB), M, N}, f32, tag::abc);
    return matmul::primitive_desc(matmul::desc(aMd, bMd, cMd), attrs(), eng());
  };
  auto pd = make(computeType());
  if (computeType() != f32 && isReference(pd.impl_info_str())) pd = make(f32);
  return std::string(pd.impl_info_str()) + (pd.src_desc().data_type() == bf16 ? " bf16" : " f32");
}

}  // namespace op
