// SparseDctEncode: the fast encoder (docs/design.md §1.10) as one fused CPU kernel.
//
// It computes what `tf_fast.encode_canvas` computes, image by image and block by block, so
// that each 8x8 block stays in cache from RGB to quantized value (as libjpeg's encoder does)
// instead of writing whole planes between TensorFlow ops:
//   uint8 RGB -> float32 colour (Y per pixel, Cb/Cr as 2x2 means) -> float32 separable DCT
//   -> quantize, halves away from zero; a value within the guard band of a rounding boundary
//   is recomputed in float64 from its pixels, as the reference does -> int16 planes, one per
//   channel -> a scan of the planes in channel (sequence) order emits the non-zeros.
// The float32 arithmetic has the structure the guard band of `fast_plan._guard_band` bounds
// (3 products and 2 sums per colour value, exact integer 2x2 sums, S products per DCT pass,
// one multiply by 1/Q), in any summation order and with or without fused multiply-adds, so
// the sequences equal the float64 reference's (`np_ops`) exactly.
//
// The tables come from `fast_plan.FastPlan` as inputs, so this file holds no codec logic:
// channel ids, zig-zag order, quantization steps and value encodings all stay in Python.
//
// Letters: B images, H x W canvas, S block size, Gh x Gw luma block grid, P = Gh·Gw,
// C = 3·S² channels, L = max_length.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace dctformer {
namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::errors::InvalidArgument;

// The reference's rounding: halves away from zero, from 0.5 - ROUND_EPS (np_ops.ROUND_EPS).
constexpr double kRoundEps = 1e-6;

// Tables of one call, indexed by raw coefficient index r = k·S² + u·S + v (k the component).
struct Tables {
  int s = 0;               // block size S
  std::vector<float> dct;  // [S, S] A
  std::vector<float> dct_t;  // [S, S] A transposed
  float colour[3][3];
  std::vector<double> dct64;  // [S, S]
  double colour64[3][3];
  std::vector<float> inv_step;  // [C] by raw index
  std::vector<float> guard;     // [C] by raw index
  std::vector<double> step;     // [C] by raw index
  std::vector<int32_t> raw;     // [C] raw index of each channel id
  std::vector<int32_t> token_scale;  // [C] by channel id
  std::vector<int64_t> offset;       // [C] plane offset by raw index
  // The same by component k and in-block order v·S + u (transposed), for the AVX2 path.
  std::vector<float> inv_step_t, guard_t;  // [C]
  std::vector<int64_t> offset_t;           // [C]
  int clip = 0;
  int eos = 0;
};

// Geometry of one canvas.
struct Grid {
  int h, w, gh, gw, p;  // canvas, luma block grid, P
  // Planes are this many entries apart beyond their size. A block writes one entry into
  // each of S² planes; with plane sizes a power of two those writes would all fall in the
  // same few cache sets and evict each other, so each plane starts one line further on.
  static constexpr int64_t kPad = 32;
  int64_t luma_stride() const { return p + kPad; }
  int64_t chroma_stride() const { return p / 4 + kPad; }
  // Offset of the plane of raw index r in the int16 planes buffer: S² luma planes of P
  // entries, then S² Cb planes and S² Cr planes of P/4 entries (each padded).
  int64_t plane_offset(int r, int s2) const {
    const int k = r / s2, uv = r % s2;
    if (k == 0) return static_cast<int64_t>(uv) * luma_stride();
    return static_cast<int64_t>(s2) * luma_stride() +
           static_cast<int64_t>((k - 1) * s2 + uv) * chroma_stride();
  }
  // Entries of the planes buffer.
  int64_t planes_size(int s2) const { return plane_offset(3 * s2, s2); }
};

// Round half away from zero in float64, as np_ops.round_half_away.
inline int32_t RoundHalfAway(double x) {
  const double m = std::floor(std::fabs(x) + (0.5 + kRoundEps));
  return static_cast<int32_t>(x < 0 ? -m : m);
}

