#include "avmae_cpu.h"

#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

int avmae_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    memset(out, 0, 4 * sizeof(uint32_t));
    unsigned int a, b, c, d;
    // __get_cpuid_count checks `leaf` against the highest leaf of its range (basic or 0x8000_0000 extended).
    if (!__get_cpuid_count(leaf, subleaf, &a, &b, &c, &d)) return 0;
    out[0] = a; out[1] = b; out[2] = c; out[3] = d;
    return 1;
}

uint64_t avmae_xgetbv0(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

// Twelve accumulators: enough independent chains to cover FMA latency (4 cycles) times two FMA ports on
// current x86 cores, and few enough to stay in the 16 ymm registers of an AVX2 core. a = a * m + k with
// m just under 1 converges to k / (1 - m), so the values stay normal (denormals would slow the loop down).
#define ACCUMULATORS 12

__attribute__((target("avx512f")))
static double fma_loop_512(long iterations) {
    __m512 acc[ACCUMULATORS];
    const __m512 m = _mm512_set1_ps(0.999999f), k = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < ACCUMULATORS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < iterations; n++)
        for (int i = 0; i < ACCUMULATORS; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, k);
    float sink = 0;
    for (int i = 0; i < ACCUMULATORS; i++) sink += _mm512_reduce_add_ps(acc[i]);
    __asm__ volatile("" : : "x"(sink));  // keep the result alive, so the loop is not optimised away
    return 2.0 * 16 * ACCUMULATORS * (double)iterations;
}

__attribute__((target("avx2,fma")))
static double fma_loop_256(long iterations) {
    __m256 acc[ACCUMULATORS];
    const __m256 m = _mm256_set1_ps(0.999999f), k = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < ACCUMULATORS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < iterations; n++)
        for (int i = 0; i < ACCUMULATORS; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, k);
    __m256 sum = acc[0];
    for (int i = 1; i < ACCUMULATORS; i++) sum = _mm256_add_ps(sum, acc[i]);
    __asm__ volatile("" : : "x"(sum));
    return 2.0 * 8 * ACCUMULATORS * (double)iterations;
}

static double fma_loop_128(long iterations) {
    __m128 acc[ACCUMULATORS];
    const __m128 m = _mm_set1_ps(0.999999f), k = _mm_set1_ps(1e-6f);
    for (int i = 0; i < ACCUMULATORS; i++) acc[i] = _mm_set1_ps((float)i);
    for (long n = 0; n < iterations; n++)
        for (int i = 0; i < ACCUMULATORS; i++) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], m), k);
    __m128 sum = acc[0];
    for (int i = 1; i < ACCUMULATORS; i++) sum = _mm_add_ps(sum, acc[i]);
    __asm__ volatile("" : : "x"(sum));
    return 2.0 * 4 * ACCUMULATORS * (double)iterations;
}

double avmae_fma_loop(int vector_bits, long iterations) {
    switch (vector_bits) {
    case 512: return fma_loop_512(iterations);
    case 256: return fma_loop_256(iterations);
    default: return fma_loop_128(iterations);
    }
}
