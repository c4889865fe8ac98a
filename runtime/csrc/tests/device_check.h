// What the GPU test does with the answer of cudaGetDeviceCount: run, skip (ctest exit code 77)
// or fail. A host-only function of plain values, so tests/test_device_check.cpp checks every
// case on a machine without a GPU, with made-up device counts and error codes.
//
// Skip only where there is no GPU to test on:
// - cudaErrorNoDevice ("no CUDA-capable devices were detected by the installed CUDA driver"),
//   or success with a count of 0;
// - cudaErrorInsufficientDriver while cudaDriverGetVersion reports 0, which the CUDA runtime
//   API documents as "no driver is installed" (a machine without an NVIDIA driver: what CPU-only
//   CI machines return, checked on this project's development machine: error 35, driver 0).
// Fail, with the message, on everything else. In particular cudaErrorInsufficientDriver with an
// installed driver (driver version > 0) is a FAILURE, not a skip: the machine has a GPU, but its
// driver is older than the CUDA toolkit the kernels were built with, so the kernel library
// cannot run there at all; skipping would report a green test suite on a box where every
// engine and kernel call fails. The fix is a newer driver or a build with an older toolkit.
#pragma once

#include <driver_types.h>

#include <string>

namespace sllen_test {

enum class DeviceVerdict { kRun, kSkip, kFail };

struct DeviceCheck {
    DeviceVerdict verdict;
    std::string reason;
};

// 13000 -> "13.0" (CUDA's version encoding: 1000 * major + 10 * minor).
inline std::string cuda_version_text(int version) {
    return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

// count_error, count: what cudaGetDeviceCount returned and wrote; driver_version: from
// cudaDriverGetVersion (0: no driver installed); runtime_version: cudaRuntimeGetVersion;
// error_text: cudaGetErrorString(count_error), for the message.
inline DeviceCheck classify_devices(cudaError_t count_error, int count, int driver_version,
                                    int runtime_version, const char* error_text) {
    const std::string what = std::string(error_text ? error_text : "unknown error") + " (error " +
                             std::to_string(static_cast<int>(count_error)) + ")";
    if (count_error == cudaSuccess) {
        if (count > 0) return {DeviceVerdict::kRun, std::to_string(count) + " CUDA device(s)"};
        return {DeviceVerdict::kSkip, "no CUDA device (cudaGetDeviceCount: 0)"};
    }
    if (count_error == cudaErrorNoDevice) {
        return {DeviceVerdict::kSkip, "no CUDA device: " + what};
    }
    if (count_error == cudaErrorInsufficientDriver) {
        if (driver_version <= 0) {
            return {DeviceVerdict::kSkip,
                    "no NVIDIA driver installed (cudaDriverGetVersion: 0): " + what};
        }
        return {DeviceVerdict::kFail,
                "the NVIDIA driver supports CUDA up to " + cuda_version_text(driver_version) +
                    " but the kernels were built with CUDA " + cuda_version_text(runtime_version) +
                    ": install a newer driver or build with an older CUDA toolkit: " + what};
    }
    return {DeviceVerdict::kFail, "cudaGetDeviceCount failed: " + what};
}

}  // namespace sllen_test