// The coefficient (u, v) of component k at block (row, col) of its plane, recomputed in
// float64 from the pixels as the reference does, then quantized. Chroma blocks average
// 2x2 pixels first. `image` is one canvas, uint8 [H, W, 3].
int32_t ExactValue(const uint8_t* image, const Grid& g, const Tables& t, int k, int u, int v,
                   int row, int col) {
  const int s = t.s;
  const double* c = t.colour64[k];
  double sum = 0.0;
  for (int y = 0; y < s; ++y) {
    double line = 0.0;
    for (int x = 0; x < s; ++x) {
      double sample;
      if (k == 0) {
        const uint8_t* px = image + (static_cast<int64_t>(row * s + y) * g.w + col * s + x) * 3;
        sample = (px[0] - 128.0) * c[0] + (px[1] - 128.0) * c[1] + (px[2] - 128.0) * c[2];
      } else {
        sample = 0.0;
        for (int dy = 0; dy < 2; ++dy) {
          for (int dx = 0; dx < 2; ++dx) {
            const uint8_t* px = image + (static_cast<int64_t>(2 * (row * s + y) + dy) * g.w +
                                         2 * (col * s + x) + dx) * 3;
            sample +=
                (px[0] - 128.0) * c[0] + (px[1] - 128.0) * c[1] + (px[2] - 128.0) * c[2];
          }
        }
        sample *= 0.25;
      }
      line += t.dct64[v * s + x] * sample;
    }
    sum += t.dct64[u * s + y] * line;
  }
  return RoundHalfAway(sum / t.step[k * s * s + u * s + v]);
}

// Scatters one block's quantized values into the int16 planes at `position`. `value` and
// `offset` (the plane of each value) share their order, whichever that is.
inline void StoreBlock(const int32_t* value, const int64_t* offset, int n, int64_t position,
                       int16_t* planes) {
  for (int i = 0; i < n; ++i) planes[offset[i] + position] = static_cast<int16_t>(value[i]);
}

// Separable block DCT in float32: out[u·S + v] = sum_y sum_x A[u][y] A[v][x] in[y·stride + x].
template <int kS>
inline void BlockDct(const float* in, int stride, const Tables& t, float* out) {
  const int s = kS > 0 ? kS : t.s;
  float vertical[32 * 32];  // [u][x]
  for (int u = 0; u < s; ++u) {
    float* row = vertical + u * s;
    for (int x = 0; x < s; ++x) row[x] = 0.0f;
    for (int y = 0; y < s; ++y) {
      const float a = t.dct[u * s + y];
      const float* line = in + static_cast<int64_t>(y) * stride;
      for (int x = 0; x < s; ++x) row[x] += a * line[x];
    }
  }
  for (int u = 0; u < s; ++u) {
    float* row = out + u * s;
    for (int v = 0; v < s; ++v) row[v] = 0.0f;
    for (int x = 0; x < s; ++x) {
      const float b = vertical[u * s + x];
      const float* column = t.dct_t.data() + x * s;  // A[v][x] over v
      for (int v = 0; v < s; ++v) row[v] += b * column[v];
    }
  }
}

// DCT and quantization of one block of component k at block (row, col) of its plane, any S:
// values in rows u·S + v, guarded ones recomputed in float64.
template <int kS>
inline void QuantizeBlock(const float* in, int stride, int k, int row, int col,
                          const uint8_t* image, const Grid& g, const Tables& t,
                          int16_t* planes) {
  const int s = kS > 0 ? kS : t.s;
  const int s2 = s * s;
  float coefs[32 * 32];
  BlockDct<kS>(in, stride, t, coefs);
  const float* inv = t.inv_step.data() + k * s2;
  const float* guard = t.guard.data() + k * s2;
  int32_t value[32 * 32];
  int32_t unsafe[32 * 32];
  int any = 0;
  // Branch-free, so that it vectorizes; the rare guarded values are patched after.
  for (int i = 0; i < s2; ++i) {
    const float y = coefs[i] * inv[i];
    const float magnitude = std::fabs(y);
    const float whole = std::floor(magnitude);
    const float frac = magnitude - whole;  // exact in floating point
    const int32_t m = static_cast<int32_t>(whole) + (frac >= 0.5f ? 1 : 0);
    value[i] = y < 0.0f ? -m : m;
    unsafe[i] = std::fabs(frac - 0.5f) < guard[i] ? 1 : 0;
    any |= unsafe[i];
  }
  if (any) {
    for (int i = 0; i < s2; ++i) {
      if (unsafe[i]) value[i] = ExactValue(image, g, t, k, i / s, i % s, row, col);
    }
  }
  const int64_t position = static_cast<int64_t>(row) * (k == 0 ? g.gw : g.gw / 2) + col;
  StoreBlock(value, t.offset.data() + k * s2, s2, position, planes);
}

