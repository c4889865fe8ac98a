// Tiled scaled-dot-product attention with an online softmax (the flash-attention scheme).
//
// out[b, h, i, :] = sum_j softmax_j(scale * q[b, h, i, :] . k[b, h, j, :]) v[b, h, j, :]
//
// for contiguous [batch, heads, tokens, head_dim] tensors. A block owns a tile of queries and
// walks over the keys in tiles, keeping a running row maximum and row sum, so no N x N matrix
// ever exists: memory is the inputs and the output, linear in the number of tokens. Scores,
// softmax and the output accumulate in FP32 whatever the input type.
//
// Two kernels, both for head sizes 32, 64, 128, 256 and 512 and any token count:
// - attention_mma_block: FP16 on tensor cores (mma.sync m16n8k16, sm_80 and newer: Ampere,
//   Orin, Ada, Hopper, Blackwell). Each warp owns 16 query rows; scores and the output stay in
//   registers in the documented mma fragment layout, probabilities are rounded to FP16 only as
//   the A operand of P x V (as FlashAttention-2 does).
// - attention_simt_block: FP32 or FP16 inputs on CUDA cores, all arithmetic in FP32 (the exact
//   path, and the FP16 path of GPUs older than sm_80).
// Output widths above 256 (the paper's single 512-wide head) are split over blockIdx.z: each
// split recomputes the scores and writes 256 output columns, so no thread holds more than
// 256 / 8 accumulators.
//
// Loads: the tensor-core kernel (sm_80+ only) pipelines its global->shared tile loads with
// cp.async (Ampere's asynchronous copy, no register staging), FlashAttention-2's schedule with
// one K and one V buffer: V of tile j streams in while Q K_j^T and the softmax run, K of tile
// j+1 while P V_j runs; two barriers per key tile, as in the synchronous schedule. Unaligned
// tensors, the CUDA-core kernel (the sm_75 and older path) and builds with
// SLLEN_ATTENTION_SYNC_LOADS load synchronously. Whether the pipeline is faster is measured only
// on a GPU (scripts/gpu/attention_bench.py); nothing in this repository has measured it yet.
//
// The block bodies take the thread and block indices as arguments and reach the hardware only
// through the primitives below (barrier, shuffle, mma, ldmatrix, cp.async), so the same source
// also compiles as plain C++ with SLLEN_EMULATE defined: tests/emulator.h then runs every thread
// of a block as a fiber on the CPU, which is how CI checks this file without a GPU. The emulator
// models cp.async in two orders, copies landing at issue and copies landing only at the
// cp.async.wait_group that retires them, so a missing wait or barrier shows as wrong results.
#pragma once

#include <cstdint>
#include <cstring>

#include <cuda_fp16.h>

#if defined(SLLEN_EMULATE)
#include <cmath>

#include "emulator.h"
#define SLLEN_DEVICE inline
#else
#define SLLEN_DEVICE __device__ __forceinline__
#endif

