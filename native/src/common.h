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