#if defined(__AVX2__) && defined(__FMA__)
// S = 8, 16 or 32 with AVX2: a row of the block is S/8 vectors of eight floats; each DCT pass
// is S broadcast-multiply-adds per output vector, with a transpose (in 8x8 tiles) between
// the passes. The result is transposed (row v holds coefficients (u, v) over u), so the
// tables `*_t` are kept in that order.

inline void Transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// out[j] = sum_i A[j][i] · in[i] for S rows of S/8 vectors (A is S x S, row-major).
template <int kS>
inline void Pass(const float* a, const __m256 (*in)[kS / 8], __m256 (*out)[kS / 8]) {
  constexpr int kV = kS / 8;
  for (int j = 0; j < kS; ++j) {
    __m256 acc[kV];
    const __m256 first = _mm256_broadcast_ss(a + kS * j);
    for (int c = 0; c < kV; ++c) acc[c] = _mm256_mul_ps(first, in[0][c]);
    for (int i = 1; i < kS; ++i) {
      const __m256 weight = _mm256_broadcast_ss(a + kS * j + i);
      for (int c = 0; c < kV; ++c) acc[c] = _mm256_fmadd_ps(weight, in[i][c], acc[c]);
    }
    for (int c = 0; c < kV; ++c) out[j][c] = acc[c];
  }
}

// in[r][c] (S rows of S/8 vectors) -> out[c'][r'] transposed, one 8x8 tile at a time.
template <int kS>
inline void Transpose(const __m256 (*in)[kS / 8], __m256 (*out)[kS / 8]) {
  constexpr int kV = kS / 8;
  for (int bi = 0; bi < kV; ++bi) {
    for (int bj = 0; bj < kV; ++bj) {
      __m256 tile[8];
      for (int r = 0; r < 8; ++r) tile[r] = in[8 * bi + r][bj];
      Transpose8(tile);
      for (int r = 0; r < 8; ++r) out[8 * bj + r][bi] = tile[r];
    }
  }
}

template <int kS>
inline void QuantizeBlockAvx(const float* in, int stride, int k, int row, int col,
                             const uint8_t* image, const Grid& g, const Tables& t,
                             int16_t* planes) {
  constexpr int kV = kS / 8, kS2 = kS * kS;
  __m256 rows[kS][kV], vertical[kS][kV], transposed[kS][kV], coefs[kS][kV];
  for (int y = 0; y < kS; ++y) {
    for (int c = 0; c < kV; ++c) {
      rows[y][c] = _mm256_loadu_ps(in + static_cast<int64_t>(y) * stride + 8 * c);
    }
  }
  Pass<kS>(t.dct.data(), rows, vertical);        // vertical[u][x]
  Transpose<kS>(vertical, transposed);           // [x][u]
  Pass<kS>(t.dct.data(), transposed, coefs);     // coefs[v][u] = C(u, v)
  const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  const float* inv = t.inv_step_t.data() + kS2 * k;
  const float* guard = t.guard_t.data() + kS2 * k;
  alignas(32) int32_t value[kS2];
  for (int v = 0; v < kS; ++v) {
    for (int c = 0; c < kV; ++c) {
      const int i = kS * v + 8 * c;  // coefficients (8c .. 8c + 7, v)
      const __m256 y = _mm256_mul_ps(coefs[v][c], _mm256_loadu_ps(inv + i));
      const __m256 magnitude = _mm256_andnot_ps(sign, y);
      const __m256 whole = _mm256_floor_ps(magnitude);
      const __m256 frac = _mm256_sub_ps(magnitude, whole);  // exact in floating point
      const __m256 up = _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), one);
      const __m256 rounded = _mm256_or_ps(_mm256_add_ps(whole, up), _mm256_and_ps(y, sign));
      _mm256_store_si256(reinterpret_cast<__m256i*>(value + i), _mm256_cvttps_epi32(rounded));
      const __m256 distance = _mm256_andnot_ps(sign, _mm256_sub_ps(frac, half));
      int unsafe = _mm256_movemask_ps(
          _mm256_cmp_ps(distance, _mm256_loadu_ps(guard + i), _CMP_LT_OQ));
      while (unsafe) {  // rare: recompute the guarded values in float64
        const int lane = __builtin_ctz(unsafe);
        value[i + lane] = ExactValue(image, g, t, k, 8 * c + lane, v, row, col);
        unsafe &= unsafe - 1;
      }
    }
  }
  const int64_t position = static_cast<int64_t>(row) * (k == 0 ? g.gw : g.gw / 2) + col;
  StoreBlock(value, t.offset_t.data() + kS2 * k, kS2, position, planes);
}
#endif  // AVX2 and FMA

