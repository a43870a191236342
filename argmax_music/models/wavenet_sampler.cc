// WaveNet sampling on CPU: blocks of timesteps of `WaveNet.step` + the draw, in one XLA FFI call each.
//
// The JAX step's arithmetic on its cache layout (argmax_music/models/wavenet.py): per layer, the input times
// the kernel taps, the past taps' products kept in the history's ring buffers; the gate; one product for the
// residual and skip projections; the two-layer head; argmax(logits / T + the Gumbel noise XLA drew), the logits
// guided first where the batch runs twice (`GuidedPrior`: conditioned rows, then unconditioned ones). At
// batch 1 the JAX step is bound by XLA's per-operation overhead (about 80 small operations a step); here a
// step is loops over the weights, which it streams from the CPU's caches: the threads split every layer's
// gate units (and so its weights) and meet once per layer to add up the residual stream.
// Built by argmax_music/models/native.py with the host's compiler (-O3 -march=native).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "vector_math.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using namespace argmax_music;  // Load, Store, Splat, Exp, Gate, Product.

inline void Pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Threads meet by publishing how many barriers they have reached, each on its own cache line.
struct alignas(64) Arrivals {
  std::atomic<int64_t> count{0};
};

struct Sizes {
  int layers, kernel, residual, gate, skip, classes, cond, steps, batch, threads;
  int drawn;  // Tokens drawn a step: batch, or batch / 2 guided (row b + drawn is row b unconditioned).
  int units, hidden_part;  // Gate units and hidden units per thread.
  int64_t rows;            // History rows per batch item.
};

// Steps per inner block. Each thread projects a block's conditioning at once; and a layer whose dilation is at
// least this long multiplies its inputs by the past taps once per block (the products are read a dilation
// later, in a later block), so those weights are read from memory once per block instead of once per step.
constexpr int kInner = 8;

// Everything one call shares between its threads.
struct Block {
  Sizes n;
  const float *embedding, *taps_now, *taps_past, *cond_w, *bias, *res_skip, *res_b, *skip_b;
  const float *hidden_w, *hidden_b, *logits_w, *logits_b, *cond, *noise;
  const int32_t* forced;
  const int64_t* dilations;
  float temperature, guidance;
  float* history;
  int32_t *tokens, *prev;
  int32_t t;
  std::vector<Arrivals> arrivals;
  std::vector<float> residuals, skips, logits;  // Partial sums, per thread: x 2 (layer parity) x batch x R, ...

  void Wait(int self, int64_t& reached) {
    arrivals[self].count.store(++reached, std::memory_order_release);
    for (int k = 0; k < n.threads; ++k) {
      for (int spins = 1; arrivals[k].count.load(std::memory_order_acquire) < reached; ++spins) {
        if (spins % 4096 == 0) std::this_thread::yield();  // More threads than free cores: let the others run.
        Pause();
      }
    }
  }