namespace sllen {

struct AttentionParams {
    const void* q;
    const void* k;
    const void* v;
    void* out;
    int64_t tokens;    // N: queries and keys (self-attention)
    float scale_log2;  // scale * log2(e): the softmax runs on exp2
    bool aligned16;    // all four pointers 16-byte aligned: vector loads and half2 stores
};

// ------------------------------------------------------------------ tile configurations

// Tensor-core kernel: warps (16 query rows each), keys per tile, output columns per split.
// Shared memory stays under 99 KB (the sm_86/sm_89 per-block limit) for every head size.
template <int D> struct MmaConfig;
template <> struct MmaConfig<32> { static constexpr int kWarps = 4, kBK = 64, kDV = 32; };
template <> struct MmaConfig<64> { static constexpr int kWarps = 4, kBK = 64, kDV = 64; };
template <> struct MmaConfig<128> { static constexpr int kWarps = 4, kBK = 64, kDV = 128; };
template <> struct MmaConfig<256> { static constexpr int kWarps = 4, kBK = 32, kDV = 256; };
template <> struct MmaConfig<512> { static constexpr int kWarps = 2, kBK = 32, kDV = 256; };

template <int D> struct MmaTile {
    using C = MmaConfig<D>;
    static constexpr int kThreads = C::kWarps * 32;
    static constexpr int kBQ = 16 * C::kWarps;
    static constexpr int kBK = C::kBK;
    static constexpr int kDV = C::kDV;
    static constexpr int kSplit = D / C::kDV;
    // +8 halves per row: fragment loads of 8 rows hit 32 distinct banks.
    static constexpr int kLDQ = D + 8;
    static constexpr int kLDV = C::kDV + 8;
    static constexpr size_t kSmem =
        (size_t(kBQ) * kLDQ + size_t(kBK) * kLDQ + size_t(kBK) * kLDV) * sizeof(__half);
};

// CUDA-core kernel: 128 threads, 32 queries x 32 keys per step, head dimension in chunks of
// 32 (so shared memory is 13 KB for every head size and Q is re-read from L2 per key tile).
template <int D> struct SimtTile {
    static constexpr int kThreads = 128;
    static constexpr int kBQ = 32;
    static constexpr int kBK = 32;
    static constexpr int kDC = 32;
    static constexpr int kDV = D < 256 ? D : 256;
    static constexpr int kSplit = D / kDV;
    static constexpr int kLD = 33;  // +1 float: conflict-free column walks
    static constexpr size_t kSmem = (3 * 32 * 33 + 32 + 32) * sizeof(float);
};

namespace detail {

constexpr float kNegInf = -__builtin_huge_valf();

// ------------------------------------------------------------------ hardware primitives

SLLEN_DEVICE void block_sync() {
#if defined(SLLEN_EMULATE)
    ::emu::syncthreads();
#else
    __syncthreads();
#endif
}

SLLEN_DEVICE float shfl_xor(float v, int lane_mask) {
#if defined(SLLEN_EMULATE)
    return ::emu::shfl_xor(v, lane_mask);
#else
    return __shfl_xor_sync(0xffffffffu, v, lane_mask);
#endif
}

// d += a * b for one 16x8x16 tile: a 16x16 FP16 (row-major fragment), b 16x8 FP16
// (column-major fragment), d 16x8 FP32. Fragment layout: PTX ISA, "Matrix Fragments for
// mma.m16n8k16 with floating point type".
SLLEN_DEVICE void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(SLLEN_EMULATE)
    ::emu::mma_16816(d, a, b0, b1);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#elif defined(__CUDA_ARCH__)
    __trap();  // never launched below sm_80 (the launcher picks the CUDA-core kernel)
#endif
}

// Four transposed 8x8 FP16 matrices from shared memory; lane i gives the address of row
// (i % 8) of matrix (i / 8). Lane l receives, per matrix, rows 2(l%4) and 2(l%4)+1 of column
// l/4: the B fragment of mma.m16n8k16 for a row-major [k][n] tile.
SLLEN_DEVICE void ldmatrix_x4_trans(uint32_t (&r)[4], const __half* row) {
#if defined(SLLEN_EMULATE)
    ::emu::ldmatrix_x4_trans(r, row);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
    const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
#elif defined(__CUDA_ARCH__)
    __trap();
#endif
}

// 16 bytes from global to shared memory without passing through registers: cp.async.cg
// (cache in L2 only, the size must be 16), sm_80 and newer. valid == false writes 16 zero bytes
// (src-size 0: "remaining bytes in destination dst are filled with zeros", PTX ISA cp.async);
// src must still be a readable address. Both addresses 16-byte aligned.
SLLEN_DEVICE void cp_async_16(void* smem_dst, const void* gmem_src, bool valid) {
#if defined(SLLEN_EMULATE)
    ::emu::cp_async_16(smem_dst, gmem_src, valid);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
    const int src_size = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem_src),
                 "r"(src_size)
                 : "memory");
#elif defined(__CUDA_ARCH__)
    __trap();  // the pipelined kernel is the tensor-core one: never launched below sm_80
#endif
}

// Close the current group of cp.async operations of this thread.
SLLEN_DEVICE void cp_async_commit() {
#if defined(SLLEN_EMULATE)
    ::emu::cp_async_commit();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Wait until at most N of this thread's committed groups are still in flight. Other threads
// see the data only after a barrier that follows their wait.
template <int N> SLLEN_DEVICE void cp_async_wait() {
#if defined(SLLEN_EMULATE)
    ::emu::cp_async_wait(N);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// ------------------------------------------------------------------ small helpers

SLLEN_DEVICE float fast_exp2(float x) {
#if defined(SLLEN_EMULATE)
    return std::exp2(x);
#else
    return exp2f(x);
#endif
}

// p is 4-byte aligned (an even element of a 16-byte aligned row): one 32-bit access.
SLLEN_DEVICE uint32_t load_u32(const __half* p) {
#if defined(SLLEN_EMULATE)
    uint32_t u;
    std::memcpy(&u, p, sizeof(u));
    return u;
#else
    return *reinterpret_cast<const uint32_t*>(p);
#endif
}

SLLEN_DEVICE void store_u32(__half* p, uint32_t u) {
#if defined(SLLEN_EMULATE)
    std::memcpy(static_cast<void*>(p), &u, sizeof(u));
#else
    *reinterpret_cast<uint32_t*>(p) = u;
#endif
}

SLLEN_DEVICE uint32_t pack_half2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);  // lo in the low 16 bits: element k, then k+1
    uint32_t u;
    std::memcpy(&u, &h, sizeof(u));
    return u;
}

