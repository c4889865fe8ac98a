// The CPU reference both kernel tests compare against, and their shared helpers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace sllen_test {

// softmax(scale * q k^T) v per head, in double: [heads_total, n, d] row-major.
inline std::vector<float> reference_attention(const std::vector<float>& q,
                                              const std::vector<float>& k,
                                              const std::vector<float>& v, int64_t heads_total,
                                              int64_t n, int d, double scale) {
    std::vector<float> out(static_cast<size_t>(heads_total * n * d));
    std::vector<double> s(static_cast<size_t>(n)), acc(static_cast<size_t>(d));
    for (int64_t h = 0; h < heads_total; ++h) {
        const float* qh = q.data() + h * n * d;
        const float* kh = k.data() + h * n * d;
        const float* vh = v.data() + h * n * d;
        for (int64_t i = 0; i < n; ++i) {
            double mx = -INFINITY;
            for (int64_t j = 0; j < n; ++j) {
                double dot = 0.0;
                for (int c = 0; c < d; ++c) dot += double(qh[i * d + c]) * double(kh[j * d + c]);
                s[size_t(j)] = dot * scale;
                mx = std::max(mx, s[size_t(j)]);
            }
            double sum = 0.0;
            std::fill(acc.begin(), acc.end(), 0.0);
            for (int64_t j = 0; j < n; ++j) {
                const double p = std::exp(s[size_t(j)] - mx);
                sum += p;
                for (int c = 0; c < d; ++c) acc[size_t(c)] += p * double(vh[j * d + c]);
            }
            for (int c = 0; c < d; ++c) {
                out[static_cast<size_t>((h * n + i) * d + c)] = float(acc[size_t(c)] / sum);
            }
        }
    }
    return out;
}

// Deterministic N(0, amp^2) values (Box-Muller on a 64-bit LCG).
inline std::vector<float> random_normal(size_t count, uint64_t seed, float amp) {
    std::vector<float> x(count);
    uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;
    auto uniform = [&state]() {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return (double((state >> 11) & ((1ull << 53) - 1)) + 0.5) / double(1ull << 53);
    };
    for (size_t i = 0; i < count; ++i) {
        const double u1 = uniform(), u2 = uniform();
        x[i] = float(amp * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
    return x;
}

struct Tolerance {
    double atol;
    double rtol;
};

// FP32 inputs: FP32 arithmetic against a double reference.
constexpr Tolerance kFp32Tol{2e-5, 2e-4};
// FP16 inputs (the reference sees the same FP16-rounded inputs): the output is rounded to FP16
// (2^-11 relative) and the tensor-core kernel rounds probabilities to FP16 before P V.
constexpr Tolerance kFp16Tol{2e-3, 1e-2};

// Largest |got - want| and whether every element is within atol + rtol * |want|.
inline bool compare(const std::vector<float>& got, const std::vector<float>& want, Tolerance tol,
                    double* max_err) {
    bool ok = got.size() == want.size();
    double worst = 0.0;
    for (size_t i = 0; ok && i < got.size(); ++i) {
        const double err = std::fabs(double(got[i]) - double(want[i]));
        if (!(err <= tol.atol + tol.rtol * std::fabs(double(want[i])))) ok = false;
        if (!(err <= worst)) worst = err;  // NaN propagates into the report
    }
    *max_err = worst;
    return ok;
}

struct Tally {
    int passed = 0;
    int failed = 0;
    void record(bool ok, const std::string& name, double max_err) {
        (ok ? passed : failed) += 1;
        std::printf("%s %-48s max |err| %.3g\n", ok ? "ok  " : "FAIL", name.c_str(), max_err);
    }
    int finish() const {
        std::printf("%d passed, %d failed\n", passed, failed);
        return failed == 0 ? 0 : 1;
    }
};

}  // namespace sllen_test
