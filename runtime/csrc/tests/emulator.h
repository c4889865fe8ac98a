// A CPU emulator of one CUDA thread block, just big enough for attention_kernel.cuh.
//
// Every thread of the block runs as a fiber (ucontext) on one OS thread. A fiber runs until it
// reaches a barrier (__syncthreads) or a warp-collective instruction (shuffle, mma, ldmatrix);
// the scheduler releases a barrier when every thread of the block waits at it, and executes a
// warp instruction once all 32 lanes of the warp have arrived with their operands, exactly as
// the hardware's lock-step semantics define them. Divergent barriers or warp instructions abort
// with a message instead of hanging. The mma and ldmatrix operand layouts follow the PTX ISA
// ("Matrix Fragments for mma.m16n8k16", "ldmatrix"), independently of how the kernel uses them,
// so a kernel that puts a value in the wrong fragment slot fails here.
//
// cp.async (Ampere's asynchronous global->shared copy) is per thread: copies are grouped by
// commit_group, and wait_group(N) returns once at most N of the thread's committed groups are
// in flight; other threads see the data after a later barrier. On hardware a copy lands at some
// moment between its issue and that wait, so the emulator offers the two extremes
// (set_copy_mode), and a kernel must give the right answer under both:
// - kEager: the copy lands at issue. A copy issued while other threads still read the old
//   contents of its destination (a missing barrier before the issue) changes what they read.
// - kLazy: the copy lands only at the wait_group that retires its group. Data read before the
//   wait, or by another thread before a barrier that follows the wait, is stale (the previous
//   tile, or the NaN the test fills shared memory with).
// Unaligned addresses abort, and so does a thread that exits with copies never waited for.
#pragma once

#include <ucontext.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <vector>

#include <cuda_fp16.h>

namespace emu {

enum class State { kReady, kBlockWait, kWarpWait, kDone };
enum class Op { kNone, kShflXor, kMma16816, kLdmatrixX4Trans };

constexpr int kPayload = 64;
constexpr size_t kStackBytes = 256 * 1024;

enum class CopyMode { kEager, kLazy };

struct AsyncCopy {
    void* dst;
    const void* src;
    bool valid;  // false: 16 zero bytes (src-size 0)
};

struct Thread {
    ucontext_t ctx{};
    std::vector<char> stack;
    State state = State::kReady;
    Op op = Op::kNone;
    unsigned char in[kPayload]{};
    unsigned char out[kPayload]{};
    std::vector<AsyncCopy> uncommitted;           // issued since the last commit_group
    std::deque<std::vector<AsyncCopy>> in_flight;  // committed groups, oldest first
};

// The order fibers run in. kRoundRobin: every thread up to its next barrier or warp
// instruction in turn, so warps advance in lock-step. kWarpsAscending / kWarpsDescending: one
// warp at a time as far as it gets before a barrier, lowest (highest) warp first, so warps
// drift as far apart as the barriers allow: a buffer overwritten by one warp while another still
// reads it (a missing barrier) then shows.
enum class Schedule { kRoundRobin, kWarpsAscending, kWarpsDescending };

struct Block {
    std::vector<Thread> threads;
    ucontext_t scheduler{};
    int current = -1;
    std::function<void(int)> body;
    long long warp_ops = 0;
    CopyMode copy_mode = CopyMode::kEager;
    Schedule schedule = Schedule::kRoundRobin;
    long long async_copies = 0;
};

inline Block& block() {
    static Block b;
    return b;
}

[[noreturn]] inline void die(const char* what) {
    std::fprintf(stderr, "emulator: %s\n", what);
    std::abort();
}

inline void wait(State s) {
    Block& b = block();
    Thread& t = b.threads[b.current];
    t.state = s;
    swapcontext(&t.ctx, &b.scheduler);
}

inline void syncthreads() { wait(State::kBlockWait); }

// -------------------------------------------------------------- cp.async

inline void set_copy_mode(CopyMode mode) { block().copy_mode = mode; }
inline void set_schedule(Schedule schedule) { block().schedule = schedule; }

inline void land(const AsyncCopy& c) {
    if (c.valid) {
        std::memcpy(c.dst, c.src, 16);
    } else {
        std::memset(c.dst, 0, 16);
    }
}

inline void cp_async_16(void* dst, const void* src, bool valid) {
    if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || reinterpret_cast<uintptr_t>(src) % 16 != 0) {
        die("cp.async with an address that is not 16-byte aligned");
    }
    Block& b = block();
    ++b.async_copies;
    const AsyncCopy c{dst, src, valid};
    Thread& t = b.threads[b.current];
    if (b.copy_mode == CopyMode::kEager) {
        land(c);
        t.uncommitted.push_back(AsyncCopy{nullptr, nullptr, false});  // counted, already landed
    } else {
        t.uncommitted.push_back(c);
    }
}

inline void cp_async_commit() {
    Block& b = block();
    Thread& t = b.threads[b.current];
    t.in_flight.push_back(std::move(t.uncommitted));
    t.uncommitted.clear();
}

