/* sllen attention kernel: C API (libsllen_attention.so).
 *
 * out = softmax(scale * Q K^T) V for contiguous [batch, heads, tokens, head_dim] tensors in
 * device memory, queued on a CUDA stream. Memory is linear in the number of tokens (no N x N
 * scores), accumulation is FP32. Head sizes 32, 64, 128, 256, 512; FP16 and FP32; any token
 * count. No CUDA type appears here, so ctypes (sllen.runtime.attention_kernel) can bind it.
 */
#ifndef SLLEN_ATTENTION_H
#define SLLEN_ATTENTION_H

#include <stdint.h>

#if defined(_WIN32)
#define SLLEN_ATTENTION_EXPORT __declspec(dllexport)
#else
#define SLLEN_ATTENTION_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define SLLEN_ATTENTION_API_VERSION 1

/* dtype */
#define SLLEN_ATTENTION_FLOAT32 0
#define SLLEN_ATTENTION_FLOAT16 1

/* kernel: AUTO picks TENSOR_CORE for FP16 on sm_80 and newer, SIMT otherwise. */
#define SLLEN_ATTENTION_AUTO 0
#define SLLEN_ATTENTION_TENSOR_CORE 1
#define SLLEN_ATTENTION_SIMT 2

/* return codes */
#define SLLEN_ATTENTION_OK 0
#define SLLEN_ATTENTION_INVALID_ARGUMENT 1
#define SLLEN_ATTENTION_UNSUPPORTED 2
#define SLLEN_ATTENTION_CUDA_ERROR 3

/* Queue the attention on `stream` (a cudaStream_t; NULL: the legacy default stream) of the
 * current CUDA device. q, k, v, out: device pointers; out must not overlap the inputs.
 * Returns SLLEN_ATTENTION_OK or an error code; sllen_attention_last_error() says why. */
SLLEN_ATTENTION_EXPORT int sllen_attention_forward(const void* q, const void* k, const void* v,
                                                   void* out, int64_t batch, int64_t heads,
                                                   int64_t tokens, int64_t head_dim, float scale,
                                                   int dtype, void* stream);

/* The same with an explicit kernel choice (tests and benchmarks). */
SLLEN_ATTENTION_EXPORT int sllen_attention_forward_ex(const void* q, const void* k, const void* v,
                                                      void* out, int64_t batch, int64_t heads,
                                                      int64_t tokens, int64_t head_dim,
                                                      float scale, int dtype, void* stream,
                                                      int kernel);

/* 1 if head_dim and dtype are supported, else 0 (no CUDA call). */
SLLEN_ATTENTION_EXPORT int sllen_attention_supported(int64_t head_dim, int dtype);

/* The kernel AUTO would run on the current device (TENSOR_CORE or SIMT), or -1 if the
 * arguments are unsupported or no device is usable. */
SLLEN_ATTENTION_EXPORT int sllen_attention_selected_kernel(int64_t head_dim, int dtype);

/* Message of the last failed call in this thread ("" when none). */
SLLEN_ATTENTION_EXPORT const char* sllen_attention_last_error(void);

SLLEN_ATTENTION_EXPORT int sllen_attention_api_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SLLEN_ATTENTION_H */
