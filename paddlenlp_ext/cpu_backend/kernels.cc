// Multithreaded, vectorised fp32 CPU kernels for everything in VisualBERT's encoder that is not a matmul, forward
// and backward: a linear layer's bias with GELU, with the attention scale and head layout, or with dropout, the
// residual connection and LayerNorm; the masked softmax; LayerNorm and dropout alone; the head layout alone.
// Paddle's own CPU kernels for these run on one thread, one operation per pass over memory, and cost about a quarter
// of a BERT-base training step; the matmuls are at parity with PyTorch already. kernels.py builds this file on
// first use and gives each kernel its gradient. For inference, where MKL is at hand (Paddle's x86 builds), one more
// kernel computes a whole self-attention, products included, and takes batches without their padding.
//
// Every kernel takes contiguous fp32 tensors on the CPU (Paddle's custom-operator call makes strided views dense)
// and a `threads` attribute (OpenMP threads; the caller passes the count Paddle's math uses). Loops are written so
// that GCC vectorises them: no calls into libm, no branches.

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "paddle/extension.h"

namespace {

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 split so that n * kLn2Hi is exact for |n| < 2^11
constexpr float kLn2Lo = 1.42860682030941723212e-6f;
constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: v + kRound - kRound rounds v to an integer for |v| < 2^22

inline float bits_to_float(int32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// e^a for a in float range, within 2 ulp; 0 below -87.33 (where e^a is subnormal), as float's own exp rounds it.
#pragma omp declare simd notinbranch
inline float fast_exp(float a) {
  const float low = a < -87.33f ? -87.33f : a;
  const float clamped = low > 88.72f ? 88.72f : low;
  const float n = (clamped * kLog2e + kRound) - kRound;  // round to nearest
  const float r = (clamped - n * kLn2Hi) - n * kLn2Lo;  // |r| <= ln2 / 2
  // Taylor series of e^r to r^7: the remainder is below 2e-9 on |r| <= 0.347
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float scaled = p * bits_to_float((static_cast<int32_t>(n) + 127) << 23);
  return a < -87.33f ? 0.0f : scaled;
}

// Phi(x) = P(N(0,1) <= x) = erfc(-x / sqrt 2) / 2, with erfc(z) for z >= 0 from the Chebyshev fit of Numerical
// Recipes (2nd ed., section 6.2, relative error below 1.2e-7) and erfc(-z) = 2 - erfc(z).
#pragma omp declare simd notinbranch
inline float normal_cdf(float x) {
  const float z = std::fabs(x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float half_erfc = 0.5f * t * fast_exp(p - z * z);
  return x >= 0.0f ? 1.0f - half_erfc : half_erfc;
}

constexpr float kInvSqrt2Pi = 0.39894228040143268f;

void check_fp32(const paddle::Tensor& x, const char* name) {
  PD_CHECK(x.is_cpu(), name, " must be on the CPU");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, name, " must be float32");
}

int threads_for(int64_t threads) { return threads < 1 ? 1 : static_cast<int>(threads); }

// Dropout's generator: element i is kept when the low 32 bits of splitmix64(key, i) are at or above `limit`
// (= round(p * 2^32)); kept elements are scaled by 2^32 / (2^32 - limit). A kept element depends on the key and the
// element's index only, so the masks do not depend on the thread count. limit 0 keeps everything (no dropout).
#pragma omp declare simd uniform(key, limit) notinbranch
inline bool keep_element(uint64_t key, int64_t i, uint32_t limit) {
  uint64_t z = key + (static_cast<uint64_t>(i) + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<uint32_t>(z) >= limit;
}

float dropout_scale(int64_t threshold) {
  return static_cast<float>(4294967296.0 / (4294967296.0 - static_cast<double>(threshold)));
}

void check_threshold(int64_t threshold) {
  PD_CHECK(threshold >= 0 && threshold < (int64_t{1} << 32), "dropout threshold must be in [0, 2^32)");
}

// Per-thread column sums over the rows of a matrix (bias and LayerNorm parameter gradients), added up in thread
// order at the end: the same sums for the same thread count.
class ColumnSums {
 public:
  ColumnSums(int workers, int64_t columns, int vectors)
      : workers_(workers), columns_(columns), vectors_(vectors),
        partial_(static_cast<size_t>(workers) * vectors * columns, 0.0f) {}
  // The `vector`-th accumulator of the calling thread.
  float* mine(int vector) {
    return partial_.data() + (static_cast<size_t>(omp_get_thread_num()) * vectors_ + vector) * columns_;
  }
  paddle::Tensor total(int vector) const {
    auto out = paddle::empty({columns_}, paddle::DataType::FLOAT32, paddle::CPUPlace());
    float* o = out.data<float>();
    for (int64_t k = 0; k < columns_; ++k) o[k] = 0.0f;
    for (int t = 0; t < workers_; ++t) {
      const float* p = partial_.data() + (static_cast<size_t>(t) * vectors_ + vector) * columns_;
      for (int64_t k = 0; k < columns_; ++k) o[k] += p[k];
    }
    return out;
  }

 private:
  int workers_;
  int64_t columns_;
  int vectors_;
  std::vector<float> partial_;
};

// One row of layer normalisation: y = (x - mean) * rstd * w + b. Returns mean and rstd.
inline void layer_norm_row(const float* x, const float* w, const float* b, float epsilon, int64_t size, float* y,
                           float* mean_out, float* rstd_out) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t k = 0; k < size; ++k) sum += x[k];
  const float m = sum / size;
  float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
  for (int64_t k = 0; k < size; ++k) squares += (x[k] - m) * (x[k] - m);
  const float r = 1.0f / std::sqrt(squares / size + epsilon);
#pragma omp simd
  for (int64_t k = 0; k < size; ++k) y[k] = (x[k] - m) * r * w[k] + b[k];
  *mean_out = m;
  *rstd_out = r;
}

// Its backward: with x̂ = (x - mean) * rstd and g = dy * w, dx = rstd * (g - mean(g) - x̂ * mean(g * x̂));
// adds dy * x̂ to dw and dy to db.
inline void layer_norm_row_backward(const float* x, const float* w, float m, float r, const float* dy, int64_t size,
                                    float* dx, float* dw, float* db) {
  float mean_g = 0.0f, mean_gx = 0.0f;
#pragma omp simd reduction(+ : mean_g, mean_gx)
  for (int64_t k = 0; k < size; ++k) {
    const float xhat = (x[k] - m) * r;
    const float g = dy[k] * w[k];
    mean_g += g;
    mean_gx += g * xhat;
    dw[k] += dy[k] * xhat;
    db[k] += dy[k];
  }
  mean_g /= size;
  mean_gx /= size;
#pragma omp simd
  for (int64_t k = 0; k < size; ++k) dx[k] = r * (dy[k] * w[k] - mean_g - (x[k] - m) * r * mean_gx);
}

// Where an additive attention mask [B or 1, 1, Q or 1, K] holds the row of batch item b and query q.
class MaskStrides {
 public:
  MaskStrides(const paddle::Tensor& mask, int64_t batch, int64_t queries, int64_t keys) {
    const auto m = mask.shape();
    PD_CHECK(m.size() == 4 && (m[0] == batch || m[0] == 1) && m[1] == 1 && (m[2] == queries || m[2] == 1) &&
                 m[3] == keys,
             "the attention mask must be [B or 1, 1, Q or 1, K]");
    batch_ = m[0] == 1 ? 0 : m[2] * keys;
    row_ = m[2] == 1 ? 0 : keys;
  }
  int64_t offset(int64_t b, int64_t q) const { return b * batch_ + q * row_; }

