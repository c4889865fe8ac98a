// libsllen_attention on a real GPU through its C API, against the double-precision CPU
// reference: every head size, FP32 and FP16, every kernel the device runs, token counts around
// the tile sizes. Exit code 77 (ctest SKIP_RETURN_CODE) only when there is no GPU to test on;
// any other CUDA error, a driver older than the toolkit included, fails (device_check.h).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "device_check.h"
#include "reference.h"
#include "sllen_attention.h"

namespace {

using sllen_test::Tally;

#define CHECK_CUDA(call)                                                                 \
    do {                                                                                 \
        const cudaError_t err_ = (call);                                                 \
        if (err_ != cudaSuccess) {                                                       \
            std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(err_));           \
            std::exit(1);                                                                \
        }                                                                                \
    } while (0)

struct DeviceBuffer {
    void* ptr = nullptr;
    explicit DeviceBuffer(size_t bytes) { CHECK_CUDA(cudaMalloc(&ptr, bytes)); }
    ~DeviceBuffer() { cudaFree(ptr); }
};

void run(Tally& tally, cudaStream_t stream, int d, int64_t batch, int64_t heads, int64_t n,
         int dtype, int kernel) {
    const size_t count = size_t(batch * heads * n * d);
    const float scale = 1.f / std::sqrt(float(d));
    std::vector<float> q = sllen_test::random_normal(count, 11, 1.f);
    std::vector<float> k = sllen_test::random_normal(count, 12, 1.f);
    std::vector<float> v = sllen_test::random_normal(count, 13, 1.f);
    const size_t elem = dtype == SLLEN_ATTENTION_FLOAT16 ? 2 : 4;
    DeviceBuffer dq(count * elem), dk(count * elem), dv(count * elem), dout(count * elem);
    auto upload = [&](std::vector<float>& host, void* dev) {
        if (dtype == SLLEN_ATTENTION_FLOAT16) {
            std::vector<__half> h(count);
            for (size_t i = 0; i < count; ++i) {
                h[i] = __float2half_rn(host[i]);
                host[i] = __half2float(h[i]);  // the reference sees the rounded inputs
            }
            CHECK_CUDA(cudaMemcpy(dev, h.data(), count * 2, cudaMemcpyHostToDevice));
        } else {
            CHECK_CUDA(cudaMemcpy(dev, host.data(), count * 4, cudaMemcpyHostToDevice));
        }
    };
    upload(q, dq.ptr);
    upload(k, dk.ptr);
    upload(v, dv.ptr);
    CHECK_CUDA(cudaMemset(dout.ptr, 0xff, count * elem));  // NaN: unwritten output shows

    const char* names[] = {"auto", "tensor-core", "cuda-core"};
    char label[128];
    std::snprintf(label, sizeof(label), "%s %s d=%d batch=%lld heads=%lld n=%lld", names[kernel],
                  dtype == SLLEN_ATTENTION_FLOAT16 ? "fp16" : "fp32", d,
                  static_cast<long long>(batch), static_cast<long long>(heads),
                  static_cast<long long>(n));
    const int rc = sllen_attention_forward_ex(dq.ptr, dk.ptr, dv.ptr, dout.ptr, batch, heads, n,
                                              d, scale, dtype, stream, kernel);
    if (rc != SLLEN_ATTENTION_OK) {
        std::printf("error: %s\n", sllen_attention_last_error());
        tally.record(false, label, NAN);
        return;
    }
    CHECK_CUDA(cudaStreamSynchronize(stream));
    std::vector<float> got(count);
    if (dtype == SLLEN_ATTENTION_FLOAT16) {
        std::vector<__half> h(count);
        CHECK_CUDA(cudaMemcpy(h.data(), dout.ptr, count * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < count; ++i) got[i] = __half2float(h[i]);
    } else {
        CHECK_CUDA(cudaMemcpy(got.data(), dout.ptr, count * 4, cudaMemcpyDeviceToHost));
    }
    const std::vector<float> want =
        sllen_test::reference_attention(q, k, v, batch * heads, n, d, scale);
    double err = 0.0;
    const bool ok = sllen_test::compare(got, want,
                                        dtype == SLLEN_ATTENTION_FLOAT16 ? sllen_test::kFp16Tol
                                                                         : sllen_test::kFp32Tol,
                                        &err);
    tally.record(ok, label, err);
}

}  // namespace

// --reduced: a few cases per kernel (head sizes 64 and 512, tokens straddling one tile): the
// case set scripts/gpu-check.sh runs under compute-sanitizer --tool racecheck, which slows
// every shared-memory access down by orders of magnitude.
int main(int argc, char** argv) {
    const bool reduced = argc > 1 && std::string(argv[1]) == "--reduced";
    int count = 0, driver = 0, runtime = 0;
    const cudaError_t count_error = cudaGetDeviceCount(&count);
    cudaDriverGetVersion(&driver);  // 0 when no driver is installed
    cudaRuntimeGetVersion(&runtime);
    const sllen_test::DeviceCheck devices = sllen_test::classify_devices(
        count_error, count, driver, runtime, cudaGetErrorString(count_error));
    if (devices.verdict == sllen_test::DeviceVerdict::kSkip) {
        std::printf("skipped: %s\n", devices.reason.c_str());
        return 77;
    }
    if (devices.verdict == sllen_test::DeviceVerdict::kFail) {
        std::printf("FAIL: %s\n", devices.reason.c_str());
        return 1;
    }
    cudaDeviceProp prop;
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s (compute capability %d.%d)\n", prop.name, prop.major, prop.minor);
    cudaStream_t stream;
    CHECK_CUDA(cudaStreamCreate(&stream));

    Tally tally;
    const bool tensor_cores = prop.major >= 8;
    const std::vector<int> dims =
        reduced ? std::vector<int>{64, 512} : std::vector<int>{32, 64, 128, 256, 512};
    for (int d : dims) {
        // Around the tile sizes (32 and 64); longer sequences for the cheaper references.
        std::vector<int64_t> tokens = {1, 31, 64, 65, 257};
        if (d <= 128) tokens.push_back(1500);
        if (reduced) tokens = {31, 97};  // partial tiles: two key tiles, masked rows
        for (int64_t n : tokens) {
            run(tally, stream, d, 2, 1, n, SLLEN_ATTENTION_FLOAT32, SLLEN_ATTENTION_AUTO);
            run(tally, stream, d, 1, 2, n, SLLEN_ATTENTION_FLOAT16, SLLEN_ATTENTION_SIMT);
            if (tensor_cores) {
                run(tally, stream, d, 1, 2, n, SLLEN_ATTENTION_FLOAT16,
                    SLLEN_ATTENTION_TENSOR_CORE);
            }
        }
    }
    // Unsupported arguments fail cleanly with a message.
    const int rc = sllen_attention_forward(nullptr, nullptr, nullptr, nullptr, 1, 1, 8, 48, 1.f,
                                           SLLEN_ATTENTION_FLOAT32, nullptr);
    tally.record(rc == SLLEN_ATTENTION_UNSUPPORTED && *sllen_attention_last_error() != '\0',
                 "head_dim 48 is refused", 0.0);
    std::printf("auto kernel for fp16 d=64 on this device: %s\n",
                sllen_attention_selected_kernel(64, SLLEN_ATTENTION_FLOAT16) ==
                        SLLEN_ATTENTION_TENSOR_CORE
                    ? "tensor-core"
                    : "cuda-core");
    CHECK_CUDA(cudaStreamDestroy(stream));
    return tally.finish();
}
