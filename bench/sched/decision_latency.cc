// How long one scheduling cycle takes with 10,000 queued jobs on 1,000 nodes of 8 GPUs, for
// every policy: the cluster is filled, then each round one running job ends and a cycle fills
// the hole. Prints p50/p99/max per policy (and with explain, as dlabd runs it).
//   build/bin/dlab-sched-bench [--nodes 1000] [--queued 10000] [--rounds 1000] [--policy NAME]
//                              [--param KEY=VALUE ...] [--queue-view]
// (--policy: that policy alone, with and without explain; to profile one. --queue-view: after
// the rounds, what `dlab queue` costs instead: Scheduler::Clone, then Queue's forecast.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sched/framework.h"

namespace {

using dlab::JobRequest;
using dlab::NodeCapacity;
using dlab::Resources;

int GpusLikePhilly(std::mt19937_64& rng) {  // 93% one GPU, the rest 2, 4 or 8
  int r = static_cast<int>(rng() % 100);
  if (r < 93) return 1;
  if (r < 96) return 2;
  if (r < 98) return 4;
  return 8;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p * v.size()));
  return v[std::max<size_t>(rank, 1) - 1];
}

struct Ran {
  std::unique_ptr<dlab::Scheduler> scheduler;
  double now = 0;
};

Ran Run(const std::string& policy, const std::map<std::string, std::string>& params, int nodes,
        int queued, int rounds, bool explain, bool print = true) {
  std::vector<NodeCapacity> cluster;
  for (int i = 0; i < nodes; ++i) {
    NodeCapacity n{.cpu_millis = 96000, .memory_bytes = 768LL << 30};
    for (int g = 0; g < 8; ++g) n.gpus.push_back({.index = g, .type = "V100", .model = "V100"});
    cluster.push_back(n);
  }
  auto made = dlab::NewScheduler({.policy = policy, .params = params}, cluster);
  if (!made.ok()) {
    std::fprintf(stderr, "%s\n", std::string(made.status().message()).c_str());
    std::exit(2);
  }
  auto& s = *made;
  std::mt19937_64 rng(42);
  int64_t next_id = 1;
  double now = 0;
  auto job = [&](double t) {
    int gpus = GpusLikePhilly(rng);
    return JobRequest{
        .id = next_id++,
        .tenant_id = 1 + static_cast<int64_t>(rng() % 10),
        .priority = static_cast<int>(rng() % 3),
        .submit_s = t,
        .tasks = {Resources{
            .cpu_millis = 4000LL * gpus, .memory_bytes = (16LL << 30) * gpus, .gpus = gpus}},
        .oracle_remaining_s = static_cast<double>(60 + rng() % 100000)};
  };
  // History, as a dlabd that has run a while has it (only gittins reads it): 10,000 jobs like
  // the ones queued have ended.
  // (Drawn from a generator of their own: the jobs below are the same as without it.)
  std::mt19937_64 past(7);
  for (int i = 0; i < 10000; ++i) {
    int gpus = GpusLikePhilly(past);
    s->RecordEnded(1 + static_cast<int64_t>(past() % 10), gpus,
                   static_cast<double>(60 + past() % 100000) * gpus);
  }
  // Fill the cluster, then queue `queued` more.
  std::vector<int64_t> running;
  while (true) {
    s->Enqueue(job(now), now);
    auto r = s->Schedule(now, false);
    for (const auto& st : r.start) running.push_back(st.job_id);
    if (s->queued() > 0) break;
    now += 1;
  }
  while (static_cast<int>(s->queued()) < queued) s->Enqueue(job(now), now);
  now += 1000;  // past preemption's minimum run time
  std::vector<double> ms;
  for (int i = 0; i < rounds; ++i) {
    // One running job ends.
    size_t k = rng() % running.size();
    s->Remove(running[k], now, /*ended=*/true);
    running[k] = running.back();
    running.pop_back();
    s->Enqueue(job(now), now);  // keep the queue long
    auto t0 = std::chrono::steady_clock::now();
    auto r = s->Schedule(now, explain);
    auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    for (const auto& st : r.start) running.push_back(st.job_id);
    for (const auto& p : r.preempt) {
      s->Requeue(p.job_id, now);
      running.erase(std::find(running.begin(), running.end(), p.job_id));
    }
    now += 10;
  }
  if (!print) return {std::move(s), now};
  std::printf("| %s | %s | %zu | %.3f | %.3f | %.3f |\n", policy.c_str(), explain ? "yes" : "no",
              s->queued(), Percentile(ms, 0.5), Percentile(ms, 0.99),
              *std::max_element(ms.begin(), ms.end()));
  return {std::move(s), now};
}