// One component's blocks along a band of S rows of its plane (float [S, width]).
template <int kS>
inline void QuantizeBand(const float* band, int width, int k, int row, const uint8_t* image,
                         const Grid& g, const Tables& t, int16_t* planes) {
  const int s = kS > 0 ? kS : t.s;
  for (int col = 0; col < width / s; ++col) {
#if defined(__AVX2__) && defined(__FMA__)
    if constexpr (kS == 8 || kS == 16 || kS == 32) {
      QuantizeBlockAvx<kS>(band + col * kS, width, k, row, col, image, g, t, planes);
      continue;
    }
#endif
    QuantizeBlock<kS>(band + col * s, width, k, row, col, image, g, t, planes);
  }
}

// All quantized coefficients of one canvas into `planes` (int16, planes by raw index).
// Works one macroblock row (2S pixel rows) at a time so that its colour planes stay in
// cache. The colour transform follows `tf_fast.colour_planes` step for step.
template <int kS>
void QuantizedPlanes(const uint8_t* image, const Grid& g, const Tables& t, int16_t* planes) {
  const int s = kS > 0 ? kS : t.s;
  const int w = g.w, half = g.w / 2;
  std::vector<float> rgb(static_cast<size_t>(3) * 2 * s * w);  // [3, 2S, W] level-shifted
  std::vector<float> luma(static_cast<size_t>(2 * s) * w);     // [2S, W]
  std::vector<float> pairs(static_cast<size_t>(3) * w);        // [3, W] vertical pair sums
  std::vector<float> chroma(static_cast<size_t>(2) * s * half);  // [2, S, W/2]
  const float(*c)[3] = t.colour;
  const int64_t plane_size = static_cast<int64_t>(2) * s * w;
  float* red = rgb.data();
  float* green = red + plane_size;
  float* blue = green + plane_size;
  for (int mb_row = 0; mb_row < g.gh / 2; ++mb_row) {
    const uint8_t* strip = image + static_cast<int64_t>(mb_row) * 2 * s * w * 3;
    // Planar, level-shifted samples (exact in float32), so that every loop below is a
    // plain contiguous one that the compiler vectorizes.
    for (int64_t i = 0; i < plane_size; ++i) {
      red[i] = static_cast<float>(strip[3 * i]) - 128.0f;
      green[i] = static_cast<float>(strip[3 * i + 1]) - 128.0f;
      blue[i] = static_cast<float>(strip[3 * i + 2]) - 128.0f;
    }
    for (int64_t i = 0; i < plane_size; ++i) {
      luma[i] = red[i] * c[0][0] + green[i] * c[0][1] + blue[i] * c[0][2];
    }
    for (int y = 0; y < s; ++y) {
      const int64_t top = static_cast<int64_t>(2 * y) * w, bottom = top + w;
      for (int ch = 0; ch < 3; ++ch) {
        const float* plane = rgb.data() + ch * plane_size;
        float* sum = pairs.data() + static_cast<int64_t>(ch) * w;
        for (int x = 0; x < w; ++x) sum[x] = plane[top + x] + plane[bottom + x];
      }
      float* cb = chroma.data() + static_cast<int64_t>(y) * half;
      float* cr = cb + static_cast<int64_t>(s) * half;
      const float* pr = pairs.data();
      const float* pg = pr + w;
      const float* pb = pg + w;
      for (int x = 0; x < half; ++x) {
        // Sums of four integers: exact in float32, as the twins' 2x2 sums.
        const float qr = pr[2 * x] + pr[2 * x + 1], qg = pg[2 * x] + pg[2 * x + 1],
                    qb = pb[2 * x] + pb[2 * x + 1];
        cb[x] = (qr * c[1][0] + qg * c[1][1] + qb * c[1][2]) * 0.25f;
        cr[x] = (qr * c[2][0] + qg * c[2][1] + qb * c[2][2]) * 0.25f;
      }
    }
    for (int half_row = 0; half_row < 2; ++half_row) {
      QuantizeBand<kS>(luma.data() + static_cast<int64_t>(half_row) * s * w, w, 0,
                       2 * mb_row + half_row, image, g, t, planes);
    }
    for (int k = 1; k <= 2; ++k) {
      QuantizeBand<kS>(chroma.data() + static_cast<int64_t>(k - 1) * s * half, half, k, mb_row,
                       image, g, t, planes);
    }
  }
}

