// cxx_threads.cc - a C++ program run under LD_PRELOAD=libmempool.so: four
// threads build std::map<std::string, std::string>s, std::vectors and
// strings of many sizes (operator new/delete and malloc both go to mempool),
// hand maps between threads so that they are destroyed by another thread
// than the one that built them, and check the results against values
// computed without threads.
//
// Prints "cxx_threads: ok ..." and exits 0 on success, 1 on a mismatch.

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 4;
constexpr int kEntries = 20000;
constexpr int kRounds = 3;

uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

// A value whose length varies from empty (SSO) to a few KiB.
std::string make_value(int t, int round, int i)
{
    uint64_t h = mix(static_cast<uint64_t>(t) * 1000003u + static_cast<uint64_t>(round) * 7919u +
                     static_cast<uint64_t>(i));
    size_t len = (h % 16 == 0) ? static_cast<size_t>(h >> 8) % 4000 : static_cast<size_t>(h >> 8) % 40;
    std::string v(len, static_cast<char>('a' + h % 26));
    v += std::to_string(i);
    return v;
}

std::string make_key(int t, int i)
{
    return "key-" + std::to_string(t) + "-" + std::to_string(mix(static_cast<uint64_t>(i)) % 100000) +
           "-" + std::to_string(i);
}

uint64_t digest(const std::map<std::string, std::string> &m)
{
    uint64_t h = m.size();
    for (const auto &kv : m) {
        for (char c : kv.first)
            h = h * 131 + static_cast<unsigned char>(c);
        for (char c : kv.second)
            h = h * 137 + static_cast<unsigned char>(c);
        h = mix(h);
    }
    return h;
}

using Map = std::map<std::string, std::string>;

// One thread's work for one round: build a map, grow vectors, erase half.
std::unique_ptr<Map> build(int t, int round, uint64_t *vec_sum)
{
    auto m = std::make_unique<Map>();
    std::vector<std::string> keys;
    for (int i = 0; i < kEntries; i++) {
        keys.push_back(make_key(t, i));
        (*m)[keys.back()] = make_value(t, round, i);
    }
    // grow vectors of several element sizes one push at a time
    std::vector<uint64_t> v64;
    std::vector<std::vector<int>> vv;
    for (int i = 0; i < kEntries; i++) {
        v64.push_back(mix(static_cast<uint64_t>(i + round)));
        if (i % 100 == 0)
            vv.emplace_back(static_cast<size_t>(i % 1000), i);
    }
    uint64_t s = 0;
    for (uint64_t x : v64)
        s += x;
    for (const auto &inner : vv)
        for (int x : inner)
            s += static_cast<uint64_t>(x);
    *vec_sum = s;
    // erase every third key, overwrite every fifth value
    for (int i = 0; i < kEntries; i += 3)
        m->erase(keys[static_cast<size_t>(i)]);
    for (int i = 1; i < kEntries; i += 5)
        (*m)[keys[static_cast<size_t>(i)]] += "+" + std::to_string(i);
    return m;
}

struct Result {
    uint64_t map_digest = 0;
    uint64_t vec_sum = 0;
};

}  // namespace

int main()
{
    // Expected results, computed on this thread alone.
    std::vector<Result> expect(kThreads * kRounds);
    for (int t = 0; t < kThreads; t++)
        for (int r = 0; r < kRounds; r++) {
            Result &e = expect[static_cast<size_t>(t * kRounds + r)];
            auto m = build(t, r, &e.vec_sum);
            e.map_digest = digest(*m);
        }

    // The same work on four threads.  Each round's map is handed to the
    // next thread, which checks and destroys it (cross-thread frees).
    std::vector<Result> got(kThreads * kRounds);
    std::mutex mu;
    std::vector<std::unique_ptr<Map>> handoff(kThreads), next(kThreads);
    std::vector<uint64_t> handoff_digest(kThreads * kRounds, 0);
    for (int r = 0; r < kRounds; r++) {
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; t++) {
            threads.emplace_back([&, t, r] {
                // check and destroy the map thread t+1 built last round
                int from = (t + 1) % kThreads;
                std::unique_ptr<Map> old;
                {
                    std::lock_guard<std::mutex> lock(mu);
                    old = std::move(handoff[static_cast<size_t>(from)]);
                }
                if (old) {
                    handoff_digest[static_cast<size_t>(from * kRounds + r - 1)] = digest(*old);
                    old.reset();
                }
                Result &g = got[static_cast<size_t>(t * kRounds + r)];
                auto m = build(t, r, &g.vec_sum);
                g.map_digest = digest(*m);
                std::lock_guard<std::mutex> lock(mu);
                next[static_cast<size_t>(t)] = std::move(m);
            });
        }
        for (auto &th : threads)
            th.join();
        for (int t = 0; t < kThreads; t++)
            handoff[static_cast<size_t>(t)] = std::move(next[static_cast<size_t>(t)]);
    }
    // maps left from the last round
    for (int t = 0; t < kThreads; t++) {
        if (handoff[static_cast<size_t>(t)]) {
            handoff_digest[static_cast<size_t>(t * kRounds + kRounds - 1)] =
                digest(*handoff[static_cast<size_t>(t)]);
            handoff[static_cast<size_t>(t)].reset();
        }
    }

    int bad = 0;
    for (size_t i = 0; i < expect.size(); i++) {
        if (got[i].map_digest != expect[i].map_digest || got[i].vec_sum != expect[i].vec_sum) {
            std::fprintf(stderr, "cxx_threads: result %zu differs: map %016llx vs %016llx, "
                         "vectors %llu vs %llu\n", i,
                         static_cast<unsigned long long>(got[i].map_digest),
                         static_cast<unsigned long long>(expect[i].map_digest),
                         static_cast<unsigned long long>(got[i].vec_sum),
                         static_cast<unsigned long long>(expect[i].vec_sum));
            bad++;
        }
        if (handoff_digest[i] != expect[i].map_digest) {
            std::fprintf(stderr, "cxx_threads: map %zu changed while handed between threads\n", i);
            bad++;
        }
    }
    if (bad) {
        std::printf("cxx_threads: FAIL (%d mismatches)\n", bad);
        return 1;
    }
    std::printf("cxx_threads: ok (%d threads x %d rounds, %d entries per map)\n", kThreads,
                kRounds, kEntries);
    return 0;
}