 private:
  int64_t batch_, row_;
};

// One row of softmax(x + mask), or of softmax(x) where mask is null: y may be x.
inline void softmax_row(const float* x, const float* mask, int64_t keys, float* y) {
  if (mask != nullptr) {
#pragma omp simd
    for (int64_t k = 0; k < keys; ++k) y[k] = x[k] + mask[k];
    x = y;
  }
  float max = -INFINITY;
#pragma omp simd reduction(max : max)
  for (int64_t k = 0; k < keys; ++k) max = x[k] > max ? x[k] : max;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t k = 0; k < keys; ++k) {
    y[k] = fast_exp(x[k] - max);
    sum += y[k];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t k = 0; k < keys; ++k) y[k] *= inv;
}

}  // namespace

// GELU (exact, erf form) of x + bias: v * Phi(v), v = x + bias; x [..., I], bias [I].
std::vector<paddle::Tensor> BiasGeluForward(const paddle::Tensor& x, const paddle::Tensor& bias, int64_t threads) {
  check_fp32(x, "gelu input");
  check_fp32(bias, "gelu bias");
  const int64_t size = x.shape().back();
  const int64_t rows = x.numel() / size;
  PD_CHECK(bias.numel() == size, "gelu bias must match the last axis");
  auto out = paddle::empty_like(x);
  const float* in = x.data<float>();
  const float* b = bias.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for num_threads(threads_for(threads)) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const float* xr = in + row * size;
    float* yr = o + row * size;
#pragma omp simd
    for (int64_t k = 0; k < size; ++k) {
      const float v = xr[k] + b[k];
      yr[k] = v * normal_cdf(v);
    }
  }
  return {out};
}

// d/dv v Phi(v) = Phi(v) + v phi(v). Returns the gradient of x and of the bias (its column sums).
std::vector<paddle::Tensor> BiasGeluBackward(const paddle::Tensor& x, const paddle::Tensor& bias,
                                             const paddle::Tensor& grad, int64_t threads) {
  check_fp32(grad, "gelu gradient");
  const int64_t size = x.shape().back();
  const int64_t rows = x.numel() / size;
  auto dx = paddle::empty_like(x);
  const float* in = x.data<float>();
  const float* b = bias.data<float>();
  const float* g = grad.data<float>();
  float* o = dx.data<float>();
  const int workers = threads_for(threads);
  ColumnSums dbias(workers, size, 1);
#pragma omp parallel num_threads(workers)
  {
    float* db = dbias.mine(0);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const float* xr = in + row * size;
      const float* gr = g + row * size;
      float* orow = o + row * size;
#pragma omp simd
      for (int64_t k = 0; k < size; ++k) {
        const float v = xr[k] + b[k];
        const float d = gr[k] * (normal_cdf(v) + v * kInvSqrt2Pi * fast_exp(-0.5f * v * v));
        orow[k] = d;
        db[k] += d;
      }
    }
  }
  return {dx, dbias.total(0)};
}