SLLEN_DEVICE float to_float(float x) { return x; }
SLLEN_DEVICE float to_float(__half x) { return __half2float(x); }

template <typename T> SLLEN_DEVICE T from_float(float x);
template <> SLLEN_DEVICE float from_float<float>(float x) { return x; }
template <> SLLEN_DEVICE __half from_float<__half>(float x) { return __float2half_rn(x); }

// rows x COLS halves of a [tokens, row_stride] matrix from row0/col0 into shared memory with
// leading dimension LD; rows past the end are zero (their scores are masked, their values
// multiply zero probabilities).
template <int COLS, int LD>
SLLEN_DEVICE void load_tile_half(__half* dst, const __half* src, int64_t row0, int rows,
                                 int64_t tokens, int row_stride, int col0, int tid, int nthreads,
                                 bool aligned16) {
    if (aligned16) {
        constexpr int kChunks = COLS / 8;  // 16 bytes each
        for (int i = tid; i < rows * kChunks; i += nthreads) {
            const int r = i / kChunks;
            const int c = (i % kChunks) * 8;
            const int64_t gr = row0 + r;
            uint4 val = {0u, 0u, 0u, 0u};
            if (gr < tokens) {
                val = *reinterpret_cast<const uint4*>(src + gr * row_stride + col0 + c);
            }
            *reinterpret_cast<uint4*>(dst + r * LD + c) = val;
        }
    } else {
        for (int i = tid; i < rows * COLS; i += nthreads) {
            const int r = i / COLS;
            const int c = i % COLS;
            const int64_t gr = row0 + r;
            dst[r * LD + c] = gr < tokens ? src[gr * row_stride + col0 + c] : __float2half_rn(0.f);
        }
    }
}

// The same tile with cp.async (16-byte aligned tensors only): issued, not waited for.
template <int COLS, int LD>
SLLEN_DEVICE void load_tile_half_async(__half* dst, const __half* src, int64_t row0, int rows,
                                       int64_t tokens, int row_stride, int col0, int tid,
                                       int nthreads) {
    constexpr int kChunks = COLS / 8;  // 16 bytes each
    for (int i = tid; i < rows * kChunks; i += nthreads) {
        const int r = i / kChunks;
        const int c = (i % kChunks) * 8;
        const int64_t gr = row0 + r;
        const bool valid = gr < tokens;
        // Rows past the end are zero-filled; their source address is the tile's first element.
        cp_async_16(dst + r * LD + c, src + (valid ? gr * row_stride + col0 + c : col0), valid);
    }
}

// 32 x 32 elements of a [tokens, row_stride] matrix into FP32 shared memory (leading dim 33).
template <typename T>
SLLEN_DEVICE void load_chunk_f32(float* dst, const T* src, int64_t row0, int64_t tokens,
                                 int row_stride, int col0, int tid) {
    for (int i = tid; i < 32 * 32; i += 128) {
        const int r = i >> 5;
        const int c = i & 31;
        const int64_t gr = row0 + r;
        dst[r * 33 + c] = gr < tokens ? to_float(src[gr * row_stride + col0 + c]) : 0.f;
    }
}

}  // namespace detail

// ------------------------------------------------------------------ tensor-core kernel (FP16)

// Whether the tensor-core kernel pipelines its loads with cp.async (compile-time choice).
#if defined(SLLEN_ATTENTION_SYNC_LOADS)
constexpr bool kPipelinedLoads = false;
#else
constexpr bool kPipelinedLoads = true;
#endif

