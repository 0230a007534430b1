{
  "targets": [
    {
      "target_name": "imsec_native",
      "sources": ["imsec_native.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