// softmax(scores + mask) over the last axis. scores [B, H, Q, K]; mask additive, [B or 1, 1, Q or 1, K].
std::vector<paddle::Tensor> MaskedSoftmaxForward(const paddle::Tensor& scores, const paddle::Tensor& mask,
                                                 int64_t threads) {
  check_fp32(scores, "softmax scores");
  check_fp32(mask, "softmax mask");
  const auto s = scores.shape();
  PD_CHECK(s.size() == 4, "softmax expects 4-D scores");
  const int64_t batch = s[0], heads = s[1], queries = s[2], keys = s[3];
  const MaskStrides mask_strides(mask, batch, queries, keys);
  auto out = paddle::empty_like(scores);
  const float* in = scores.data<float>();
  const float* add = mask.data<float>();
  float* o = out.data<float>();
  const int64_t rows = batch * heads * queries;
#pragma omp parallel for num_threads(threads_for(threads)) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t b = row / (heads * queries), q = row % queries;
    softmax_row(in + row * keys, add + mask_strides.offset(b, q), keys, o + row * keys);
  }
  return {out};
}

// d scores = p * (g - sum(g * p)) per row.
std::vector<paddle::Tensor> SoftmaxBackward(const paddle::Tensor& probs, const paddle::Tensor& grad,
                                            int64_t threads) {
  check_fp32(probs, "softmax output");
  check_fp32(grad, "softmax gradient");
  auto dx = paddle::empty_like(probs);
  const int64_t keys = probs.shape().back();
  const int64_t rows = probs.numel() / keys;
  const float* p = probs.data<float>();
  const float* g = grad.data<float>();
  float* o = dx.data<float>();
#pragma omp parallel for num_threads(threads_for(threads)) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const float* pr = p + row * keys;
    const float* gr = g + row * keys;
    float* orow = o + row * keys;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t k = 0; k < keys; ++k) dot += pr[k] * gr[k];
#pragma omp simd
    for (int64_t k = 0; k < keys; ++k) orow[k] = pr[k] * (gr[k] - dot);
  }
  return {dx};
}

// Layer normalisation over the last axis: y = (x - mean) * rstd * weight + bias; also returns mean and rstd per row.
std::vector<paddle::Tensor> LayerNormForward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                             const paddle::Tensor& bias, float epsilon, int64_t threads) {
  check_fp32(x, "layer_norm input");
  check_fp32(weight, "layer_norm weight");
  check_fp32(bias, "layer_norm bias");
  const int64_t size = x.shape().back();
  const int64_t rows = x.numel() / size;
  PD_CHECK(weight.numel() == size && bias.numel() == size, "layer_norm weight and bias must match the last axis");
  auto out = paddle::empty_like(x);
  auto mean = paddle::empty({rows}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  auto rstd = paddle::empty({rows}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  const float* in = x.data<float>();
  const float* w = weight.data<float>();
  const float* b = bias.data<float>();
  float* o = out.data<float>();
  float* mu = mean.data<float>();
  float* rs = rstd.data<float>();
#pragma omp parallel for num_threads(threads_for(threads)) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    layer_norm_row(in + row * size, w, b, epsilon, size, o + row * size, mu + row, rs + row);
  }
  return {out, mean, rstd};
}

// Returns the gradients of x, weight and bias.
std::vector<paddle::Tensor> LayerNormBackward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                              const paddle::Tensor& mean, const paddle::Tensor& rstd,
                                              const paddle::Tensor& grad, int64_t threads) {
  check_fp32(grad, "layer_norm gradient");
  const int64_t size = x.shape().back();
  const int64_t rows = x.numel() / size;
  auto dx = paddle::empty_like(x);
  const float* in = x.data<float>();
  const float* w = weight.data<float>();
  const float* mu = mean.data<float>();
  const float* rs = rstd.data<float>();
  const float* dy = grad.data<float>();
  float* o = dx.data<float>();
  const int workers = threads_for(threads);
  ColumnSums sums(workers, size, 2);  // d weight, d bias
#pragma omp parallel num_threads(workers)
  {
    float* dw = sums.mine(0);
    float* db = sums.mine(1);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t at = row * size;
      layer_norm_row_backward(in + at, w, mu[row], rs[row], dy + at, size, o + at, dw, db);
    }
  }
  return {dx, sums.total(0), sums.total(1)};
}

