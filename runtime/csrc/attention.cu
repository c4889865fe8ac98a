// Kernel entry points, dispatch and the C API of libsllen_attention.
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>

#include "attention_kernel.cuh"
#include "sllen_attention.h"

namespace sllen {
namespace {

thread_local std::string g_last_error;

int fail(int code, std::string message) {
    g_last_error = std::move(message);
    return code;
}

template <int D>
__global__ void __launch_bounds__(MmaTile<D>::kThreads) attention_mma_kernel(AttentionParams p) {
    extern __shared__ __align__(16) unsigned char smem[];
    attention_mma_block<D>(p, smem, threadIdx.x, blockIdx.x, blockIdx.y, blockIdx.z);
}

template <typename T, int D>
__global__ void __launch_bounds__(SimtTile<D>::kThreads) attention_simt_kernel(AttentionParams p) {
    extern __shared__ __align__(16) unsigned char smem[];
    attention_simt_block<T, D>(p, smem, threadIdx.x, blockIdx.x, blockIdx.y, blockIdx.z);
}

// Kernels over 48 KB of dynamic shared memory must opt in, once per device.
template <typename Kernel>
int prepare(Kernel kernel, size_t smem, std::atomic<uint64_t>& done) {
    int device = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err != cudaSuccess) {
        return fail(SLLEN_ATTENTION_CUDA_ERROR,
                    std::string("cudaGetDevice: ") + cudaGetErrorString(err));
    }
    if (smem <= 48 * 1024) return SLLEN_ATTENTION_OK;
    const uint64_t bit = device < 64 ? uint64_t(1) << device : 0;
    if (bit != 0 && (done.load() & bit)) return SLLEN_ATTENTION_OK;
    int optin = 0;
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (size_t(optin) < smem) {
        return fail(SLLEN_ATTENTION_UNSUPPORTED,
                    "kernel needs " + std::to_string(smem) + " bytes of shared memory per block, "
                    "device " + std::to_string(device) + " allows " + std::to_string(optin));
    }
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (err != cudaSuccess) {
        return fail(SLLEN_ATTENTION_CUDA_ERROR,
                    std::string("cudaFuncSetAttribute: ") + cudaGetErrorString(err));
    }
    done.fetch_or(bit);
    return SLLEN_ATTENTION_OK;
}

int check_launch(const char* what) {
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return fail(SLLEN_ATTENTION_CUDA_ERROR,
                    std::string(what) + " launch failed: " + cudaGetErrorString(err));
    }
    return SLLEN_ATTENTION_OK;
}

template <int D>
int launch_mma(const AttentionParams& p, int64_t heads_total, cudaStream_t stream) {
    using Tile = MmaTile<D>;
    static std::atomic<uint64_t> prepared{0};
    auto kernel = attention_mma_kernel<D>;
    if (int rc = prepare(kernel, Tile::kSmem, prepared)) return rc;
    const dim3 grid(unsigned((p.tokens + Tile::kBQ - 1) / Tile::kBQ), unsigned(heads_total),
                    unsigned(Tile::kSplit));
    kernel<<<grid, Tile::kThreads, Tile::kSmem, stream>>>(p);
    return check_launch("tensor-core attention");
}

template <typename T, int D>
int launch_simt(const AttentionParams& p, int64_t heads_total, cudaStream_t stream) {
    using Tile = SimtTile<D>;
    static std::atomic<uint64_t> prepared{0};
    auto kernel = attention_simt_kernel<T, D>;
    if (int rc = prepare(kernel, Tile::kSmem, prepared)) return rc;
    const dim3 grid(unsigned((p.tokens + Tile::kBQ - 1) / Tile::kBQ), unsigned(heads_total),
                    unsigned(Tile::kSplit));
    kernel<<<grid, Tile::kThreads, Tile::kSmem, stream>>>(p);
    return check_launch("CUDA-core attention");
}

template <int D>
int dispatch_dim(const AttentionParams& p, int64_t heads_total, int dtype, int kernel,
                 cudaStream_t stream) {
    if (kernel == SLLEN_ATTENTION_TENSOR_CORE) return launch_mma<D>(p, heads_total, stream);
    if (dtype == SLLEN_ATTENTION_FLOAT16) return launch_simt<__half, D>(p, heads_total, stream);
    return launch_simt<float, D>(p, heads_total, stream);
}

bool supported_dim(int64_t d) { return d == 32 || d == 64 || d == 128 || d == 256 || d == 512; }

// The kernel to run on the current device, or minus an error code (message in g_last_error).
int resolve_kernel(int dtype, int requested) {
    int device = 0, major = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err == cudaSuccess) {
        err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    }
    if (err != cudaSuccess) {
        return -fail(SLLEN_ATTENTION_CUDA_ERROR,
                     std::string("no usable CUDA device: ") + cudaGetErrorString(err));
    }
    const bool tensor_cores = dtype == SLLEN_ATTENTION_FLOAT16 && major >= 8;
    if (requested == SLLEN_ATTENTION_TENSOR_CORE && !tensor_cores) {
        return -fail(SLLEN_ATTENTION_UNSUPPORTED,
                     "the tensor-core kernel needs FP16 inputs and compute capability 8.0 or "
                     "newer (device " + std::to_string(device) + " is " + std::to_string(major) +
                         ".x)");
    }
    if (requested == SLLEN_ATTENTION_AUTO) {
        return tensor_cores ? SLLEN_ATTENTION_TENSOR_CORE : SLLEN_ATTENTION_SIMT;
    }
    return requested;
}

