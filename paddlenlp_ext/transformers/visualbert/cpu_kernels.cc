// Multithreaded, vectorised fp32 CPU kernels for the element-wise and row-wise parts of VisualBERT: GELU, masked
// softmax, layer normalisation, dropout and the head permutation, forward and backward. Paddle's own CPU kernels
// for these run on one thread without SIMD and cost about a quarter of a BERT-base training step; the matmuls are
// at parity with PyTorch already. cpu_kernels.py builds this file on first use and wraps each kernel in autograd.
//
// Every kernel takes contiguous fp32 tensors on the CPU and a `threads` attribute (OpenMP threads; the caller passes
// the count Paddle's math uses). Loops are written so that GCC vectorises them: no calls into libm, no branches.

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
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

}  // namespace

// GELU, exact (erf) form: x * Phi(x).
std::vector<paddle::Tensor> GeluForward(const paddle::Tensor& x, int64_t threads) {
  check_fp32(x, "gelu input");
  auto out = paddle::empty_like(x);
  const float* in = x.data<float>();
  float* o = out.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for simd num_threads(threads_for(threads)) schedule(static)
  for (int64_t i = 0; i < n; ++i) o[i] = in[i] * normal_cdf(in[i]);
  return {out};
}

// d/dx x Phi(x) = Phi(x) + x phi(x).
std::vector<paddle::Tensor> GeluBackward(const paddle::Tensor& x, const paddle::Tensor& grad, int64_t threads) {
  check_fp32(x, "gelu input");
  check_fp32(grad, "gelu gradient");
  auto dx = paddle::empty_like(x);
  const float* in = x.data<float>();
  const float* g = grad.data<float>();
  float* o = dx.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for simd num_threads(threads_for(threads)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i];
    o[i] = g[i] * (normal_cdf(v) + v * kInvSqrt2Pi * fast_exp(-0.5f * v * v));
  }
  return {dx};
}

// softmax(scores + mask) over the last axis. scores [B, H, Q, K]; mask additive, [B or 1, 1, Q or 1, K].
std::vector<paddle::Tensor> MaskedSoftmaxForward(const paddle::Tensor& scores, const paddle::Tensor& mask,
                                                 int64_t threads) {
  check_fp32(scores, "softmax scores");
  check_fp32(mask, "softmax mask");
  const auto s = scores.shape();
  const auto m = mask.shape();
  PD_CHECK(s.size() == 4 && m.size() == 4, "softmax expects 4-D scores and mask");
  const int64_t batch = s[0], heads = s[1], queries = s[2], keys = s[3];
  PD_CHECK((m[0] == batch || m[0] == 1) && m[1] == 1 && (m[2] == queries || m[2] == 1) && m[3] == keys,
           "softmax mask must be [B or 1, 1, Q or 1, K]");
  const int64_t mask_batch_stride = m[0] == 1 ? 0 : m[2] * keys;
  const int64_t mask_row_stride = m[2] == 1 ? 0 : keys;
  auto out = paddle::empty_like(scores);
  const float* in = scores.data<float>();
  const float* add = mask.data<float>();
  float* o = out.data<float>();
  const int64_t rows = batch * heads * queries;
#pragma omp parallel for num_threads(threads_for(threads)) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t b = row / (heads * queries), q = row % queries;
    const float* x = in + row * keys;
    const float* a = add + b * mask_batch_stride + q * mask_row_stride;
    float* y = o + row * keys;
    float max = -INFINITY;
#pragma omp simd reduction(max : max)
    for (int64_t k = 0; k < keys; ++k) {
      y[k] = x[k] + a[k];
      max = y[k] > max ? y[k] : max;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t k = 0; k < keys; ++k) {
      y[k] = fast_exp(y[k] - max);
      sum += y[k];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t k = 0; k < keys; ++k) y[k] *= inv;
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
    const float* xr = in + row * size;
    float* yr = o + row * size;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t k = 0; k < size; ++k) sum += xr[k];
    const float m = sum / size;
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int64_t k = 0; k < size; ++k) squares += (xr[k] - m) * (xr[k] - m);
    const float r = 1.0f / std::sqrt(squares / size + epsilon);
#pragma omp simd
    for (int64_t k = 0; k < size; ++k) yr[k] = (xr[k] - m) * r * w[k] + b[k];
    mu[row] = m;
    rs[row] = r;
  }
  return {out, mean, rstd};
}

