// The machine's FP32 ceiling for `npm run bench:cpu`: independent AVX-512 FMA chains (16 lanes × 2 FLOPs each),
// compiled by the benchmark with the host compiler when one exists. Prints GFLOP/s of one thread.
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
int main(void) {
  __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(0.000001f);
  for (int k = 0; k < 12; k++) a[k] = _mm512_set1_ps(1.0f + k);
  const long n = 200000000;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++)
    for (int k = 0; k < 12; k++) a[k] = _mm512_fmadd_ps(a[k], m, c);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  float s = 0;
  for (int k = 0; k < 12; k++) s += _mm512_reduce_add_ps(a[k]);
  double sec = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  printf("%.1f %g\n", n * 12.0 * 16 * 2 / sec / 1e9, s);
  return 0;
}