// One block: queries [bx * kBQ, +kBQ) of head `by`, output columns [bz * kDV, +kDV).
// kAsync: pipeline the K/V loads with cp.async (16-byte aligned tensors; else synchronous).
template <int D, bool kAsync = kPipelinedLoads>
SLLEN_DEVICE void attention_mma_block(const AttentionParams& p, unsigned char* smem, int tid,
                                      int bx, int by, int bz) {
    using namespace detail;
    using Tile = MmaTile<D>;
    constexpr int BQ = Tile::kBQ, BK = Tile::kBK, DV = Tile::kDV;
    constexpr int LDQ = Tile::kLDQ, LDV = Tile::kLDV;
    constexpr int NT = BK / 8;  // score n-tiles per key tile
    constexpr int OT = DV / 8;  // output n-tiles

    __half* Qs = reinterpret_cast<__half*>(smem);
    __half* Ks = Qs + BQ * LDQ;
    __half* Vs = Ks + BK * LDQ;

    const int warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;  // fragment row group and column pair
    const int64_t n = p.tokens;
    const int64_t q0 = int64_t(bx) * BQ;
    const int dv0 = bz * DV;
    const size_t head = size_t(by) * size_t(n) * D;
    const __half* q = static_cast<const __half*>(p.q) + head;
    const __half* k = static_cast<const __half*>(p.k) + head;
    const __half* v = static_cast<const __half*>(p.v) + head;
    __half* out = static_cast<__half*>(p.out) + head;

    // Uniform over the block: every thread takes the same path.
    const bool pipelined = kAsync && p.aligned16;
    if (pipelined) {  // one group: Q and the first K tile
        load_tile_half_async<D, LDQ>(Qs, q, q0, BQ, n, D, 0, tid, Tile::kThreads);
        load_tile_half_async<D, LDQ>(Ks, k, 0, BK, n, D, 0, tid, Tile::kThreads);
        cp_async_commit();
    } else {
        load_tile_half<D, LDQ>(Qs, q, q0, BQ, n, D, 0, tid, Tile::kThreads, p.aligned16);
    }

    float acc[OT][4];
#pragma unroll
    for (int i = 0; i < OT; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
    // Running max (log2 domain) and this thread's partial row sums of rows g and g + 8.
    float m0 = kNegInf, m1 = kNegInf, l0 = 0.f, l1 = 0.f;
    const int qr = warp * 16 + g;

    for (int64_t k0 = 0; k0 < n; k0 += BK) {
        if (pipelined) {
            cp_async_wait<0>();  // this thread's part of K (and Q) has landed
            block_sync();        // everyone's has; everyone is done with the previous V tile
            load_tile_half_async<DV, LDV>(Vs, v, k0, BK, n, D, dv0, tid, Tile::kThreads);
            cp_async_commit();  // V streams in during Q K^T and the softmax
        } else {
            block_sync();  // everyone is done with the previous K/V tile
            load_tile_half<D, LDQ>(Ks, k, k0, BK, n, D, 0, tid, Tile::kThreads, p.aligned16);
            load_tile_half<DV, LDV>(Vs, v, k0, BK, n, D, dv0, tid, Tile::kThreads, p.aligned16);
            block_sync();
        }

        // S = Q K^T for this warp's 16 rows and BK keys.
        float s[NT][4];
#pragma unroll
        for (int j = 0; j < NT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll 4
        for (int kk = 0; kk < D / 16; ++kk) {
            const __half* qa = Qs + qr * LDQ + kk * 16 + 2 * t;
            const uint32_t a[4] = {load_u32(qa), load_u32(qa + 8 * LDQ), load_u32(qa + 8),
                                   load_u32(qa + 8 * LDQ + 8)};
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                const __half* kb = Ks + (j * 8 + g) * LDQ + kk * 16 + 2 * t;
                mma_16816(s[j], a, load_u32(kb), load_u32(kb + 8));
            }
        }

        // Scale, mask keys past the end, and update the running max of both rows.
        float mx0 = kNegInf, mx1 = kNegInf;
#pragma unroll
        for (int j = 0; j < NT; ++j) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const bool valid = k0 + j * 8 + 2 * t + e < n;
                s[j][e] = valid ? s[j][e] * p.scale_log2 : kNegInf;
                s[j][2 + e] = valid ? s[j][2 + e] * p.scale_log2 : kNegInf;
                mx0 = fmaxf(mx0, s[j][e]);
                mx1 = fmaxf(mx1, s[j][2 + e]);
            }
        }
        // The four lanes of a row group hold the row's columns.
        mx0 = fmaxf(mx0, shfl_xor(mx0, 1));
        mx0 = fmaxf(mx0, shfl_xor(mx0, 2));
        mx1 = fmaxf(mx1, shfl_xor(mx1, 1));
        mx1 = fmaxf(mx1, shfl_xor(mx1, 2));
        const float new0 = fmaxf(m0, mx0), new1 = fmaxf(m1, mx1);
        // Every key tile holds at least one valid key, so the max is finite after the first
        // tile; the guard keeps exp2(-inf - -inf) out of reach anyway.
        const float base0 = new0 == kNegInf ? 0.f : new0;
        const float base1 = new1 == kNegInf ? 0.f : new1;
        const float alpha0 = fast_exp2(m0 - base0), alpha1 = fast_exp2(m1 - base1);
        m0 = new0;
        m1 = new1;
        float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
        for (int j = 0; j < NT; ++j) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                s[j][e] = fast_exp2(s[j][e] - base0);
                s[j][2 + e] = fast_exp2(s[j][2 + e] - base1);
                sum0 += s[j][e];
                sum1 += s[j][2 + e];
            }
        }
        l0 = l0 * alpha0 + sum0;
        l1 = l1 * alpha1 + sum1;