// LayerNorm(dropout(x + bias) + residual): the end of an attention or feed-forward block in one pass. x, residual
// [..., H]; bias, weight, norm_bias [H]. Dropout draws element k of row r by its index r * H + k, or positions[r] * H
// + k where x is the real rows of a padded batch (the same mask as that batch's on those rows). Returns the output
// and, for the backward, the normalised input z = dropout(x + bias) + residual, mean and rstd per row, and the
// dropout mask (uint8; empty when threshold is 0).
// With save 0 (no backward to come) z, mean and rstd are left out (empty).
std::vector<paddle::Tensor> BiasDropoutAddNormForward(const paddle::Tensor& x, const paddle::Tensor& bias,
                                                      const paddle::Tensor& residual, const paddle::Tensor& weight,
                                                      const paddle::Tensor& norm_bias,
                                                      const paddle::optional<paddle::Tensor>& positions, float epsilon,
                                                      int64_t seed, int64_t threshold, int64_t save, int64_t threads) {
  check_fp32(x, "block output");
  check_fp32(residual, "residual");
  check_threshold(threshold);
  const int64_t size = x.shape().back();
  const int64_t rows = x.numel() / size;
  PD_CHECK(residual.numel() == x.numel() && bias.numel() == size && weight.numel() == size &&
               norm_bias.numel() == size,
           "residual, bias and LayerNorm parameters must match the block output");
  PD_CHECK(!positions || (positions->dtype() == paddle::DataType::INT64 && positions->numel() == rows),
           "positions must be int64, one per row");
  const int64_t* where = positions ? positions->data<int64_t>() : nullptr;
  const bool keep_all = threshold == 0;
  auto out = paddle::empty_like(x);
  auto normalised = save ? paddle::empty_like(x) : paddle::empty({0}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  const int64_t stats = save ? rows : 0;
  auto mean = paddle::empty({stats}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  auto rstd = paddle::empty({stats}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  auto mask = paddle::empty({keep_all ? 0 : x.numel()}, paddle::DataType::UINT8, paddle::CPUPlace());
  const float* in = x.data<float>();
  const float* b = bias.data<float>();
  const float* res = residual.data<float>();
  const float* w = weight.data<float>();
  const float* nb = norm_bias.data<float>();
  float* o = out.data<float>();
  float* z_all = save ? normalised.data<float>() : nullptr;
  float* mu = save ? mean.data<float>() : nullptr;
  float* rs = save ? rstd.data<float>() : nullptr;
  uint8_t* keep = keep_all ? nullptr : mask.data<uint8_t>();
  const uint64_t key = static_cast<uint64_t>(seed);
  const uint32_t limit = static_cast<uint32_t>(threshold);
  const float scale = dropout_scale(threshold);
  const int workers = threads_for(threads);
#pragma omp parallel num_threads(workers)
  {
    std::vector<float> scratch(save ? 0 : size);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t at = row * size;
      float* z = save ? z_all + at : scratch.data();
      if (keep_all) {
#pragma omp simd
        for (int64_t k = 0; k < size; ++k) z[k] = in[at + k] + b[k] + res[at + k];
      } else {
        const int64_t index = (where == nullptr ? row : where[row]) * size;
#pragma omp simd
        for (int64_t k = 0; k < size; ++k) {
          const bool kept = keep_element(key, index + k, limit);
          keep[at + k] = kept;
          z[k] = (kept ? (in[at + k] + b[k]) * scale : 0.0f) + res[at + k];
        }
      }
      float m, r;
      layer_norm_row(z, w, nb, epsilon, size, o + at, &m, &r);
      if (save) {
        mu[row] = m;
        rs[row] = r;
      }
    }
  }
  return {out, normalised, mean, rstd, mask};
}

// Returns the gradients of x, bias, residual, weight and norm_bias.
std::vector<paddle::Tensor> BiasDropoutAddNormBackward(const paddle::Tensor& normalised, const paddle::Tensor& weight,
                                                       const paddle::Tensor& mean, const paddle::Tensor& rstd,
                                                       const paddle::Tensor& mask, const paddle::Tensor& grad,
                                                       int64_t threshold, int64_t threads) {
  check_fp32(grad, "block gradient");
  check_threshold(threshold);
  const int64_t size = normalised.shape().back();
  const int64_t rows = normalised.numel() / size;
  const bool keep_all = threshold == 0;
  PD_CHECK(keep_all || mask.numel() == normalised.numel(), "dropout mask must match the block output");
  auto dx = paddle::empty_like(normalised);
  auto dres = paddle::empty_like(normalised);
  const float* z = normalised.data<float>();
  const float* w = weight.data<float>();
  const float* mu = mean.data<float>();
  const float* rs = rstd.data<float>();
  const uint8_t* keep = keep_all ? nullptr : mask.data<uint8_t>();
  const float* dy = grad.data<float>();
  float* ox = dx.data<float>();
  float* ores = dres.data<float>();
  const float scale = dropout_scale(threshold);
  const int workers = threads_for(threads);
  ColumnSums sums(workers, size, 3);  // d weight, d norm_bias, d bias
#pragma omp parallel num_threads(workers)
  {
    float* dw = sums.mine(0);
    float* dnb = sums.mine(1);
    float* db = sums.mine(2);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t at = row * size;
      layer_norm_row_backward(z + at, w, mu[row], rs[row], dy + at, size, ores + at, dw, dnb);
#pragma omp simd
      for (int64_t k = 0; k < size; ++k) {
        const float d = keep_all ? ores[at + k] : (keep[at + k] ? ores[at + k] * scale : 0.0f);
        ox[at + k] = d;
        db[k] += d;
      }
    }
  }
  return {dx, sums.total(2), dres, sums.total(0), sums.total(1)};
}

// Inverted dropout (see keep_element). Returns the output and the 0/1 mask as uint8.
std::vector<paddle::Tensor> DropoutForward(const paddle::Tensor& x, int64_t seed, int64_t threshold,
                                           int64_t threads) {
  check_fp32(x, "dropout input");
  check_threshold(threshold);
  auto out = paddle::empty_like(x);
  auto mask = paddle::empty(x.shape(), paddle::DataType::UINT8, paddle::CPUPlace());
  const float* in = x.data<float>();
  float* o = out.data<float>();
  uint8_t* keep = mask.data<uint8_t>();
  const uint64_t key = static_cast<uint64_t>(seed);
  const uint32_t limit = static_cast<uint32_t>(threshold);
  const float scale = dropout_scale(threshold);
  const int64_t n = x.numel();
#pragma omp parallel for simd num_threads(threads_for(threads)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t k = keep_element(key, i, limit);
    keep[i] = k;
    o[i] = k ? in[i] * scale : 0.0f;
  }
  return {out, mask};
}