// Appends the non-zeros of `n` plane entries, at positions base + step·j, as triples of
// channel `ch`. Returns the new count (which may pass max_length: only the count grows).
inline int64_t EmitRun(const int16_t* entries, int n, int64_t base, int step, int ch,
                       const Tables& t, int scale, int64_t max_length, int64_t count,
                       int32_t* triples) {
  auto emit = [&](int j) {
    if (count < max_length) {
      int32_t* out = triples + count * 3;
      out[0] = ch;
      out[1] = static_cast<int32_t>(base + static_cast<int64_t>(step) * j);
      out[2] = std::min(std::max(entries[j] * scale, -t.clip), t.clip) + t.clip;
    }
    ++count;
  };
  int j = 0;
#if defined(__AVX2__)
  const __m256i zero = _mm256_setzero_si256();
  for (; j + 16 <= n; j += 16) {
    const __m256i block = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(entries + j));
    // Two mask bits per int16 entry; most coefficients are zero.
    uint32_t mask = ~static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi16(block, zero)));
    while (mask) {
      const int bit = __builtin_ctz(mask);
      emit(j + bit / 2);
      mask &= ~(3u << bit);
    }
  }
#endif
  for (; j < n; ++j) {
    if (entries[j] != 0) emit(j);
  }
  return count;
}

// Scans the planes in channel order and writes the triples of one canvas, then EOS, then
// zeros to max_length (int32 [L, 3]). Returns the number of non-zeros (the length
// without EOS).
int64_t EmitTriples(const int16_t* planes, const Grid& g, const Tables& t, int64_t max_length,
                    int32_t* triples) {
  const int s2 = t.s * t.s;
  const int half = g.gw / 2;
  int64_t count = 0;
  for (int ch = 0; ch < 3 * s2; ++ch) {
    const int r = t.raw[ch];
    const int16_t* plane = planes + t.offset[r];
    const int scale = t.token_scale[ch];
    if (r < s2) {  // luma: the plane is in position order
      count = EmitRun(plane, g.p, 0, 1, ch, t, scale, max_length, count, triples);
    } else {  // chroma: row i of the plane lies at luma positions 2i·Gw + 2j
      for (int i = 0; i < g.gh / 2; ++i) {
        count = EmitRun(plane + static_cast<int64_t>(i) * half, half,
                        static_cast<int64_t>(2 * i) * g.gw, 2, ch, t, scale, max_length, count,
                        triples);
      }
    }
  }
  int64_t written = std::min(count, max_length);
  if (count < max_length) {
    int32_t* eos = triples + count * 3;  // EOS: (eos, 0, 0)
    eos[0] = t.eos;
    eos[1] = eos[2] = 0;
    ++written;
  }
  std::memset(triples + written * 3, 0, sizeof(int32_t) * 3 * (max_length - written));
  return count;
}

