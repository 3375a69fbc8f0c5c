#include "common.h"

#include <map>

namespace op {

dnnl::engine& eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& strm() {
  static dnnl::stream s(eng());
  return s;
}

float* f32ptr(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return v.As<Napi::Float32Array>().Data();
}

const int32_t* i32ptr(const Napi::Value& v) { return v.As<Napi::Int32Array>().Data(); }

size_t length(const Napi::Value& v) { return v.As<Napi::TypedArray>().ElementLength(); }

namespace {
std::vector<char> scratch, filters, staged[4];
Precision current = Precision::kF32;
std::map<std::vector<int64_t>, std::unique_ptr<Entry>> cache;

// Memory for `md` on `buffer`, grown (never shrunk) to fit.
dnnl::memory onBuffer(std::vector<char>& buffer, const dnnl::memory::desc& md) {
  size_t bytes = md.get_size();
  if (buffer.size() < bytes) {
    buffer.clear();
    buffer.shrink_to_fit();
    buffer.resize(bytes + 64);
  }
  return dnnl::memory(md, eng(), buffer.data());
}

}  // namespace

dnnl::memory scratchpad(const dnnl::memory::desc& md) { return onBuffer(scratch, md); }

dnnl::memory filterBuffer(const dnnl::memory::desc& md) { return onBuffer(filters, md); }

dnnl::memory staging(int slot, const dnnl::memory::desc& md) {
  return onBuffer(staged[slot], md);
}

dnnl::memory converted(dnnl::memory user, const dnnl::memory::desc& want,
                       const dnnl::reorder& convert, int slot) {
  if (!convert) return user;
  dnnl::memory m = staging(slot, want);
  convert.execute(strm(), user, m);
  return m;
}

dnnl::reorder toReorder(const dnnl::memory::desc& from, const dnnl::memory::desc& to) {
  if (from == to) return {};
  return dnnl::reorder(dnnl::memory(from, eng(), nullptr), dnnl::memory(to, eng(), nullptr));
}

bool isReference(const std::string& impl) { return impl.rfind("ref", 0) == 0; }

Precision precision() { return current; }
void setPrecision(Precision p) { current = p; }
dnnl::memory::data_type computeType() { return current == Precision::kBf16 ? bf16 : f32; }

bool bf16Native() {
  const auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

dnnl::primitive_attr attrs(bool relu) {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    a.set_post_ops(ops);
  }
  return a;
}

Entry* cached(const std::vector<int64_t>& key, const std::function<Entry*()>& make) {
  auto it = cache.find(key);
  if (it != cache.end()) return it->second.get();
  Entry* e = make();
  cache.emplace(key, std::unique_ptr<Entry>(e));
  return e;
}

size_t cacheSize() { return cache.size(); }

Napi::Value jsError(const Napi::Env& env, const std::string& message) {
  Napi::Error::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace op
