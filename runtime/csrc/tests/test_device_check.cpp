// classify_devices (device_check.h) with made-up answers of cudaGetDeviceCount: the GPU test's
// skip-or-fail decision, checked on any machine (no GPU, no CUDA runtime library needed).
#include <cstdio>
#include <string>

#include "device_check.h"

namespace {

using sllen_test::DeviceVerdict;

int g_failures = 0;

void expect(cudaError_t err, int count, int driver, DeviceVerdict want, const char* needle,
            const char* what) {
    const sllen_test::DeviceCheck got =
        sllen_test::classify_devices(err, count, driver, 13000, "some CUDA error text");
    const bool ok = got.verdict == want && got.reason.find(needle) != std::string::npos;
    std::printf("%s  %s -> %s\n", ok ? "PASS" : "FAIL", what, got.reason.c_str());
    if (!ok) ++g_failures;
}

}  // namespace

int main() {
    expect(cudaSuccess, 2, 13000, DeviceVerdict::kRun, "2 CUDA device", "two devices: run");
    expect(cudaSuccess, 0, 13000, DeviceVerdict::kSkip, "no CUDA device", "count 0: skip");
    expect(cudaErrorNoDevice, 0, 13000, DeviceVerdict::kSkip, "error 100",
           "cudaErrorNoDevice: skip");
    expect(cudaErrorInsufficientDriver, -1, 0, DeviceVerdict::kSkip, "no NVIDIA driver",
           "insufficient driver, no driver installed: skip");
    expect(cudaErrorInsufficientDriver, -1, 12040, DeviceVerdict::kFail,
           "supports CUDA up to 12.4 but the kernels were built with CUDA 13.0",
           "insufficient driver, driver 12.4 installed: FAIL");
    expect(cudaErrorInitializationError, -1, 13000, DeviceVerdict::kFail, "error 3",
           "initialization error: FAIL");
    expect(cudaErrorSystemDriverMismatch, -1, 13000, DeviceVerdict::kFail, "error 803",
           "driver/kernel module mismatch: FAIL");
    expect(cudaErrorDevicesUnavailable, -1, 13000, DeviceVerdict::kFail, "error 46",
           "devices busy or unavailable: FAIL");
    expect(cudaErrorCompatNotSupportedOnDevice, -1, 13000, DeviceVerdict::kFail, "error 804",
           "forward compatibility not supported: FAIL");
    std::printf("%s\n", g_failures == 0 ? "all passed" : "FAILED");
    return g_failures == 0 ? 0 : 1;
}