  // Thread `self`'s share of every step: its gate units' columns of each layer's taps and conditioning, their
  // gate outputs' rows of the residual / skip projection, and its hidden units of the head. Partial sums meet
  // at barriers and are added in thread order by every thread alike, so all threads hold the same residual
  // stream and draw the same tokens.
  void Run(int self) {
    const int R = n.residual, S = n.skip, C = n.classes, G = n.gate, L = n.layers, B = n.batch, u = n.units;
    const int D = n.drawn;
    const int width = 2 * u, past_width = (n.kernel - 1) * width, row_width = (n.kernel - 1) * 2 * G;
    const int all_layers = L * width;  // This thread's gate pre-activations, over all layers.
    std::vector<float> h(static_cast<size_t>(B) * R), skip_sum(static_cast<size_t>(B) * S), update(R);
    std::vector<float> z(width), products(past_width), g(u), rs(R + S), hid(n.hidden_part), all(std::max(S, C));
    std::vector<float> unconditioned(C);
    std::vector<float> own_bias(all_layers), pre(static_cast<size_t>(kInner) * B * all_layers);
    std::vector<float> pending(static_cast<size_t>(kInner) * B * L * R);
    std::vector<int64_t> size(L), offset(L), now(L), pending_row(static_cast<size_t>(kInner) * L);
    std::vector<char> deferred(L);  // Past-tap products computed once per block (see kInner).
    std::vector<int32_t> last(B);
    for (int b = 0; b < B; ++b) last[b] = prev[b % D];
    for (int i = 0; i < L; ++i) {
      size[i] = (n.kernel - 1) * dilations[i];
      offset[i] = i ? offset[i - 1] + size[i - 1] : 0;
      now[i] = size[i] ? t % size[i] : 0;  // The ring row of the current timestep.
      deferred[i] = n.kernel > 1 && dilations[i] >= kInner;
      std::memcpy(&own_bias[i * width], bias + i * 2 * G + self * u, u * sizeof(float));
      std::memcpy(&own_bias[i * width + u], bias + i * 2 * G + G + self * u, u * sizeof(float));
    }
    // Tap m's product of this thread's columns: part m - 1 of a ring row, tanh half then sigmoid half.
    auto ring_part = [&](int b, int i, int64_t row, int m, int half) {
      return history + (static_cast<int64_t>(b) * n.rows + offset[i] + row) * row_width + (m - 1) * 2 * G +
             half * G + self * u;
    };
    auto store = [&](int b, int i, int64_t row, const float* products) {
      for (int m = 1; m < n.kernel; ++m) {
        for (int half = 0; half < 2; ++half) {
          std::memcpy(ring_part(b, i, row, m, half), products + (m - 1) * width + half * u, u * sizeof(float));
        }
      }
    };
    auto sum_logits = [&](int b, float* out) {  // Row b's logits: the bias and every thread's part.
      std::memcpy(out, logits_b, C * sizeof(float));
      for (int k = 0; k < n.threads; ++k) {
        for (int c = 0; c < C; ++c) out[c] += logits[static_cast<size_t>(k * B + b) * C + c];
      }
    };
    int64_t reached = 0;
    for (int s0 = 0; s0 < n.steps; s0 += kInner) {
      const int count = std::min(kInner, n.steps - s0);
      for (int q = 0; q < count; ++q) {
        for (int b = 0; b < B; ++b) {
          float* out = &pre[static_cast<size_t>(q * B + b) * all_layers];
          if (n.cond) {
            const float* c = cond + (static_cast<int64_t>(s0 + q) * B + b) * n.cond;
            Product(c, n.cond, cond_w + static_cast<int64_t>(self) * n.cond * all_layers, all_layers,
                    own_bias.data(), out);
          } else {
            std::memcpy(out, own_bias.data(), all_layers * sizeof(float));
          }
        }
      }
      for (int q = 0; q < count; ++q) {
        const int s = s0 + q;
        for (int b = 0; b < B; ++b) {
          const int token = last[b] < 0 ? C : last[b];  // -1: the start embedding, the table's last row.
          std::memcpy(&h[b * R], embedding + static_cast<int64_t>(token) * R, R * sizeof(float));
          for (int j = 0; j < S; ++j) skip_sum[b * S + j] = self == 0 ? skip_b[j] : 0.0f;
        }
        for (int i = 0; i < L; ++i) {
          const int64_t layer = static_cast<int64_t>(self) * L + i;
          float* shared = &residuals[static_cast<size_t>((i % 2) * n.threads + self) * B * R];
          for (int b = 0; b < B; ++b) {
            Product(&h[b * R], R, taps_now + layer * R * width, width,
                    &pre[static_cast<size_t>(q * B + b) * all_layers + i * width], z.data());
            for (int m = 1; m < n.kernel; ++m) {  // Tap m's product, stored m * dilation steps ago.
              const int64_t back = now[i] - m * dilations[i];
              const int64_t row = back < 0 ? back + size[i] : back;
              for (int half = 0; half < 2; ++half) {
                const float* part = ring_part(b, i, row, m, half);
                for (int j = 0; j < u; ++j) z[half * u + j] += part[j];
              }
            }
            if (deferred[i]) {  // Read before written: with kernel 2, the row just read is the one to write.
              std::memcpy(&pending[(static_cast<size_t>(q * B + b) * L + i) * R], &h[b * R], R * sizeof(float));
            } else if (n.kernel > 1) {
              Product(&h[b * R], R, taps_past + layer * R * past_width, past_width, nullptr, products.data());
              store(b, i, now[i], products.data());
            }
            Gate(z.data(), u, g.data());
            Product(g.data(), u, res_skip + layer * u * (R + S), R + S, nullptr, rs.data());
            std::memcpy(shared + b * R, rs.data(), R * sizeof(float));
            for (int j = 0; j < S; ++j) skip_sum[b * S + j] += rs[R + j];
          }
          Wait(self, reached);
          for (int b = 0; b < B; ++b) {
            std::memcpy(update.data(), res_b + i * R, R * sizeof(float));
            for (int k = 0; k < n.threads; ++k) {
              const float* part = &residuals[static_cast<size_t>(((i % 2) * n.threads + k) * B + b) * R];
              for (int j = 0; j < R; ++j) update[j] += part[j];
            }
            for (int j = 0; j < R; ++j) h[b * R + j] += update[j];
          }
          pending_row[q * L + i] = now[i];
          now[i] = now[i] + 1 == size[i] ? 0 : now[i] + 1;
        }
        std::memcpy(&skips[static_cast<size_t>(self) * B * S], skip_sum.data(), skip_sum.size() * sizeof(float));
        Wait(self, reached);
        for (int b = 0; b < B; ++b) {
          std::fill(all.begin(), all.begin() + S, 0.0f);
          for (int k = 0; k < n.threads; ++k) {
            for (int j = 0; j < S; ++j) all[j] += skips[static_cast<size_t>(k * B + b) * S + j];
          }
          for (int j = 0; j < S; ++j) all[j] = all[j] > 0.0f ? all[j] : 0.0f;
          Product(all.data(), S, hidden_w + static_cast<int64_t>(self) * S * n.hidden_part, n.hidden_part,
                  hidden_b + self * n.hidden_part, hid.data());
          for (float& v : hid) v = v > 0.0f ? v : 0.0f;
          Product(hid.data(), n.hidden_part, logits_w + static_cast<int64_t>(self) * n.hidden_part * C, C, nullptr,
                  &logits[(static_cast<size_t>(self) * B + b) * C]);
        }
        Wait(self, reached);
        for (int b = 0; b < D; ++b) {
          // Every thread draws the same token from the same sums: argmax(logits / T + Gumbel noise), or
          // argmax(logits) at temperature 0; the first maximum wins. Guided: logits u + guidance (c - u).
          sum_logits(b, all.data());
          if (D < B) {
            sum_logits(b + D, unconditioned.data());
            for (int c = 0; c < C; ++c) all[c] = unconditioned[c] + guidance * (all[c] - unconditioned[c]);
          }
          if (temperature != 0.0f) {
            const float* gumbel = noise + (static_cast<int64_t>(s) * D + b) * C;
            for (int c = 0; c < C; ++c) all[c] = all[c] / temperature + gumbel[c];
          }
          int best = 0;
          for (int c = 1; c < C; ++c) best = all[c] > all[best] ? c : best;
          const int32_t force = forced[static_cast<int64_t>(s) * D + b];
          last[b] = force >= 0 ? force : best;
          if (D < B) last[b + D] = last[b];  // The unconditioned row goes on from the same token.
          if (self == 0) tokens[static_cast<int64_t>(s) * D + b] = last[b];
        }
      }
      for (int i = 0; i < L; ++i) {  // The deferred products of this block, a layer at a time.
        if (!deferred[i]) continue;
        for (int q = 0; q < count; ++q) {
          for (int b = 0; b < B; ++b) {
            Product(&pending[(static_cast<size_t>(q * B + b) * L + i) * R], R,
                    taps_past + (static_cast<int64_t>(self) * L + i) * R * past_width, past_width, nullptr,
                    products.data());
            store(b, i, pending_row[q * L + i], products.data());
          }
        }
      }
    }
    if (self == 0) std::memcpy(prev, last.data(), D * sizeof(int32_t));
  }
};