#pragma unroll
        for (int i = 0; i < OT; ++i) {
            acc[i][0] *= alpha0;
            acc[i][1] *= alpha0;
            acc[i][2] *= alpha1;
            acc[i][3] *= alpha1;
        }

        if (pipelined) {
            cp_async_wait<0>();  // this thread's part of V has landed
            block_sync();        // everyone's has; everyone is done reading K
            if (k0 + BK < n) {   // the next K streams in during P V
                load_tile_half_async<D, LDQ>(Ks, k, k0 + BK, BK, n, D, 0, tid, Tile::kThreads);
                cp_async_commit();
            }
        }

        // O += P V. The C fragments of two neighbouring score n-tiles are exactly the A
        // fragment of one 16-key chunk, so P never leaves the registers.
#pragma unroll
        for (int kc = 0; kc < BK / 16; ++kc) {
            const uint32_t pa[4] = {
                pack_half2(s[2 * kc][0], s[2 * kc][1]), pack_half2(s[2 * kc][2], s[2 * kc][3]),
                pack_half2(s[2 * kc + 1][0], s[2 * kc + 1][1]),
                pack_half2(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
            for (int jj = 0; jj < DV / 16; ++jj) {
                uint32_t b[4];
                const int vrow = kc * 16 + (lane & 15), vcol = jj * 16 + (lane >> 4) * 8;
                ldmatrix_x4_trans(b, Vs + vrow * LDV + vcol);
                mma_16816(acc[2 * jj], pa, b[0], b[1]);
                mma_16816(acc[2 * jj + 1], pa, b[2], b[3]);
            }
        }
    }

    l0 += shfl_xor(l0, 1);
    l0 += shfl_xor(l0, 2);
    l1 += shfl_xor(l1, 1);
    l1 += shfl_xor(l1, 2);
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f;
    const float inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
    const int64_t r0 = q0 + qr, r1 = r0 + 8;
#pragma unroll
    for (int i = 0; i < OT; ++i) {
        const int col = dv0 + i * 8 + 2 * t;
        if (p.aligned16) {
            if (r0 < n) {
                store_u32(out + r0 * D + col, pack_half2(acc[i][0] * inv0, acc[i][1] * inv0));
            }
            if (r1 < n) {
                store_u32(out + r1 * D + col, pack_half2(acc[i][2] * inv1, acc[i][3] * inv1));
            }
        } else {
            if (r0 < n) {
                out[r0 * D + col] = __float2half_rn(acc[i][0] * inv0);
                out[r0 * D + col + 1] = __float2half_rn(acc[i][1] * inv0);
            }
            if (r1 < n) {
                out[r1 * D + col] = __float2half_rn(acc[i][2] * inv1);
                out[r1 * D + col + 1] = __float2half_rn(acc[i][3] * inv1);
            }
        }
    }
}

// ------------------------------------------------------------------ CUDA-core kernel