// With x̂ = (x - mean) * rstd and g = dy * weight: dx = rstd * (g - mean(g) - x̂ * mean(g * x̂)),
// d weight = sum over rows of dy * x̂, d bias = sum over rows of dy.
std::vector<paddle::Tensor> LayerNormBackward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                              const paddle::Tensor& mean, const paddle::Tensor& rstd,
                                              const paddle::Tensor& grad, int64_t threads) {
  check_fp32(grad, "layer_norm gradient");
  const int64_t size = x.shape().back();
  const int64_t rows = x.numel() / size;
  auto dx = paddle::empty_like(x);
  auto dweight = paddle::empty({size}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  auto dbias = paddle::empty({size}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  const float* in = x.data<float>();
  const float* w = weight.data<float>();
  const float* mu = mean.data<float>();
  const float* rs = rstd.data<float>();
  const float* dy = grad.data<float>();
  float* o = dx.data<float>();
  const int workers = threads_for(threads);
  std::vector<float> partial(static_cast<size_t>(workers) * 2 * size, 0.0f);  // per thread: d weight, d bias
#pragma omp parallel num_threads(workers)
  {
    float* dw = partial.data() + static_cast<size_t>(omp_get_thread_num()) * 2 * size;
    float* db = dw + size;
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const float* xr = in + row * size;
      const float* gr = dy + row * size;
      float* orow = o + row * size;
      const float m = mu[row], r = rs[row];
      float mean_g = 0.0f, mean_gx = 0.0f;
#pragma omp simd reduction(+ : mean_g, mean_gx)
      for (int64_t k = 0; k < size; ++k) {
        const float xhat = (xr[k] - m) * r;
        const float g = gr[k] * w[k];
        mean_g += g;
        mean_gx += g * xhat;
        dw[k] += gr[k] * xhat;
        db[k] += gr[k];
      }
      mean_g /= size;
      mean_gx /= size;
#pragma omp simd
      for (int64_t k = 0; k < size; ++k) {
        const float xhat = (xr[k] - m) * r;
        orow[k] = r * (gr[k] * w[k] - mean_g - xhat * mean_gx);
      }
    }
  }
  float* dw = dweight.data<float>();
  float* db = dbias.data<float>();
  for (int64_t k = 0; k < size; ++k) dw[k] = db[k] = 0.0f;
  for (int t = 0; t < workers; ++t) {  // in thread order: the same sums for the same thread count
    const float* pw = partial.data() + static_cast<size_t>(t) * 2 * size;
    for (int64_t k = 0; k < size; ++k) {
      dw[k] += pw[k];
      db[k] += pw[size + k];
    }
  }
  return {dx, dweight, dbias};
}

// Dropout with a counter-based generator: element i is kept when the low 32 bits of splitmix64(seed, i) are at or
// above `threshold` (= round(p * 2^32)), and scaled by 2^32 / (2^32 - threshold). The result depends on the seed
// and the element's index only, not on the thread count. Returns the output and the 0/1 mask as uint8.
std::vector<paddle::Tensor> DropoutForward(const paddle::Tensor& x, int64_t seed, int64_t threshold,
                                           int64_t threads) {
  check_fp32(x, "dropout input");
  PD_CHECK(threshold > 0 && threshold < (int64_t{1} << 32), "dropout threshold must be in (0, 2^32)");
  auto out = paddle::empty_like(x);
  auto mask = paddle::empty(x.shape(), paddle::DataType::UINT8, paddle::CPUPlace());
  const float* in = x.data<float>();
  float* o = out.data<float>();
  uint8_t* keep = mask.data<uint8_t>();
  const uint64_t key = static_cast<uint64_t>(seed);
  const uint32_t limit = static_cast<uint32_t>(threshold);
  const float scale = static_cast<float>(4294967296.0 / (4294967296.0 - static_cast<double>(threshold)));
  const int64_t n = x.numel();
#pragma omp parallel for simd num_threads(threads_for(threads)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = key + (static_cast<uint64_t>(i) + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const uint8_t k = static_cast<uint32_t>(z) >= limit;
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

// [A, B, C, D] -> [A, C, B, D]: heads out of / into the hidden axis ("bshd" <-> "bhsd"). Its own inverse.
std::vector<paddle::Tensor> SwapAxes12(const paddle::Tensor& x, int64_t threads) {
  check_fp32(x, "permute input");
  const auto s = x.shape();
  PD_CHECK(s.size() == 4, "permute expects a 4-D tensor");
  const int64_t a = s[0], b = s[1], c = s[2], d = s[3];
  auto out = paddle::empty({a, c, b, d}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  const float* in = x.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for collapse(2) num_threads(threads_for(threads)) schedule(static)
  for (int64_t i = 0; i < a; ++i) {
    for (int64_t k = 0; k < c; ++k) {
      for (int64_t j = 0; j < b; ++j) {
        std::memcpy(o + ((i * c + k) * b + j) * d, in + ((i * b + j) * c + k) * d, d * sizeof(float));
      }
    }
  }
  return {out};
}

PD_BUILD_OP(visualbert_gelu).Inputs({"X"}).Outputs({"Out"}).Attrs({"threads: int64_t"})
    .SetKernelFn(PD_KERNEL(GeluForward));
PD_BUILD_OP(visualbert_gelu_backward).Inputs({"X", "Grad"}).Outputs({"DX"}).Attrs({"threads: int64_t"})
    .SetKernelFn(PD_KERNEL(GeluBackward));
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
PD_BUILD_OP(visualbert_swap_axes12).Inputs({"X"}).Outputs({"Out"}).Attrs({"threads: int64_t"})
    .SetKernelFn(PD_KERNEL(SwapAxes12));
