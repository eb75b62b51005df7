// The only C++ in the project: a thin C API over Google Benchmark.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "gbench.h"

// The state plus the timed wall-clock seconds of its loop, measured here so
// that rates (GFLOP/s, fractions of a peak) can be reported as plain numbers:
// Google Benchmark's kIsRate would print them as "per second" of a rate.
struct nu_bench_state {
  benchmark::State *st;
  double started_at;
  double paused_at;
  double paused_total;
  double stopped_at;
};

static double wall_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

extern "C" {

void nu_bench_register(const char *name, nu_bench_fn fn, void *arg, double min_time_s) {
  auto *b = benchmark::RegisterBenchmark(std::string(name).c_str(),
                                         [fn, arg](benchmark::State &st) {
                                           nu_bench_state s{&st, 0, 0, 0, 0};
                                           fn(&s, arg);
                                         });
  // Wall-clock rates, like the roofline probes they are compared with.
  b->UseRealTime();
  if (min_time_s > 0) b->MinTime(min_time_s);
}

int nu_bench_keep_running(nu_bench_state *s) {
  // KeepRunning() starts the timer on its first call and stops it on the last;
  // the wall clock here follows it.
  if (s->started_at == 0) s->started_at = wall_seconds();
  int more = s->st->KeepRunning();
  if (!more) s->stopped_at = wall_seconds();
  return more;
}

double nu_bench_timed_seconds(nu_bench_state *s) {
  double end = s->stopped_at ? s->stopped_at : wall_seconds();
  return end - s->started_at - s->paused_total;
}

int64_t nu_bench_iterations(nu_bench_state *s) { return s->st->iterations(); }
void nu_bench_pause(nu_bench_state *s) {
  s->st->PauseTiming();
  s->paused_at = wall_seconds();
}
void nu_bench_resume(nu_bench_state *s) {
  s->paused_total += wall_seconds() - s->paused_at;
  s->st->ResumeTiming();
}

void nu_bench_set_counter(nu_bench_state *s, const char *name, double value, int kind) {
  benchmark::Counter::Flags f = benchmark::Counter::kDefaults;
  if (kind == NU_COUNTER_AVG_ITERATIONS) f = benchmark::Counter::kAvgIterations;
  if (kind == NU_COUNTER_RATE_PER_ITER) f = benchmark::Counter::kAvgIterationsRate;
  s->st->counters[name] = benchmark::Counter(value, f);
}

void nu_bench_set_label(nu_bench_state *s, const char *label) { s->st->SetLabel(label); }
void nu_bench_skip(nu_bench_state *s, const char *why) { s->st->SkipWithError(why); }
void nu_bench_set_items_processed(nu_bench_state *s, int64_t n) { s->st->SetItemsProcessed(n); }
void nu_bench_set_bytes_processed(nu_bench_state *s, int64_t n) { s->st->SetBytesProcessed(n); }
void nu_bench_do_not_optimize(const void *p) { benchmark::DoNotOptimize(p); }
void nu_bench_add_context(const char *key, const char *value) {
  benchmark::AddCustomContext(key, value);
}

int nu_bench_main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // extern "C"
