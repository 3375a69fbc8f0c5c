{
  "targets": [
    {
      "target_name": "onepixel_native",
      "sources": [
        "src/addon.cc",
        "src/args.cc",
        "src/common.cc",
        "src/conv.cc",
        "src/matmul.cc",
        "src/pool.cc",
        "src/batchnorm.cc",
        "src/eltwise.cc",
        "src/layout.cc",
        "src/reduce.cc",
        "src/sgd.cc",
        "src/gelu.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fopenmp", "-ffp-contract=off", "-fexceptions"],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ]
}