template <int kS>
int64_t EncodeImage(const uint8_t* image, const Grid& g, const Tables& t, int64_t max_length,
                    int16_t* planes, int32_t* triples) {
  QuantizedPlanes<kS>(image, g, t, planes);
  return EmitTriples(planes, g, t, max_length, triples);
}

class SparseDctEncodeOp : public OpKernel {
 public:
  explicit SparseDctEncodeOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("max_length", &max_length_));
    OP_REQUIRES_OK(context, context->GetAttr("clip", &clip_));
    OP_REQUIRES_OK(context, context->GetAttr("eos", &eos_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& pixels = context->input(0);
    OP_REQUIRES(context, pixels.dims() == 4 && pixels.dim_size(3) == 3,
                InvalidArgument("pixels must be uint8 [B, H, W, 3], got shape ",
                                pixels.shape().DebugString()));
    const Tensor& dct = context->input(1);
    OP_REQUIRES(context, dct.dims() == 2 && dct.dim_size(0) == dct.dim_size(1),
                InvalidArgument("dct must be [S, S], got ", dct.shape().DebugString()));
    Tables t;
    t.s = static_cast<int>(dct.dim_size(0));
    const int s = t.s, s2 = s * s, channels = 3 * s2;
    OP_REQUIRES(context, s >= 1 && s <= 32,
                InvalidArgument("block size must be in [1, 32], got ", s));
    const int64_t batch = pixels.dim_size(0);
    Grid g;
    g.h = static_cast<int>(pixels.dim_size(1));
    g.w = static_cast<int>(pixels.dim_size(2));
    OP_REQUIRES(context, g.h % (2 * s) == 0 && g.w % (2 * s) == 0 && g.h > 0 && g.w > 0,
                InvalidArgument("canvas ", g.h, "x", g.w,
                                " is not a positive multiple of 2·block_size = ", 2 * s));
    g.gh = g.h / s;
    g.gw = g.w / s;
    g.p = g.gh * g.gw;
    const std::vector<std::pair<int, int64_t>> sizes = {
        {2, 9}, {3, s * s}, {4, 9}, {5, channels}, {6, channels}, {7, channels},
        {8, channels}, {9, channels}};
    for (const auto& [index, size] : sizes) {
      OP_REQUIRES(context, context->input(index).NumElements() == size,
                  InvalidArgument("input ", index, " has ", context->input(index).NumElements(),
                                  " elements, expected ", size));
    }
    const auto dct_flat = dct.flat<float>();
    t.dct.assign(dct_flat.data(), dct_flat.data() + s2);
    t.dct_t.resize(s2);
    for (int u = 0; u < s; ++u)
      for (int x = 0; x < s; ++x) t.dct_t[x * s + u] = t.dct[u * s + x];
    const auto colour = context->input(2).flat<float>();
    const auto colour64 = context->input(4).flat<double>();
    for (int i = 0; i < 9; ++i) {
      t.colour[i / 3][i % 3] = colour(i);
      t.colour64[i / 3][i % 3] = colour64(i);
    }
    const auto dct64 = context->input(3).flat<double>();
    t.dct64.assign(dct64.data(), dct64.data() + s2);
    const auto raw = context->input(5).flat<int32_t>();
    const auto inv_step = context->input(6).flat<float>();
    const auto guard = context->input(7).flat<float>();
    const auto step = context->input(8).flat<double>();
    const auto scale = context->input(9).flat<int32_t>();
    t.raw.assign(raw.data(), raw.data() + channels);
    t.token_scale.assign(scale.data(), scale.data() + channels);
    t.inv_step.resize(channels);
    t.guard.resize(channels);
    t.step.resize(channels);
    std::vector<bool> seen(channels, false);
    for (int ch = 0; ch < channels; ++ch) {
      const int r = t.raw[ch];
      OP_REQUIRES(context, r >= 0 && r < channels && !seen[r],
                  InvalidArgument("raw must be a permutation of [0, ", channels, ")"));
      seen[r] = true;
      t.inv_step[r] = inv_step(ch);
      t.guard[r] = guard(ch);
      t.step[r] = step(ch);
    }
    t.offset.resize(channels);
    for (int r = 0; r < channels; ++r) t.offset[r] = g.plane_offset(r, s2);
    t.inv_step_t.resize(channels);
    t.guard_t.resize(channels);
    t.offset_t.resize(channels);
    for (int k = 0; k < 3; ++k) {
      for (int u = 0; u < s; ++u) {
        for (int v = 0; v < s; ++v) {
          const int r = s2 * k + s * u + v, transposed = s2 * k + s * v + u;
          t.inv_step_t[transposed] = t.inv_step[r];
          t.guard_t[transposed] = t.guard[r];
          t.offset_t[transposed] = t.offset[r];
        }
      }
    }
    t.clip = static_cast<int>(clip_);
    t.eos = static_cast<int>(eos_);

    Tensor* triples = nullptr;
    Tensor* lengths = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, TensorShape({batch, max_length_, 3}), &triples));
    OP_REQUIRES_OK(context, context->allocate_output(1, TensorShape({batch}), &lengths));
    int32_t* out = triples->flat<int32_t>().data();
    int32_t* length = lengths->flat<int32_t>().data();
    const uint8_t* in = pixels.flat<uint8_t>().data();
    const int64_t image_size = static_cast<int64_t>(g.h) * g.w * 3;
    const int64_t flat_size = g.planes_size(s2);
    const int64_t max_length = max_length_;

    auto work = [&](int64_t begin, int64_t end) {
      std::vector<int16_t> planes(flat_size);
      for (int64_t b = begin; b < end; ++b) {
        int32_t* sequence = out + b * max_length * 3;
        const uint8_t* image = in + b * image_size;
        int64_t count;
        if (s == 8) {
          count = EncodeImage<8>(image, g, t, max_length, planes.data(), sequence);
        } else if (s == 16) {
          count = EncodeImage<16>(image, g, t, max_length, planes.data(), sequence);
        } else if (s == 32) {
          count = EncodeImage<32>(image, g, t, max_length, planes.data(), sequence);
        } else {
          count = EncodeImage<0>(image, g, t, max_length, planes.data(), sequence);
        }
        length[b] = static_cast<int32_t>(count + 1);
      }
    };
    // About 5 ns per pixel, so that small canvases are not split across threads.
    const int64_t cost = static_cast<int64_t>(g.h) * g.w * 5;
    const auto& workers = *context->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(workers.num_threads, workers.workers, batch, cost, work);
  }

 private:
  int64_t max_length_;
  int64_t clip_;
  int64_t eos_;
};

