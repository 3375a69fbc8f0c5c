// Shared pieces of the addon: the oneDNN engine and stream, typed-array access without copies,
// a primitive cache keyed by shape, and one scratchpad buffer reused by every primitive.
#pragma once
#include <napi.h>

#include <cstdint>
#include <dnnl.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace op {

using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;
constexpr auto f32 = dnnl::memory::data_type::f32;
constexpr auto bf16 = dnnl::memory::data_type::bf16;

// The arithmetic of the kernels that can run in bf16 (convolutions and matrix products, forward
// and backward): fp32 throughout, or bf16 inputs (each input rounded to bf16, products accumulated
// in fp32, outputs written in fp32). One setting for the whole addon, read when a kernel runs (and
// part of every cache key), so a new kernel adopts it by calling computeType().
enum class Precision { kF32 = 0, kBf16 = 1 };
Precision precision();
void setPrecision(Precision p);
// f32 or bf16, as precision() says.
dnnl::memory::data_type computeType();
// Whether this CPU runs oneDNN's bf16 kernels natively (AVX512_BF16 or AMX: vdpbf16ps).
bool bf16Native();

dnnl::engine& eng();
dnnl::stream& strm();

// The Float32Array's own memory (no copy); nullptr for null/undefined.
float* f32ptr(const Napi::Value& v);
// The integers of an Int32Array argument.
const int32_t* i32ptr(const Napi::Value& v);
size_t length(const Napi::Value& v);

// A scratchpad memory for a primitive descriptor, from one buffer that only grows.
dnnl::memory scratchpad(const dnnl::memory::desc& md);
// Memory for a reordered filter (or filter gradient), from a second buffer that only grows: every
// convolution shares it, since they run one after another.
dnnl::memory filterBuffer(const dnnl::memory::desc& md);
// Memory for `md` on staging buffer `slot` (0–3; grown only): the bf16 copies of a kernel's
// fp32 inputs. A kernel uses each slot once per call.
dnnl::memory staging(int slot, const dnnl::memory::desc& md);
// `user` as the primitive wants it (`want`): `user` itself when the descriptors match, else
// converted by `convert` (a reorder from user's desc to want's, made by toReorder) into a staging slot.
dnnl::memory converted(dnnl::memory user, const dnnl::memory::desc& want,
                       const dnnl::reorder& convert, int slot);
// The reorder from `from` to `to`, or an empty one when they are the same.
dnnl::reorder toReorder(const dnnl::memory::desc& from, const dnnl::memory::desc& to);
// Whether a primitive's implementation is oneDNN's reference code (slow: a bf16 primitive that
// lands there is replaced by the fp32 one).
bool isReference(const std::string& impl);

// A primitive_attr with a user-managed scratchpad (and optionally a ReLU post-op).
dnnl::primitive_attr attrs(bool relu = false);

// Something kept in the cache: primitives, descriptors and persistent buffers for one shape.
struct Entry {
  virtual ~Entry() = default;
};
// The cached entry for `key`, made by `make` the first time.
Entry* cached(const std::vector<int64_t>& key, const std::function<Entry*()>& make);
size_t cacheSize();

// Throws a JS error and returns undefined (exceptions are off in node-addon-api here).
Napi::Value jsError(const Napi::Env& env, const std::string& message);

}  // namespace op