inline void cp_async_wait(int n) {
    Block& b = block();
    Thread& t = b.threads[b.current];
    while (int(t.in_flight.size()) > n) {
        for (const AsyncCopy& c : t.in_flight.front()) {
            if (c.dst != nullptr) land(c);
        }
        t.in_flight.pop_front();
    }
}

inline void warp_op(Op op, const void* in, size_t nin, void* out, size_t nout) {
    Block& b = block();
    Thread& t = b.threads[b.current];
    t.op = op;
    std::memcpy(t.in, in, nin);
    wait(State::kWarpWait);
    std::memcpy(out, t.out, nout);
}

inline float shfl_xor(float v, int lane_mask) {
    struct {
        float v;
        int mask;
    } in{v, lane_mask};
    float r;
    warp_op(Op::kShflXor, &in, sizeof(in), &r, sizeof(r));
    return r;
}

struct MmaIn {
    uint32_t a[4];
    uint32_t b[2];
    float c[4];
};

inline void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    MmaIn in;
    std::memcpy(in.a, a, sizeof(in.a));
    in.b[0] = b0;
    in.b[1] = b1;
    std::memcpy(in.c, d, sizeof(in.c));
    warp_op(Op::kMma16816, &in, sizeof(in), d, sizeof(d));
}

inline void ldmatrix_x4_trans(uint32_t (&r)[4], const __half* row) {
    warp_op(Op::kLdmatrixX4Trans, &row, sizeof(row), r, sizeof(r));
}

// -------------------------------------------------------------- warp instruction semantics

inline float lo_half(uint32_t u) {
    __half h;
    const uint16_t bits = uint16_t(u & 0xffffu);
    std::memcpy(static_cast<void*>(&h), &bits, 2);
    return __half2float(h);
}

inline float hi_half(uint32_t u) { return lo_half(u >> 16); }

inline uint32_t pack(__half lo, __half hi) {
    uint16_t a, b;
    std::memcpy(&a, &lo, 2);
    std::memcpy(&b, &hi, 2);
    return uint32_t(a) | (uint32_t(b) << 16);
}