// What `dlab queue` costs dlabd on this queue: the copy made under its lock, then the forecast
// of start times on the copy, with dlabd's budget (0.5 s) and without one.
void QueueView(const std::string& policy, const Ran& ran) {
  auto since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<double> clone_ms, budget_ms;
  size_t budget_known = 0, entries = 0;
  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<dlab::Scheduler> copy = ran.scheduler->Clone();
    clone_ms.push_back(since(t0));
    t0 = std::chrono::steady_clock::now();
    std::vector<dlab::QueueEntry> q = copy->Queue(ran.now, 0.5);
    budget_ms.push_back(since(t0));
    budget_known = std::count_if(q.begin(), q.end(),
                                 [](const dlab::QueueEntry& e) { return e.estimated_start_s; });
    entries = q.size();
  }
  auto t0 = std::chrono::steady_clock::now();
  std::vector<dlab::QueueEntry> q = ran.scheduler->Clone()->Queue(ran.now, 1e9);
  double full_ms = since(t0);
  size_t full_known = std::count_if(q.begin(), q.end(),
                                    [](const dlab::QueueEntry& e) { return e.estimated_start_s; });
  std::printf("| %s | %zu | %.1f | %.0f | %zu | %.0f | %zu |\n", policy.c_str(), entries,
              Percentile(clone_ms, 0.5), Percentile(budget_ms, 0.5), budget_known, full_ms,
              full_known);
}

}  // namespace

int main(int argc, char** argv) {
  int nodes = 1000, queued = 10000, rounds = 1000;
  bool queue_view = false;
  std::string only;
  std::map<std::string, std::string> params;  // --param: for --policy's policy
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--queue-view") {
      queue_view = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: expected a value\n", flag.c_str());
      return 2;
    }
    std::string value = argv[++i];
    if (flag == "--param") {
      size_t eq = value.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "--param %s: expected KEY=VALUE\n", value.c_str());
        return 2;
      }
      params[value.substr(0, eq)] = value.substr(eq + 1);
    } else if (flag == "--policy") {
      only = value;
    } else if (flag == "--nodes") {
      nodes = std::atoi(value.c_str());
    } else if (flag == "--queued") {
      queued = std::atoi(value.c_str());
    } else if (flag == "--rounds") {
      rounds = std::atoi(value.c_str());
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (!params.empty() && only.empty()) {
    std::fprintf(stderr, "--param needs --policy (parameters belong to one policy)\n");
    return 2;
  }
  std::printf("%d nodes x 8 GPUs, %d queued, %d rounds (one job ends, one cycle)\n\n", nodes,
              queued, rounds);
  if (queue_view) {
    std::printf(
        "| policy | queued | clone ms (median of 5) | forecast ms, 0.5 s budget | "
        "estimates | forecast ms, no budget | estimates |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    std::vector<std::string> policies = {"fifo", "priority", "backfill",   "fair-share",
                                         "las",  "gittins",  "oracle-srtf"};
    if (!only.empty()) policies = {only};
    for (const std::string& p : policies) {
      QueueView(p, Run(p, only.empty() ? std::map<std::string, std::string>{} : params, nodes,
                       queued, rounds, false, /*print=*/false));
    }
    return 0;
  }
  std::printf("| policy | explain | queued after | p50 ms | p99 ms | max ms |\n");
  std::printf("|---|---|---|---|---|---|\n");
  if (!only.empty()) {
    Run(only, params, nodes, queued, rounds, false);
    Run(only, params, nodes, queued, rounds, true);
    return 0;
  }
  for (const char* p :
       {"fifo", "priority", "backfill", "fair-share", "las", "gittins", "oracle-srtf"}) {
    Run(p, {}, nodes, queued, rounds, false);
  }
  for (const char* p : {"fifo", "las", "gittins"}) Run(p, {}, nodes, queued, rounds, true);
  return 0;
}