// x * mask * scale: the dropout backward (x = the output gradient) and the recomputation of a dropped tensor.
std::vector<paddle::Tensor> DropoutApply(const paddle::Tensor& x, const paddle::Tensor& mask, float scale,
                                         int64_t threads) {
  check_fp32(x, "dropout input");
  PD_CHECK(mask.dtype() == paddle::DataType::UINT8 && mask.numel() == x.numel(), "dropout mask must match");
  auto out = paddle::empty_like(x);
  const float* in = x.data<float>();
  const uint8_t* keep = mask.data<uint8_t>();
  float* o = out.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for simd num_threads(threads_for(threads)) schedule(static)
  for (int64_t i = 0; i < n; ++i) o[i] = keep[i] ? in[i] * scale : 0.0f;
  return {out};
}

// The head layout of attention: rows [.., heads * D] <-> [B, heads, S, D]. A padded batch has B * S rows in order;
// a batch without its padding has N rows (the real positions, in order) and a map: slots [B * S] gives each position's
// row, -1 for padding (which gets zeros), and positions [N] each row's position b * S + s. Padding rows hold no
// gradient in a padded batch (a masked key's weight is exactly 0 and no head reads a padding row), so the two
// layouts give the same numbers on the real rows.
struct HeadLayout {
  int64_t batch, length, heads, depth;
  const int64_t* slots;      // nullptr: row = position
  const int64_t* positions;  // nullptr: position = row
  int64_t rows;              // N, or B * S
};

HeadLayout head_layout(int64_t rows, int64_t hidden, int64_t heads, int64_t batch, int64_t length,
                       const paddle::optional<paddle::Tensor>& slots,
                       const paddle::optional<paddle::Tensor>& positions) {
  PD_CHECK(heads > 0 && hidden % heads == 0 && length > 0, "the head layout needs heads dividing the hidden size");
  HeadLayout layout{batch, length, heads, hidden / heads, nullptr, nullptr, rows};
  if (slots) {
    PD_CHECK(slots->dtype() == paddle::DataType::INT64 && slots->numel() == batch * length,
             "slots must be int64 [B * S]");
    layout.slots = slots->data<int64_t>();
    for (int64_t i = 0; i < batch * length; ++i) {
      PD_CHECK(layout.slots[i] >= -1 && layout.slots[i] < rows, "a slot names a row that is not there");
    }
  }
  if (positions) {
    PD_CHECK(positions->dtype() == paddle::DataType::INT64 && positions->numel() == rows,
             "positions must be int64 [N], one per row");
    layout.positions = positions->data<int64_t>();
    for (int64_t n = 0; n < rows; ++n) {
      PD_CHECK(layout.positions[n] >= 0 && layout.positions[n] < batch * length, "a position is outside the batch");
    }
  }
  PD_CHECK(slots || positions || rows == batch * length, "a padded batch has B * S rows");
  return layout;
}

// rows [R, heads * D] -> (rows + bias) * scale in [B, heads, S, D] (bias may be nullptr), zeros at padding slots.
void rows_to_heads(const float* in, const float* bias, float scale, const HeadLayout& l, float* out, int workers) {
  const int64_t hidden = l.heads * l.depth;
#pragma omp parallel for collapse(2) num_threads(workers) schedule(static)
  for (int64_t i = 0; i < l.batch; ++i) {
    for (int64_t h = 0; h < l.heads; ++h) {
      for (int64_t t = 0; t < l.length; ++t) {
        const int64_t row = l.slots == nullptr ? i * l.length + t : l.slots[i * l.length + t];
        float* dst = out + ((i * l.heads + h) * l.length + t) * l.depth;
        if (row < 0) {
          std::memset(dst, 0, l.depth * sizeof(float));
          continue;
        }
        const float* src = in + row * hidden + h * l.depth;
        if (bias == nullptr) {
          for (int64_t k = 0; k < l.depth; ++k) dst[k] = src[k] * scale;
        } else {
          const float* bh = bias + h * l.depth;
#pragma omp simd
          for (int64_t k = 0; k < l.depth; ++k) dst[k] = (src[k] + bh[k]) * scale;
        }
      }
    }
  }
}

