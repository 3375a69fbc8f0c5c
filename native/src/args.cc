#include "args.h"

#include <cmath>
#include <sstream>

namespace op {

namespace {
// Larger than any array JavaScript can allocate; keeps every product of checked sizes in int64.
constexpr int64_t kMaxElements = int64_t(1) << 40;
std::string show(double d) {
  std::ostringstream o;
  o << d;
  return o.str();
}
}  // namespace

std::string Args::arg(int i, const char* name) const {
  return std::string(name) + " (argument " + std::to_string(i + 1) + ")";
}

void Args::typeError(const std::string& what) const {
  throw ArgError(true, std::string(fn_) + ": " + what);
}

void Args::rangeError(const std::string& what) const {
  throw ArgError(false, std::string(fn_) + ": " + what);
}

float* Args::f32(int i, const char* name, int64_t want, bool nullable) const {
  Napi::Value v = info_[i];
  if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
  int64_t n = 0;
  float* p = f32Any(i, name, &n);
  if (n != want)
    rangeError(arg(i, name) + " has " + std::to_string(n) + " elements, expected " +
               std::to_string(want));
  return p;
}

float* Args::f32Any(int i, const char* name, int64_t* length) const {
  Napi::Value v = info_[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    typeError(arg(i, name) + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  *length = static_cast<int64_t>(a.ElementLength());
  return a.Data();
}

const int32_t* Args::i32(int i, const char* name, int64_t want, int64_t* length) const {
  Napi::Value v = info_[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    typeError(arg(i, name) + " must be an Int32Array");
  auto a = v.As<Napi::Int32Array>();
  const int64_t n = static_cast<int64_t>(a.ElementLength());
  if (want >= 0 && n != want)
    rangeError(arg(i, name) + " has " + std::to_string(n) + " elements, expected " +
               std::to_string(want));
  if (length != nullptr) *length = n;
  return a.Data();
}

int64_t Args::integer(int i, const char* name, int64_t lo, int64_t hi) const {
  Napi::Value v = info_[i];
  if (!v.IsNumber()) typeError(arg(i, name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) ||
      d > static_cast<double>(hi))
    rangeError(arg(i, name) + " must be an integer in [" + std::to_string(lo) + ", " +
               std::to_string(hi) + "], got " + show(d));
  return static_cast<int64_t>(d);
}

double Args::finite(int i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsNumber()) typeError(arg(i, name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) rangeError(arg(i, name) + " must be finite");
  return d;
}

bool Args::flag(int i, const char* name) const {
  Napi::Value v = info_[i];
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) typeError(arg(i, name) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

Napi::Array Args::array(int i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsArray()) typeError(arg(i, name) + " must be an array");
  return v.As<Napi::Array>();
}

int64_t Args::param(const char* array, const char* name, int32_t v, int64_t lo, int64_t hi) const {
  if (v < lo || v > hi)
    rangeError(std::string(array) + ": " + name + " = " + std::to_string(v) + " is outside [" +
               std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

int64_t mul(const Args& args, const char* what, int64_t a, int64_t b) {
  if (a < 0 || b < 0 || (a > 0 && b > kMaxElements / a))
    args.rangeError(std::string(what) + ": size out of range");
  return a * b;
}

}  // namespace op