// Threads kept between calls (with a thread started per call, 64-step calls ran 2-4x slower): a helper spins
// for 2 ms after each call, for the next one, then sleeps until woken.
class Helpers {
 public:
  static Helpers& Get() {
    static Helpers* helpers = new Helpers;  // Never destroyed: its threads are detached.
    return *helpers;
  }

  // Runs job(k) on `count - 1` helpers (k = 1, 2, ...) and job(0) on the caller; returns when all are done.
  void Run(int count, const std::function<void(int)>& job) {
    std::lock_guard<std::mutex> one_call_at_a_time(calls_);
    while (started_ < count - 1) {
      std::thread(&Helpers::Serve, this, ++started_, generation_.load()).detach();  // From the next job on.
    }
    job_ = &job;
    count_ = count;
    remaining_.store(count - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    job(0);
    while (remaining_.load(std::memory_order_acquire) > 0) Pause();
  }

 private:
  void Serve(int k, int64_t seen) {
    for (;;) {
      const auto idle_since = std::chrono::steady_clock::now();
      for (int spins = 1; generation_.load(std::memory_order_acquire) == seen; ++spins) {
        if (spins % 1024 == 0 && std::chrono::steady_clock::now() - idle_since > std::chrono::milliseconds(2)) {
          std::unique_lock<std::mutex> lock(mutex_);
          wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        }
        Pause();
      }
      seen = generation_.load(std::memory_order_acquire);
      if (k < count_) {
        (*job_)(k);
        remaining_.fetch_sub(1, std::memory_order_release);
      }
    }
  }

  std::mutex calls_, mutex_;
  std::condition_variable wake_;
  std::atomic<int64_t> generation_{0};
  std::atomic<int> remaining_{0};
  const std::function<void(int)>* job_ = nullptr;
  int count_ = 0, started_ = 0;
};

ffi::Error SampleBlock(ffi::Buffer<ffi::F32> embedding, ffi::Buffer<ffi::F32> taps_now,
                       ffi::Buffer<ffi::F32> taps_past, ffi::Buffer<ffi::F32> cond_w, ffi::Buffer<ffi::F32> bias,
                       ffi::Buffer<ffi::F32> res_skip, ffi::Buffer<ffi::F32> res_b, ffi::Buffer<ffi::F32> skip_b,
                       ffi::Buffer<ffi::F32> hidden_w, ffi::Buffer<ffi::F32> hidden_b, ffi::Buffer<ffi::F32> logits_w,
                       ffi::Buffer<ffi::F32> logits_b, ffi::Buffer<ffi::F32> cond, ffi::Buffer<ffi::F32> noise,
                       ffi::Buffer<ffi::S32> forced, ffi::Buffer<ffi::F32> history, ffi::Buffer<ffi::S32> t,
                       ffi::Buffer<ffi::S32> prev, ffi::Span<const int64_t> dilations, int64_t kernel,
                       float temperature, float guidance, ffi::ResultBuffer<ffi::S32> tokens,
                       ffi::ResultBuffer<ffi::F32> history_out, ffi::ResultBuffer<ffi::S32> t_out,
                       ffi::ResultBuffer<ffi::S32> prev_out) {
  Block block;
  Sizes& n = block.n;
  n.layers = static_cast<int>(dilations.size());
  n.kernel = static_cast<int>(kernel);
  n.threads = static_cast<int>(taps_now.dimensions()[0]);
  n.residual = static_cast<int>(embedding.dimensions()[1]);
  n.gate = static_cast<int>(bias.dimensions()[1]) / 2;
  n.units = n.gate / n.threads;
  n.skip = static_cast<int>(skip_b.dimensions()[0]);
  n.hidden_part = static_cast<int>(hidden_b.dimensions()[1]);
  n.classes = static_cast<int>(logits_b.dimensions()[0]);
  n.steps = static_cast<int>(forced.dimensions()[0]);
  n.drawn = static_cast<int>(forced.dimensions()[1]);
  n.batch = static_cast<int>(history.dimensions()[0]);
  n.cond = static_cast<int>(cond.dimensions()[2]);
  n.rows = history.dimensions()[1];
  if (n.units % 8 || n.residual % 8 || n.skip % 8 || n.hidden_part % 8 || n.classes % 8) {
    return ffi::Error::InvalidArgument("wavenet_sampler: channels and classes per thread must be multiples of 8");
  }
  if (n.batch != n.drawn && n.batch != 2 * n.drawn) {
    return ffi::Error::InvalidArgument("wavenet_sampler: the history's batch must be the tokens' (or twice, guided)");
  }
  block.embedding = embedding.typed_data(), block.taps_now = taps_now.typed_data();
  block.taps_past = taps_past.typed_data(), block.cond_w = cond_w.typed_data(), block.bias = bias.typed_data();
  block.res_skip = res_skip.typed_data(), block.res_b = res_b.typed_data(), block.skip_b = skip_b.typed_data();
  block.hidden_w = hidden_w.typed_data(), block.hidden_b = hidden_b.typed_data();
  block.logits_w = logits_w.typed_data(), block.logits_b = logits_b.typed_data();
  block.cond = cond.typed_data(), block.noise = noise.typed_data(), block.forced = forced.typed_data();
  block.dilations = dilations.begin();
  block.temperature = temperature, block.guidance = guidance;
  block.history = history_out->typed_data();
  if (block.history != history.typed_data()) std::memcpy(block.history, history.typed_data(), history.size_bytes());
  block.tokens = tokens->typed_data();
  block.prev = prev_out->typed_data();
  std::memcpy(block.prev, prev.typed_data(), prev.size_bytes());
  block.t = *t.typed_data();
  block.arrivals = std::vector<Arrivals>(n.threads);
  block.residuals.resize(static_cast<size_t>(2) * n.threads * n.batch * n.residual);
  block.skips.resize(static_cast<size_t>(n.threads) * n.batch * n.skip);
  block.logits.resize(static_cast<size_t>(n.threads) * n.batch * n.classes);
  Helpers::Get().Run(n.threads, [&block](int k) { block.Run(k); });
  *t_out->typed_data() = block.t + n.steps;
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ArgmaxMusicWavenetSampleBlock, SampleBlock,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // embedding (classes + 1, residual)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // current tap (threads, layers, packed)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // past taps (threads, layers, packed)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // conditioning (threads, packed)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // gate bias (layers, 2 gate)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // residual and skip (threads, layers, packed)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // residual bias (layers, residual)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // skip bias (skip,)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // head hidden kernel (threads, packed)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // head hidden bias (threads, hidden / threads)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // head logits kernel (threads, packed)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // head logits bias (classes,)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // conditioning (steps, batch, channels)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // Gumbel noise (steps, drawn, classes)
                                  .Arg<ffi::Buffer<ffi::S32>>()  // forced tokens (steps, drawn), -1: sample
                                  .Arg<ffi::Buffer<ffi::F32>>()  // history (batch, rows, (kernel - 1) 2 gate)
                                  .Arg<ffi::Buffer<ffi::S32>>()  // t ()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // previous tokens (drawn,)
                                  .Attr<ffi::Span<const int64_t>>("dilations")
                                  .Attr<int64_t>("kernel_size")
                                  .Attr<float>("temperature")
                                  .Attr<float>("guidance")
                                  .Ret<ffi::Buffer<ffi::S32>>()    // tokens (steps, drawn)
                                  .Ret<ffi::Buffer<ffi::F32>>()    // history, updated in place
                                  .Ret<ffi::Buffer<ffi::S32>>()    // t + steps
                                  .Ret<ffi::Buffer<ffi::S32>>());  // the last tokens (drawn,)