int forward(const void* q, const void* k, const void* v, void* out, int64_t batch, int64_t heads,
            int64_t tokens, int64_t head_dim, float scale, int dtype, void* stream, int kernel) {
    g_last_error.clear();
    if (batch < 0 || heads < 0 || tokens < 0) {
        return fail(SLLEN_ATTENTION_INVALID_ARGUMENT, "batch, heads and tokens must be >= 0");
    }
    if (!supported_dim(head_dim)) {
        return fail(SLLEN_ATTENTION_UNSUPPORTED,
                    "head_dim " + std::to_string(head_dim) +
                        " is not supported (32, 64, 128, 256 or 512)");
    }
    if (dtype != SLLEN_ATTENTION_FLOAT32 && dtype != SLLEN_ATTENTION_FLOAT16) {
        return fail(SLLEN_ATTENTION_UNSUPPORTED,
                    "dtype " + std::to_string(dtype) + " is not supported (0: FP32, 1: FP16)");
    }
    if (kernel < SLLEN_ATTENTION_AUTO || kernel > SLLEN_ATTENTION_SIMT) {
        return fail(SLLEN_ATTENTION_INVALID_ARGUMENT, "unknown kernel " + std::to_string(kernel));
    }
    if (!std::isfinite(scale)) {
        return fail(SLLEN_ATTENTION_INVALID_ARGUMENT, "scale must be finite");
    }
    const int64_t heads_total = batch * heads;
    if (heads_total == 0 || tokens == 0) return SLLEN_ATTENTION_OK;
    if (!q || !k || !v || !out) {
        return fail(SLLEN_ATTENTION_INVALID_ARGUMENT, "q, k, v and out must be device pointers");
    }
    if (heads_total > 65535) {
        return fail(SLLEN_ATTENTION_UNSUPPORTED, "batch * heads must be <= 65535 (grid y)");
    }
    if (tokens > (int64_t(1) << 31) - 1) {
        return fail(SLLEN_ATTENTION_UNSUPPORTED, "tokens must be < 2^31");
    }
    const int chosen = resolve_kernel(dtype, kernel);
    if (chosen < 0) return -chosen;
    AttentionParams p;
    p.q = q;
    p.k = k;
    p.v = v;
    p.out = out;
    p.tokens = tokens;
    p.scale_log2 = scale * 1.4426950408889634f;
    const auto addr = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr); };
    p.aligned16 = ((addr(q) | addr(k) | addr(v) | addr(out)) & 15u) == 0;
    const auto s = static_cast<cudaStream_t>(stream);
    switch (head_dim) {
        case 32: return dispatch_dim<32>(p, heads_total, dtype, chosen, s);
        case 64: return dispatch_dim<64>(p, heads_total, dtype, chosen, s);
        case 128: return dispatch_dim<128>(p, heads_total, dtype, chosen, s);
        case 256: return dispatch_dim<256>(p, heads_total, dtype, chosen, s);
        default: return dispatch_dim<512>(p, heads_total, dtype, chosen, s);
    }
}

}  // namespace
}  // namespace sllen

extern "C" {

int sllen_attention_forward(const void* q, const void* k, const void* v, void* out, int64_t batch,
                            int64_t heads, int64_t tokens, int64_t head_dim, float scale,
                            int dtype, void* stream) {
    return sllen::forward(q, k, v, out, batch, heads, tokens, head_dim, scale, dtype, stream,
                          SLLEN_ATTENTION_AUTO);
}

int sllen_attention_forward_ex(const void* q, const void* k, const void* v, void* out,
                               int64_t batch, int64_t heads, int64_t tokens, int64_t head_dim,
                               float scale, int dtype, void* stream, int kernel) {
    return sllen::forward(q, k, v, out, batch, heads, tokens, head_dim, scale, dtype, stream,
                          kernel);
}

int sllen_attention_supported(int64_t head_dim, int dtype) {
    return sllen::supported_dim(head_dim) &&
           (dtype == SLLEN_ATTENTION_FLOAT32 || dtype == SLLEN_ATTENTION_FLOAT16);
}

int sllen_attention_selected_kernel(int64_t head_dim, int dtype) {
    if (!sllen_attention_supported(head_dim, dtype)) return -1;
    const int chosen = sllen::resolve_kernel(dtype, SLLEN_ATTENTION_AUTO);
    return chosen > 0 ? chosen : -1;
}

const char* sllen_attention_last_error(void) { return sllen::g_last_error.c_str(); }

int sllen_attention_api_version(void) { return SLLEN_ATTENTION_API_VERSION; }

}  // extern "C"