REGISTER_OP("SparseDctEncode")
    .Input("pixels: uint8")       // [B, H, W, 3] canvases
    .Input("dct: float")          // [S, S] DCT-II matrix A
    .Input("colour: float")       // [3, 3] RGB -> level-shifted YCbCr
    .Input("dct64: double")       // [S, S]
    .Input("colour64: double")    // [3, 3]
    .Input("raw: int32")          // [C] raw index k·S² + u·S + v of each channel id
    .Input("inv_step: float")     // [C] 1/Q of each channel id
    .Input("guard: float")        // [C] guard band of each channel id, in quantized units
    .Input("step: double")        // [C] Q of each channel id
    .Input("token_scale: int32")  // [C] value multiplier (Q for "dequantized", else 1)
    .Attr("max_length: int >= 1")
    .Attr("clip: int >= 1")
    .Attr("eos: int")
    .Output("triples: int32")     // [B, L, 3] (channel, position, value token), EOS, zeros
    .Output("lengths: int32")     // [B] non-zeros + 1 (EOS); > L means cut at L
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle pixels;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &pixels));
      int64_t max_length;
      TF_RETURN_IF_ERROR(c->GetAttr("max_length", &max_length));
      auto batch = c->Dim(pixels, 0);
      c->set_output(0, c->MakeShape({batch, max_length, 3}));
      c->set_output(1, c->MakeShape({batch}));
      return absl::OkStatus();
    })
    .Doc("Canvases to padded sparse DCT sequences; see dctformer_tf/dct/sparse_dct_op.cc.");

REGISTER_KERNEL_BUILDER(Name("SparseDctEncode").Device(DEVICE_CPU), SparseDctEncodeOp);

}  // namespace
}  // namespace dctformer
