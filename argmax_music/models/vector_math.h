// Vector arithmetic of the native WaveNet sampler (wavenet_sampler.cc): 8-float registers, exp, the gate,
// and the matrix-vector product over native.py's packed weights.
#pragma once

#include <cstdint>
#include <cstring>

namespace argmax_music {

typedef float f8 __attribute__((vector_size(32)));  // 8 floats: one AVX register, or two NEON ones.
typedef int32_t i8 __attribute__((vector_size(32)));

inline f8 Load(const float* p) {
  f8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void Store(float* p, f8 v) { std::memcpy(p, &v, sizeof v); }

inline f8 Splat(float x) { return f8{x, x, x, x, x, x, x, x}; }

// exp(x) to about 1 ulp: 2^n * p(r) with x = n ln 2 + r, |r| <= ln 2 / 2 (a degree-6 polynomial).
inline f8 Exp(f8 x) {
  const f8 hi = Splat(88.3762626647949f), lo = Splat(-88.3762626647949f);
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  const f8 round = Splat(12582912.0f);  // 1.5 * 2^23: adding and subtracting it rounds to an integer.
  f8 n = (x * Splat(1.44269504088896341f) + round) - round;
  f8 r = x - n * Splat(0.693359375f) - n * Splat(-2.12194440e-4f);
  f8 p = Splat(1.9875691500e-4f);
  p = p * r + Splat(1.3981999507e-3f);
  p = p * r + Splat(8.3334519073e-3f);
  p = p * r + Splat(4.1665795894e-2f);
  p = p * r + Splat(1.6666665459e-1f);
  p = p * r + Splat(5.0000001201e-1f);
  p = p * r * r + r + Splat(1.0f);
  i8 bits = (__builtin_convertvector(n, i8) + 127) << 23;
  f8 scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// out[j] = tanh(z[j]) * sigmoid(z[gate + j]), gate a multiple of 8.
inline void Gate(const float* z, int gate, float* out) {
  for (int j = 0; j < gate; j += 8) {
    f8 tanh_a = Splat(1.0f) - Splat(2.0f) / (Exp(Splat(2.0f) * Load(z + j)) + Splat(1.0f));
    f8 sigmoid_b = Splat(1.0f) / (Exp(-Load(z + gate + j)) + Splat(1.0f));
    Store(out + j, tanh_a * sigmoid_b);
  }
}

// y[0, Cols) = init + x @ w for one packed block of `Cols` columns (n_in rows of Cols floats), in registers.
template <int Cols>
inline void ProductBlock(const float* x, int n_in, const float* w, const float* init, float* y) {
  f8 acc[Cols / 8];
  for (int c = 0; c < Cols / 8; ++c) acc[c] = init ? Load(init + 8 * c) : Splat(0.0f);
  for (int i = 0; i < n_in; ++i) {
    const f8 xi = Splat(x[i]);
    for (int c = 0; c < Cols / 8; ++c) acc[c] += xi * Load(w + i * Cols + 8 * c);
  }
  for (int c = 0; c < Cols / 8; ++c) Store(y + 8 * c, acc[c]);
}

// y (n_out) = init (or 0 where null) + x (n_in) @ w, w packed by native.py's `block_major`: blocks of 64
// columns, then of 8, each block's n_in rows one after another, so that the product reads w front to back.
inline void Product(const float* x, int n_in, const float* w, int n_out, const float* init, float* y) {
  int j = 0;
  for (; j + 64 <= n_out; j += 64) ProductBlock<64>(x, n_in, w + j * n_in, init ? init + j : init, y + j);
  for (; j < n_out; j += 8) ProductBlock<8>(x, n_in, w + j * n_in, init ? init + j : init, y + j);
}

}  // namespace argmax_music