inline void execute_warp(Thread* lanes) {
    const Op op = lanes[0].op;
    for (int l = 1; l < 32; ++l) {
        if (lanes[l].op != op) die("lanes of one warp reached different warp instructions");
    }
    switch (op) {
        case Op::kShflXor: {
            float v[32];
            int mask[32];
            for (int l = 0; l < 32; ++l) {
                std::memcpy(&v[l], lanes[l].in, 4);
                std::memcpy(&mask[l], lanes[l].in + 4, 4);
            }
            for (int l = 0; l < 32; ++l) {
                if (mask[l] != mask[0]) die("shfl_xor with different lane masks");
                std::memcpy(lanes[l].out, &v[l ^ mask[l]], 4);
            }
            break;
        }
        case Op::kMma16816: {
            // A 16x16 (row), B 16x8 (col), C/D 16x8, from the PTX fragment tables:
            // g = lane / 4, t = lane % 4;
            // A: reg0 (g, 2t..2t+1), reg1 (g+8, 2t..), reg2 (g, 2t+8..), reg3 (g+8, 2t+8..)
            // B: reg0 (k 2t..2t+1, n g), reg1 (k 2t+8.., n g)
            // C: c0,c1 (g, 2t..2t+1), c2,c3 (g+8, 2t..2t+1)
            float A[16][16], B[16][8], C[16][8];
            for (int l = 0; l < 32; ++l) {
                MmaIn in;
                std::memcpy(&in, lanes[l].in, sizeof(in));
                const int g = l >> 2, t = l & 3;
                const int ar[4] = {g, g + 8, g, g + 8};
                const int ac[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
                for (int r = 0; r < 4; ++r) {
                    A[ar[r]][ac[r]] = lo_half(in.a[r]);
                    A[ar[r]][ac[r] + 1] = hi_half(in.a[r]);
                }
                for (int r = 0; r < 2; ++r) {
                    B[2 * t + 8 * r][g] = lo_half(in.b[r]);
                    B[2 * t + 8 * r + 1][g] = hi_half(in.b[r]);
                }
                C[g][2 * t] = in.c[0];
                C[g][2 * t + 1] = in.c[1];
                C[g + 8][2 * t] = in.c[2];
                C[g + 8][2 * t + 1] = in.c[3];
            }
            float D[16][8];
            for (int i = 0; i < 16; ++i) {
                for (int j = 0; j < 8; ++j) {
                    float acc = C[i][j];
                    for (int k = 0; k < 16; ++k) acc += A[i][k] * B[k][j];
                    D[i][j] = acc;
                }
            }
            for (int l = 0; l < 32; ++l) {
                const int g = l >> 2, t = l & 3;
                const float d[4] = {D[g][2 * t], D[g][2 * t + 1], D[g + 8][2 * t],
                                    D[g + 8][2 * t + 1]};
                std::memcpy(lanes[l].out, d, sizeof(d));
            }
            break;
        }
        case Op::kLdmatrixX4Trans: {
            // Matrix m has rows at the addresses of lanes 8m .. 8m+7 (8 halves each). With
            // .trans, lane l receives (row 2(l%4), col l/4) and (row 2(l%4)+1, col l/4).
            __half M[4][8][8];
            for (int m = 0; m < 4; ++m) {
                for (int r = 0; r < 8; ++r) {
                    const __half* row;
                    std::memcpy(&row, lanes[8 * m + r].in, sizeof(row));
                    if (reinterpret_cast<uintptr_t>(row) % 16 != 0) {
                        die("ldmatrix row address not 16-byte aligned");
                    }
                    for (int c = 0; c < 8; ++c) M[m][r][c] = row[c];
                }
            }
            for (int l = 0; l < 32; ++l) {
                uint32_t r[4];
                for (int m = 0; m < 4; ++m) {
                    r[m] = pack(M[m][2 * (l & 3)][l >> 2], M[m][2 * (l & 3) + 1][l >> 2]);
                }
                std::memcpy(lanes[l].out, r, sizeof(r));
            }
            break;
        }
        default:
            die("unknown warp instruction");
    }
    for (int l = 0; l < 32; ++l) lanes[l].state = State::kReady;
    ++block().warp_ops;
}

// -------------------------------------------------------------- block scheduler

inline void trampoline() {
    Block& b = block();
    const int me = b.current;
    b.body(me);
    for (const auto& group : b.threads[me].in_flight) {
        for (const AsyncCopy& c : group) {
            if (c.dst != nullptr) die("a thread exited with cp.async copies never waited for");
        }
    }
    for (const AsyncCopy& c : b.threads[me].uncommitted) {
        if (c.dst != nullptr) die("a thread exited with cp.async copies never committed");
    }
    b.threads[me].state = State::kDone;
    swapcontext(&b.threads[me].ctx, &b.scheduler);
}

// Run body(threadIdx.x) for nthreads threads (a multiple of 32) of one block to completion.
inline void run_block(int nthreads, const std::function<void(int)>& body) {
    if (nthreads % 32 != 0) die("block size must be a multiple of 32");
    Block& b = block();
    b.body = body;
    if (int(b.threads.size()) < nthreads) b.threads.resize(nthreads);
    for (int i = 0; i < nthreads; ++i) {
        Thread& t = b.threads[i];
        if (t.stack.empty()) t.stack.resize(kStackBytes);
        getcontext(&t.ctx);
        t.ctx.uc_stack.ss_sp = t.stack.data();
        t.ctx.uc_stack.ss_size = t.stack.size();
        t.ctx.uc_link = nullptr;
        makecontext(&t.ctx, trampoline, 0);
        t.state = State::kReady;
        t.op = Op::kNone;
        t.uncommitted.clear();
        t.in_flight.clear();
    }
    const int nwarps = nthreads / 32;
    for (;;) {
        bool ran = false;
        if (b.schedule == Schedule::kRoundRobin) {
            for (int i = 0; i < nthreads; ++i) {
                if (b.threads[i].state != State::kReady) continue;
                b.current = i;
                swapcontext(&b.scheduler, &b.threads[i].ctx);
                ran = true;
            }
        } else {
            // One warp at a time, as far as it gets before a barrier (or its end).
            for (int k = 0; k < nwarps; ++k) {
                const int w = b.schedule == Schedule::kWarpsAscending ? k : nwarps - 1 - k;
                Thread* lanes = &b.threads[32 * w];
                for (;;) {
                    for (int l = 0; l < 32; ++l) {
                        if (lanes[l].state != State::kReady) continue;
                        b.current = 32 * w + l;
                        swapcontext(&b.scheduler, &lanes[l].ctx);
                        ran = true;
                    }
                    bool all = true;
                    for (int l = 0; l < 32 && all; ++l) all = lanes[l].state == State::kWarpWait;
                    if (!all) break;
                    execute_warp(lanes);
                }
            }
        }
        b.current = -1;
        int done = 0, at_barrier = 0;
        for (int i = 0; i < nthreads; ++i) {
            done += b.threads[i].state == State::kDone;
            at_barrier += b.threads[i].state == State::kBlockWait;
        }
        if (done == nthreads) return;
        bool released = false;
        for (int w = 0; w < nthreads / 32; ++w) {
            Thread* lanes = &b.threads[32 * w];
            bool all = true;
            for (int l = 0; l < 32 && all; ++l) all = lanes[l].state == State::kWarpWait;
            if (all) {
                execute_warp(lanes);
                released = true;
            }
        }
        if (!released && at_barrier > 0 && at_barrier + done == nthreads) {
            if (done > 0) die("__syncthreads reached after some threads exited");
            for (int i = 0; i < nthreads; ++i) b.threads[i].state = State::kReady;
            released = true;
        }
        if (!ran && !released) die("deadlock: threads wait at different barriers/instructions");
    }
}

}  // namespace emu