// [B, heads, S, D] -> rows [R, heads * D] times scale, each row from its position; with sums, also their column sums.
void heads_to_rows(const float* in, float scale, const HeadLayout& l, float* out, ColumnSums* sums, int workers) {
  const int64_t hidden = l.heads * l.depth;
#pragma omp parallel num_threads(workers)
  {
    float* db = sums == nullptr ? nullptr : sums->mine(0);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < l.rows; ++row) {
      const int64_t position = l.positions == nullptr ? row : l.positions[row];
      const int64_t i = position / l.length, t = position % l.length;
      for (int64_t h = 0; h < l.heads; ++h) {
        const float* src = in + ((i * l.heads + h) * l.length + t) * l.depth;
        float* dst = out + row * hidden + h * l.depth;
#pragma omp simd
        for (int64_t k = 0; k < l.depth; ++k) dst[k] = src[k] * scale;
        if (db != nullptr) {
          float* dbh = db + h * l.depth;
#pragma omp simd
          for (int64_t k = 0; k < l.depth; ++k) dbh[k] += dst[k];
        }
      }
    }
  }
}

// The query, key or value projection into heads: (x + bias) * scale, x [B, S, heads * D] (or [N, heads * D] with
// slots and length S) -> [B, heads, S, D].
std::vector<paddle::Tensor> SplitHeadsForward(const paddle::Tensor& x, const paddle::Tensor& bias,
                                              const paddle::optional<paddle::Tensor>& slots, int64_t heads,
                                              int64_t length, float scale, int64_t threads) {
  check_fp32(x, "projection");
  check_fp32(bias, "projection bias");
  const auto s = x.shape();
  const int64_t hidden = s.back();
  PD_CHECK(bias.numel() == hidden && (slots ? s.size() == 2 : s.size() == 3),
           "split_heads expects [B, S, heads * D] (or [N, heads * D] with slots) and a bias of heads * D");
  const int64_t rows = x.numel() / hidden;
  if (!slots) length = s[1];
  const int64_t batch = slots ? slots->numel() / length : s[0];
  const auto l = head_layout(rows, hidden, heads, batch, length, slots, paddle::none);
  auto out = paddle::empty({l.batch, heads, l.length, l.depth}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  rows_to_heads(x.data<float>(), bias.data<float>(), scale, l, out.data<float>(), threads_for(threads));
  return {out};
}

// [B, heads, S, D] -> its rows times scale: [B, S, heads * D], or [N, heads * D] at `positions`; with sums, their
// column sums too.
paddle::Tensor rows_of_heads(const paddle::Tensor& x, const paddle::optional<paddle::Tensor>& positions, float scale,
                             ColumnSums* sums, int workers) {
  check_fp32(x, "heads");
  const auto s = x.shape();
  PD_CHECK(s.size() == 4, "heads are [B, heads, S, D]");
  const int64_t hidden = s[1] * s[3];
  const int64_t rows = positions ? positions->numel() : s[0] * s[2];
  const auto l = head_layout(rows, hidden, s[1], s[0], s[2], paddle::none, positions);
  auto out = positions ? paddle::empty({rows, hidden}, paddle::DataType::FLOAT32, paddle::CPUPlace())
                       : paddle::empty({s[0], s[2], hidden}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  heads_to_rows(x.data<float>(), scale, l, out.data<float>(), sums, workers);
  return out;
}

// split_heads' backward: the gradient [B, heads, S, D] back to the rows of x times scale (the real rows at
// `positions`), and its column sums (the bias's).
std::vector<paddle::Tensor> SplitHeadsBackward(const paddle::Tensor& grad,
                                               const paddle::optional<paddle::Tensor>& positions, float scale,
                                               int64_t threads) {
  PD_CHECK(grad.shape().size() == 4, "the split_heads gradient is [B, heads, S, D]");
  const int workers = threads_for(threads);
  ColumnSums dbias(workers, grad.shape()[1] * grad.shape()[3], 1);
  auto dx = rows_of_heads(grad, positions, scale, &dbias, workers);
  return {dx, dbias.total(0)};
}

// The attention's context back to rows: [B, heads, S, D] -> [B, S, heads * D] (or [N, heads * D] at `positions`).
std::vector<paddle::Tensor> MergeHeadsForward(const paddle::Tensor& x, const paddle::optional<paddle::Tensor>& positions,
                                              int64_t threads) {
  return {rows_of_heads(x, positions, 1.0f, nullptr, threads_for(threads))};
}

// Its backward: rows [.., heads * D] -> [B, heads, S, D], zeros at padding slots.
std::vector<paddle::Tensor> MergeHeadsBackward(const paddle::Tensor& grad, const paddle::optional<paddle::Tensor>& slots,
                                               int64_t heads, int64_t length, int64_t threads) {
  check_fp32(grad, "merge_heads gradient");
  const int64_t hidden = grad.shape().back();
  const int64_t rows = grad.numel() / hidden;
  const int64_t batch = slots ? slots->numel() / length : rows / length;
  const auto l = head_layout(rows, hidden, heads, batch, length, slots, paddle::none);
  auto out = paddle::empty({l.batch, heads, length, l.depth}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  rows_to_heads(grad.data<float>(), nullptr, 1.0f, l, out.data<float>(), threads_for(threads));
  return {out};
}

PD_BUILD_OP(visualbert_bias_gelu).Inputs({"X", "Bias"}).Outputs({"Out"}).Attrs({"threads: int64_t"})
    .SetKernelFn(PD_KERNEL(BiasGeluForward));
PD_BUILD_OP(visualbert_bias_gelu_backward).Inputs({"X", "Bias", "Grad"}).Outputs({"DX", "DBias"})
    .Attrs({"threads: int64_t"}).SetKernelFn(PD_KERNEL(BiasGeluBackward));
PD_BUILD_OP(visualbert_masked_softmax).Inputs({"Scores", "Mask"}).Outputs({"Out"}).Attrs({"threads: int64_t"})
    .SetKernelFn(PD_KERNEL(MaskedSoftmaxForward));
PD_BUILD_OP(visualbert_softmax_backward).Inputs({"Probs", "Grad"}).Outputs({"DX"}).Attrs({"threads: int64_t"})
    .SetKernelFn(PD_KERNEL(SoftmaxBackward));
PD_BUILD_OP(visualbert_layer_norm).Inputs({"X", "Weight", "Bias"}).Outputs({"Out", "Mean", "Rstd"})
    .Attrs({"epsilon: float", "threads: int64_t"}).SetKernelFn(PD_KERNEL(LayerNormForward));
PD_BUILD_OP(visualbert_layer_norm_backward).Inputs({"X", "Weight", "Mean", "Rstd", "Grad"})
    .Outputs({"DX", "DWeight", "DBias"}).Attrs({"threads: int64_t"}).SetKernelFn(PD_KERNEL(LayerNormBackward));
PD_BUILD_OP(visualbert_dropout).Inputs({"X"}).Outputs({"Out", "Mask"})
    .Attrs({"seed: int64_t", "threshold: int64_t", "threads: int64_t"}).SetKernelFn(PD_KERNEL(DropoutForward));
PD_BUILD_OP(visualbert_dropout_apply).Inputs({"X", "Mask"}).Outputs({"Out"})
    .Attrs({"scale: float", "threads: int64_t"}).SetKernelFn(PD_KERNEL(DropoutApply));
PD_BUILD_OP(visualbert_merge_heads).Inputs({"X", paddle::Optional("Positions")}).Outputs({"Out"})
    .Attrs({"threads: int64_t"}).SetKernelFn(PD_KERNEL(MergeHeadsForward));
PD_BUILD_OP(visualbert_merge_heads_backward).Inputs({"Grad", paddle::Optional("Slots")}).Outputs({"DX"})
    .Attrs({"heads: int64_t", "length: int64_t", "threads: int64_t"}).SetKernelFn(PD_KERNEL(MergeHeadsBackward));
PD_BUILD_OP(visualbert_bias_dropout_add_norm)
    .Inputs({"X", "Bias", "Residual", "Weight", "NormBias", paddle::Optional("Positions")})
    .Outputs({"Out", "Normalised", "Mean", "Rstd", "Mask"})
    .Attrs({"epsilon: float", "seed: int64_t", "threshold: int64_t", "save: int64_t", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(BiasDropoutAddNormForward));
PD_BUILD_OP(visualbert_bias_dropout_add_norm_backward)
    .Inputs({"Normalised", "Weight", "Mean", "Rstd", "Mask", "Grad"})
    .Outputs({"DX", "DBias", "DResidual", "DWeight", "DNormBias"}).Attrs({"threshold: int64_t", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(BiasDropoutAddNormBackward));
PD_BUILD_OP(visualbert_split_heads).Inputs({"X", "Bias", paddle::Optional("Slots")}).Outputs({"Out"})
    .Attrs({"heads: int64_t", "length: int64_t", "scale: float", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(SplitHeadsForward));
PD_BUILD_OP(visualbert_split_heads_backward).Inputs({"Grad", paddle::Optional("Positions")}).Outputs({"DX", "DBias"})
    .Attrs({"scale: float", "threads: int64_t"}).SetKernelFn(PD_KERNEL(SplitHeadsBackward));

#ifdef VISUALBERT_MKL
// MKL's CBLAS (Paddle ships it, libmklml_intel.so); MKL_INT is int (LP64), the enumerations are MKL's values.
extern "C" void cblas_sgemm(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

// Self-attention for inference, without dropout or gradients: per sequence b and head,
// softmax(((q_b + q_bias) * scale) (k_b + k_bias)^T + mask_b) (v_b + v_bias), written straight into the output.
// q [Nq, heads * D] and k, v [Nk, heads * D] are the projections before their bias, every sequence's rows one after
// the other: sequence b's queries are rows q_offsets[b] to q_offsets[b + 1], its keys and values rows k_offsets[b] to
// k_offsets[b + 1]. A padded batch [B, S, H] is the case of sequences of S rows each, with its additive mask
// [B or 1, 1, Q or 1, K]; a batch without its padding has no mask. A head's query, key, value and scores stay in a
// thread's buffers (in cache) from the bias to the context, where the unfused path moves each through memory in its
// own pass (the head layout, the scores, the probabilities, the context's layout back). The two products are MKL's
// sgemm on one thread each (MKL runs sequentially inside an OpenMP parallel region); the heads share out the threads.
std::vector<paddle::Tensor> AttentionForward(const paddle::Tensor& q, const paddle::Tensor& k, const paddle::Tensor& v,
                                             const paddle::Tensor& q_bias, const paddle::Tensor& k_bias,
                                             const paddle::Tensor& v_bias, const paddle::Tensor& q_offsets,
                                             const paddle::Tensor& k_offsets,
                                             const paddle::optional<paddle::Tensor>& mask, int64_t heads,
                                             float scale, int64_t threads) {
  for (const auto* t : {&q, &k, &v, &q_bias, &k_bias, &v_bias}) check_fp32(*t, "attention input");
  const int64_t hidden = q.shape().back();
  PD_CHECK(k.shape().back() == hidden && v.shape() == k.shape() && hidden % heads == 0,
           "attention expects query [..., heads * D], key and value of one shape [..., heads * D]");
  PD_CHECK(q_bias.numel() == hidden && k_bias.numel() == hidden && v_bias.numel() == hidden,
           "attention biases must be [heads * D]");
  PD_CHECK(q_offsets.dtype() == paddle::DataType::INT64 && k_offsets.dtype() == paddle::DataType::INT64 &&
               q_offsets.numel() == k_offsets.numel() && q_offsets.numel() >= 1,
           "attention offsets must be int64 [B + 1], for queries and keys alike");
  const int64_t batch = q_offsets.numel() - 1, depth = hidden / heads;
  const int64_t* qo = q_offsets.data<int64_t>();
  const int64_t* ko = k_offsets.data<int64_t>();
  int64_t max_queries = 0, max_keys = 0;
  for (int64_t b = 0; b < batch; ++b) {
    PD_CHECK(qo[b] <= qo[b + 1] && ko[b] <= ko[b + 1], "attention offsets must not decrease");
    PD_CHECK(qo[b] == qo[b + 1] || ko[b] < ko[b + 1], "a sequence with queries must have keys");
    max_queries = std::max(max_queries, qo[b + 1] - qo[b]);
    max_keys = std::max(max_keys, ko[b + 1] - ko[b]);
  }
  PD_CHECK(qo[0] == 0 && ko[0] == 0 && qo[batch] * hidden == q.numel() && ko[batch] * hidden == k.numel(),
           "attention offsets must cover the query and key rows from 0");
  const float* add = nullptr;
  std::unique_ptr<MaskStrides> mask_strides;
  if (mask) {
    check_fp32(*mask, "attention mask");
    for (int64_t b = 0; b < batch; ++b) {
      PD_CHECK(qo[b + 1] - qo[b] == max_queries && ko[b + 1] - ko[b] == max_keys,
               "a masked attention takes sequences of one length (a padded batch)");
    }
    mask_strides = std::make_unique<MaskStrides>(*mask, batch, max_queries, max_keys);
    add = mask->data<float>();
  }
  auto out = paddle::empty(q.shape(), paddle::DataType::FLOAT32, paddle::CPUPlace());
  float* o = out.data<float>();
  // (x + bias) * factor, head h of `rows` rows from row `first` of [N, hidden], into a contiguous buffer. (The
  // pointers are taken once: Tensor::data is a checked call, too slow for an inner loop.)
  const float *qp = q.data<float>(), *kp = k.data<float>(), *vp = v.data<float>();
  const float *qb = q_bias.data<float>(), *kb = k_bias.data<float>(), *vb = v_bias.data<float>();
  auto gather = [&](const float* x, const float* bias, float factor, int64_t first, int64_t rows, int64_t h,
                    float* dst) {
    const float* bh = bias + h * depth;
    for (int64_t t = 0; t < rows; ++t) {
      const float* src = x + (first + t) * hidden + h * depth;
#pragma omp simd
      for (int64_t d = 0; d < depth; ++d) dst[t * depth + d] = (src[d] + bh[d]) * factor;
    }
  };
#pragma omp parallel num_threads(threads_for(threads))
  {
    std::vector<float> buffer(static_cast<size_t>((max_queries + 2 * max_keys) * depth + max_queries * max_keys));
    float* qh = buffer.data();
    float* kh = qh + max_queries * depth;
    float* vh = kh + max_keys * depth;
    float* scores = vh + max_keys * depth;
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t queries = qo[b + 1] - qo[b], keys = ko[b + 1] - ko[b];
        if (queries == 0) continue;
        gather(qp, qb, scale, qo[b], queries, h, qh);
        gather(kp, kb, 1.0f, ko[b], keys, h, kh);
        gather(vp, vb, 1.0f, ko[b], keys, h, vh);
        cblas_sgemm(kRowMajor, kNoTrans, kTrans, queries, keys, depth, 1.0f, qh, depth, kh, depth, 0.0f, scores, keys);
        for (int64_t t = 0; t < queries; ++t) {
          float* row = scores + t * keys;
          softmax_row(row, add == nullptr ? nullptr : add + mask_strides->offset(b, t), keys, row);
        }
        cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, queries, depth, keys, 1.0f, scores, keys, vh, depth, 0.0f,
                    o + qo[b] * hidden + h * depth, hidden);
      }
    }
  }
  return {out};
}

PD_BUILD_OP(visualbert_attention)
    .Inputs({"Q", "K", "V", "QBias", "KBias", "VBias", "QOffsets", "KOffsets", paddle::Optional("Mask")})
    .Outputs({"Out"}).Attrs({"heads: int64_t", "scale: float", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(AttentionForward));
#endif  // VISUALBERT_MKL