// One block: queries [bx * 32, +32) of head `by`, output columns [bz * kDV, +kDV). Three
// phases per key tile, separated by barriers: scores (thread: 2 rows x 4 keys), online
// softmax (4 threads per row), P V (thread: 2 rows x kDV/8 columns).
template <typename T, int D>
SLLEN_DEVICE void attention_simt_block(const AttentionParams& p, unsigned char* smem, int tid,
                                       int bx, int by, int bz) {
    using namespace detail;
    using Tile = SimtTile<D>;
    constexpr int DV = Tile::kDV, LD = Tile::kLD, NC = DV / 8;

    float* Qc = reinterpret_cast<float*>(smem);
    float* Kc = Qc + 32 * LD;  // K chunk, then V chunk
    float* Ss = Kc + 32 * LD;  // scores, then probabilities
    float* As = Ss + 32 * LD;  // per-row rescale factor of this tile
    float* Ls = As + 32;       // final row sums

    const int64_t n = p.tokens;
    const int64_t q0 = int64_t(bx) * 32;
    const int dv0 = bz * DV;
    const size_t head = size_t(by) * size_t(n) * D;
    const T* q = static_cast<const T*>(p.q) + head;
    const T* k = static_cast<const T*>(p.k) + head;
    const T* v = static_cast<const T*>(p.v) + head;
    T* out = static_cast<T*>(p.out) + head;

    const int ra = (tid >> 3) * 2;  // rows ra, ra + 1 (scores and output)
    const int ca = tid & 7;         // columns ca + 8 i
    const int rb = tid >> 2;        // softmax row
    const int cb = (tid & 3) * 8;   // softmax columns cb .. cb + 7

    float acc[2][NC];
#pragma unroll
    for (int i = 0; i < NC; ++i) acc[0][i] = acc[1][i] = 0.f;
    float m_row = kNegInf, l_row = 0.f;  // kept identically by the 4 threads of row rb

    for (int64_t k0 = 0; k0 < n; k0 += 32) {
        float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
        for (int dc = 0; dc < D; dc += 32) {
            block_sync();
            load_chunk_f32(Qc, q, q0, n, D, dc, tid);
            load_chunk_f32(Kc, k, k0, n, D, dc, tid);
            block_sync();
#pragma unroll 8
            for (int d = 0; d < 32; ++d) {
                const float qa = Qc[ra * LD + d], qb = Qc[(ra + 1) * LD + d];
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const float kv = Kc[(ca + 8 * i) * LD + d];
                    s[0][i] += qa * kv;
                    s[1][i] += qb * kv;
                }
            }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const bool valid = k0 + ca + 8 * i < n;
            Ss[ra * LD + ca + 8 * i] = valid ? s[0][i] * p.scale_log2 : kNegInf;
            Ss[(ra + 1) * LD + ca + 8 * i] = valid ? s[1][i] * p.scale_log2 : kNegInf;
        }
        block_sync();

        {
            float mx = kNegInf;
#pragma unroll
            for (int e = 0; e < 8; ++e) mx = fmaxf(mx, Ss[rb * LD + cb + e]);
            mx = fmaxf(mx, shfl_xor(mx, 1));
            mx = fmaxf(mx, shfl_xor(mx, 2));
            const float m_new = fmaxf(m_row, mx);
            const float base = m_new == kNegInf ? 0.f : m_new;
            float sum = 0.f;
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                const float pe = fast_exp2(Ss[rb * LD + cb + e] - base);
                Ss[rb * LD + cb + e] = pe;
                sum += pe;
            }
            sum += shfl_xor(sum, 1);
            sum += shfl_xor(sum, 2);
            const float alpha = fast_exp2(m_row - base);
            m_row = m_new;
            l_row = l_row * alpha + sum;
            if ((tid & 3) == 0) As[rb] = alpha;
        }
        block_sync();

        const float al0 = As[ra], al1 = As[ra + 1];
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            acc[0][i] *= al0;
            acc[1][i] *= al1;
        }
#pragma unroll
        for (int vc = 0; vc < DV; vc += 32) {
            if (vc > 0) block_sync();  // the previous V chunk is consumed
            load_chunk_f32(Kc, v, k0, n, D, dv0 + vc, tid);
            block_sync();
#pragma unroll 4
            for (int kk = 0; kk < 32; ++kk) {
                const float pa = Ss[ra * LD + kk], pb = Ss[(ra + 1) * LD + kk];
#pragma unroll
                for (int ii = 0; ii < 4; ++ii) {
                    const float vv = Kc[kk * LD + ca + 8 * ii];
                    acc[0][vc / 8 + ii] += pa * vv;
                    acc[1][vc / 8 + ii] += pb * vv;
                }
            }
        }
    }

    if ((tid & 3) == 0) Ls[rb] = l_row;
    block_sync();
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int64_t row = q0 + ra + r;
        if (row >= n) continue;
        const float l = Ls[ra + r];
        const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            out[row * D + dv0 + ca + 8 * i] = from_float<T>(acc[r][i] * inv);
        }
    }
}

}  // namespace sllen
