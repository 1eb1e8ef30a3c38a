// The two things Swift cannot do itself: execute the cpuid/xgetbv instructions (no inline assembly in Swift),
// and run a loop compiled for an instruction set chosen at run time (Swift has no per-function target
// attribute). Everything else about the CPU is decided in Swift (AVMAE/Kernels/CPUFeatures.swift).
#ifndef AVMAE_CPU_H
#define AVMAE_CPU_H

#include <stdint.h>

/// cpuid(leaf, subleaf) into out[0..3] = eax, ebx, ecx, edx. Returns 0 when the leaf is above the CPU's
/// highest (basic or extended) leaf, and leaves out zeroed; 1 otherwise.
int avmae_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

/// XCR0: which register states the OS saves on a context switch. AVX needs bits 1-2, AVX-512 bits 5-7, AMX
/// bits 17-18; a CPU can report AVX-512 in cpuid while the kernel has it switched off. 0 without OSXSAVE.
uint64_t avmae_xgetbv0(void);

/// Independent fused multiply-adds on `vector_bits`-wide float vectors (512: AVX-512F, 256: AVX2+FMA,
/// 128: SSE2 multiply + add) for `iterations` rounds, as fast as the core issues them. Returns the floating
/// point operations done (2 per lane per multiply-add). The caller must only ask for a width the CPU runs.
double avmae_fma_loop(int vector_bits, long iterations);

#endif
