// Checked access to a call's JavaScript arguments: every typed array's type and length, every
// number's range, before a kernel touches memory. A bad argument throws ArgError, which addon.cc
// turns into a JavaScript TypeError or RangeError naming the function and the argument.
#pragma once
#include <napi.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace op {

struct ArgError : std::runtime_error {
  bool type;  // a TypeError (wrong kind of value) rather than a RangeError
  ArgError(bool isType, const std::string& m) : std::runtime_error(m), type(isType) {}
};

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}

  // A Float32Array of exactly `want` elements (nullptr for null/undefined when `nullable`).
  float* f32(int i, const char* name, int64_t want, bool nullable = false) const;
  // A Float32Array of any length, and that length.
  float* f32Any(int i, const char* name, int64_t* length) const;
  // An Int32Array of exactly `want` elements (any length when want < 0), and its length.
  const int32_t* i32(int i, const char* name, int64_t want, int64_t* length = nullptr) const;
  // An integer-valued number in [lo, hi].
  int64_t integer(int i, const char* name, int64_t lo, int64_t hi) const;
  // A finite number.
  double finite(int i, const char* name) const;
  // A boolean (or absent: false).
  bool flag(int i, const char* name) const;
  // A JavaScript array.
  Napi::Array array(int i, const char* name) const;

  [[noreturn]] void typeError(const std::string& what) const;
  [[noreturn]] void rangeError(const std::string& what) const;
  // Checks an element of an Int32Array of parameters: lo ≤ v ≤ hi.
  int64_t param(const char* array, const char* name, int32_t v, int64_t lo, int64_t hi) const;
  const Napi::CallbackInfo& info() const { return info_; }

 private:
  std::string arg(int i, const char* name) const;
  const Napi::CallbackInfo& info_;
  const char* fn_;
};

// a·b, or a RangeError (from `args`, about `what`) when the product is absurdly large.
int64_t mul(const Args& args, const char* what, int64_t a, int64_t b);

}  // namespace op
